"""The `zhidu` command line."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from rules.problems import InputError
from service.console import CLI_ACTOR, err, migrated_session, out
from service.console import cli_settings as settings

app = typer.Typer(
    help="zhidu 制度: rules-and-policy compliance for process-management manuals.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
policies_app = typer.Typer(help="The policy library: manuals, clauses, parameters.", no_args_is_help=True)
rules_app = typer.Typer(help="The rules.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(policies_app, name="policies")
app.add_typer(rules_app, name="rules")

# Piped output (CI logs, files) gets a wide page instead of rich's 80-column default.


class Lang(StrEnum):
    zh = "zh"
    en = "en"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class EngineName(StrEnum):
    batch = "batch"
    stream = "stream"


LangOption = Annotated[Lang, typer.Option("--lang", help="Language of the output: zh or en.")]


@contextmanager
def input_errors() -> Iterator[None]:
    """Bad input: list every problem on stderr and exit with code 2."""
    try:
        yield
    except InputError as exc:
        err.print(f"[red]{exc.what}[/red]: {len(exc.problems)} problem(s) / 个问题")
        for p in exc.problems:
            err.print(f"  - {p.where()}: {p.message_en}\n    {p.message_zh}", markup=False, highlight=False)
        raise typer.Exit(2) from exc


def library(params_file: Path | None = None) -> Any:
    from service.evaluation.service import load_policy_library

    with input_errors():
        return load_policy_library(settings(), params_file=params_file)


def safe_cell(value: Any) -> Any:
    """Spreadsheet-safe text: a cell that looks like a formula is prefixed with a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: safe_cell(";".join(v) if isinstance(v, list) else v) for k, v in row.items()})
    return buf.getvalue()


# --- db ---------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the Alembic migrations to ZHIDU_DATABASE_URL."""
    from service.db.migrate import upgrade

    s = settings()
    upgrade(s.database_url, revision)
    out.print(f"database at {s.database_url} upgraded to {revision}")


# --- policies ---------------------------------------------------------------------------------


@policies_app.command("list")
def policies_list(
    manual: Annotated[str | None, typer.Option(help="Only this manual, e.g. m001.")] = None,
    lang: LangOption = Lang.zh,
) -> None:
    """The manuals and their clauses."""
    lib = library()
    for m in lib.manuals.values():
        if manual and m.id != manual:
            continue
        applied = "" if m.id in lib.company.manuals else (" (不适用)" if lang == "zh" else " (not applied)")
        table = Table(title=f"{m.id} {m.title.get(lang)}{applied}", show_lines=False)
        for col in ("id", "title", "category", "owner", "checkable"):
            table.add_column(col)
        for c in (*m.principles, *m.clauses):
            table.add_row(c.id, c.title.get(lang), c.category, c.owner.get(lang), "✓" if c.checkable else "")
        out.print(table)


@policies_app.command("show")
def policies_show(clause: str, lang: LangOption = Lang.zh) -> None:
    """One clause: its text in both languages and the rules that enforce it."""
    lib = library()
    c = lib.clauses.get(clause)
    if c is None:
        err.print(f"no clause {clause!r} / 条款 {clause!r} 不存在")
        raise typer.Exit(2)
    enforcing = [r for r in lib.all_rules if clause in r.clauses]
    out.print(f"[bold]{c.id}[/bold]  {c.title.zh} / {c.title.en}")
    out.print(f"{c.section.zh} / {c.section.en}")
    out.print(f"zh: {c.text.zh}\nen: {c.text.en}")
    out.print(f"category: {c.category}   owner: {c.owner.get(lang)}   checkable: {c.checkable}")
    if c.why_not_checkable:
        out.print(f"not checkable: {c.why_not_checkable.get(lang)}")
    for r in enforcing:
        out.print(f"  enforced by {r.id} ({r.severity}): {r.title.get(lang)}")
    params = [p for p in lib.parameters.values() if clause in p.clauses]
    for p in params:
        out.print(f"  parameter {p.id} = {p.value} (default {p.default})")


@policies_app.command("validate")
def policies_validate(
    params: Annotated[Path | None, typer.Option("--params", help="Parameter overrides file.")] = None,
) -> None:
    """Load and validate the whole library; every problem is listed (exit 2)."""
    lib = library(params)
    out.print(
        f"policy library {lib.version}: {len(lib.manuals)} manuals, {len(lib.clauses)} clauses, "
        f"{len(lib.parameters)} parameters, {len(lib.rules)} rules in force"
    )


@policies_app.command("coverage")
def policies_coverage(
    lang: LangOption = Lang.zh,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """Per manual: which clauses are enforced by which rules, which are not machine-checkable."""
    lib = library()
    rows: list[dict[str, Any]] = []
    for m in lib.manuals.values():
        for c in (*m.principles, *m.clauses):
            rule_ids = [r.id for r in lib.rules if c.id in r.clauses]
            status = "enforced" if rule_ids else ("gap" if c.checkable else "not_checkable")
            rows.append(
                {
                    "manual": m.id,
                    "clause": c.id,
                    "title": c.title.get(lang),
                    "status": status,
                    "rules": rule_ids,
                    "why_not": c.why_not_checkable.get(lang) if c.why_not_checkable else "",
                }
            )
    if fmt == OutputFormat.json:
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    if fmt == OutputFormat.csv:
        sys.stdout.write(write_csv(rows, ["manual", "clause", "title", "status", "rules", "why_not"]))
        return
    summary = Table(title="coverage / 覆盖情况")
    for col in ("manual", "clauses", "enforced", "checkable, no rule yet", "not machine-checkable"):
        summary.add_column(col)
    for m in lib.manuals.values():
        mine = [r for r in rows if r["manual"] == m.id]
        counts = Counter(r["status"] for r in mine)
        summary.add_row(
            m.id, str(len(mine)), str(counts["enforced"]), str(counts["gap"]), str(counts["not_checkable"])
        )
    detail = Table(title="enforced clauses / 已执行条款")
    for col in ("clause", "title", "rules"):
        detail.add_column(col)
    for r in rows:
        if r["status"] == "enforced":
            detail.add_row(r["clause"], r["title"], ", ".join(r["rules"]))
    out.print(detail)
    out.print(summary)


@policies_app.command("docs")
def policies_docs(folder: Annotated[Path, typer.Option("--out")] = Path("docs")) -> None:
    """Regenerate the reference documents (record types, condition types) from the library."""
    from service.reference import write_reference

    for path in write_reference(library().model, folder):
        out.print(f"wrote {path}")


# --- rules ------------------------------------------------------------------------------------


@rules_app.command("list")
def rules_list(lang: LangOption = Lang.zh) -> None:
    """Every rule in force."""
    lib = library()
    table = Table(title=f"rules / 规则 ({lib.version})")
    for col in ("id", "record type", "severity", "clauses", "title"):
        table.add_column(col)
    for r in lib.rules:
        table.add_row(r.id, r.record_type, r.severity, ", ".join(r.clauses), r.title.get(lang))
    out.print(table)


@rules_app.command("test")
def rules_test(
    engine: Annotated[list[EngineName] | None, typer.Option(help="Engines to run (default: both).")] = None,
) -> None:
    """Run every rule's examples on both engines; exit 1 if any misbehaves."""
    from functools import partial

    from rules.engine.batch import evaluate_rule
    from rules.examples import run_examples

    lib = library()
    tz = lib.company.tz
    engines: dict[str, Callable[..., Any]] = {}
    chosen = engine or [EngineName.batch, EngineName.stream]
    if EngineName.batch in chosen:
        engines["batch"] = lambda rule, encoded, as_of_ms: evaluate_rule(
            rule.compiled, encoded, as_of_ms=as_of_ms, tz=tz
        )
    if EngineName.stream in chosen:
        engines["stream"] = partial(_stream_run, tz=tz)
    with input_errors():
        outcomes = run_examples(lib.rules, lib.model, tz, engines)
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        err.print(f"FAIL {o.rule} [{o.engine}] {o.expect} example at line {o.line}: {o.detail}")
    out.print(
        f"{len(outcomes) - len(failed)} passed, {len(failed)} failed "
        f"({len(lib.rules)} rules, engines: {', '.join(engines)})"
    )
    if failed:
        raise typer.Exit(1)


def _stream_run(rule: Any, encoded: dict[str, pd.DataFrame], as_of_ms: int, *, tz: Any) -> Any:
    from rules.engine.related import FrameSource
    from rules.engine.stream import StreamEngine

    engine = StreamEngine([rule.compiled], tz=tz)
    return engine.evaluate(
        rule.record_type, encoded[rule.record_type], FrameSource(encoded), as_of_ms=as_of_ms
    )


# --- data -------------------------------------------------------------------------------------


@app.command("generate")
def generate_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the company's files to.")],
    records: Annotated[int, typer.Option(help="About how many records in all.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Same seed, same company.")] = 1,
    violation_rate: Annotated[
        float, typer.Option(help="Share of records with an injected violation.")
    ] = 0.05,
    file_format: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Write a synthetic company with injected violations and their ground truth."""
    from service.synthetic import generate

    manifest = generate(out_dir, records=records, seed=seed, violation_rate=violation_rate, fmt=file_format)
    out.print(
        f"wrote {manifest.records_written_total} records to {out_dir} (ground truth: {out_dir / 'ground_truth.csv'})"
    )


def read_dir(data_dir: Path) -> Any:
    from rules.readers import read_data_dir

    lib = library()
    with input_errors():
        return lib, read_data_dir(data_dir, lib.model, lib.company.tz)


@app.command("load")
def load_cmd(
    data_dir: Path,
    submitted_by: Annotated[str, typer.Option(help="Who submits the files.")] = "cli",
) -> None:
    """Validate a data directory and store its records (all or nothing) in the database."""
    summary = load_directory(data_dir, submitted_by=submitted_by)
    print_load_summary(summary)


def load_directory(data_dir: Path, *, submitted_by: str) -> Any:
    from rules.validate import content_hash, to_payloads
    from service.db.base import engine_for, session_factory
    from service.db.migrate import upgrade
    from service.records.flows import load_dataset

    lib, dataset = read_dir(data_dir)
    s = settings()
    upgrade(s.database_url)
    records = {}
    for rtype, frame in dataset.frames.items():
        payloads = to_payloads(lib.model[rtype], frame, lib.company.tz)
        records[rtype] = [(p, content_hash(p)) for p in payloads]
    engine = engine_for(s.database_url)
    try:
        return load_dataset(
            session_factory(engine), records=records, submitted_by=submitted_by, source=str(data_dir)
        )
    finally:
        engine.dispose()


def print_load_summary(summary: Any) -> None:
    table = Table(title=f"loaded / 已入库 ({summary.source})")
    for col in ("record type", "stored", "versioned", "unchanged", "rejected"):
        table.add_column(col)
    for t in summary.types:
        table.add_row(t.record_type, str(t.stored), str(t.versioned), str(t.unchanged), str(t.rejected))
    out.print(table)


@app.command("evaluate")
def evaluate_cmd(
    data_dir: Path,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Judge as of this ISO timestamp (default: now).")
    ] = None,
    params: Annotated[
        Path | None, typer.Option("--params", help="Parameter overrides (YAML: id: value).")
    ] = None,
    engine: Annotated[
        EngineName, typer.Option(help="batch (vectorised) or stream (durable-rules).")
    ] = EngineName.batch,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
    lang: LangOption = Lang.zh,
) -> None:
    """Evaluate every rule in force over a data directory and print the violations."""
    findings = evaluate_directory(data_dir, as_of=as_of, params=params, engine=engine.value)
    if fmt == OutputFormat.json:
        sys.stdout.write(json.dumps([f.as_dict() for f in findings], ensure_ascii=False, indent=1) + "\n")
    elif fmt == OutputFormat.csv:
        cols = [
            "rule",
            "record_type",
            "record_id",
            "dept",
            "severity",
            "clauses",
            "responsible",
            "message_zh",
            "message_en",
        ]
        sys.stdout.write(write_csv([f.as_dict() for f in findings], cols))
    else:
        table = Table(title=f"violations / 违规 ({len(findings)})")
        for col in ("rule", "record", "dept", "severity", "responsible", "message"):
            table.add_column(col)
        for f in findings:
            table.add_row(
                f.rule,
                f"{f.record_type}:{f.record_id}",
                f.dept or "",
                f.severity,
                f.responsible or "",
                f.message_zh if lang == Lang.zh else f.message_en,
            )
        out.print(table)


def parse_as_of(value: str | None, tz: Any) -> pd.Timestamp:
    if value is None:
        return pd.Timestamp.now(tz="UTC")
    try:
        ts = pd.Timestamp(value)
    except ValueError as exc:
        err.print(f"--as-of {value!r} is not an ISO 8601 timestamp / 不是 ISO 8601 时间")
        raise typer.Exit(2) from exc
    return ts.tz_localize(tz) if ts.tzinfo is None else ts


def evaluate_directory(data_dir: Path, *, as_of: str | None, params: Path | None, engine: str) -> Any:
    from rich.progress import Progress

    from rules.readers import read_data_dir
    from service.evaluation.service import evaluate_frames

    lib = library(params)
    with input_errors():
        dataset = read_data_dir(data_dir, lib.model, lib.company.tz)
    when = parse_as_of(as_of, lib.company.tz)
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("evaluating / 评估中", total=len(lib.rules))
        return evaluate_frames(
            lib,
            dataset.frames,
            as_of=when,
            engine=engine,  # type: ignore[arg-type]
            progress=lambda rule_id: bar.update(task, advance=1, description=f"{rule_id}"),
        )


# --- demo -------------------------------------------------------------------------------------


@app.command("demo")
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo company is written.")] = Path(
        "out/demo"
    ),
    records: Annotated[int, typer.Option(help="About how many records.")] = 20_000,
    seed: int = 7,
) -> None:
    """Generate a company, load it through validation into the database, evaluate it, summarise;
    inspect its last six months (notices for the last one) and write its reports beside the
    company's folder (./out/ for the default --dir out/demo)."""
    from service.db.base import engine_for, session_factory
    from service.records.flows import record_counts
    from service.synthetic import generate

    data = directory / "data"
    manifest = generate(data, records=records, seed=seed)
    out.print(f"1. generated {manifest.records_written_total} records in {data}")
    summary = load_directory(data, submitted_by="demo")
    out.print(f"2. loaded into {settings().database_url}")
    print_load_summary(summary)
    engine = engine_for(settings().database_url)
    try:
        _print_counts(record_counts(session_factory(engine)))
    finally:
        engine.dispose()
    findings = evaluate_directory(data, as_of=manifest.as_of, params=None, engine="batch")
    out.print(f"3. evaluated as of {manifest.as_of}: {len(findings)} violations")
    _print_violation_summary(findings)
    truth = pd.read_csv(data / "ground_truth.csv", dtype=str, keep_default_na=False)
    injected = set(zip(truth["rule"], truth["record_id"], strict=True))
    found = {(f.rule, f.record_id) for f in findings}
    out.print(
        f"4. against the generator's ground truth / 与注入的违规对照: {len(injected)} injected, "
        f"{len(found & injected)} found, {len(injected - found)} missed, {len(found - injected)} false alarms"
    )
    # The five months before, without notices: the scorecards' trends and the digest's score
    # changes then show what inspections found, not months nobody judged.
    earlier = ("2026-05", "2026-06", "2026-07", "2026-08", "2026-09")
    out.print("5. inspections of the months before / 此前各月检查 (2026-05 … 2026-09):")
    for month in earlier:
        past = run_inspection_now(month, depts=None, issue=False, now=datetime.fromisoformat(manifest.as_of))
        out.print(
            f"   inspected / 已检查 {month}: {past.inspection.records_checked} records, "
            f"{past.inspection.counts.get('findings', 0)} findings (no notices / 不下发通知)",
            highlight=False,
        )
    out.print("6. inspection of the last month / 上月检查 (2026-10), as of the company's as-of time:")
    outcome = run_inspection_now(
        "2026-10", depts=None, issue=True, now=datetime.fromisoformat(manifest.as_of)
    )
    print_inspection(outcome, settings().tz)
    from service.reports.demo import write_demo_reports

    reports_dir = directory.parent  # ./out/ for the default --dir out/demo
    out.print(f"7. reports / 报告 → {reports_dir.resolve()}:")
    with migrated_session() as session:
        written, seconds = write_demo_reports(
            session,
            period="2026-10",
            notice_numbers=[n.number for n in outcome.notices],
            now=datetime.fromisoformat(manifest.as_of),
            out_dir=reports_dir,
            progress=lambda path: out.print(f"   {path}", highlight=False),
        )
    out.print(f"   {len(written)} files in {seconds:.1f} s / 共 {len(written)} 个文件")


def _print_pivot(title: str, frame: pd.DataFrame, rows: str, columns: str) -> None:
    """A count table with a total column; `rows` down the side, `columns` across."""
    pivot = frame.pivot_table(index=rows, columns=columns, values="n", aggfunc="sum", fill_value=0)
    table = Table(title=title)
    table.add_column(rows)
    for c in pivot.columns:
        table.add_column(str(c), justify="right")
    table.add_column("total / 合计", justify="right")
    for key, row in pivot.iterrows():
        table.add_row(str(key), *[str(int(v)) for v in row], str(int(row.sum())))
    out.print(table)


def _print_counts(counts: list[tuple[str | None, str, int]]) -> None:
    frame = pd.DataFrame(counts, columns=["dept", "record_type", "n"]).fillna({"dept": "-"})
    _print_pivot("records by type and department / 各类记录按部门统计", frame, "record_type", "dept")


def _print_violation_summary(findings: Sequence[Any]) -> None:
    if findings:
        frame = pd.DataFrame([{"dept": f.dept or "-", "rule": f.rule, "n": 1} for f in findings])
        _print_pivot("violations by rule and department / 各规则违规按部门统计", frame, "rule", "dept")


# --- accounts, tokens, audit trail, API server ---------------------------------------------------

from service.accounts.schemas import Language, Role  # noqa: E402

users_app = typer.Typer(help="Accounts of the API: users with roles and departments.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (Bearer), stored hashed.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")


@contextmanager
def account_errors() -> Iterator[None]:
    """A refused account change: say why (en and zh) and exit with code 2."""
    from service.accounts.service import AccountError

    try:
        yield
    except AccountError as exc:
        err.print(f"[red]{exc.message}[/red] / {exc.message_zh}", highlight=False)
        raise typer.Exit(2) from exc


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[Role, typer.Option(help="admin, supervisor, department or manager.")],
    dept: Annotated[str | None, typer.Option(help="The user's department (required for department).")] = None,
    scope: Annotated[
        str | None, typer.Option(help="Departments a manager reads, comma-separated: D01,D02.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name (default: the username).")] = None,
    lang: Annotated[Language, typer.Option("--lang", help="The user's language: zh or en.")] = Language.ZH,
    email: Annotated[
        str | None, typer.Option(help="Where the user's mail goes (digests, reminders).")
    ] = None,
) -> None:
    """Create a user. The first admin: `zhidu users create admin --role admin`."""
    from service.accounts import flows

    scope_depts = [d.strip() for d in (scope or "").split(",") if d.strip()]
    with migrated_session() as session, account_errors():
        user = flows.create_user(
            session,
            username=username.strip(),
            role=role,
            dept=dept.strip() if dept else None,
            scope_depts=scope_depts,
            display_name=name,
            language=lang,
            email=email,
            actor=CLI_ACTOR,
        )
    out.print(f"created user {user.username} (id {user.id}, role {user.role}) / 已创建用户", highlight=False)


@users_app.command("list")
def users_list() -> None:
    """Every user."""
    from service.accounts import service

    with migrated_session() as session:
        users, _ = service.list_users(session)
    table = Table(title=f"users / 用户 ({len(users)})")
    for col in ("id", "username", "name", "role", "dept", "scope", "lang", "email", "active", "created"):
        table.add_column(col)
    for u in users:
        table.add_row(
            str(u.id),
            u.username,
            u.display_name,
            u.role,
            u.dept or "",
            ",".join(u.scope_depts),
            u.language,
            u.email or "",
            "yes" if u.active else "no",
            _when(u.created_at),
        )
    out.print(table)


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Deactivate a user: its tokens stop working at once."""
    from service.accounts import flows

    with migrated_session() as session, account_errors():
        user = flows.disable_user(session, username=username, actor=CLI_ACTOR)
    if user is None:
        err.print(f"no user {username!r} / 用户 {username!r} 不存在")
        raise typer.Exit(2)
    out.print(f"user {username} is deactivated / 用户已停用")


@tokens_app.command("issue")
def tokens_issue(
    username: str,
    name: Annotated[str, typer.Option(help="What the token is for, shown in lists.")] = "cli",
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, max=3650, help="Expire after this many days.")
    ] = None,
) -> None:
    """Issue a token and print its secret (once: only its hash is stored). The secret alone goes
    to standard output: TOKEN=$(zhidu tokens issue admin)."""
    from service.accounts import flows, service

    with migrated_session() as session, account_errors():
        user = service.find_user(session, username=username)
        if user is None:
            err.print(f"no user {username!r} / 用户 {username!r} 不存在")
            raise typer.Exit(2)
        issued = flows.issue_token(
            session, user_id=user.id, name=name, expires_in_days=expires_days, actor=CLI_ACTOR
        )
    assert issued is not None
    token, secret = issued
    expiry = f", expires {_when(token.expires_at)}" if token.expires_at else ""
    err.print(
        f"token {token.id} ({token.prefix}…) for {username}{expiry}. Keep the secret now: it is not shown "
        "again. / 请立即保存令牌，之后不再显示。",
        highlight=False,
    )
    sys.stdout.write(secret + "\n")


@tokens_app.command("list")
def tokens_list(
    username: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
) -> None:
    """Tokens (never their secrets)."""
    from datetime import UTC, datetime

    from service.accounts import service

    with migrated_session() as session:
        user_id = None
        if username is not None:
            user = service.find_user(session, username=username)
            if user is None:
                err.print(f"no user {username!r} / 用户 {username!r} 不存在")
                raise typer.Exit(2)
            user_id = user.id
        tokens = service.list_tokens(session, user_id=user_id)
    now = datetime.now(UTC)
    table = Table(title=f"tokens / 令牌 ({len(tokens)})")
    for col in ("id", "user", "name", "prefix", "status", "created", "expires", "last used"):
        table.add_column(col)
    for token, owner in tokens:
        status = (
            "revoked"
            if token.revoked_at
            else ("expired" if token.expires_at and token.expires_at <= now else "active")
        )
        table.add_row(
            str(token.id),
            owner,
            token.name,
            token.prefix,
            status,
            _when(token.created_at),
            _when(token.expires_at),
            _when(token.last_used_at),
        )
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    """Revoke a token (see `zhidu tokens list` for ids)."""
    from service.accounts import flows

    with migrated_session() as session:
        token = flows.revoke_token(session, token_id=token_id, actor=CLI_ACTOR)
    if token is None:
        err.print(f"no token {token_id} / 令牌 {token_id} 不存在")
        raise typer.Exit(2)
    out.print(f"token {token_id} ({token.prefix}…) revoked at {_when(token.revoked_at)} / 令牌已吊销")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit trail's hash chain; list every altered, removed or inserted event (exit 1)."""
    from service.audit import flows

    with migrated_session() as session:
        report = flows.verify(session)
    for p in report.problems:
        err.print(f"  seq {p.seq}: {p.kind}: {p.message}\n    {p.message_zh}", markup=False, highlight=False)
    if not report.ok:
        err.print(f"[red]audit trail broken: {len(report.problems)} problem(s) / 审计链已被破坏[/red]")
        raise typer.Exit(1)
    out.print(
        f"audit trail intact / 审计链完整: {report.events} events, head seq {report.head_seq}, "
        f"head hash {report.head_hash}",
        highlight=False,
    )


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (submissions stay serialised per database).")
    ] = 1,
) -> None:
    """Run the API (uvicorn) after migrating the database to the newest revision."""
    import uvicorn

    from service.api.app import create_served_app
    from service.db.migrate import upgrade

    s = settings()
    upgrade(s.database_url)
    err.print(f"zhidu API on http://{host}:{port}/api/v1 (docs: /api/v1/docs), database {s.database_url}")
    if workers > 1:  # each worker process builds its app from the same environment
        uvicorn.run(
            "service.api.app:create_served_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level=s.log_level.lower(),
        )
        return
    uvicorn.run(create_served_app(s), host=host, port=port, log_level=s.log_level.lower())


# --- schedules and the run ledger (service.scheduling) -------------------------------------------

schedules_app = typer.Typer(
    help="Scheduled jobs (inspections, digests) and their run ledger.", no_args_is_help=True
)
app.add_typer(schedules_app, name="schedules")


def _local(value: Any, tz: Any) -> str:
    return value.astimezone(tz).isoformat(timespec="seconds") if value is not None else ""


@schedules_app.command("list")
def schedules_list(
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table, json or csv.")
    ] = OutputFormat.table,
) -> None:
    """Schedules (policies/schedules.yaml) with next fire time and last run, and the leader."""
    from service.scheduling import flows as scheduling_flows
    from service.scheduling.leadership import advisory_key_of
    from service.scheduling.lifecycle import load as load_schedules
    from service.scheduling.registry import discover_job_kinds

    s = settings()
    with input_errors():
        config = load_schedules(s)
    discover_job_kinds()
    with migrated_session() as session:
        view = scheduling_flows.overview(session, config=config, advisory_key=advisory_key_of)
    if output == OutputFormat.json:
        out.print_json(view.model_dump_json())
        return
    rows = [
        {
            "job_id": r.job_id,
            "kind": r.kind + ("" if r.kind_registered else " (not installed)"),
            "cron": " ".join(f"{k}={v}" for k, v in r.cron.items()),
            "timezone": r.timezone,
            "grace_s": r.misfire_grace_seconds,
            "enabled": "yes" if r.enabled else "no",
            "next_fire": _local(r.next_fire_time, s.tz),
            "last_run": f"{_local(r.last_run.fire_time, s.tz)} {r.last_run.status}" if r.last_run else "",
        }
        for r in view.schedules
    ]
    columns = ["job_id", "kind", "cron", "timezone", "grace_s", "enabled", "next_fire", "last_run"]
    if output == OutputFormat.csv:
        sys.stdout.write(write_csv(rows, columns))
        return
    table = Table(title=f"schedules / 调度 ({view.source})")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    out.print(table)
    leader = view.leader
    out.print(
        f"leader / 主调度进程: {leader.holder} ({leader.mechanism}, {'active' if leader.active else 'inactive'}, "
        f"since {_local(leader.acquired_at, s.tz)})"
        if leader
        else "leader / 主调度进程: none yet / 尚无",
        highlight=False,
    )


@schedules_app.command("runs")
def schedules_runs(
    job_id: Annotated[str | None, typer.Option("--job", help="Only this schedule id.")] = None,
    status: Annotated[
        str | None, typer.Option(help="started, succeeded, failed, abandoned or missed.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Newest this many.")] = 20,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table, json or csv.")
    ] = OutputFormat.table,
) -> None:
    """The run ledger, newest fire time first."""
    from service.scheduling import flows as scheduling_flows
    from service.scheduling.schemas import JobRunRead, RunStatus

    if status is not None and status not in set(RunStatus):
        err.print(f"unknown status {status!r}; use one of {', '.join(RunStatus)} / 状态无效")
        raise typer.Exit(2)
    s = settings()
    with migrated_session() as session:
        runs, total = scheduling_flows.browse_runs(
            session, job_id=job_id, status=RunStatus(status) if status else None, limit=limit
        )
    items = [JobRunRead.model_validate(r) for r in runs]
    if output == OutputFormat.json:
        out.print_json(json.dumps([i.model_dump(mode="json") for i in items], ensure_ascii=False))
        return
    columns = ["id", "job_id", "trigger", "fire_time", "status", "attempt", "runner", "finished_at", "error"]
    rows = [
        {
            **i.model_dump(mode="json", include=set(columns)),
            "fire_time": _local(i.fire_time, s.tz),
            "finished_at": _local(i.finished_at, s.tz),
            "error": (i.error or "").strip().splitlines()[-1:][0] if i.error else "",
        }
        for i in items
    ]
    if output == OutputFormat.csv:
        sys.stdout.write(write_csv(rows, columns))
        return
    table = Table(title=f"job runs / 运行记录 ({len(items)} of {total})")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c] if row[c] is not None else "") for c in columns))
    out.print(table)


@schedules_app.command("run")
def schedules_run(job_id: str) -> None:
    """Run a schedule's job now, here, recorded in the ledger as a manual run (exit 1 if it fails)."""
    from service.db.base import engine_for, session_factory
    from service.db.migrate import upgrade
    from service.scheduling.lifecycle import load as load_schedules
    from service.scheduling.registry import UnknownJobKindError, discover_job_kinds
    from service.scheduling.runner import run_now

    s = settings()
    with input_errors():
        config = load_schedules(s)
    schedule = config.get(job_id)
    if schedule is None:
        err.print(f"no schedule {job_id!r} / 调度不存在; known: {', '.join(x.id for x in config.schedules)}")
        raise typer.Exit(2)
    discover_job_kinds()
    upgrade(s.database_url)
    engine = engine_for(s.database_url)
    try:
        run = run_now(
            session_factory(engine),
            kind=schedule.kind,
            job_id=schedule.id,
            params=schedule.params,
            requested_by=CLI_ACTOR,
        )
    except UnknownJobKindError as exc:
        err.print(f"{exc} / 任务类型未安装")
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    out.print(f"run {run.id} of {job_id}: {run.status}", highlight=False)
    if run.status != "succeeded":
        err.print(run.error or "", markup=False, highlight=False)
        raise typer.Exit(1)


# --- inspections and rectification notices (service.inspections, service.notices) ----------------

notices_app = typer.Typer(help="Rectification notices (整改通知): list, show, sweep.", no_args_is_help=True)
app.add_typer(notices_app, name="notices")


def _local_time(value: Any, tz: Any) -> str:
    return value.astimezone(tz).isoformat(timespec="seconds") if value is not None else ""


def _inspection_runtime() -> tuple[Any, Any]:
    """The evaluation runtime and the inspection configuration (exit 2 on a bad policy file)."""
    from service.evaluation.runtime import runtime_for
    from service.inspections.config import load_config

    s = settings()
    with input_errors():
        runtime = runtime_for(s)
        config = load_config(s.policies_dir, runtime.library.model)
    return runtime, config


def run_inspection_now(period_text: str, *, depts: Sequence[str] | None, issue: bool, now: Any = None) -> Any:
    """Inspect a period on ZHIDU_DATABASE_URL (migrated first) at `now` (an aware datetime; default
    the current time, e.g. a demo company's as-of time); the outcome (`print_inspection` shows it)."""
    from datetime import UTC, datetime

    from service.inspections import flows as inspection_flows
    from service.inspections.periods import Period, PeriodError

    try:
        period = Period.parse(period_text)
    except PeriodError as exc:
        err.print(f"{exc}\n{exc.message_zh}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    runtime, config = _inspection_runtime()
    with migrated_session() as session:
        try:
            return inspection_flows.run_inspection(
                session,
                runtime=runtime,
                config=config,
                period=period,
                depts=depts,
                actor=CLI_ACTOR,
                trigger="cli",
                now=now or datetime.now(UTC),
                issue=issue,
            )
        except inspection_flows.InspectionRefusedError as exc:
            err.print(f"{exc.message} / {exc.message_zh}", markup=False, highlight=False)
            raise typer.Exit(2) from exc


def print_inspection(outcome: Any, tz: Any) -> None:
    inspection = outcome.inspection
    out.print(
        f"inspection {inspection.id} of {inspection.period} / 检查 {inspection.period}: as of "
        f"{_local_time(inspection.as_of, tz)}{'' if inspection.complete else ' (period not over / 期间未结束)'}, "
        f"{inspection.records_checked} records checked",
        highlight=False,
    )
    table = Table(title="per department / 各部门")
    for col in (
        "dept",
        "records",
        "minor",
        "major",
        "critical",
        "waived",
        "data quality",
        "opened",
        "closed",
        "score",
    ):
        table.add_column(col, justify="left" if col == "dept" else "right")
    for s in outcome.summaries:
        table.add_row(
            s.dept,
            str(s.records_checked),
            str(s.findings_minor),
            str(s.findings_major),
            str(s.findings_critical),
            str(s.waived),
            str(s.data_quality),
            str(s.opened),
            str(s.closed),
            "-" if s.score is None else f"{s.score:.1f}",
        )
    out.print(table)
    out.print(
        "counts / 计数: " + ", ".join(f"{k}={v}" for k, v in inspection.counts.items()), highlight=False
    )
    if outcome.notices:
        notices = Table(title=f"notices issued / 已下发整改通知 ({len(outcome.notices)})")
        for col in ("number", "dept", "due", "head"):
            notices.add_column(col)
        for n in outcome.notices:
            notices.add_row(n.number, n.dept, n.due_date.isoformat(), n.department_head or "")
        out.print(notices)


@app.command("inspect")
def inspect_cmd(
    period: Annotated[str, typer.Option("--period", help="A month YYYY-MM or a quarter YYYY-Qn.")],
    dept: Annotated[
        list[str] | None, typer.Option("--dept", help="A department (repeat for several; default all).")
    ] = None,
    notices: Annotated[
        bool, typer.Option("--notices/--no-notices", help="Issue rectification notices.")
    ] = True,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table or json.")] = OutputFormat.table,
) -> None:
    """Inspect a period now: data-quality checks and every rule as of the period's end plus grace,
    violations upserted and closed, a summary and score per department, notices issued."""
    outcome = run_inspection_now(period, depts=dept or None, issue=notices)
    if fmt == OutputFormat.json:
        from service.inspections.views import summary_read

        inspection = outcome.inspection
        doc = {
            "id": inspection.id,
            "period": inspection.period,
            "as_of": inspection.as_of.isoformat(),
            "complete": inspection.complete,
            "depts": inspection.depts,
            "records_checked": inspection.records_checked,
            "counts": inspection.counts,
            "timings": inspection.timings,
            "summaries": [summary_read(s).model_dump(mode="json") for s in outcome.summaries],
            "notices": [
                {"number": n.number, "dept": n.dept, "due_date": n.due_date.isoformat()}
                for n in outcome.notices
            ],
        }
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
        return
    print_inspection(outcome, settings().tz)


@notices_app.command("list")
def notices_list(
    status: Annotated[str | None, typer.Option(help="issued, acknowledged, response_submitted, ...")] = None,
    dept: Annotated[str | None, typer.Option(help="One department.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
) -> None:
    """Notices, newest first, with status, deadline, overdue and escalation."""
    from datetime import UTC, datetime

    from sqlalchemy import true

    from service.notices import service as notice_service

    now = datetime.now(UTC)
    with migrated_session() as session:
        items, total = notice_service.list_notices(
            session, scope=true(), dept=dept, status=status, limit=limit
        )
        counts = notice_service.item_counts(session, notice_ids=[n.id for n in items])
    table = Table(title=f"notices / 整改通知 ({len(items)} of {total})")
    for col in ("number", "dept", "status", "findings", "due", "overdue", "escalation"):
        table.add_column(col)
    for n in items:
        table.add_row(
            n.number,
            n.dept,
            n.status,
            str(counts.get(n.id, 0)),
            n.due_date.isoformat(),
            "yes" if notice_service.is_overdue(n, now) else "",
            str(n.escalation_level or ""),
        )
    out.print(table)


@notices_app.command("show")
def notices_show(number: str, lang: LangOption = Lang.zh) -> None:
    """One notice: its findings with clauses and responsible persons, and its history."""
    from service.notices import service as notice_service

    runtime, _ = _inspection_runtime()
    with migrated_session() as session:
        notice = notice_service.by_number(session, number=number)
        if notice is None:
            err.print(f"no notice {number} / 整改通知不存在")
            raise typer.Exit(2)
        items = notice_service.items_of(session, notice_id=notice.id)
        events = notice_service.events_of(session, notice_id=notice.id)
    zh = lang == Lang.zh
    out.print(
        f"{notice.number}  {notice.dept}  {notice.status}  due / 期限 {notice.due_date.isoformat()}  "
        f"escalation / 升级 {notice.escalation_level}  head / 负责人 {notice.department_head or '-'}",
        highlight=False,
    )
    table = Table(title="findings / 整改事项")
    for col in ("rule", "record", "severity", "responsible", "clauses", "message", "outcome"):
        table.add_column(col)
    for i in items:
        clauses = [
            f"{c} {runtime.library.clauses[c].title.get(lang.value)}" if c in runtime.library.clauses else c
            for c in i.clauses
        ]
        table.add_row(
            i.rule_id,
            f"{i.record_type}:{i.record_id}",
            i.severity,
            i.responsible or "",
            "\n".join(clauses),
            i.message_zh if zh else i.message_en,
            i.outcome,
        )
    out.print(table)
    for e in events:
        out.print(
            f"  {_local_time(e.at, settings().tz)}  {e.actor}  {e.action}  {e.note}",
            markup=False,
            highlight=False,
        )


@notices_app.command("sweep")
def notices_sweep() -> None:
    """Expire waivers (revive findings), remind and escalate overdue notices, record missing
    self-checks: what the daily `notices.sweep` job does."""
    from datetime import UTC, datetime

    from service.notices import flows as notice_flows

    runtime, config = _inspection_runtime()
    with migrated_session() as session:
        report = notice_flows.sweep(session, runtime=runtime, config=config, now=datetime.now(UTC))
    out.print(
        f"reminders {report.reminders}, escalations {report.escalations}, waivers expired "
        f"{report.waivers_expired} (findings revived {report.findings_revived}), missing self-checks "
        f"{report.missing_selfchecks}",
        highlight=False,
    )


# --- digests and mail (service/digests/commands.py) ----------------------------------------------

from service.digests.commands import digests_app, mail_app  # noqa: E402

app.add_typer(digests_app, name="digests")
app.add_typer(mail_app, name="mail")

from service.reports.commands import report_app  # noqa: E402

app.add_typer(report_app, name="report")


if __name__ == "__main__":
    app()
