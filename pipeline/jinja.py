"""Jinja's delimiters. dbt runs every model and every YAML description through Jinja, so
text from users' files never holds one (the loader refuses it) and a generated file holds
only the compiler's own Jinja (the renderer checks what it writes)."""

from __future__ import annotations

DELIMITERS = ("{{", "{%", "{#")


def delimiter_in(text: str) -> str | None:
    """The first Jinja delimiter in `text`, or None."""
    found = [(text.find(d), d) for d in DELIMITERS if d in text]
    return min(found)[1] if found else None
