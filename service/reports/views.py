"""Routes: the report documents rendered (HTML, PDF, XLSX, CSV; zh or en).

Everyone reads the documents of the departments they see: supervisors and admins every
department; a department user its own (the violation report is restricted to it); a manager the
departments of its scope. Another department's document answers 404, as if it did not exist."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from sqlalchemy import select, true

import reports
from service.accounts.models import User
from service.api.deps import (
    CurrentUser,
    ErrorResponse,
    NotFoundError,
    Scope,
    ScopeDep,
    SessionDep,
    UnprocessableError,
)
from service.evaluation.runtime import ClockDep, RuntimeDep
from service.inspections.deps import ConfigDep
from service.records.models import Record
from service.reports import service
from service.reports.periods import ReportPeriodError, digest_period, parse_period, period_kind
from service.violations.schemas import Severity

router = APIRouter(tags=["reports"])
openapi_tag = {
    "name": "reports",
    "description": "The documents, rendered: the violation report of a period, a department's scorecard, "
    "a rectification notice (整改通知书) and a manager's digest, as HTML, PDF, XLSX or CSV, in zh-CN or en. "
    "Periods: a month 2026-10, a quarter 2026-Q4, an ISO week 2026-W43 or a range 2026-10-01..2026-10-31. "
    "Where each number comes from: docs/reports.md.",
}


class ReportFormat(StrEnum):
    HTML = "html"
    PDF = "pdf"
    XLSX = "xlsx"
    CSV = "csv"


class ReportLang(StrEnum):
    ZH = "zh"
    EN = "en"


class CadenceParam(StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"


PeriodParam = Annotated[
    str,
    Query(
        min_length=1,
        max_length=40,
        description="A month 2026-10, a quarter 2026-Q4, an ISO week 2026-W43 or a range 2026-10-01..2026-10-31.",
        examples=["2026-10"],
    ),
]
FormatParam = Annotated[ReportFormat, Query(alias="format", description="html (default), pdf, xlsx or csv.")]
LangParam = Annotated[ReportLang | None, Query(description="zh or en; default: the caller's language.")]
DeptsParam = Annotated[
    list[str] | None,
    Query(alias="dept", max_length=100, description="Department codes (repeat); none: all you see."),
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Not found, or of a department you may not see"},
    422: {"model": ErrorResponse, "description": "A bad period, format, language or parameter"},
}
_DOCUMENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The rendered document (Content-Disposition names the file).",
        "content": {
            media: {
                "schema": {"type": "string"}
                if media.startswith("text/")
                else {"type": "string", "format": "binary"}
            }
            for media in reports.MEDIA_TYPES.values()
        },
    },
    **_ERRORS,
}

# File names per document: (ASCII fallback, zh, en)
_NAMES = {
    "violations": ("violation-report", "违规报告", "violation-report"),
    "scorecard": ("scorecard", "部门评分卡", "scorecard"),
    "notice": ("rectification-notice", "整改通知书", "rectification-notice"),
    "digest": ("digest", "管理摘要", "digest"),
}


def _period(text: str) -> reports.Period:
    try:
        return parse_period(text)
    except ReportPeriodError as exc:
        raise UnprocessableError(
            exc.message,
            exc.message_zh,
            details=[{"loc": ["query", "period"], "message": exc.message, "type": "period"}],
        ) from None


def _lang(lang: ReportLang | None, user: User) -> str:
    if lang is not None:
        return lang.value
    return "en" if user.language == "en" else "zh"


def _safe(part: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "-" for c in part)


def _document(document: reports.Document, fmt: ReportFormat, lang: str, *, kind: str, tag: str) -> Response:
    """The rendered bytes with their media type, and a file name: an ASCII fallback and the
    RFC 5987 UTF-8 name in the document's language."""
    content = reports.render(document, fmt.value, lang)
    fallback, zh, en = _NAMES[kind]
    ascii_name = f"{fallback}-{_safe(tag)}.{fmt.value}"
    utf8_name = f"{zh if lang == 'zh' else en}-{tag}.{fmt.value}"
    disposition = "inline" if fmt in (ReportFormat.HTML, ReportFormat.PDF) else "attachment"
    return Response(
        content=content,
        media_type=reports.MEDIA_TYPES[fmt.value],
        headers={
            "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(utf8_name)}"
        },
    )


def _sources(runtime: RuntimeDep, config: ConfigDep, clock: ClockDep) -> service.Sources:
    return service.sources(library=runtime.library, config=config, now=clock())


def _requested_depts(scope: Scope, depts: list[str] | None) -> list[str]:
    """The departments asked for, within the caller's scope (one outside it: 404); none asked:
    every department the caller sees (an empty list: all, for those who see all)."""
    asked = sorted({d.strip() for d in depts or [] if d.strip()})
    for dept in asked:
        scope.require(dept, NotFoundError(f"department {dept} not found", f"部门 {dept} 不存在"))
    if asked or scope.depts is None:
        return asked
    if not scope.depts:  # a manager without departments sees nothing
        raise NotFoundError("you see no department", "您没有可查看的部门")
    return sorted(scope.depts)


@router.get(
    "/reports/violations",
    summary="The violation report of a period (department users: their own department only)",
    response_class=Response,
    responses=_DOCUMENT,
)
def violation_report(
    user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    runtime: RuntimeDep,
    config: ConfigDep,
    clock: ClockDep,
    period: PeriodParam,
    dept: DeptsParam = None,
    rule: Annotated[
        list[str] | None, Query(max_length=200, description="Rule ids (repeat); none: all.")
    ] = None,
    severity: Annotated[
        list[Severity] | None, Query(max_length=3, description="critical, major, minor (repeat); none: all.")
    ] = None,
    format: FormatParam = ReportFormat.HTML,
    lang: LangParam = None,
) -> Response:
    depts = _requested_depts(scope, dept)
    severities = sorted({s.value for s in severity or []})
    document = service.gather_violation_report(
        session=session,
        period=_period(period),
        depts=depts,
        rules=sorted({r.strip() for r in rule or [] if r.strip()}),
        severities=severities,
        src=_sources(runtime, config, clock),
    )
    return _document(document, format, _lang(lang, user), kind="violations", tag=document.period.describe())


@router.get(
    "/reports/scorecards/{dept}",
    summary="A department's scorecard for a period: score, rank, trend, findings, notices, penalties, self-check",
    response_class=Response,
    responses=_DOCUMENT,
)
def scorecard(
    dept: Annotated[str, Path(min_length=1, max_length=64, description="The department code.")],
    user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    runtime: RuntimeDep,
    config: ConfigDep,
    clock: ClockDep,
    period: PeriodParam,
    format: FormatParam = ReportFormat.HTML,
    lang: LangParam = None,
) -> Response:
    missing = NotFoundError(f"department {dept} not found", f"部门 {dept} 不存在")
    scope.require(dept, missing)
    parsed = _period(period)
    try:
        document = service.gather_scorecard(
            session=session, dept=dept, period=parsed, src=_sources(runtime, config, clock)
        )
    except service.ReportNotFoundError:
        raise missing from None
    except service.NoScoreError as exc:
        raise NotFoundError(exc.message, exc.message_zh, code="no_score") from None
    return _document(document, format, _lang(lang, user), kind="scorecard", tag=f"{dept}-{parsed.describe()}")


@router.get(
    "/reports/notices/{number}",
    summary="A rectification notice (整改通知书) as a formal document: HTML or PDF",
    response_class=Response,
    responses=_DOCUMENT,
)
def notice_document(
    number: Annotated[
        str, Path(min_length=1, max_length=32, description="The notice number, e.g. ZG-2026-11-0001.")
    ],
    user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    runtime: RuntimeDep,
    config: ConfigDep,
    clock: ClockDep,
    format: FormatParam = ReportFormat.HTML,
    lang: LangParam = None,
) -> Response:
    if format not in (ReportFormat.HTML, ReportFormat.PDF):
        raise UnprocessableError(
            f"a rectification notice is a letter: format html or pdf, not {format.value}",
            f"整改通知书是正式公文：格式只能为 html 或 pdf，不能为 {format.value}",
            details=[{"loc": ["query", "format"], "message": "html or pdf", "type": "enum"}],
        )
    missing = NotFoundError(f"rectification notice {number} not found", f"整改通知 {number} 不存在")
    try:
        document = service.gather_notice(session=session, number=number, src=_sources(runtime, config, clock))
    except service.ReportNotFoundError:
        raise missing from None
    scope.require(document.dept.code, missing)
    return _document(document, format, _lang(lang, user), kind="notice", tag=number)


def _all_departments(session: SessionDep) -> list[str]:
    """Every department: those with a department record and those records name."""
    named = session.scalars(
        select(Record.record_id).where(Record.record_type == "department", Record.is_current == true())
    )
    used = session.scalars(select(Record.dept).where(Record.dept.is_not(None)).distinct())
    return sorted({*named, *(d for d in used if d is not None)})


@router.get(
    "/reports/digest",
    summary="A manager's digest of a week or month for its departments (default: the last complete one)",
    response_class=Response,
    responses=_DOCUMENT,
)
def digest(
    user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    runtime: RuntimeDep,
    config: ConfigDep,
    clock: ClockDep,
    cadence: Annotated[
        CadenceParam, Query(description="weekly (an ISO week) or monthly.")
    ] = CadenceParam.WEEKLY,
    period: Annotated[
        str | None,
        Query(
            max_length=40,
            description="2026-W43 (weekly) or 2026-10 (monthly); default: the last complete one.",
        ),
    ] = None,
    dept: DeptsParam = None,
    format: FormatParam = ReportFormat.HTML,
    lang: LangParam = None,
) -> Response:
    src = _sources(runtime, config, clock)
    if period is None:
        parsed = digest_period(cadence.value, src.local_date(src.now))
    else:
        parsed = _period(period)
        wanted = "week" if cadence is CadenceParam.WEEKLY else "month"
        if period_kind(parsed) != wanted:
            example = "2026-W43" if wanted == "week" else "2026-10"
            raise UnprocessableError(
                f"a {cadence.value} digest covers a {wanted}: a period like {example}, not {period!r}",
                f"{'周' if wanted == 'week' else '月'}摘要的期间须为 {example} 形式，不能为 {period!r}",
                details=[{"loc": ["query", "period"], "message": f"a {wanted}", "type": "period"}],
            )
    depts = _requested_depts(scope, dept) or _all_departments(session)
    if not depts:
        raise NotFoundError("no department to report on", "没有可汇总的部门")
    document = service.gather_digest(
        session=session,
        manager=user.display_name,
        depts=depts,
        cadence=cadence.value,
        period=parsed,
        link=f"/api/v1/reports/violations?period={parsed.label}",
        src=src,
    )
    return _document(
        document, format, _lang(lang, user), kind="digest", tag=f"{cadence.value}-{parsed.label}"
    )


__all__ = ["router"]
