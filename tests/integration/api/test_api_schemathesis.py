"""schemathesis against /openapi.json: no 5xx, and responses match the document."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from scopenet.services.api.app import RunningApi
from tests.integration.api.conftest import TOKENS

ST = str(Path(sys.executable).parent / "st")


async def test_schemathesis_finds_no_server_error(api_server: RunningApi, tmp_path: Path) -> None:
    argv = [
        ST, "run", f"{api_server.url}/openapi.json",
        "-H", f"X-Auth-Token: {TOKENS['admin'][0]}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", "8", "--workers", "2", "--seed", "4242", "--request-timeout", "10",
        "--no-color",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
