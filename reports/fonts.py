"""The fonts documents are set in, all installed from PyPI with zhidu itself (no system font is
assumed):

- CJK: WenQuanYi Micro Hei (文泉驿微米黑, Apache-2.0 as stated in the font's own licence record),
  shipped by the PyPI package `paperang-p2-fonts-cjk` (a 2.3 MB wheel holding only the font).
  TrueType outlines, 20,932 CJK unified ideographs plus Latin, so fpdf2 embeds it as a subset
  CIDFontType2 whose text extracts exactly.
- Fallback for the few symbols it lacks: DejaVu Sans, which matplotlib ships in its package data.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path

import matplotlib
from matplotlib.ft2font import FT2Font

CJK_PACKAGE = "paperang_p2_fonts_cjk"
CJK_FAMILY = "WenQuanYi Micro Hei"  # the family name inside the font file
FALLBACK_FAMILY = "DejaVu Sans"
REPLACEMENT = "\ufffd"  # written instead of a character no font has (DejaVu Sans draws it)


def cjk_font_path() -> Path:
    path = Path(str(resources.files(CJK_PACKAGE) / "fonts" / "wqy-microhei.ttc"))
    if not path.is_file():
        raise FileNotFoundError(f"CJK font missing: {path} (pip install paperang-p2-fonts-cjk)")
    return path


def fallback_font_path() -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


@lru_cache(maxsize=1)
def _coverage() -> tuple[frozenset[int], frozenset[int]]:
    cjk = FT2Font(str(cjk_font_path()))  # face 0 of the collection: the proportional one
    fallback = FT2Font(str(fallback_font_path()))
    return frozenset(cjk.get_charmap()), frozenset(fallback.get_charmap())


def uncovered(text: str) -> set[str]:
    """Characters of `text` that neither font can draw (line breaks and tabs aside)."""
    cjk, fallback = _coverage()
    return {ch for ch in set(text) if ch not in "\n\t" and ord(ch) not in cjk and ord(ch) not in fallback}


def needs_fallback(text: str) -> bool:
    """Whether `text` has characters the CJK font lacks (but the fallback font has)."""
    cjk, _ = _coverage()
    return any(ord(ch) not in cjk for ch in text if ch not in "\n\t")


def drawable(text: str) -> str:
    """`text` with every character no font can draw replaced by U+FFFD, so a PDF never holds a
    silent .notdef box: what is missing stays visible as �."""
    missing = uncovered(text)
    if not missing:
        return text
    return "".join(REPLACEMENT if ch in missing else ch for ch in text)


_mpl_lock = threading.Lock()
_mpl_registered: set[str] = set()


def register_matplotlib_fonts() -> None:
    """Add the CJK font to matplotlib's font manager once per process."""
    path = str(cjk_font_path())
    with _mpl_lock:
        if path in _mpl_registered:
            return
        from matplotlib import font_manager

        font_manager.fontManager.addfont(path)
        _mpl_registered.add(path)
