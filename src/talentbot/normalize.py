"""Text normalisation shared by indexing and questions: traditional Chinese characters to simplified.

OpenCC's ``t2s`` conversion (character level) makes a question in traditional characters meet a
document in simplified ones, and the reverse: both sides are matched in simplified form. Text already
simplified comes back unchanged.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_converter = None


def simplified(text: str) -> str:
    """``text`` with traditional characters converted to simplified (OpenCC t2s)."""
    global _converter
    if _converter is None:
        with _lock:
            if _converter is None:
                import opencc

                _converter = opencc.OpenCC("t2s")
    return _converter.convert(text)
