"""What an engine concludes about one record under one rule."""

from __future__ import annotations

from dataclasses import dataclass

SEVERITY_RANK = {"minor": 1, "major": 2, "critical": 3}


@dataclass(frozen=True, slots=True, order=True)
class Verdict:
    """A violation: `rule` found `record_id` of `record_type` non-compliant at `severity`."""

    rule: str
    record_type: str
    record_id: str
    severity: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.record_id)


def highest(severities: list[str]) -> str:
    return max(severities, key=SEVERITY_RANK.__getitem__)
