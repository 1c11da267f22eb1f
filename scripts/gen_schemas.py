"""Regenerate proto/ from the pydantic contracts: ``python scripts/gen_schemas.py``."""

from pathlib import Path

from scopenet.contracts.schema import write

if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent / "proto"
    for path in write(root):
        print(path.relative_to(root.parent))
