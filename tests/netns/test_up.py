"""`scopenet up` as an operator uses it: start, print how to reach the API, serve the CLI's
requests, stop cleanly on Ctrl-C, and find its allocations again after a restart.

Runs in a network and mount namespace of its own, like the demo test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.netns.test_demo import SANDBOX


def _start(state: Path, port: int) -> subprocess.Popen[str]:
    scopenet = Path(sys.executable).with_name("scopenet")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPENET_")}
    env["PYTHONUNBUFFERED"] = "1"  # lines reach the pipe as they are printed
    unshare = shutil.which("unshare")
    assert unshare
    # One sandbox shell runs `up` and, in the same namespaces, a tiny HTTP client (the test
    # cannot reach the sandbox's loopback from outside).
    return subprocess.Popen(
        [
            unshare,
            "--net",
            "--mount",
            "--fork",
            "--kill-child",
            "sh",
            "-c",
            SANDBOX,
            "sandbox",
            str(scopenet),
            "up",
            "--state-dir",
            str(state),
            "--api-port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _nsenter_python(proc: subprocess.Popen[str], code: str) -> str:
    """Run Python inside the sandbox of ``proc`` (its child holds the namespaces)."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    pid = children[0]
    done = subprocess.run(
        ["nsenter", "-t", pid, "--net", "--mount", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


CLIENT = """
import json, sys, time, urllib.request, urllib.error
url, token, method, path, body = sys.argv[1:6]
deadline = time.time() + 60
while True:
    req = urllib.request.Request(url + path, method=method, data=body.encode() or None,
                                 headers={"X-Auth-Token": token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            print(r.read().decode()); break
    except urllib.error.HTTPError as e:
        if e.code != 503 or time.time() > deadline: print(json.dumps({"status": e.code})); break
    except OSError:
        if time.time() > deadline: raise
    time.sleep(0.3)
"""


def _call(proc: subprocess.Popen[str], token: str, method: str, path: str, body: str = "") -> dict:  # type: ignore[type-arg]
    code = f"import sys; sys.argv=['x','http://127.0.0.1:9797','{token}','{method}','{path}',{body!r}]\n" + CLIENT
    return json.loads(_nsenter_python(proc, code))  # type: ignore[no-any-return]


class Output:
    """Lines of the process's output, read by a thread so a wait can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line)

    def wait(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            if self._proc.poll() is not None and not any(re.search(pattern, ln) for ln in self.lines):
                break
            time.sleep(0.1)
        raise AssertionError(f"`scopenet up` never printed {pattern!r}:\n{''.join(self.lines)[-4000:]}")


def _stop(proc: subprocess.Popen[str]) -> int:
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    return proc.wait(timeout=60)


@pytest.mark.timeout(300)
def test_up_serves_the_cli_and_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = _start(state, 9797)
    out = Output(proc)
    try:
        token = out.wait(r"OS_TOKEN=(\S+)").group(1)
        out.wait(r"press Ctrl-C to stop")
        made = _call(
            proc,
            token,
            "POST",
            "/v2.0/address-scopes",
            json.dumps({"address_scope": {"name": "kept", "ip_version": 4, "shared": True}}),
        )
        scope_id = made["address_scope"]["id"]
    finally:
        code = _stop(proc)
    assert code == 0, "".join(out.lines)[-3000:]
    out.wait(r"scopenet: stopped", timeout=5)

    proc = _start(state, 9797)
    out = Output(proc)
    try:
        assert out.wait(r"OS_TOKEN=(\S+)").group(1) == token, "the tokens file is written on first start only"
        out.wait(r"press Ctrl-C to stop")
        got = _call(proc, token, "GET", f"/v2.0/address-scopes/{scope_id}")
        assert got["address_scope"]["name"] == "kept", "allocations survive a restart of `up`"
    finally:
        _stop(proc)
