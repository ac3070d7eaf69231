"""Files written whole or not at all: a reader never sees half of one."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_text_atomically(path: Path, text: str) -> None:
    """Write a file through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.tmp-{secrets.token_hex(4)}"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
