"""The `zhidu report` commands: the report documents, rendered to a file.

    zhidu report violations --period 2026-10 [--dept D01 ...] [--rule EXP-001 ...] [--severity major ...]
    zhidu report scorecard --dept D01 --period 2026-Q4
    zhidu report notice ZG-2026-11-0001 --format pdf
    zhidu report digest --cadence weekly [--period 2026-W43] [--dept D01 ...] [--manager 王总]

Every command takes --format html|pdf|xlsx|csv (a notice: html|pdf), --lang zh|en and --out FILE
(default: a file named after the document in the working directory). Bad input exits with code 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

import reports
from service.console import err, migrated_session, out

report_app = typer.Typer(
    help="Report documents: violation report, department scorecard, rectification notice, digest.",
    no_args_is_help=True,
)


class Format(StrEnum):
    HTML = "html"
    PDF = "pdf"
    XLSX = "xlsx"
    CSV = "csv"


class Lang(StrEnum):
    ZH = "zh"
    EN = "en"


class Cadence(StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"


FormatOption = Annotated[Format, typer.Option("--format", help="html, pdf, xlsx or csv.")]
LangOption = Annotated[Lang, typer.Option("--lang", help="zh or en.")]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="The file to write (default: named after the document, here).")
]
PeriodOption = Annotated[
    str, typer.Option("--period", help="2026-10, 2026-Q4, 2026-W43 or 2026-10-01..2026-10-31.")
]


def _fail(message: str, message_zh: str) -> typer.Exit:
    err.print(f"[red]{message}[/red] / {message_zh}", highlight=False)
    return typer.Exit(2)


@contextmanager
def _refusals() -> Iterator[None]:
    """What the gatherers refuse (a bad period, an unknown notice or department, no score): exit 2."""
    from service.reports.periods import ReportPeriodError
    from service.reports.service import NoScoreError, ReportNotFoundError

    try:
        yield
    except (ReportPeriodError, ReportNotFoundError, NoScoreError) as exc:
        raise _fail(exc.message, exc.message_zh) from exc


def _period(text: str) -> reports.Period:
    from service.reports.periods import parse_period

    with _refusals():
        return parse_period(text)


def _write(
    document: reports.Document, fmt: Format, lang: Lang, out_file: Path | None, default_name: str
) -> Path:
    path = out_file or Path(f"{default_name}.{fmt.value}")
    content = reports.render(document, fmt.value, lang.value)
    try:
        if path.parent != Path():
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror}", f"无法写入 {path}：{exc.strerror}") from exc
    out.print(f"{path} ({len(content):,} bytes)", highlight=False)
    return path


def _safe(text: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "-" for c in text)


@report_app.command("violations")
def violations(
    period: PeriodOption,
    dept: Annotated[
        list[str] | None, typer.Option("--dept", help="A department (repeat); none: all.")
    ] = None,
    rule: Annotated[list[str] | None, typer.Option("--rule", help="A rule id (repeat); none: all.")] = None,
    severity: Annotated[
        list[str] | None, typer.Option("--severity", help="critical, major or minor (repeat); none: all.")
    ] = None,
    fmt: FormatOption = Format.HTML,
    lang: LangOption = Lang.ZH,
    out_file: OutOption = None,
) -> None:
    """The violation report of a period: counts by department, rule and severity, the trend,
    notices, penalties and every finding."""
    from service.reports import service

    parsed = _period(period)
    unknown = sorted(set(severity or []) - set(reports.models.SEVERITIES))
    if unknown:
        raise _fail(
            f"unknown severity {', '.join(unknown)}: use critical, major or minor",
            f"未知的严重程度 {', '.join(unknown)}：可用 critical、major、minor",
        )
    with migrated_session() as session:
        document = service.gather_violation_report(
            session=session, period=parsed, depts=dept or [], rules=rule or [], severities=severity or []
        )
    _write(document, fmt, lang, out_file, f"violation-report-{_safe(parsed.describe())}")


@report_app.command("scorecard")
def scorecard(
    dept: Annotated[str, typer.Option("--dept", help="The department.")],
    period: PeriodOption,
    fmt: FormatOption = Format.HTML,
    lang: LangOption = Lang.ZH,
    out_file: OutOption = None,
) -> None:
    """A department's scorecard: score and rank, trend, findings by rule, notices, penalties, self-check."""
    from service.reports import service

    parsed = _period(period)
    with migrated_session() as session, _refusals():
        document = service.gather_scorecard(session=session, dept=dept, period=parsed)
    _write(document, fmt, lang, out_file, f"scorecard-{_safe(dept)}-{_safe(parsed.describe())}")


@report_app.command("notice")
def notice(
    number: Annotated[str, typer.Argument(help="The notice number, e.g. ZG-2026-11-0001.")],
    fmt: FormatOption = Format.HTML,
    lang: LangOption = Lang.ZH,
    out_file: OutOption = None,
) -> None:
    """A rectification notice (整改通知书) as a formal letter: html or pdf."""
    from service.reports import service

    if fmt not in (Format.HTML, Format.PDF):
        raise _fail(
            f"a rectification notice is a letter: --format html or pdf, not {fmt.value}",
            f"整改通知书是正式公文：格式只能为 html 或 pdf，不能为 {fmt.value}",
        )
    with migrated_session() as session, _refusals():
        document = service.gather_notice(session=session, number=number)
    _write(document, fmt, lang, out_file, f"rectification-notice-{_safe(number)}")


@report_app.command("digest")
def digest(
    dept: Annotated[list[str], typer.Option("--dept", help="A department of the digest (repeat).")],
    cadence: Annotated[Cadence, typer.Option("--cadence", help="weekly or monthly.")] = Cadence.WEEKLY,
    period: Annotated[
        str | None,
        typer.Option(
            "--period", help="2026-W43 (weekly) or 2026-10 (monthly); default: the last complete one."
        ),
    ] = None,
    manager: Annotated[str, typer.Option("--manager", help="Whom the digest is for (a name).")] = "",
    fmt: FormatOption = Format.HTML,
    lang: LangOption = Lang.ZH,
    out_file: OutOption = None,
) -> None:
    """A manager's digest: score changes, new and overdue notices, top rules, penalties."""
    from service.reports import service
    from service.reports.periods import digest_period, period_kind

    with migrated_session() as session:
        src = service.sources()
        if period is None:
            parsed = digest_period(cadence.value, src.local_date(src.now))
        else:
            parsed = _period(period)
            wanted = "week" if cadence is Cadence.WEEKLY else "month"
            if period_kind(parsed) != wanted:
                example = "2026-W43" if wanted == "week" else "2026-10"
                raise _fail(
                    f"a {cadence.value} digest covers a {wanted}: --period like {example}, not {period!r}",
                    f"{'周' if wanted == 'week' else '月'}摘要的期间须为 {example} 形式，不能为 {period!r}",
                )
        document = service.gather_digest(
            session=session,
            manager=manager,
            depts=dept,
            cadence=cadence.value,
            period=parsed,
            src=src,
        )
    _write(document, fmt, lang, out_file, f"digest-{cadence.value}-{_safe(parsed.label)}")


__all__ = ["report_app"]
