"""Problems found in input: where they are, what is wrong, in zh-CN and en.

Every loader and reader collects all problems before failing, so a user fixes a file once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one place of one input (a policy file or a data file)."""

    file: str
    message_en: str
    message_zh: str
    line: int | None = None  # 1-based line in the file, where known
    row: int | None = None  # 1-based data row (header excluded), for data files
    key: str | None = None  # policy key path or data field name
    policy: str | None = None  # rule / clause / parameter id the problem belongs to

    def where(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.policy:
            parts.append(self.policy)
        if self.key and not self.message_en.startswith(self.key):
            parts.append(self.key)
        return ":".join(parts[:1]) + (" " + ", ".join(parts[1:]) if len(parts) > 1 else "")

    def __str__(self) -> str:
        return f"{self.where()}: {self.message_en} / {self.message_zh}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "row": self.row,
            "field": self.key,
            "policy": self.policy,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
        }


@dataclass
class Problems:
    """An append-only collection of problems; `raise_if_any` turns it into one exception."""

    items: list[Problem] = field(default_factory=list)

    def add(
        self,
        file: str,
        en: str,
        zh: str,
        *,
        line: int | None = None,
        row: int | None = None,
        key: str | None = None,
        policy: str | None = None,
    ) -> None:
        self.items.append(Problem(file, en, zh, line=line, row=row, key=key, policy=policy))

    def extend(self, problems: Iterable[Problem]) -> None:
        self.items.extend(problems)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.items)

    def raise_if_any(self, what: str) -> None:
        if self.items:
            raise InputError(what, list(self.items))


class InputError(Exception):
    """Raised with every problem of an input, never only the first."""

    def __init__(self, what: str, problems: list[Problem]) -> None:
        self.what = what
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:200])
        more = f"\n  ... and {len(problems) - 200} more" if len(problems) > 200 else ""
        super().__init__(f"{what}: {len(problems)} problem(s)\n{shown}{more}")
