"""Reference documents generated from the policy library itself (record types, condition types),
so the docs cannot drift from what the loader accepts; a test checks they are current."""

from __future__ import annotations

import inspect
from pathlib import Path

from rules.lang.conditions import REGISTRY
from rules.records import RecordModel


def record_types_markdown(model: RecordModel) -> str:
    lines = [
        "# Record types / 记录类型",
        "",
        "Generated from `policies/record_types.yaml` by `zhidu policies docs`; do not edit by hand.",
        "",
        "Types: string; int; decimal (CNY, at most 2 decimals); bool (true/false/1/0/yes/no/是/否);",
        "timestamp (ISO 8601; without an offset it is in the company's time zone); date (YYYY-MM-DD).",
        "",
    ]
    for rt in model.types.values():
        lines += [
            f"## `{rt.name}` — {rt.label.zh} / {rt.label.en}",
            "",
            "| field | type | required | allowed / range | zh | en |",
            "|---|---|---|---|---|---|",
        ]
        for f in rt.fields.values():
            allowed = ", ".join(f.values) if f.values else ""
            bounds = " ".join(
                x
                for x in (
                    f"≥ {f.min}" if f.min is not None else "",
                    f"≤ {f.max}" if f.max is not None else "",
                    f"`{f.pattern}`" if f.pattern else "",
                )
                if x
            )
            lines.append(
                f"| `{f.name}` | {f.type.value} | {'yes' if f.required else ''} | {allowed or bounds} | {f.label.zh} | {f.label.en} |"
            )
        lines.append("")
    return "\n".join(lines)


def conditions_markdown() -> str:
    lines = [
        "# Condition types / 条件类型",
        "",
        "Generated from the condition registry (`rules/lang/conditions.py`) by `zhidu policies docs`;",
        "each example is compiled by the test suite.",
        "",
    ]
    for name in sorted(REGISTRY):
        cls = REGISTRY[name]
        doc = inspect.cleandoc(cls.__doc__ or "")
        keys = ", ".join(
            f"`{k.rstrip('?')}`" + (" (optional)" if k.endswith("?") else "") for k in cls.schema if k != "*"
        )
        lines += [f"## `{name}`", "", doc.replace("Example", "**Example**", 1).replace("::", ":", 1), ""]
        if keys:
            lines += [f"Keys: {keys}", ""]
    return "\n".join(lines)


def write_reference(model: RecordModel, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (
        ("record-types.md", record_types_markdown(model)),
        ("conditions.md", conditions_markdown()),
    ):
        path = folder / name
        path.write_text(text + "\n", encoding="utf-8")
        written.append(path)
    return written
