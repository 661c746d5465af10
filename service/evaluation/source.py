"""The database as the streaming engine's `RelatedSource`, and stored payloads as encoded frames.

`DbSource(session, codec)` answers the engine's look-ups from the CURRENT versions of records, in
the session's transaction (so what the transaction itself wrote is seen): by business id through the
records table's index, by another key through `record_keys` (an index look-up), by scanning a type
only for a join without a key or on a field `record_keys` cannot hold. Frames are indexed by the
records' row id, which identifies a row as the engine requires.

`PayloadCodec` turns canonical payloads (what `rules.validate.to_payloads` writes) into the engines'
encoded rows directly, without pandas' per-call parsing overhead, and keeps them by content hash:
a record's encoding depends on its content only, so it is computed once per process.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from rules.engine.encode import PRESENT_SUFFIX
from rules.lang.ir import Scalar
from rules.records import FieldType, RecordModel, RecordType
from service.records import service as records

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_NS_PER_MS = 1_000_000
EncodedRow = tuple[Any, ...]


def timestamp_ms(text: str) -> int:
    """Epoch milliseconds (floored, as `rules.engine.encode.encode_times`) of a canonical timestamp
    `YYYY-MM-DDTHH:MM:SS[.fraction]±HH:MM[:SS]`."""
    base, rest = text[:19], text[19:]
    frac_ns = 0
    if rest.startswith("."):
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        digits = rest[1:end]
        frac_ns = int((digits + "000000000")[:9])
        rest = rest[end:]
    if rest in ("", "Z"):
        offset_s = 0
    else:
        sign = -1 if rest[0] == "-" else 1
        parts = rest[1:].split(":")
        offset_s = sign * (
            int(parts[0]) * 3600
            + (int(parts[1]) if len(parts) > 1 else 0) * 60
            + (int(parts[2]) if len(parts) > 2 else 0)
        )
    day = dt.date(int(base[0:4]), int(base[5:7]), int(base[8:10]))
    seconds = (
        (day.toordinal() - _EPOCH_ORDINAL) * 86_400
        + int(base[11:13]) * 3600
        + int(base[14:16]) * 60
        + int(base[17:19])
        - offset_s
    )
    return (seconds * 1_000_000_000 + frac_ns) // _NS_PER_MS


def date_ms(text: str, tz: ZoneInfo) -> int:
    """Epoch milliseconds of midnight of a canonical date `YYYY-MM-DD` in the company's zone."""
    day = dt.datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), tzinfo=tz)
    return int(day.timestamp()) * 1000


class _TypeCodec:
    def __init__(self, rt: RecordType, tz: ZoneInfo) -> None:
        self.name = rt.name
        self.fields = [(name, spec.type) for name, spec in rt.fields.items()]
        self.columns = [c for name, _ in self.fields for c in (name, name + PRESENT_SUFFIX)]
        self.strings = {i * 2 for i, (_, ftype) in enumerate(self.fields) if ftype == FieldType.STRING}
        self.tz = tz
        self._empty: pd.DataFrame | None = None

    def encode(self, payload: Mapping[str, Any]) -> EncodedRow:
        out: list[Any] = []
        for name, ftype in self.fields:
            value = payload.get(name)
            if value is None:
                out += ["" if ftype == FieldType.STRING else 0, 0]
                continue
            if ftype == FieldType.STRING:
                out.append(str(value))
            elif ftype == FieldType.INT:
                out.append(int(value))
            elif ftype == FieldType.DECIMAL:
                out.append(int(str(value).replace(".", "")))  # canonical: exactly two decimals
            elif ftype == FieldType.BOOL:
                out.append(1 if value else 0)
            elif ftype == FieldType.TIMESTAMP:
                out.append(timestamp_ms(str(value)))
            else:
                out.append(date_ms(str(value), self.tz))
            out.append(1)
        return tuple(out)

    def frame(self, rows: list[EncodedRow], index: list[int]) -> pd.DataFrame:
        if not rows:
            return self.empty()
        columns = list(zip(*rows, strict=True))
        data = {
            name: np.array(values, dtype=object if i in self.strings else np.int64)
            for i, (name, values) in enumerate(zip(self.columns, columns, strict=True))
        }
        return pd.DataFrame(data, index=pd.Index(index, dtype=np.int64))

    def empty(self) -> pd.DataFrame:
        """An encoded frame without rows (a copy: callers may change it)."""
        if self._empty is None:
            self._empty = pd.DataFrame(
                {
                    name: np.array([], dtype=object if i in self.strings else np.int64)
                    for i, name in enumerate(self.columns)
                },
                index=pd.Index([], dtype=np.int64),
            )
        return self._empty.copy()

    def typed(self, encoded: pd.DataFrame) -> pd.DataFrame:
        """Typed values (as `rules.findings.describe` reads them) back from an encoded frame: str,
        int, int hundredths, bool, UTC timestamps (to the millisecond); None where missing."""
        # One conversion of the whole frame, then plain lists: per-column pandas calls cost more
        # than the values themselves on the few rows judged on arrival.
        frame = encoded if list(encoded.columns) == self.columns else encoded[self.columns]
        matrix = frame.to_numpy(dtype=object)
        columns: dict[str, list[Any]] = {}
        for i, (name, ftype) in enumerate(self.fields):
            values = matrix[:, 2 * i].tolist()
            present = matrix[:, 2 * i + 1].tolist()
            if ftype == FieldType.BOOL:
                values = [bool(v) for v in values]
            elif ftype.is_time:
                values = [pd.Timestamp(int(v), unit="ms", tz="UTC") for v in values]
            columns[name] = [v if p == 1 else None for v, p in zip(values, present, strict=True)]
        return pd.DataFrame(columns, index=encoded.index, dtype=object)


class PayloadCodec:
    """Canonical payloads -> encoded rows (as `encode_frame(from_payloads(...))` gives them), kept
    per (record type, content hash) in a bounded cache shared by every request of the process."""

    def __init__(self, model: RecordModel, tz: ZoneInfo, *, cache_size: int = 200_000) -> None:
        self.types = {name: _TypeCodec(rt, tz) for name, rt in model.types.items()}
        self._cache: OrderedDict[tuple[str, str], EncodedRow] = OrderedDict()
        self._size = cache_size
        self._lock = threading.Lock()

    def remember(self, record_type: str, payloads: Iterable[tuple[Mapping[str, Any], str]]) -> None:
        """Encode and keep (payload, content hash) pairs, e.g. of records being stored."""
        codec = self.types[record_type]
        encoded = [((record_type, h), codec.encode(p)) for p, h in payloads]
        with self._lock:
            self._cache.update(encoded)
            self._trim()

    def _trim(self) -> None:
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)

    def cached(self, record_type: str, content_hash: str) -> EncodedRow | None:
        return self._cache.get((record_type, content_hash))

    def frame(self, session: Session, record_type: str, refs: Collection[records.RecordRef]) -> pd.DataFrame:
        """The encoded frame of the current versions `refs` (row id, id, hash), indexed by row id
        and ordered by business id then row id."""
        codec = self.types[record_type]
        ordered = sorted(refs, key=lambda r: (r[1], r[0]))
        rows: list[EncodedRow | None] = [self.cached(record_type, h) for _, _, h in ordered]
        missing = [ref[0] for ref, row in zip(ordered, rows, strict=True) if row is None]
        if missing:
            payloads = records.payloads_by_pk(session, pks=missing)
            fresh: dict[tuple[str, str], EncodedRow] = {}
            for i, (pk, _, h) in enumerate(ordered):
                if rows[i] is None:
                    rows[i] = fresh[(record_type, h)] = codec.encode(payloads[pk])
            with self._lock:
                self._cache.update(fresh)
                self._trim()
        return codec.frame([r for r in rows if r is not None], [pk for pk, _, _ in ordered])

    def empty(self, record_type: str) -> pd.DataFrame:
        return self.types[record_type].empty()

    def typed(self, record_type: str, encoded: pd.DataFrame) -> pd.DataFrame:
        return self.types[record_type].typed(encoded)


class DbSource:
    """The engine's related records, read from the database in `session`'s transaction.

    `key_fields` are the (type, field) pairs `record_keys` holds (registered for the rules in force);
    other look-ups scan the type and filter (exact, only slower).
    """

    def __init__(
        self, session: Session, codec: PayloadCodec, key_fields: Collection[tuple[str, str]]
    ) -> None:
        self.session = session
        self.codec = codec
        self.key_fields = frozenset(key_fields)
        self._scans: dict[str, pd.DataFrame] = {}

    def fetch(self, type: str, field: str, values: Collection[Scalar]) -> pd.DataFrame:
        if type not in self.codec.types:
            return pd.DataFrame()
        if not values:
            return self.codec.empty(type)
        if field == "id":
            refs = records.current_refs_by_id(
                self.session, record_type=type, record_ids=[str(v) for v in values]
            )
        elif (type, field) in self.key_fields:
            refs = records.current_refs_by_key(
                self.session, record_type=type, field=field, values=self._payload_values(type, field, values)
            )
        else:
            frame = self.scan(type)
            wanted = frame[field].isin(list(values)) & (frame[field + PRESENT_SUFFIX] == 1)
            return frame[wanted.to_numpy()]
        return self.codec.frame(self.session, type, refs)

    def scan(self, type: str) -> pd.DataFrame:
        if type not in self.codec.types:
            return pd.DataFrame()
        frame = self._scans.get(type)
        if frame is None:
            refs = records.current_refs_all(self.session, record_type=type)
            frame = self._scans[type] = self.codec.frame(self.session, type, refs)
        return frame

    def current(self, type: str, record_ids: Collection[str]) -> pd.DataFrame:
        """The encoded current versions of `record_ids` (those that exist)."""
        refs = records.current_refs_by_id(self.session, record_type=type, record_ids=record_ids)
        return self.codec.frame(self.session, type, refs)

    def _payload_values(self, type: str, field: str, values: Collection[Scalar]) -> list[Any]:
        """Encoded values -> the payload values `record_keys` was written from."""
        ftype = self.codec.types[type]
        kind = dict(ftype.fields)[field]
        if kind == FieldType.BOOL:
            return [bool(v) for v in values]
        if kind == FieldType.INT:
            return [int(v) for v in values]
        return [str(v) for v in values]

    def matching(
        self, type: str, field: str | None, values: Collection[Any] | None
    ) -> list[records.RecordRef]:
        """Current versions of `type` whose `field` (payload values) is one of `values`; every one
        when `field` or `values` is None."""
        if field is None or values is None:
            return records.current_refs_all(self.session, record_type=type)
        if not values:
            return []
        if field == "id":
            return records.current_refs_by_id(
                self.session, record_type=type, record_ids=[str(v) for v in values]
            )
        if (type, field) in self.key_fields:
            return records.current_refs_by_key(self.session, record_type=type, field=field, values=values)
        wanted = {records.key_text(v) for v in values}
        refs = records.current_refs_all(self.session, record_type=type)
        payloads = records.payloads_by_pk(self.session, pks=[r[0] for r in refs])
        return [r for r in refs if records.key_text(payloads[r[0]].get(field)) in wanted]
