"""Network namespaces without a process per operation: one thread that moves between them.

Concurrency model. Whatever has to *be inside* a namespace — creating one, opening a netlink
socket or a libnftables context bound to it, writing its ``/proc/sys/net`` — runs on a single
dedicated thread: ``setns(2)`` into the target, do the work, ``setns`` back "home". A network
namespace is per thread in Linux, so the event loop and every other thread stay where they are,
and the one thread serialises all such work (each step takes microseconds to a millisecond).
Sockets and contexts made there stay bound to their namespace and are then used from the loop.

Creating a namespace is ``unshare(CLONE_NEWNET)`` on that thread plus a bind mount of
``/proc/thread-self/ns/net`` on ``<run_dir>/<name>`` — what ``ip netns add`` does, without its
process. A ``prepare`` callback runs inside the new namespace *before* the bind mount, so a
namespace that has a name has already been prepared (a crash in between leaves nothing behind).

``private=True`` (tests, and anything that must not touch the machine): the thread first unshares
its own network *and mount* namespaces, makes its mounts private and puts a tmpfs on ``run_dir``.
Everything created then — the host namespace, routers, instances — is invisible to the rest of the
machine and disappears with the thread, even after a crash or ``kill -9``. Paths under ``run_dir``
only resolve on that thread, which is why every path-based operation goes through it.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from scopenet.netlink.errors import DatapathUnavailable, KernelError

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SHARED = 1 << 20
MNT_DETACH = 2
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_GET_STRICT_CHK = 12
RUN_DIR = "/run/netns"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _setns(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), "setns")


def _enc(value: str | None) -> bytes | None:
    return value.encode() if value is not None else None


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(_enc(source), _enc(target), _enc(fstype), flags, _enc(data)), f"mount {target}")


class Namespaces:
    """The namespace thread and the operations that need it (see the module docstring)."""

    def __init__(self, *, run_dir: str = RUN_DIR, private: bool = False) -> None:
        self.run_dir = run_dir
        self.private = private
        self._pool: ThreadPoolExecutor | None = None
        self._home = -1
        self._nsfs = -1
        self._shared_run_dir = False

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if os.geteuid() != 0:
            raise DatapathUnavailable("scopenet: the datapath needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN); run as root")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scopenet-netns")
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._init)
        except BaseException:
            self._pool.shutdown(wait=True)
            self._pool = None
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            if self._home >= 0:
                pool.submit(os.close, self._home)
            await asyncio.get_running_loop().run_in_executor(None, lambda: pool.shutdown(wait=True))

    async def __aenter__(self) -> Namespaces:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _init(self) -> None:
        if self.private:
            _check(_libc.unshare(CLONE_NEWNET | CLONE_NEWNS), "unshare")
            _mount(None, "/", None, MS_REC | MS_PRIVATE)
            os.makedirs(self.run_dir, exist_ok=True)
            _mount("tmpfs", self.run_dir, "tmpfs", 0, "mode=0755")
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._nsfs = os.fstat(self._home).st_dev

    # -- running work inside a namespace ------------------------------------------------------

    async def call(self, namespace: str | None, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the namespace thread inside ``namespace`` (None: the thread's home)."""
        if self._pool is None:
            raise KernelError("namespace thread not started")
        result: T = await asyncio.get_running_loop().run_in_executor(self._pool, self.inside, namespace, fn)
        return result

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the namespace thread, at home (for path-based work under ``run_dir``)."""
        return await self.call(None, fn)

    def inside(self, namespace: str | None, fn: Callable[[], T]) -> T:
        """Thread side of ``call``: only ever run this on the namespace thread."""
        if namespace is None:
            return fn()
        fd = self._open(namespace)
        try:
            _setns(fd)
            try:
                return fn()
            finally:
                _setns(self._home)
        finally:
            os.close(fd)

    def path(self, name: str) -> str:
        if not name or "/" in name or name in {".", ".."}:
            raise KernelError(f"invalid namespace name {name!r}")
        return os.path.join(self.run_dir, name)

    def _open(self, name: str) -> int:
        try:
            return os.open(self.path(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise KernelError(f"network namespace {name} does not exist") from None

    # -- thread-side helpers (call these through run()/call()) --------------------------------

    def open_fd(self, name: str | None) -> int:
        """A new fd of the namespace (None: home); the caller closes it. Valid in every thread."""
        if name is None:
            return os.dup(self._home)
        return self._open(name)

    def identity(self, name: str) -> tuple[int, int] | None:
        """``(dev, inode)`` of the namespace behind the name; None when there is none (no such name,
        or only the empty placeholder file a crash between creating it and mounting left behind)."""
        try:
            st = os.stat(self.path(name))
        except FileNotFoundError:
            return None
        if st.st_dev != self._nsfs:
            return None
        return (st.st_dev, st.st_ino)

    def names(self, prefix: str = "") -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.run_dir) if n.startswith(prefix))
        except FileNotFoundError:
            return []

    def route_socket(self) -> socket.socket:
        """A NETLINK_ROUTE socket in the thread's *current* namespace (use inside call()).

        Strict checking is on, so the kernel filters dumps by the request (see ``rtnl``).
        """
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
        sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
        return sock

    def create(self, name: str, prepare: Callable[[], T] | None = None) -> T | None:
        """Create namespace ``name``; ``prepare`` runs inside it before it gets its name."""
        path = self.path(name)
        self._ensure_run_dir()
        if os.path.exists(path) and self.identity(name) is None:
            os.unlink(path)  # a placeholder left by a crash mid-create
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
        except FileExistsError:
            raise KernelError(f"network namespace {name} already exists") from None
        named = False
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare")
            try:
                result = prepare() if prepare is not None else None
                _mount("/proc/thread-self/ns/net", path, None, MS_BIND)
                named = True
            finally:
                _setns(self._home)
        finally:
            if not named:
                os.unlink(path)
        return result

    def delete(self, name: str) -> bool:
        """Remove the name (the namespace goes when its last user does). False: it did not exist."""
        path = self.path(name)
        if _libc.umount2(path.encode(), MNT_DETACH) != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
            _check(-1, f"umount {path}")
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True

    def _ensure_run_dir(self) -> None:
        """As ``ip netns add``: make ``run_dir`` a shared mount so other mount namespaces see names."""
        if self.private or self._shared_run_dir:
            return
        os.makedirs(self.run_dir, exist_ok=True)
        if _libc.mount(b"", self.run_dir.encode(), b"none", MS_SHARED | MS_REC, None) != 0:
            _mount(self.run_dir, self.run_dir, "none", MS_BIND | MS_REC)
            _mount("", self.run_dir, "none", MS_SHARED | MS_REC)
        self._shared_run_dir = True
