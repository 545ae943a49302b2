"""Where the codec's data files live: the repository's `schemas/` folder unless an operator says otherwise."""

from __future__ import annotations

import os
from pathlib import Path

SCHEMAS_DIR_ENV = "GATEWAY_SCHEMAS_DIR"
# Operators replace single code tables or add local division codes without a release by
# pointing this at a folder holding only the files they override.
OVERRIDES_DIR_ENV = "GATEWAY_CODEC_OVERRIDES_DIR"


def schemas_dir() -> Path:
    env = os.environ.get(SCHEMAS_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "schemas"


def overrides_dir() -> Path | None:
    env = os.environ.get(OVERRIDES_DIR_ENV)
    return Path(env) if env else None
