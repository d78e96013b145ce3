"""Write ``docs/config.schema.json``: the JSON Schema of a configuration file, made from
the declarations of :mod:`evokeras.engine.config` (``tests/engine/test_config.py`` fails
while the committed file differs from what this writes).

Usage::

    python scripts/write_config_schema.py
"""

from __future__ import annotations

import json
from pathlib import Path

from evokeras.engine.config import config_schema

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "config.schema.json"


def schema_text() -> str:
    """The file's text: the schema as indented JSON."""
    return json.dumps(config_schema(), indent=2) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(schema_text())
    print(f"wrote {SCHEMA_PATH}")
