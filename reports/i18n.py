"""The message catalog (`templates/i18n/messages.yaml`: every user-facing text in zh and en) and
how values are written for people in each language."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML

from reports.models import Text

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
CATALOG_PATH = Path(__file__).parent / "templates" / "i18n" / "messages.yaml"


class CatalogError(ValueError):
    """The catalog file is malformed, or a key or placeholder is missing."""


def check_lang(lang: str) -> Lang:
    if lang == "zh":
        return "zh"
    if lang == "en":
        return "en"
    raise ValueError(f"lang must be 'zh' or 'en', not {lang!r}")


@lru_cache(maxsize=1)
def catalog() -> dict[str, Text]:
    """All messages by key; fails if an entry lacks zh or en, or if the two use different
    placeholders."""
    data: Any = YAML(typ="safe", pure=True).load(CATALOG_PATH.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise CatalogError(f"{CATALOG_PATH}: expected a mapping of keys to {{zh, en}}")
    out: dict[str, Text] = {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or set(entry) != {"zh", "en"}:
            raise CatalogError(f"{CATALOG_PATH}: {key}: needs exactly zh and en")
        zh, en = entry["zh"], entry["en"]
        if not isinstance(zh, str) or not isinstance(en, str) or not zh or not en:
            raise CatalogError(f"{CATALOG_PATH}: {key}: zh and en must be non-empty texts")
        if _fields(zh) != _fields(en):
            raise CatalogError(f"{CATALOG_PATH}: {key}: zh and en use different placeholders")
        out[str(key)] = Text(zh=zh, en=en)
    return out


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@dataclass(frozen=True)
class Messages:
    """The catalog in one language: `m("key")`, `m("key", n=3)`; `m.text(Text)` picks a Text."""

    lang: Lang

    def __call__(self, key: str, **values: object) -> str:
        try:
            text = catalog()[key].get(self.lang)
        except KeyError:
            raise CatalogError(f"message {key!r} is not in {CATALOG_PATH.name}") from None
        return text.format(**values) if values else text

    def both(self, key: str, **values: object) -> Text:
        """The message in zh and en (for the bilingual notice)."""
        zh, en = Messages("zh"), Messages("en")
        return Text(zh=zh(key, **values), en=en(key, **values))

    def text(self, value: Text | None) -> str:
        return "" if value is None else value.get(self.lang)

    def known(self, prefix: str, value: str) -> str:
        """A coded value (severity, status, penalty kind, cadence) as people read it; an
        unknown code as it is."""
        entry = catalog().get(f"{prefix}.{value}")
        return value if entry is None else entry.get(self.lang)


# --- values as people read them (the same in HTML and PDF) ---


def fmt_int(value: int) -> str:
    return f"{value:,}"


def fmt_amount(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def fmt_money(value: Decimal, lang: Lang) -> str:
    return f"¥{fmt_amount(value)}" if lang == "zh" else f"CNY {fmt_amount(value)}"


def fmt_score(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}"


def fmt_delta(value: Decimal | None) -> str:
    if value is None:
        return "—"
    q = value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"+{q}" if q > 0 else ("±0.0" if q == 0 else f"{q}")


def fmt_percent(value: Decimal | float | None) -> str:
    if value is None:
        return "—"
    return f"{(Decimal(str(value)) * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)  # fixed, not the machine's locale


def fmt_date(value: date, lang: Lang, long: bool = False) -> str:
    if not long:
        return value.isoformat()
    if lang == "zh":
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def fmt_datetime(value: datetime) -> str:
    """Wall-clock time in the instant's own zone, with its UTC offset."""
    text = value.strftime("%Y-%m-%d %H:%M")
    offset = value.strftime("%z")
    return f"{text} (UTC{offset[:3]}:{offset[3:]})" if offset else text
