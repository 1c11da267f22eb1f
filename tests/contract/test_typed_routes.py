"""The wire is typed end to end: the type checker refuses a handler or a request of another endpoint.

Runs mypy (with the repository's configuration) on a few lines that must fail, and on one that must pass:
a few seconds once mypy's cache is warm (``.venv/bin/mypy`` has run), longer on a cold one.
"""

from __future__ import annotations

import re
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = """
from scopenet.bus.client import BusClient
from scopenet.bus.micro import Route
from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand
from scopenet.contracts.topology_endpoints import PORT


async def port_create(cmd: t.PortCreate) -> t.PortReply: ...
async def network_create(cmd: t.NetworkCreate) -> t.NetworkReply: ...
async def port_create_wrong_reply(cmd: t.PortCreate) -> t.NetworkReply: ...


Route.bind(PORT.create, port_create)
Route.bind(PORT.create, network_create)  # line 15: refused
Route.bind(PORT.create, port_create_wrong_reply)  # line 16: refused


async def caller(bus: BusClient, get: ByIdCommand, create: t.NetworkCreate) -> t.PortReply:
    await bus.call(PORT.create, create)  # line 20: refused
    return await bus.call(PORT.get, get)
"""


def test_mypy_refuses_what_does_not_match_the_endpoint(tmp_path: Path) -> None:
    src = tmp_path / "typed_wire.py"
    src.write_text(SNIPPET)
    out, err, _ = api.run(
        ["--config-file", str(ROOT / "pyproject.toml"), "--disable-error-code", "empty-body", str(src)]
    )
    errors = [int(n) for n in re.findall(r"typed_wire\.py:(\d+): error:", out)]
    assert errors == [15, 16, 20], out + err
