"""Pure IPAM domain logic: subnet-pool prefixes, best-fit prefix allocation, gateway and address allocation.

Nothing here does I/O, touches asyncio or knows about the database: services load state, call these
functions (or keep the incremental ``FreeBlocks`` / ``FreeAddresses`` structures in memory) and persist the
answer. Keeping the algorithms apart from the locking is the point (house style 2): Neutron's best-fit
allocator is sound but buried under a hash-column CAS lock, which makes it hard to test on its own.
"""
