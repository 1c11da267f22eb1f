"""The datapath refuses to start with one clear line, and falls back to ``nft`` without the library."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scopenet.datapath.example import ROUTER1, router1
from scopenet.netlink import DatapathUnavailable, Namespaces, libnft
from scopenet.services.l3_agent import require_datapath
from scopenet.services.l3_agent.reconciler import Reconciler
from tests.netns.conftest import OWNER, Sandbox

pytestmark = pytest.mark.netns


def test_not_root_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit) as exc:
        require_datapath()
    assert "needs root" in str(exc.value.code) and "\n" not in str(exc.value.code)


async def test_namespaces_refuse_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(DatapathUnavailable, match="needs root"):
        await Namespaces(private=True).start()


def test_missing_nftables_is_one_line_without_traceback() -> None:
    env = os.environ | {"SCOPENET_LIBNFTABLES": "/nonexistent/libnftables.so.1", "SCOPENET_NFT": "/nonexistent/nft"}
    code = "from scopenet.services.l3_agent import require_datapath; require_datapath()"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "nftables is missing" in proc.stderr and "scripts/os-deps.sh" in proc.stderr


async def test_nft_command_fallback(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> None:
    """Without libnftables.so.1 the same ruleset goes through ``nft -f -`` in the namespace."""
    monkeypatch.setattr(libnft, "_lib", None)
    monkeypatch.setattr(libnft, "LIBRARY", "/nonexistent/libnftables.so.1")
    assert libnft.backend() == "nft"
    calls: list[str] = []
    real_call = libnft.CliNft._call
    monkeypatch.setattr(
        libnft.CliNft, "_call", lambda self, args, stdin: calls.append(args[0]) or real_call(self, args, stdin)
    )
    async with Reconciler(sandbox.kernel, owner=OWNER, resync_interval=3600) as rec:
        rec.desired(router1())
        await rec.wait_idle(10)
        assert rec.status(ROUTER1).status == "ACTIVE"  # type: ignore[union-attr]
        assert "-f" in calls  # the table went through `nft -f -`
        assert "drop_qg-9e3c1d2a-7b" in await sandbox.kernel.counters(str(ROUTER1))
        rec.desired(router1())
        await rec.wait_idle(10)
        assert rec.status(ROUTER1).changes == 0  # type: ignore[union-attr]
