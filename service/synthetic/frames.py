"""Column stores for generated tables and their conversion to text (CSV or Parquet).

A table is held as numpy arrays until it is written: instants as int64 epoch seconds, amounts as int64
hundredths (fen), people and codes as indices into a pool of strings, ids as (prefix, number). Writing
turns every column into the text form of its declared field type, vectorised with pyarrow.compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from service.synthetic.clock import AS_OF, DAY, MINUTE, MISSING, OFFSET, TZ, Arr

# The record model, as declared in policies/record_types.yaml: (field, type, required), in order.
SCHEMA: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "department": (
        ("id", "string", True),
        ("name", "string", True),
        ("name_en", "string", False),
        ("head", "string", True),
        ("division_leader", "string", False),
    ),
    "expense_claim": (
        ("id", "string", True),
        ("dept", "string", True),
        ("applicant", "string", True),
        ("category", "string", True),
        ("amount", "decimal", True),
        ("invoice_no", "string", False),
        ("invoice_count", "int", True),
        ("submitted_at", "timestamp", True),
        ("paid_at", "timestamp", False),
    ),
    "approval": (
        ("id", "string", True),
        ("record_type", "string", True),
        ("record_id", "string", True),
        ("step", "string", True),
        ("approver", "string", True),
        ("decision", "string", True),
        ("decided_at", "timestamp", True),
    ),
    "contract": (
        ("id", "string", True),
        ("dept", "string", True),
        ("counterparty", "string", True),
        ("kind", "string", True),
        ("amount", "decimal", True),
        ("owner", "string", False),
        ("drafted_at", "timestamp", True),
        ("signed_at", "timestamp", False),
        ("filed_at", "timestamp", False),
    ),
    "supplier": (
        ("id", "string", True),
        ("name", "string", True),
        ("dept", "string", False),
        ("qualified", "bool", True),
        ("qualified_from", "date", False),
        ("qualified_until", "date", False),
        ("last_evaluated_at", "timestamp", False),
    ),
    "purchase_requisition": (
        ("id", "string", True),
        ("dept", "string", True),
        ("requester", "string", False),
        ("item", "string", True),
        ("spec", "string", False),
        ("quantity", "decimal", True),
        ("budget_amount", "decimal", True),
        ("requested_at", "timestamp", True),
    ),
    "purchase_order": (
        ("id", "string", True),
        ("dept", "string", True),
        ("buyer", "string", False),
        ("requisition_id", "string", True),
        ("supplier_id", "string", True),
        ("amount", "decimal", True),
        ("contract_id", "string", False),
        ("ordered_at", "timestamp", True),
    ),
    "goods_receipt": (
        ("id", "string", True),
        ("dept", "string", True),
        ("po_id", "string", True),
        ("received_at", "timestamp", True),
        ("quantity", "decimal", True),
        ("result", "string", True),
        ("user_dept_signed", "bool", True),
        ("qc_signed", "bool", True),
    ),
    "payment": (
        ("id", "string", True),
        ("dept", "string", True),
        ("po_id", "string", True),
        ("amount", "decimal", True),
        ("paid_at", "timestamp", True),
    ),
    "warehouse": (
        ("id", "string", True),
        ("dept", "string", True),
        ("name", "string", True),
        ("keeper", "string", False),
    ),
    "inventory_count": (
        ("id", "string", True),
        ("dept", "string", True),
        ("warehouse", "string", True),
        ("sku", "string", True),
        ("counted_by", "string", False),
        ("counted_at", "timestamp", True),
        ("system_qty", "decimal", True),
        ("counted_qty", "decimal", True),
        ("explanation", "string", False),
        ("adjusted_at", "timestamp", False),
    ),
    "complaint": (
        ("id", "string", True),
        ("dept", "string", True),
        ("handler", "string", False),
        ("customer", "string", True),
        ("channel", "string", True),
        ("received_at", "timestamp", True),
        ("forwarded_at", "timestamp", False),
        ("resolved_at", "timestamp", False),
        ("followed_up_at", "timestamp", False),
        ("satisfaction", "int", False),
    ),
    "hire": (
        ("id", "string", True),
        ("dept", "string", True),
        ("employee", "string", True),
        ("hr_officer", "string", False),
        ("hired_at", "timestamp", True),
        ("background_check_at", "timestamp", False),
        ("medical_exam_at", "timestamp", False),
        ("contract_signed_at", "timestamp", False),
        ("onboarding_training_at", "timestamp", False),
    ),
    "performance_review": (
        ("id", "string", True),
        ("dept", "string", True),
        ("employee", "string", True),
        ("reviewer", "string", False),
        ("period", "string", True),
        ("grade", "string", True),
        ("reviewed_at", "timestamp", True),
        ("improvement_interview_at", "timestamp", False),
    ),
    "budget": (
        ("id", "string", True),
        ("dept", "string", True),
        ("year", "int", True),
        ("amount", "decimal", True),
    ),
}

RECORD_TYPES: tuple[str, ...] = tuple(SCHEMA)

# Business ids: prefix and zero-padded width of the number, per record type.
ID_FORMAT: dict[str, tuple[str, int]] = {
    "expense_claim": ("EC", 7),
    "approval": ("AP", 8),
    "contract": ("CT", 7),
    "supplier": ("SP", 5),
    "purchase_requisition": ("PR", 7),
    "purchase_order": ("PO", 7),
    "goods_receipt": ("GR", 7),
    "payment": ("PM", 7),
    "inventory_count": ("IC", 8),
    "complaint": ("CP", 7),
    "hire": ("HR", 6),
    "performance_review": ("PF", 7),
}


@dataclass(frozen=True)
class Pool:
    """A string column as indices into a pool of values; a negative index is a missing value."""

    values: Sequence[str]
    index: Arr


@dataclass(frozen=True)
class Ids:
    """An id column: prefix + zero-padded number; a negative number is a missing value."""

    prefix: str
    number: Arr
    width: int = 7


Column = Pool | Ids | Arr | Any  # Any: an already-built pyarrow string array


def ids(record_type: str, number: Arr) -> Ids:
    prefix, width = ID_FORMAT[record_type]
    return Ids(prefix, number, width)


def id_text(record_type: str, number: Arr) -> Any:
    prefix, width = ID_FORMAT[record_type]
    return ids_text(prefix, np.asarray(number, dtype=np.int64), width)


def ids_text(prefix: str, number: Arr, width: int = 7) -> Any:
    """Vectorised `prefix + zero-padded number` (null where number < 0)."""
    num = pa.array(number, mask=number < 0)
    padded = pc.utf8_lpad(pc.cast(num, pa.string()), width, "0")
    prefix_arr = pa.array(np.full(len(number), prefix, dtype=object), type=pa.string())
    return pc.binary_join_element_wise(prefix_arr, padded, "")


def pool_text(values: Sequence[str], index: Arr) -> Any:
    pool = pa.array(list(values), type=pa.string())
    return pool.take(pa.array(index, mask=index < 0))


def decimal_text(fen: Arr) -> Any:
    """Hundredths as text with two decimals (non-negative amounts only; null where MISSING)."""
    mask = fen == MISSING
    if np.any(fen[~mask] < 0):
        raise ValueError("negative decimal amounts are not generated")
    safe = np.where(mask, 0, fen)
    whole = pc.cast(pa.array(safe // 100), pa.string())
    cents = pc.utf8_lpad(pc.cast(pa.array(safe % 100), pa.string()), 2, "0")
    out = pc.binary_join_element_wise(whole, cents, ".")
    return pc.if_else(pa.array(mask), pa.scalar(None, type=pa.string()), out)


def int_text(values: Arr) -> Any:
    mask = values == MISSING
    return pc.cast(pa.array(np.where(mask, 0, values), mask=mask), pa.string())


def bool_text(values: Arr) -> Any:
    return pc.if_else(pa.array(values.astype(bool)), "true", "false")


def timestamp_text(t: Arr) -> Any:
    """ISO 8601 local time with +08:00; null where MISSING. Instants are whole minutes."""
    mask = t == MISSING
    if np.any(t[~mask] > AS_OF):
        raise ValueError("an instant after as_of was generated")
    if np.any(t[~mask] % MINUTE != 0):
        raise ValueError("instants must be whole minutes")
    local = np.where(mask, 0, t) + OFFSET
    day = local // DAY
    first = int(day[~mask].min()) if np.any(~mask) else 0
    last = int(day[~mask].max()) if np.any(~mask) else 0
    day_names = [
        datetime.fromtimestamp(d * DAY - OFFSET, TZ).strftime("%Y-%m-%dT") for d in range(first, last + 1)
    ]
    clock = [f"{m // 60:02d}:{m % 60:02d}:00+08:00" for m in range(1440)]
    day_idx = np.where(mask, -1, day - first)
    minute_idx = np.where(mask, -1, (local % DAY) // MINUTE)
    return pc.binary_join_element_wise(pool_text(day_names, day_idx), pool_text(clock, minute_idx), "")


def date_text(days: Arr) -> Any:
    """Local calendar days (days since 1970-01-01) as YYYY-MM-DD; null where MISSING."""
    mask = days == MISSING
    arr = pa.array(np.where(mask, 0, days).astype(np.int32), type=pa.date32(), mask=mask)
    return pc.cast(arr, pa.string())


def to_text(kind: str, col: Column) -> Any:
    if isinstance(col, Pool):
        return pool_text(col.values, col.index)
    if isinstance(col, Ids):
        return ids_text(col.prefix, col.number, col.width)
    if isinstance(col, np.ndarray):
        if kind == "timestamp":
            return timestamp_text(col)
        if kind == "date":
            return date_text(col)
        if kind == "decimal":
            return decimal_text(col)
        if kind == "int":
            return int_text(col)
        if kind == "bool":
            return bool_text(col)
        if kind == "string":
            return pa.array(col, type=pa.string())
        raise ValueError(f"unknown field type {kind}")
    return col  # already a pyarrow string array


@dataclass
class Frame:
    """One record type's rows, column by column (keys are field names as in SCHEMA)."""

    record_type: str
    n: int
    cols: dict[str, Column] = field(default_factory=dict)

    def to_table(self) -> Any:
        arrays = []
        names = []
        for name, kind, required in SCHEMA[self.record_type]:
            text = to_text(kind, self.cols[name])
            if len(text) != self.n:
                raise ValueError(f"{self.record_type}.{name}: {len(text)} values for {self.n} rows")
            if required and text.null_count:
                raise ValueError(f"{self.record_type}.{name} is required but has missing values")
            arrays.append(text)
            names.append(name)
        return pa.Table.from_arrays(arrays, names=names)


def write_table(table: Any, path: Path, fmt: str) -> None:
    """CSV: UTF-8, plain header, empty cell for missing, no quoting. Parquet: string columns."""
    if fmt == "parquet":
        pq.write_table(table, path, compression="zstd")
        return
    with path.open("wb") as out:
        out.write((",".join(table.column_names) + "\n").encode("utf-8"))
        if table.num_rows:
            pcsv.write_csv(table, out, pcsv.WriteOptions(include_header=False, quoting_style="none"))


class GroundTruth:
    """Every violation present in the data: (rule, record_type, record_id, detail)."""

    def __init__(self) -> None:
        self._parts: list[Any] = []

    def add(self, rule: str, record_type: str, record_ids: Any, details: Any) -> None:
        n = len(record_ids)
        if n == 0:
            return
        if isinstance(details, str):
            details = pa.array([details] * n, type=pa.string())
        elif isinstance(details, list | np.ndarray):
            details = pa.array(list(details), type=pa.string())
        self._parts.append(
            pa.table(
                {
                    "rule": pa.array([rule] * n, type=pa.string()),
                    "record_type": pa.array([record_type] * n, type=pa.string()),
                    "record_id": record_ids,
                    "detail": details,
                }
            )
        )

    def table(self) -> Any:
        if not self._parts:
            empty = pa.array([], type=pa.string())
            return pa.table({"rule": empty, "record_type": empty, "record_id": empty, "detail": empty})
        table = pa.concat_tables(self._parts)
        return table.sort_by(
            [("rule", "ascending"), ("record_type", "ascending"), ("record_id", "ascending")]
        )

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for part in self._parts:
            rule = part.column("rule")[0].as_py()
            out[rule] = out.get(rule, 0) + part.num_rows
        return dict(sorted(out.items()))


def join_text(*parts: Any) -> Any:
    """Element-wise concatenation of pyarrow string arrays and plain strings (broadcast)."""
    n = max(len(p) for p in parts if not isinstance(p, str))
    arrays = [pa.array([p] * n, type=pa.string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*arrays, "")


APPROVAL_TYPES = ("expense_claim", "contract", "purchase_requisition", "purchase_order", "hire")
APPROVAL_STEPS = ("dept_head", "finance", "legal", "division_leader", "general_manager", "central_review")
DECISIONS = ("approved", "rejected")
APPROVED = 0
REJECTED = 1


class Approvals:
    """Approvals collected from every approved record type; ids are given in decision order."""

    def __init__(self) -> None:
        self._chunks: list[tuple[int, str, Arr, int, Arr, Arr, Arr]] = []

    def add(
        self,
        record_type: str,
        record_num: Arr,
        step: str,
        approver: Arr | int,
        decision: Arr | int,
        decided_at: Arr,
    ) -> None:
        """Rows for every element whose decided_at is present."""
        keep = decided_at != MISSING
        n = len(record_num)
        approver_arr = np.broadcast_to(np.asarray(approver, dtype=np.int64), (n,))
        decision_arr = np.broadcast_to(np.asarray(decision, dtype=np.int8), (n,))
        self._chunks.append(
            (
                APPROVAL_TYPES.index(record_type),
                record_type,
                np.asarray(record_num, dtype=np.int64)[keep],
                APPROVAL_STEPS.index(step),
                approver_arr[keep],
                decision_arr[keep],
                decided_at[keep],
            )
        )

    def __len__(self) -> int:
        return sum(len(c[2]) for c in self._chunks)

    def frame(self, names: Sequence[str]) -> Frame:
        rtype = np.concatenate([np.full(len(c[2]), c[0], dtype=np.int64) for c in self._chunks])
        rec = np.concatenate([c[2] for c in self._chunks])
        step = np.concatenate([np.full(len(c[2]), c[3], dtype=np.int64) for c in self._chunks])
        approver = np.concatenate([c[4] for c in self._chunks])
        decision = np.concatenate([c[5] for c in self._chunks]).astype(np.int64)
        decided = np.concatenate([c[6] for c in self._chunks])
        order = np.lexsort((step, rec, rtype, decided))
        rtype, rec, step = rtype[order], rec[order], step[order]
        approver, decision, decided = approver[order], decision[order], decided[order]
        n = len(rec)
        # one id column per record type, nulls elsewhere: coalesce into one
        parts = [
            ids_text(ID_FORMAT[t][0], np.where(rtype == k, rec, -1), ID_FORMAT[t][1])
            for k, t in enumerate(APPROVAL_TYPES)
        ]
        record_id = pc.coalesce(*parts)
        return Frame(
            "approval",
            n,
            {
                "id": ids("approval", np.arange(1, n + 1, dtype=np.int64)),
                "record_type": Pool(APPROVAL_TYPES, rtype),
                "record_id": record_id,
                "step": Pool(APPROVAL_STEPS, step),
                "approver": Pool(names, approver),
                "decision": Pool(DECISIONS, decision),
                "decided_at": decided,
            },
        )
