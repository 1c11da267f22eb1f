"""nftables from Python: libnftables in process (ctypes), or ``nft`` as a subprocess as a fallback.

Why in process: ``nft -f -`` costs 10-16 ms per apply on this kind of machine, almost all of it
process start; ``nft_run_cmd_from_buffer`` on a kept context costs ~0.2 ms (docs/datapath.md). Neutron's
agent pays a process per iptables call; the agent here pays none per change.

A libnftables context talks to the kernel through a netlink socket that is bound to the network
namespace the calling thread is in **when the context is created**, so a context is made inside
the namespace it acts on (``scopenet.netlink.namespaces``). Contexts are *not* kept: one holds
~0.7 MB once it has parsed a router's ruleset, which for 200 routers would be most of the agent's
memory budget, while a new one costs ~0.1 ms. ``nft_ctx_free`` can block 10-40 ms after a ruleset
change (the kernel side of the socket release), so ``session`` hands contexts to a reaper thread
instead of freeing them on the caller's. The fallback runs ``nft`` in the calling thread's namespace
(a child inherits it).

Neither is thread-safe: a context is used by one thread at a time (the namespace thread).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from scopenet.datapath import names
from scopenet.netlink.errors import DatapathUnavailable, NftError

T = TypeVar("T")

LIBRARY = os.environ.get("SCOPENET_LIBNFTABLES", "libnftables.so.1")
NFT = os.environ.get("SCOPENET_NFT", "nft")
_NFT_CTX_OUTPUT_JSON = 1 << 4


class Nft(Protocol):
    def run(self, commands: str) -> None: ...

    def list_json(self, what: str) -> dict[str, Any]: ...

    def close(self) -> None: ...


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not set(ln.strip()) <= {"^", "~", " "}]
    return " | ".join(lines)[:1000] or "nft failed"


_lib: ctypes.CDLL | None = None


def _load() -> ctypes.CDLL | None:
    """The library with its prototypes declared, or None when it is not installed."""
    global _lib
    if _lib is not None:
        return _lib
    try:
        lib = ctypes.CDLL(LIBRARY, use_errno=True)
    except OSError:
        return None
    p, i, u, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_char_p
    for name, res, args in (
        ("nft_ctx_new", p, [ctypes.c_uint32]),
        ("nft_ctx_free", None, [p]),
        ("nft_run_cmd_from_buffer", i, [p, s]),
        ("nft_ctx_buffer_output", i, [p]),
        ("nft_ctx_buffer_error", i, [p]),
        ("nft_ctx_get_output_buffer", s, [p]),
        ("nft_ctx_get_error_buffer", s, [p]),
        ("nft_ctx_output_get_flags", u, [p]),
        ("nft_ctx_output_set_flags", None, [p, u]),
    ):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    _lib = lib
    return lib


class LibNft:
    """A libnftables context; the namespace it acts on is the caller's at construction time."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self._ctx = lib.nft_ctx_new(0)
        if not self._ctx:
            raise NftError("nft_ctx_new failed")
        lib.nft_ctx_buffer_output(self._ctx)
        lib.nft_ctx_buffer_error(self._ctx)
        self._flags = lib.nft_ctx_output_get_flags(self._ctx)

    def _run(self, commands: str, *, as_json: bool) -> str:
        if self._ctx is None:
            raise NftError("nft context closed")
        flags = self._flags | _NFT_CTX_OUTPUT_JSON if as_json else self._flags
        self._lib.nft_ctx_output_set_flags(self._ctx, flags)
        rc = self._lib.nft_run_cmd_from_buffer(self._ctx, commands.encode())
        out = (self._lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode()
        err = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode()
        if rc != 0:
            raise NftError(_one_line(err))
        return out

    def run(self, commands: str) -> None:
        self._run(commands, as_json=False)

    def list_json(self, what: str) -> dict[str, Any]:
        return _parse(self._run(f"list {what}", as_json=True))

    def close(self) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx:
            self._lib.nft_ctx_free(ctx)


class CliNft:
    """``nft`` as a subprocess in the calling thread's namespace (the fallback: ~15 ms a call)."""

    def __init__(self, binary: str) -> None:
        self._binary = binary

    def _call(self, args: list[str], stdin: str | None) -> str:
        proc = subprocess.run([self._binary, *args], input=stdin, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise NftError(_one_line(proc.stderr))
        return proc.stdout

    def run(self, commands: str) -> None:
        self._call(["-f", "-"], commands)

    def list_json(self, what: str) -> dict[str, Any]:
        return _parse(self._call(["-j", "list", *what.split()], None))

    def close(self) -> None:
        return None


def _parse(out: str) -> dict[str, Any]:
    if not out.strip():
        return {"nftables": []}
    data = json.loads(out)
    return data if isinstance(data, dict) else {"nftables": []}


def _binary() -> str | None:
    return shutil.which(NFT) or shutil.which(NFT, path="/usr/sbin:/sbin")


def backend() -> str:
    """``libnftables``, ``nft`` or raises DatapathUnavailable with the one-line reason."""
    if _load() is not None:
        return "libnftables"
    if _binary() is not None:
        return "nft"
    raise DatapathUnavailable(
        f"scopenet: nftables is missing (neither {LIBRARY} nor the nft command); "
        "run scripts/os-deps.sh as root, or install the Debian packages libnftables1 and nftables"
    )


def new_context() -> Nft:
    """A context bound to the calling thread's current network namespace."""
    lib = _load()
    if lib is not None:
        return LibNft(lib)
    backend()  # the one-line error when neither exists
    return CliNft(_binary() or NFT)


def table_listing(ctx: Nft, table: str = f"inet {names.TABLE}") -> dict[str, Any] | None:
    """``list table <family> <name>`` (default: the router's table) as JSON through ``ctx``; None
    when there is no such table."""
    try:
        return ctx.list_json(f"table {table}")
    except NftError as exc:
        if "No such file or directory" in str(exc):
            return None
        raise


_reaper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scopenet-nft-free")


def session(fn: Callable[[Nft], T]) -> T:
    """Run ``fn`` with a fresh context in the calling thread's namespace; free it off-thread."""
    ctx = new_context()
    try:
        return fn(ctx)
    finally:
        _reaper.submit(ctx.close)
