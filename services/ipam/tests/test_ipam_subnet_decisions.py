"""How IPAM decides a batch of subnet (prefix) requests on one pool, without a database.

``Subnets`` decides each request of a pool's batch in memory (``_static_checks`` → ``_against_pool``
→ ``_decide`` against the pool's ``FreeBlocks``) before one commit. Pins what a caller sees: the
request's own consistency (400 naming the field), the pool's visibility (404 for a pool neither
owned nor shared, as if it did not exist), family and size bounds, a gateway alone making the request
specific, best fit across the batch, per-project quota counted across the batch, a refused request
never consuming space, the network rules applied to what the batch already allocated, and the
idempotency of a retried request.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netaddr import IPNetwork, IPSet

from scopenet.contracts import ipam as m
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, Conflict, DomainError, NotFound
from scopenet.services.ipam.rules import alloc
from scopenet.services.ipam.rules.network_rules import NetSubnet
from scopenet.services.ipam.subnets import Plan, Subnets, _request_json, _same_request

OWNER = CallContext(project_id="owner", roles=["member"])
OTHER = CallContext(project_id="other", roles=["member"])
SCOPE = uuid.uuid4()


def pool(**changes: Any) -> dict[str, Any]:
    row = {
        "id": uuid.uuid4(),
        "project_id": "owner",
        "rbac_targets": [],
        "ip_version": 4,
        "prefixes": ["10.0.0.0/24"],
        "default_prefixlen": 26,
        "min_prefixlen": 24,
        "max_prefixlen": 28,
        "default_quota": None,
        "address_scope_id": SCOPE,
    }
    return {**row, **changes}


def request(ctx: CallContext = OWNER, network: uuid.UUID | None = None, **fields: Any) -> m.SubnetAllocate:
    return m.SubnetAllocate(
        context=ctx,
        subnet_id=uuid.uuid4(),
        network_id=network or uuid.uuid4(),
        project_id=ctx.project_id,
        ip_version=fields.pop("ip_version", 4),
        subnetpool_id=fields.pop("subnetpool_id", uuid.uuid4()),
        **fields,
    )


class Batch:
    """One pool's batch, decided the way ``Subnets._pool_batch`` decides it (minus the SQL)."""

    def __init__(
        self, row: dict[str, Any], used: tuple[str, ...] = (), nets: dict[uuid.UUID, list[NetSubnet]] | None = None
    ) -> None:
        self.pool = row
        self.free = alloc.FreeBlocks([IPNetwork(p) for p in row["prefixes"]], [IPNetwork(u) for u in used])
        self.nets: dict[uuid.UUID, list[NetSubnet]] = nets or {}
        self.usage: dict[str, Any] = {}
        self.subnets = Subnets(cast(asyncpg.Pool, None))

    def decide(self, cmd: m.SubnetAllocate) -> m.Subnet:
        self.nets.setdefault(cmd.network_id, [])
        plan = Subnets._against_pool(Subnets._static_checks(cmd), cast(asyncpg.Record, self.pool))
        return self.subnets._decide(plan, cast(asyncpg.Record, self.pool), self.free, self.nets, self.usage)


def refused(batch: Batch, cmd: m.SubnetAllocate) -> DomainError:
    with pytest.raises(DomainError) as exc:
        batch.decide(cmd)
    return exc.value


# ---------------------------------------------------------------- the request alone


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"cidr": "10.0.0.0/26", "prefixlen": 26}, "prefixlen", "must not be supplied together"),
        ({"use_default_subnetpool": True}, "use_default_subnetpool", "cannot both be specified"),
        ({"subnetpool_id": None}, "cidr", "A cidr must be specified"),
        ({"allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.9"}]}, "allocation_pools", "specific subnet"),
        ({"cidr": "10.0.0.0/33"}, "cidr", ""),
        ({"cidr": "2001:db8::/64"}, "cidr", ""),
    ],
)
def test_inconsistent_requests_are_400_naming_the_field(fields: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(BadRequest) as exc:
        Subnets._static_checks(request(**fields))
    assert exc.value.field == field and words in exc.value.message


def test_a_plain_cidr_needs_no_pool() -> None:
    plan = Subnets._static_checks(request(subnetpool_id=None, cidr="192.0.2.0/24"))
    assert plan == Plan(plan.cmd, None, IPNetwork("192.0.2.0/24"), 24)


# ---------------------------------------------------------------- the pool


def test_a_pool_neither_owned_nor_shared_does_not_exist() -> None:
    row = pool()
    exc = refused(Batch(row), request(OTHER))
    assert isinstance(exc, NotFound) and exc.type == "SubnetPoolNotFound" and str(row["id"]) in exc.message
    for targets in (["*"], ["other"]):
        assert Batch(pool(rbac_targets=targets)).decide(request(OTHER)).project_id == "other"
    assert Batch(pool()).decide(request(CallContext(project_id="x", roles=["admin"]))).cidr == "10.0.0.0/26"


def test_family_and_size_bounds() -> None:
    exc = refused(Batch(pool()), request(ip_version=6))
    assert exc.field == "ip_version" and "IPv6 subnet from IPv4" in exc.message
    for plen in (23, 29):
        assert refused(Batch(pool()), request(prefixlen=plen)).code == 400


def test_a_gateway_alone_makes_the_request_specific() -> None:
    view = Batch(pool()).decide(request(gateway_ip="10.0.0.129"))
    assert (view.cidr, view.gateway_ip) == ("10.0.0.128/26", "10.0.0.129")
    assert refused(Batch(pool()), request(gateway_ip="nonsense")).field == "gateway_ip"


# ---------------------------------------------------------------- a batch


def test_best_fit_across_the_batch() -> None:
    batch = Batch(pool(), used=("10.0.0.64/26",))
    got = [batch.decide(request(prefixlen=p)).cidr for p in (27, 26, 27)]
    assert got == ["10.0.0.0/27", "10.0.0.128/26", "10.0.0.32/27"]  # smallest hole first
    exc = refused(batch, request(prefixlen=25))
    assert (
        isinstance(exc, Conflict) and exc.type == "SubnetAllocationError" and "largest free block: /26" in exc.message
    )
    assert batch.decide(request(prefixlen=26)).cidr == "10.0.0.192/26"
    assert "(the pool is full)" in refused(batch, request(prefixlen=28)).message


def test_quota_counts_what_the_batch_already_gave_each_project() -> None:
    batch = Batch(pool(default_quota=128, rbac_targets=["*"]))
    assert [batch.decide(request()).cidr for _ in range(2)] == ["10.0.0.0/26", "10.0.0.64/26"]
    exc = refused(batch, request())
    assert exc.type == "SubnetPoolQuotaExceeded" and exc.code == 409
    assert batch.decide(request(OTHER)).cidr == "10.0.0.128/26"  # another project's own quota


def test_a_refused_request_consumes_no_space() -> None:
    net = uuid.uuid4()
    unscoped_plain = NetSubnet(uuid.uuid4(), IPNetwork("192.0.2.0/24"), None, None)
    batch = Batch(pool(), nets={net: [unscoped_plain]})
    exc = refused(batch, request(network=net))
    assert exc.type == "NetworkSubnetPoolAffinityError" and exc.field == "subnetpool_id"
    exc = refused(batch, request(allocation_pools=[{"start": "10.0.0.1", "end": "10.0.0.5"}], cidr="10.0.0.0/26"))
    assert exc.type == "GatewayConflictWithAllocationPools"
    assert batch.decide(request()).cidr == "10.0.0.0/26"
    assert batch.free.free_addresses() == 256 - 64


def test_the_network_rules_see_the_batch() -> None:
    net = uuid.uuid4()
    batch = Batch(pool())
    first = batch.decide(request(network=net))
    exc = refused(batch, request(network=net, cidr=first.cidr))
    assert exc.code == 409  # taken in the pool before the network even looks
    assert [s.cidr for s in batch.nets[net]] == [IPNetwork(first.cidr)]
    second = batch.decide(request(network=net))
    assert (second.subnetpool_id, second.address_scope_id) == (first.subnetpool_id, SCOPE)


@settings(max_examples=50)
@given(st.lists(st.integers(24, 28), max_size=12), st.booleans())
def test_a_batch_never_hands_out_overlapping_or_foreign_prefixes(lengths: list[int], quota: bool) -> None:
    batch = Batch(pool(default_quota=160 if quota else None))
    given_out: list[IPNetwork] = []
    for plen in lengths:
        before = batch.free.free_addresses()
        try:
            given_out.append(IPNetwork(batch.decide(request(prefixlen=plen)).cidr))
        except DomainError as exc:
            assert exc.type in ("SubnetAllocationError", "SubnetPoolQuotaExceeded")
            assert batch.free.free_addresses() == before
    assert sum(n.size for n in given_out) == IPSet(given_out).size  # no overlap
    assert IPSet(given_out) <= IPSet(["10.0.0.0/24"])
    assert not quota or sum(n.size for n in given_out) <= 160


# ---------------------------------------------------------------- retries


def test_a_retry_replays_and_a_different_request_under_the_same_id_conflicts() -> None:
    cmd = request()
    view = Batch(pool()).decide(cmd)
    assert _same_request(_request_json(cmd), view, cmd).subnet == view
    other = cmd.model_copy(update={"prefixlen": 27})
    with pytest.raises(Conflict) as exc:
        _same_request(_request_json(cmd), view, other)
    assert exc.value.type == "SubnetInUse" and view.cidr in exc.value.message
