"""Reading and checking submitted records, and idempotency keys. Keyword-only functions; those on
a session flush but never commit (`service.ingest.flows` owns the transaction).

Input goes through the same readers (`rules.readers.read_table`) and validation
(`rules.validate.validate_frame`) as `zhidu load`; cells stay text until validation types them, so a
formula-looking cell (`=1+2`, `+86...`, `@SUM(A1)`) is stored as the text it is and never evaluated.
On top of validation, the service refuses rows it cannot store faithfully or that the caller may not
submit: a string holding a NUL character, and (for department users) a record of another department.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rules.problems import InputError, Problem
from rules.readers import SUPPORTED, read_table
from rules.records import FieldType, RecordModel, RecordType
from rules.validate import cell_text, empty_frame, validate_frame
from service.ingest.models import IdempotencyKey
from service.ingest.schemas import RejectedRow

MAX_RECORD_TYPE = 64


@dataclass
class Checked:
    """Validated input of one record type: the valid rows (typed, indexed by their 1-based row
    number) and one `RejectedRow` per problem."""

    record_type: str
    source: str
    received: int
    frame: pd.DataFrame
    problems: list[RejectedRow] = field(default_factory=list)

    @property
    def rejected_rows(self) -> set[int]:
        return {p.row for p in self.problems if p.row is not None}

    @property
    def whole_input_refused(self) -> bool:
        """A problem of the input as a whole (header, file): no row can be kept."""
        return any(p.row is None for p in self.problems)


class UnknownRecordTypeError(Exception):
    def __init__(self, name: str, model: RecordModel) -> None:
        known = ", ".join(model.names)
        self.message = f"unknown record type {name!r}; known types: {known}"
        self.message_zh = f"未知的记录类型 {name!r}；已知类型：{known}"
        super().__init__(self.message)


def record_type_named(model: RecordModel, name: str) -> RecordType:
    if name not in model:
        raise UnknownRecordTypeError(name, model)
    return model[name]


def _rejected(problem: Problem, rows: list[int], ids: dict[int, str]) -> RejectedRow:
    row = rows[problem.row - 1] if problem.row is not None and 0 < problem.row <= len(rows) else None
    return RejectedRow(
        row=row,
        record_id=ids.get(row) if row is not None else None,
        field=problem.key,
        message=problem.message_en,
        message_zh=problem.message_zh,
    )


def _ids(raw: pd.DataFrame, rows: list[int]) -> dict[int, str]:
    """Row number -> the row's id as written, where it has one."""
    if "id" not in raw.columns:
        return {}
    position = list(raw.columns).index("id")  # the first one, if the header repeats it
    out: dict[int, str] = {}
    for row, value in zip(rows, raw.iloc[:, position].tolist(), strict=True):
        text = cell_text(value)
        if text is not None and text.strip():
            out[row] = text.strip()
    return out


def check_frame(
    rt: RecordType,
    raw: pd.DataFrame,
    *,
    source: str,
    tz: ZoneInfo,
    rows: list[int] | None = None,
    dept: str | None = None,
    extra: list[RejectedRow] | None = None,
) -> Checked:
    """Validate `raw` as records of `rt`. `rows` are the row numbers of raw's rows (default 1..n);
    `dept`: the only department the caller may submit (None: any)."""
    rows = rows if rows is not None else list(range(1, len(raw) + 1))
    received = len(rows) + len({p.row for p in extra or () if p.row is not None})
    validated = validate_frame(rt, raw, source=source, tz=tz)
    ids = _ids(raw, rows)
    problems = list(extra or ()) + [_rejected(p, rows, ids) for p in validated.problems]
    frame = validated.frame.copy()
    frame.index = pd.Index([rows[i] for i in validated.frame.index], dtype=np.int64)
    refused: set[int] = set()
    row_numbers = frame.index.tolist()
    for name, spec in rt.fields.items():
        if spec.type != FieldType.STRING or name not in frame.columns:
            continue
        # A plain loop: pandas' string methods cost more per call than this costs per value.
        with_nul = [
            row
            for row, value in zip(row_numbers, frame[name].tolist(), strict=True)
            if isinstance(value, str) and "\x00" in value
        ]
        for row in with_nul:
            refused.add(int(row))
            problems.append(
                RejectedRow(
                    row=int(row),
                    record_id=ids.get(int(row)),
                    field=name,
                    message=f"{name}: contains a NUL character (\\u0000), which cannot be stored",
                    message_zh=f"{spec.label.zh}：包含 NUL 字符（\\u0000），无法保存",
                )
            )
    if dept is not None and rt.has_dept:
        foreign = (frame["dept"] != dept).fillna(True).to_numpy(dtype=bool)
        for row, value in zip(frame.index[foreign], frame["dept"][foreign].tolist(), strict=True):
            refused.add(int(row))
            problems.append(
                RejectedRow(
                    row=int(row),
                    record_id=ids.get(int(row)),
                    field="dept",
                    message=f"dept: {value!r} is not your department ({dept}); a department user submits "
                    "only its own department's records",
                    message_zh=f"部门：{value!r} 不是您所在的部门（{dept}）；部门用户只能提交本部门的记录",
                )
            )
    if refused:
        frame = frame[~frame.index.isin(sorted(refused))]
    problems.sort(key=lambda p: (p.row is not None, p.row or 0))
    return Checked(rt.name, source, received, frame, problems)


def check_json(rt: RecordType, body: Any, *, tz: ZoneInfo, dept: str | None) -> Checked:
    """Records sent as JSON: one object, or a list of objects (each item is a row, numbered from 1);
    an item that is not an object is a rejected row."""
    items = body if isinstance(body, list) else [body]
    rows: list[int] = []
    objects: list[dict[str, Any]] = []
    extra: list[RejectedRow] = []
    for number, item in enumerate(items, start=1):
        if isinstance(item, dict):
            rows.append(number)
            objects.append(item)
        else:
            kind = "null" if item is None else type(item).__name__
            extra.append(
                RejectedRow(
                    row=number,
                    record_id=None,
                    field=None,
                    message=f"item {number} is a JSON {kind}, not an object",
                    message_zh=f"第 {number} 项是 JSON {kind}，不是对象",
                )
            )
    columns: dict[str, None] = {}
    for item in objects:
        columns.update(dict.fromkeys(item))
    raw = pd.DataFrame(
        {name: pd.Series([item.get(name) for item in objects], dtype=object) for name in columns},
        index=pd.RangeIndex(len(objects)),
    )
    return check_frame(rt, raw, source="api", tz=tz, rows=rows, dept=dept, extra=extra)


def upload_name(filename: str | None) -> str:
    """The uploaded file's base name, safe to show ("upload" when there is none)."""
    name = Path((filename or "").replace("\\", "/")).name.strip()
    return name[:200] or "upload"


def read_upload(data: bytes, *, filename: str) -> pd.DataFrame:
    """Read an uploaded file with the CLI's readers (chosen by the name's extension). Raises
    InputError (problems without a row) when it cannot be read as a table."""
    suffix = Path(filename).suffix.lower()
    if suffix not in SUPPORTED:
        raise InputError(
            filename,
            [
                Problem(
                    filename,
                    f"unsupported file type '{suffix}'; use one of {', '.join(SUPPORTED)}",
                    f"不支持的文件类型 '{suffix}'；请使用 {', '.join(SUPPORTED)} 之一",
                )
            ],
        )
    with tempfile.TemporaryDirectory(prefix="zhidu-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        return read_table(path)


def unreadable(rt: RecordType, filename: str, error: InputError) -> Checked:
    """A file that cannot be read as a table: refused as a whole, with the reader's problems."""
    problems = [
        RejectedRow(row=p.row, record_id=None, field=p.key, message=p.message_en, message_zh=p.message_zh)
        for p in error.problems
    ]
    if all(p.row is not None for p in problems):  # e.g. JSON items that are not objects
        problems.insert(
            0,
            RejectedRow(
                row=None,
                record_id=None,
                field=None,
                message="the file cannot be read as a table of records",
                message_zh="无法将文件读取为记录表",
            ),
        )
    return Checked(rt.name, filename, max(1, len(problems)), empty_frame(rt), problems)


def request_hash(*parts: bytes | str) -> str:
    """sha256 over the parts of a request that decide its outcome."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def key_cutoff(now: datetime, ttl: timedelta) -> datetime:
    """Keys created at or before this time have expired (a key is remembered for `ttl`)."""
    return now - ttl


def has_expired(row: IdempotencyKey, *, now: datetime, ttl: timedelta) -> bool:
    """An expired key is unknown: the request that brings it again is a new one."""
    return row.created_at <= key_cutoff(now, ttl)


def find_key(session: Session, *, user_id: int, key: str) -> IdempotencyKey | None:
    """The key `user_id` sent, expired or not (see `has_expired`)."""
    return session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    ).one_or_none()


def delete_expired_keys(session: Session, *, now: datetime, ttl: timedelta) -> int:
    """Delete every key expired at `now`; how many."""
    result = session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.created_at <= key_cutoff(now, ttl))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def remember_key(
    session: Session,
    *,
    user_id: int,
    key: str,
    request_hash: str,
    status_code: int,
    response: dict[str, Any],
    submission_id: int | None,
    now: datetime,
) -> IdempotencyKey:
    row = IdempotencyKey(
        user_id=user_id,
        key=key,
        request_hash=request_hash,
        status_code=status_code,
        response=response,
        submission_id=submission_id,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row
