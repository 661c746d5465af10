"""Storage: versioned records, the all-or-nothing load, migrations and settings."""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, delete, event, func, inspect, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from service.db.base import Base, engine_for, import_all_models, session_factory
from service.db.migrate import current_revision, downgrade, head_revision, upgrade
from service.records import service
from service.records.flows import load_dataset
from service.records.models import Record, Submission
from service.records.schemas import Outcome, RecordResult, UpsertOutcome
from service.settings import Settings

NOW = datetime(2025, 3, 1, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
LATER = NOW + timedelta(days=1)


def claim(rid: str, dept: str | None = "D01", amount: int = 10_000, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"id": rid, "applicant": "张三", "amount": amount, **extra}
    if dept is not None:
        payload["dept"] = dept
    return payload


def content_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def upsert(
    session: Session,
    payloads: list[dict[str, Any]],
    *,
    record_type: str = "expense_claim",
    now: datetime = NOW,
    source: str = "claims.xlsx",
) -> UpsertOutcome:
    return service.upsert_records(
        session,
        record_type=record_type,
        payloads=payloads,
        hashes=[content_hash(p) for p in payloads],
        submitted_by="alice",
        source=source,
        now=now,
    )


def with_hashes(payloads: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    return [(p, content_hash(p)) for p in payloads]


def row_count(session: Session, model: type[Base] = Record) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- create / unchanged / versioned -------------------------------------------------------------


@pytest.mark.db
def test_create_unchanged_versioned_keeps_history(db_session: Session) -> None:
    first = upsert(db_session, [claim("C1"), claim("C2")])
    assert [(r.record_id, r.outcome, r.version) for r in first.results] == [
        ("C1", Outcome.CREATED, 1),
        ("C2", Outcome.CREATED, 1),
    ]
    assert row_count(db_session) == 2

    again = upsert(db_session, [claim("C1"), claim("C2")], now=LATER, source="again.xlsx")
    assert [r.outcome for r in again.results] == [Outcome.UNCHANGED, Outcome.UNCHANGED]
    assert row_count(db_session) == 2  # a no-op: nothing written
    c1 = service.current_record(db_session, record_type="expense_claim", record_id="C1")
    assert c1 is not None
    assert c1.source == "claims.xlsx"  # not touched by the unchanged resubmission

    changed = upsert(db_session, [claim("C1", amount=25_000), claim("C2")], now=LATER, source="fix.xlsx")
    assert (changed.created, changed.unchanged, changed.versioned) == (0, 1, 1)
    assert changed.results[0] == RecordResult("C1", Outcome.VERSIONED, 2)

    history = service.record_history(db_session, record_type="expense_claim", record_id="C1")
    assert [(r.version, r.is_current, r.payload["amount"], r.source) for r in history] == [
        (1, False, 10_000, "claims.xlsx"),
        (2, True, 25_000, "fix.xlsx"),
    ]
    assert history[0].content_hash == content_hash(claim("C1"))
    assert history[1].submitted_at == LATER
    assert history[1].submitted_at.tzinfo == UTC

    current = service.current_records(db_session, record_type="expense_claim")
    assert [(r.record_id, r.version) for r in current] == [("C1", 2), ("C2", 1)]


@pytest.mark.db
def test_reverting_content_is_a_new_version(db_session: Session) -> None:
    upsert(db_session, [claim("C1")])
    upsert(db_session, [claim("C1", amount=1)])
    back = upsert(db_session, [claim("C1")])  # compared with the current version only
    assert back.results[0] == RecordResult("C1", Outcome.VERSIONED, 3)
    history = service.record_history(db_session, record_type="expense_claim", record_id="C1")
    assert [r.is_current for r in history] == [False, False, True]


@pytest.mark.db
def test_same_id_in_other_type_is_another_record(db_session: Session) -> None:
    upsert(db_session, [claim("X1")], record_type="expense_claim")
    outcome = upsert(db_session, [claim("X1")], record_type="contract")
    assert outcome.results[0].outcome is Outcome.CREATED


@pytest.mark.db
def test_many_records_in_one_call_use_chunked_queries(db_session: Session, db_connection: Connection) -> None:
    n = 5_000
    payloads = [claim(f"C{i:06d}", dept=f"D{i % 7}", amount=i) for i in range(n)]
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    event.listen(db_connection, "before_cursor_execute", count)
    try:
        first = upsert(db_session, payloads)
        chunks = math.ceil(n / service.chunk_size(db_session))
        # one lookup per chunk, not per record, and one of the key index's registered fields
        assert statements.count("SELECT") == chunks + 1
        assert first.created == n

        statements.clear()
        edited = [
            claim(p["id"], dept=p["dept"], amount=p["amount"] + 1) if i % 10 == 0 else p
            for i, p in enumerate(payloads)
        ]
        second = upsert(db_session, edited, now=LATER)
        assert statements.count("SELECT") == chunks + 1
        assert statements.count("UPDATE") <= chunks
        assert len(statements) < n / 10  # bulk writes, not a statement per record
    finally:
        event.remove(db_connection, "before_cursor_execute", count)

    assert (second.created, second.unchanged, second.versioned) == (0, n - n // 10, n // 10)
    assert row_count(db_session) == n + n // 10
    current = service.current_records(db_session, record_type="expense_claim")
    assert len(current) == n
    assert current[0].version == 2
    assert current[0].payload["amount"] == 1
    assert current[1].version == 1


@pytest.mark.db
def test_malformed_input_is_refused_before_writing(db_session: Session) -> None:
    with pytest.raises(ValueError, match=r"more than once.*C1"):
        upsert(db_session, [claim("C1"), claim("C2"), claim("C1", amount=5)])
    with pytest.raises(ValueError, match="`id` must be a non-empty string"):
        upsert(db_session, [claim("C3"), {"dept": "D01"}])
    with pytest.raises(ValueError, match="timezone-aware"):
        upsert(db_session, [claim("C4")], now=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="1 payloads but 0 hashes"):
        service.upsert_records(
            db_session,
            record_type="t",
            payloads=[claim("C5")],
            hashes=[],
            submitted_by="a",
            source="api",
            now=NOW,
        )
    with pytest.raises(ValueError, match="64 lowercase hex"):
        service.upsert_records(
            db_session,
            record_type="t",
            payloads=[claim("C6")],
            hashes=["abc"],
            submitted_by="a",
            source="api",
            now=NOW,
        )
    assert row_count(db_session) == 0


# --- reads -----------------------------------------------------------------------------------------


@pytest.mark.db
def test_counts_by_dept_and_type_count_current_versions(db_session: Session) -> None:
    upsert(db_session, [claim("E1", dept="D02"), claim("E2", dept="D01"), claim("E3", dept="D01")])
    upsert(db_session, [claim("E1", dept="D02", amount=7)])  # a second version counts once
    upsert(db_session, [claim("K1", dept="D01"), claim("K2", dept=None)], record_type="contract")
    upsert(db_session, [{"id": "S1", "name": "供应商"}], record_type="supplier")

    assert service.counts_by_dept_and_type(db_session) == [
        ("D01", "contract", 1),
        ("D01", "expense_claim", 2),
        ("D02", "expense_claim", 1),
        (None, "contract", 1),
        (None, "supplier", 1),
    ]
    d01 = service.current_records(db_session, record_type="expense_claim", dept="D01")
    assert [r.record_id for r in d01] == ["E2", "E3"]
    assert service.current_records(db_session, record_type="expense_claim", dept="D09") == []


# --- the all-or-nothing flow -----------------------------------------------------------------------


@pytest.mark.db
def test_load_dataset_stores_and_summarises(
    db_session_factory: sessionmaker[Session], db_session: Session
) -> None:
    dataset = {
        "expense_claim": with_hashes([claim("C1"), claim("C2")]),
        "contract": with_hashes([claim("K1")]),
    }
    summary = load_dataset(
        db_session_factory,
        records=dataset,
        submitted_by="bob",
        source="q1.xlsx",
        rejected={"expense_claim": 3, "approval": 2},
        now=NOW,
    )
    assert [(t.record_type, t.stored, t.unchanged, t.versioned, t.rejected) for t in summary.types] == [
        ("expense_claim", 2, 0, 0, 3),
        ("contract", 1, 0, 0, 0),
        ("approval", 0, 0, 0, 2),
    ]
    assert (summary.stored, summary.rejected) == (3, 5)

    dataset["expense_claim"] = with_hashes([claim("C1"), claim("C2", amount=1), claim("C3")])
    second = load_dataset(
        db_session_factory, records=dataset, submitted_by="bob", source="q1-fixed.xlsx", now=LATER
    )
    assert [(t.stored, t.unchanged, t.versioned) for t in second.types] == [(1, 1, 1), (0, 1, 0)]

    submission = db_session.get(Submission, second.types[0].submission_id)
    assert submission is not None
    assert (submission.stored, submission.unchanged, submission.versioned) == (1, 1, 1)
    assert submission.submitted_at == LATER
    c2 = service.current_record(db_session, record_type="expense_claim", record_id="C2")
    assert c2 is not None
    assert (c2.version, c2.submission_id, c2.submitted_by) == (2, submission.id, "bob")


FAILING_CONTRACTS = [
    # refused by the service, after the first type was written
    pytest.param([*with_hashes([claim("K1")]), *with_hashes([claim("K1")])], ValueError, id="invalid"),
    # fails while inserting: the payload cannot be serialised to JSON (SQLAlchemy wraps the
    # TypeError on SQLite; psycopg raises it as is)
    pytest.param([(claim("K2", note=object()), "0" * 64)], (StatementError, TypeError), id="database"),
]


@pytest.mark.db
@pytest.mark.parametrize(("bad_contracts", "error"), FAILING_CONTRACTS)
def test_load_dataset_is_all_or_nothing(db_engine: Engine, bad_contracts: list[Any], error: Any) -> None:
    """Against the real engine (real commits): a failure in the second type leaves no trace of the first."""
    tag = f"t{uuid.uuid4().hex[:10]}"  # record types of this test only: the database is shared
    claims, contracts = f"{tag}_claim", f"{tag}_contract"
    factory = session_factory(db_engine)
    try:
        load_dataset(
            factory, records={claims: with_hashes([claim("C1")])}, submitted_by="a", source="v1", now=NOW
        )
        with pytest.raises(error):
            load_dataset(
                factory,
                records={
                    claims: with_hashes([claim("C1", amount=99), claim("C9")]),
                    contracts: bad_contracts,
                },
                submitted_by="a",
                source="v2",
                now=LATER,
            )
        with factory() as session:
            rows = session.scalars(select(Record).where(Record.record_type.in_([claims, contracts]))).all()
            assert [(r.record_id, r.version, r.is_current, r.source) for r in rows] == [("C1", 1, True, "v1")]
            sources = session.scalars(
                select(Submission.source).where(Submission.record_type.in_([claims, contracts]))
            )
            assert list(sources) == ["v1"]
    finally:
        with factory.begin() as session:
            session.execute(delete(Record).where(Record.record_type.in_([claims, contracts])))
            session.execute(delete(Submission).where(Submission.record_type.in_([claims, contracts])))


# These two run in file order: the first commits through a flow, the second must not see it.
_LEAK_TYPE = f"leak_{uuid.uuid4().hex[:10]}"


@pytest.mark.db
def test_flow_commits_inside_a_test_transaction(db_session_factory: sessionmaker[Session]) -> None:
    load_dataset(
        db_session_factory, records={_LEAK_TYPE: with_hashes([claim("L1")])}, submitted_by="a", source="s"
    )
    with db_session_factory() as session:
        assert len(service.current_records(session, record_type=_LEAK_TYPE)) == 1


@pytest.mark.db
def test_test_transaction_was_rolled_back(db_engine: Engine) -> None:
    with db_engine.connect() as connection:
        assert connection.scalar(select(func.count()).where(Record.record_type == _LEAK_TYPE)) == 0


# --- migrations ---------------------------------------------------------------------------------------


@pytest.mark.db
def test_migrations_match_models(db_engine: Engine) -> None:
    metadata = import_all_models()
    with db_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
        assert context.get_current_revision() == head_revision()


@pytest.mark.db
def test_migrations_go_down_and_up_again(empty_db_url: str) -> None:
    assert current_revision(empty_db_url) is None
    upgrade(empty_db_url)
    assert current_revision(empty_db_url) == head_revision()
    downgrade(empty_db_url, "base")
    assert current_revision(empty_db_url) is None
    engine = engine_for(empty_db_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    upgrade(empty_db_url)
    engine = engine_for(empty_db_url)
    try:
        assert {"records", "submissions"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.db
def test_sqlite_connections_are_configured(db_engine: Engine) -> None:
    if db_engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    with db_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert (connection.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) > 0


@pytest.mark.db
def test_foreign_keys_are_enforced(db_session: Session) -> None:
    db_session.add(
        Record(
            record_type="t",
            record_id="R1",
            version=1,
            payload={},
            content_hash="0" * 64,
            submitted_by="a",
            submitted_at=NOW,
            source="api",
            is_current=True,
            submission_id=999_999,
        )
    )
    with pytest.raises(IntegrityError):
        db_session.flush()


@pytest.mark.db
def test_naive_timestamps_are_refused(db_session: Session) -> None:
    db_session.add(
        Submission(record_type="t", submitted_by="a", source="api", submitted_at=datetime(2025, 1, 1))
    )
    with pytest.raises(StatementError, match="naive datetime"):
        db_session.flush()


# --- settings --------------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [n for n in os.environ if n.startswith("ZHIDU_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_settings_defaults(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    settings = Settings()
    assert settings.database_url == f"sqlite+pysqlite:///{tmp_path / 'zhidu.db'}"
    assert settings.tz == ZoneInfo("Asia/Shanghai")
    assert settings.policies_dir == Path(__file__).resolve().parents[1] / "policies"
    assert settings.company_file == settings.policies_dir / "company.yaml"
    assert settings.max_upload_bytes == 20 * 1024 * 1024


def test_settings_from_environment(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("ZHIDU_TIMEZONE", "Europe/Berlin")
    clean_env.setenv("ZHIDU_DATABASE_URL", "postgresql://zhidu:s%40cret@db:5432/zhidu")
    clean_env.setenv("ZHIDU_POLICIES_DIR", str(tmp_path))
    clean_env.setenv("ZHIDU_LOG_LEVEL", "debug")
    settings = Settings()
    assert settings.tz == ZoneInfo("Europe/Berlin")
    assert settings.database_url == "postgresql+psycopg://zhidu:s%40cret@db:5432/zhidu"
    assert settings.company_file == tmp_path / "company.yaml"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../../etc/passwd", "UTC+8"])
def test_settings_fail_fast_on_a_bad_timezone(clean_env: pytest.MonkeyPatch, zone: str) -> None:
    clean_env.setenv("ZHIDU_TIMEZONE", zone)
    with pytest.raises(
        ValidationError, match=r"timezone\n.*unknown time zone .*IANA name such as Asia/Shanghai"
    ):
        Settings()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("postgresql+asyncpg://u@h/db", "unsupported driver 'asyncpg'"),
        ("sqlite://", "a SQLite URL needs a file"),
        ("not a url", "cannot parse database URL"),
    ],
)
def test_settings_fail_fast_on_a_bad_database_url(
    clean_env: pytest.MonkeyPatch, url: str, message: str
) -> None:
    clean_env.setenv("ZHIDU_DATABASE_URL", url)
    with pytest.raises(ValidationError, match=f"database_url\n.*{message}"):
        Settings()
