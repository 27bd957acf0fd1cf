"""Text cleaning shared by the encoders and the keyword chunker."""

from __future__ import annotations

import re
import unicodedata

_WS = re.compile(r"\s+")


def clean_text(text: str, max_chars: int | None = None) -> str:
    """Drop control characters (keeping whitespace), lone surrogates and NULs; collapse spaces.

    Lone surrogates cannot be encoded as UTF-8, which the Rust tokenizers need.
    """
    if not isinstance(text, str):
        raise TypeError(f"texts must be str, got {type(text).__name__}")
    out = []
    for ch in text:
        if ch.isspace():
            out.append(" ")
        elif unicodedata.category(ch) not in ("Cc", "Cs"):
            out.append(ch)
    s = _WS.sub(" ", "".join(out)).strip()
    if max_chars is not None and len(s) > max_chars:
        s = s[:max_chars].rstrip()      # the cut may land just after a space
    return s
