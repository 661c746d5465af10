"""The generated reference documents match the library (regenerate: `zhidu policies docs`)."""

from __future__ import annotations

from service.reference import conditions_markdown, record_types_markdown
from tests.helpers import ROOT, policy_library


def test_record_types_reference_is_current() -> None:
    current = (ROOT / "docs" / "record-types.md").read_text(encoding="utf-8")
    assert current == record_types_markdown(policy_library().model) + "\n", "run `zhidu policies docs`"


def test_conditions_reference_is_current() -> None:
    current = (ROOT / "docs" / "conditions.md").read_text(encoding="utf-8")
    assert current == conditions_markdown() + "\n", "run `zhidu policies docs`"
