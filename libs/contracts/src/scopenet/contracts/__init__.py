"""Every wire contract in one place: pydantic v2 models, strict (``extra="forbid"``) and frozen.

``proto/`` holds the JSON Schemas generated from these models (``scripts/gen_schemas.py``);
a contract test fails when they drift.
"""
