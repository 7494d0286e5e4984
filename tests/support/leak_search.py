"""Searching kept files for secrets by decoding what is there, not by asking the masking code."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote, unquote_plus

_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{12,}")


def _letters(text: str) -> str:
    # Folding, argv splitting, escaping and case changes only add or change
    # separators and case: what is left of a secret is its letters and digits.
    return "".join(character for character in text.lower() if character.isalnum())


def _decoded_views(text: str) -> list[str]:
    """Given kept text, return it and everything its base64, hex and URL-encoded runs decode to."""
    views = [text, unquote(text), unquote_plus(text)]
    for run in _BASE64_RUN.findall(text):
        standard = run.replace("-", "+").replace("_", "/")
        for skip in range(4):
            piece = standard[skip:]
            piece += "=" * (-len(piece) % 4)
            try:
                views.append(base64.b64decode(piece).decode(errors="ignore"))
            except (binascii.Error, ValueError):
                continue
    for run in _HEX_RUN.findall(text):
        for skip in range(2):
            piece = run[skip:]
            views.append(
                bytes.fromhex(piece[: len(piece) - len(piece) % 2]).decode(errors="ignore")
            )
    return views


def leaks(text: str, canaries: dict[str, str]) -> list[str]:
    """Given kept text and the canaries by name, return the names of those it still holds."""
    views = [_letters(view) for view in _decoded_views(text)]
    return [name for name, value in canaries.items() if any(_letters(value) in v for v in views)]
