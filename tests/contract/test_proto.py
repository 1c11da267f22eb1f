"""proto/ is generated from the contracts: any drift (a changed model, a new subject) fails here."""

from __future__ import annotations

import json
from pathlib import Path

from scopenet.contracts.schema import render
from scopenet.contracts.subjects import ALL_ENDPOINTS

PROTO = Path(__file__).resolve().parents[2] / "proto"


def test_proto_matches_contracts() -> None:
    expected = render()
    on_disk = {str(p.relative_to(PROTO)): p.read_text() for p in PROTO.rglob("*.json")}
    missing = sorted(set(expected) - set(on_disk))
    stale = sorted(set(on_disk) - set(expected))
    changed = sorted(k for k in set(expected) & set(on_disk) if expected[k] != on_disk[k])
    assert not (missing or stale or changed), (
        f"proto/ drifted from libs/contracts (run `make schemas`): missing={missing} stale={stale} changed={changed}"
    )


def test_index_lists_every_subject_once_with_its_schemas() -> None:
    index = json.loads((PROTO / "index.json").read_text())
    subjects = [c["subject"] for c in index["commands"]]
    assert len(subjects) == len(set(subjects)) == len(ALL_ENDPOINTS)
    for cmd in index["commands"]:
        assert (PROTO / cmd["request"]).exists() and (PROTO / cmd["reply"]).exists()


def test_commands_refuse_unknown_fields() -> None:
    """Other languages rely on the schemas: every command schema forbids extra properties."""
    index = json.loads((PROTO / "index.json").read_text())
    for cmd in index["commands"]:
        schema = json.loads((PROTO / cmd["request"]).read_text())
        assert schema.get("additionalProperties") is False, cmd["subject"]
