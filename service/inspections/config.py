"""The inspection loop's parameters as data: `policies/inspections.yaml`.

Grace days, score weights, the field that places each record type in a period, notice deadlines,
reminders, escalation steps, evidence limits, the appeal window and self-check deadlines. Read and
validated once per file version (path and modification time); every problem is named with its
file, line and key (`rules.problems.InputError`), like the rest of the policy library.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rules.problems import Problems
from rules.records import FieldType, RecordModel, Text
from rules.yamlsource import line_of, load_yaml, plain

CONFIG_FILE = "inspections.yaml"
SEVERITIES = ("minor", "major", "critical")
EscalationTarget = Literal["department_head", "general_manager"]
PeriodKind = Literal["month", "quarter"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Inspection(_Strict):
    grace_days: int = Field(ge=0, le=90)
    score_weights: dict[str, float]
    data_quality_weight: float = Field(ge=0, le=10)
    period_fields: dict[str, str]

    @field_validator("score_weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != set(SEVERITIES):
            raise ValueError(f"score_weights needs exactly {', '.join(SEVERITIES)}")
        if any(w < 0 for w in value.values()):
            raise ValueError("score weights must not be negative")
        return value


class _Escalation(_Strict):
    level: int = Field(ge=1, le=9)
    after_overdue_days: int = Field(ge=0, le=365)
    to: EscalationTarget


class _Bilingual(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class _Evidence(_Strict):
    max_files: int = Field(ge=1, le=100)
    max_file_bytes: int = Field(ge=1)
    max_total_bytes: int = Field(ge=1)


class _Notices(_Strict):
    default_rectify_days: int = Field(ge=1, le=365)
    reminder_days_before: list[int]
    overdue_reminder_every_days: int = Field(ge=1, le=365)
    escalation: list[_Escalation] = Field(min_length=1)
    general_manager: _Bilingual
    evidence: _Evidence

    @field_validator("reminder_days_before")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if any(d < 1 or d > 365 for d in value) or len(set(value)) != len(value):
            raise ValueError("reminder_days_before lists distinct days between 1 and 365")
        return value

    @model_validator(mode="after")
    def _levels(self) -> _Notices:
        levels = [s.level for s in self.escalation]
        if levels != list(range(1, len(levels) + 1)):
            raise ValueError("escalation levels must be 1, 2, ... in order")
        days = [s.after_overdue_days for s in self.escalation]
        if days != sorted(days) or len(set(days)) != len(days):
            raise ValueError("escalation after_overdue_days must increase with the level")
        return self


class _Penalties(_Strict):
    appeal_days: int = Field(ge=1, le=365)


class _SelfChecks(_Strict):
    period: PeriodKind
    due_days: int = Field(ge=0, le=365)
    lookback_periods: int = Field(ge=1, le=24)


class _File(_Strict):
    inspection: _Inspection
    notices: _Notices
    penalties: _Penalties
    selfchecks: _SelfChecks


@dataclass(frozen=True)
class EscalationStep:
    level: int
    after_overdue_days: int
    to: EscalationTarget


@dataclass(frozen=True)
class InspectionConfig:
    """Every parameter of inspections, notices, penalties and self-checks (see the YAML file)."""

    source: str
    grace_days: int
    score_weights: dict[str, float]
    data_quality_weight: float
    period_fields: dict[str, str]
    default_rectify_days: int
    reminder_days_before: tuple[int, ...]
    overdue_reminder_every_days: int
    escalation: tuple[EscalationStep, ...]
    general_manager: Text
    evidence_max_files: int
    evidence_max_file_bytes: int
    evidence_max_total_bytes: int
    appeal_days: int
    selfcheck_period: PeriodKind
    selfcheck_due_days: int
    selfcheck_lookback_periods: int

    def weight(self, severity: str) -> float:
        return self.score_weights.get(severity, 0.0)


def config_path(policies_dir: Path) -> Path:
    return policies_dir / CONFIG_FILE


def load_config(policies_dir: Path, model: RecordModel) -> InspectionConfig:
    """The configuration in `policies_dir`, checked against the record model. Raises
    rules.problems.InputError naming every problem (file, line, key)."""
    path = config_path(policies_dir)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = -1
    config, data = _parsed(path.resolve(), mtime)
    problems = Problems()
    _check_fields(config.source, data, config.period_fields, model, problems)
    problems.raise_if_any(f"{CONFIG_FILE} has problems / 检查配置存在问题")
    return config


@functools.lru_cache(maxsize=16)
def _parsed(path: Path, _mtime_ns: int) -> tuple[InspectionConfig, Any]:
    """The file's configuration and its parsed YAML (for line numbers), once per file version."""
    problems = Problems()
    doc = load_yaml(path, problems)
    config: InspectionConfig | None = None
    if doc is not None:
        try:
            parsed = _File.model_validate(plain(doc.data))
        except ValidationError as exc:
            for error in exc.errors():
                loc = [str(p) for p in error["loc"]]
                node: Any = doc.data
                line: int | None = 1
                for part in loc:
                    key: Any = int(part) if part.isdigit() and isinstance(node, list) else part
                    found = line_of(node, key)
                    line = found if found is not None else line
                    try:
                        node = node[key]
                    except (KeyError, IndexError, TypeError):
                        break
                where = ".".join(loc) or "(top level)"
                problems.add(
                    doc.name,
                    f"{where}: {error['msg']}",
                    f"{where}：{error['msg']}",
                    line=line,
                    key=where,
                )
        else:
            config = _build(doc.name, parsed)
    problems.raise_if_any(f"{CONFIG_FILE} has problems / 检查配置存在问题")
    assert config is not None
    assert doc is not None
    return config, doc.data


def _check_fields(
    source: str, data: Any, fields: dict[str, str], model: RecordModel, problems: Problems
) -> None:
    node = data["inspection"]["period_fields"]
    for record_type, name in fields.items():
        where = f"inspection.period_fields.{record_type}"
        rt = model.types.get(record_type)
        if rt is None:
            problems.add(
                source,
                f"{where}: no record type {record_type!r}",
                f"{where}：记录类型 {record_type!r} 不存在",
                line=line_of(node, record_type),
                key=where,
            )
            continue
        spec = rt.fields.get(name)
        if spec is None or spec.type not in (FieldType.TIMESTAMP, FieldType.DATE, FieldType.INT):
            problems.add(
                source,
                f"{where}: {name!r} must be a timestamp, date or int (year) field of {record_type}",
                f"{where}：{name!r} 须为 {record_type} 的时间、日期或整数（年度）字段",
                line=line_of(node, record_type),
                key=where,
            )


def _build(source: str, f: _File) -> InspectionConfig:
    return InspectionConfig(
        source=source,
        grace_days=f.inspection.grace_days,
        score_weights=dict(f.inspection.score_weights),
        data_quality_weight=f.inspection.data_quality_weight,
        period_fields=dict(f.inspection.period_fields),
        default_rectify_days=f.notices.default_rectify_days,
        reminder_days_before=tuple(sorted(f.notices.reminder_days_before, reverse=True)),
        overdue_reminder_every_days=f.notices.overdue_reminder_every_days,
        escalation=tuple(EscalationStep(s.level, s.after_overdue_days, s.to) for s in f.notices.escalation),
        general_manager=Text(f.notices.general_manager.zh, f.notices.general_manager.en),
        evidence_max_files=f.notices.evidence.max_files,
        evidence_max_file_bytes=f.notices.evidence.max_file_bytes,
        evidence_max_total_bytes=f.notices.evidence.max_total_bytes,
        appeal_days=f.penalties.appeal_days,
        selfcheck_period=f.selfchecks.period,
        selfcheck_due_days=f.selfchecks.due_days,
        selfcheck_lookback_periods=f.selfchecks.lookback_periods,
    )
