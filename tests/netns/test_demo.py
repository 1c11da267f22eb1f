"""`scopenet demo` — the README's first command — end to end, as a user runs it.

It runs in a network and mount namespace of its own (``unshare --net --mount`` with a private
/run/netns), so its routers, instances, embedded Postgres and NATS never meet the machine's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SANDBOX = """
set -e
mount --make-rprivate /
mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns
ip link set lo up
exec "$@"
"""


@pytest.mark.timeout(300)
def test_make_demo_matches_the_seed(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    assert unshare, "util-linux unshare is needed"
    scopenet = Path(sys.executable).with_name("scopenet")
    env = {**os.environ, "SCOPENET_STATE_DIR": str(tmp_path / "state")}
    env.pop("SCOPENET_DATABASE_URL", None)  # the demo starts its own servers, inside the sandbox
    env.pop("SCOPENET_NATS_URL", None)
    done = subprocess.run(
        [unshare, "--net", "--mount", "sh", "-c", SANDBOX, "sandbox", str(scopenet), "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    out = done.stdout
    assert done.returncode == 0, f"demo exited {done.returncode}\n{out[-6000:]}\n{done.stderr[-3000:]}"
    assert "demo: all 15 connectivity checks and every allocation matched the seed" in out
    # BIRD 2 is installed (scripts/os-deps.sh): the external host learns its routes over BGP.
    assert "the external host learnt its routes over BGP" in out and "routes learnt over BGP" in out
    # The tables a reader compares with the seed document.
    assert "| subnet-ip4-2       | network2 | 203.0.113.64/26" in out
    assert "| network2 | False           | address-scope-ip4  | address-scope-ip6  |" in out
    assert "MISMATCH" not in out
    assert "PolicyNotAuthorized" in out  # the project's shared scope was refused
