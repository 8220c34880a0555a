"""The small JSON files that let an interrupted transfer resume where it stopped."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def state_path(local: Path, kind: str) -> Path:
    """`<file>.qfc-<kind>.json` beside the local file, so it is easy to find and to delete."""
    return local.with_name(f"{local.name}.qfc-{kind}.json")


def load(path: Path) -> dict[str, Any] | None:
    """The saved state, or None when there is none or it cannot be read (then we start afresh)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save(path: Path, data: dict[str, Any]) -> None:
    # Written aside and renamed, so an interruption never leaves half a file behind.
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(temporary, path)


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def matches(saved: dict[str, Any] | None, expected: dict[str, Any]) -> bool:
    """Whether a saved state belongs to this very transfer (same server, file and version)."""
    return saved is not None and all(saved.get(key) == value for key, value in expected.items())
