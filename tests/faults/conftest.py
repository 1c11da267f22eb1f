"""Fault tests: the short versions run in CI (``make test``), the long ones in ``make soak``.

Every fault test reads its duration with ``soak_seconds(short)``: ``short`` in CI, the value of
``SCOPENET_SOAK_SECONDS`` under ``make soak``. Each test records what it injected and what it
checked with the ``record`` fixture; under ``make soak`` the records go (as JSON lines) to
``SCOPENET_SOAK_REPORT``, from which docs/reliability.md is written.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def soak_seconds(short: float) -> float:
    """How long a fault test drives load: ``short`` unless ``make soak`` asks for longer."""
    value = os.environ.get("SCOPENET_SOAK_SECONDS")
    return float(value) if value else short


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``record(faults=..., operations=..., lost=..., **figures)``: one JSON line per call."""

    def write(**fields: Any) -> None:
        line = {"test": request.node.nodeid, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields}
        target = os.environ.get("SCOPENET_SOAK_REPORT")
        if target:
            with Path(target).open("a") as out:
                out.write(json.dumps(line, sort_keys=True) + "\n")
        print("fault-record", json.dumps(line, sort_keys=True))

    return write
