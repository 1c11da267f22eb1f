"""The Node.js side of the tests (tests/node): the real npm packages other systems would use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent / "node"


def node_with_packages() -> str:
    """The ``node`` binary, once every package of tests/node/package.json is installed. Installing
    is ``make install``'s job (``npm ci``), never a test's: a test only says what is missing."""
    node = shutil.which("node")
    assert node, "Node.js 18+ is needed for this test (install it, then `make install`)"
    wanted = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    missing = [name for name in wanted if not (NODE_DIR / "node_modules" / name).exists()]
    assert not missing, f"npm packages missing in tests/node: {', '.join(missing)} (run `make install`)"
    return node
