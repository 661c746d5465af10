"""Running the data-quality suites on typed frames with great-expectations (GX).

Parsing (`checks.suites`) is separate from running: a `Suites` object is loaded and validated
once; `run_checks` takes it with the frames of one evaluation and returns a `CheckRun`, where
every expectation has an outcome (passed | violated | not_evaluated | error), its counts and the
failing rows linked to their record ids, and `unverifiable` maps each failing record to the
fields that failed.

How GX is used, and the pitfalls handled:

- `great_expectations` is imported inside `run_checks` (first call: seconds), never when
  `checks` or `checks.suites` is imported; `warm_up()` pays it ahead of time, off the request path.
- Each run builds its own ephemeral context, and the GX part of every run holds one process-wide
  lock: GX keeps the current context in a global (`project_manager`) that validators and suites
  consult, so two runs interleaving on threads could read each other's context. The frames are
  prepared and the results mapped outside the lock.
- Progress bars are off in the context's configuration (`progress_bars.globally: false`), so GX
  prints no tqdm bar; GX's loggers get a NullHandler so nothing reaches stderr through logging's
  last-resort handler when the application has not configured logging.
- One batch per record type: the frame (only the columns the suite reads, reindexed 0..n-1 so
  GX's unexpected indexes are row positions; pandas copy-on-write makes both free) is passed
  once and the whole suite is validated on it, so GX fingerprints (hashes) each narrow frame
  twice per run (`get_batch`, then `validate` reloads it: ~0.5 s in all at 1M records) instead
  of once per expectation, and copies nothing per expectation.
- Referential integrity: the value set is computed here from the other frame, and only its
  complement goes to GX (see `_resolve_kwargs`): GX re-serialises its kwargs dozens of times
  per expectation, which with every id of a large frame took ~90 s at 1M records. A referenced
  table that is absent makes the expectation not_evaluated rather than failing every row.
- pandas 3 deprecation warnings raised inside GX are filtered for the GX section only.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from checks.suites import AsOf, Expectation, Suite, Suites, TimeLiteral, ValuesOf, class_name
from checks.verdicts import UnverifiableVerdict, fields_read, split_verdicts
from rules.records import DECIMAL_SCALE, FieldType, RecordModel, Text

__all__ = [
    "CheckRun",
    "DataQualityFinding",
    "FailingRow",
    "Outcome",
    "UnverifiableVerdict",
    "fields_read",
    "run_checks",
    "split_verdicts",
    "warm_up",
]

Status = Literal["passed", "violated", "not_evaluated", "error"]
STATUSES: tuple[Status, ...] = ("passed", "violated", "not_evaluated", "error")

# GX result format: every failing row's index; no query string, no sample lists we do not read.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "return_unexpected_index_query": False,
    "partial_unexpected_count": 0,
}
META_KEY = "zhidu_id"
SECONDS_PER_DAY = 86_400

_GX_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class FailingRow:
    """One row that fails an expectation: its position in the frame given to `run_checks`
    (0-based), its record id (None when the id itself is missing) and the values the message
    shows."""

    row: int
    record_id: str | None
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    expectation: Expectation
    status: Status
    element_count: int = 0  # rows checked (after `where`)
    unexpected_count: int = 0  # rows failing
    failing: tuple[FailingRow, ...] = ()
    detail: str | None = None  # why not evaluated, or the error

    @property
    def id(self) -> str:
        return self.expectation.id

    @property
    def record_type(self) -> str:
        return self.expectation.record_type

    @property
    def record_ids(self) -> set[str]:
        return {r.record_id for r in self.failing if r.record_id is not None}

    def message(self, row: FailingRow, lang: str = "zh", *, suites: Suites | None = None) -> str:
        """The expectation's message for one failing row, placeholders filled."""
        template = self.expectation.message.get(lang)
        values: dict[str, Any] = {"id": row.record_id or "", "row": row.row + 1, "value": ""}
        if suites is not None and self.record_type in suites:
            values.update({k: _param_text(p.value) for k, p in suites[self.record_type].parameters.items()})
        values.update(row.values)
        try:
            return template.format_map(values)
        except (KeyError, IndexError, ValueError):
            return template


@dataclass(frozen=True, slots=True)
class DataQualityFinding:
    """One record failing one expectation: what the service stores and reports."""

    expectation: str
    record_type: str
    record_id: str | None
    row: int
    fields: tuple[str, ...]
    severity: str
    message: Text
    clauses: tuple[str, ...]


@dataclass(frozen=True)
class CheckRun:
    as_of: pd.Timestamp
    outcomes: tuple[Outcome, ...]
    unverifiable: dict[tuple[str, str], set[str]]  # (record_type, record_id) -> failing fields
    seconds: float
    gx_seconds: float  # of which inside GX (under the lock)
    suites: Suites | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Expectations by status."""
        out: dict[str, int] = dict.fromkeys(STATUSES, 0)
        for o in self.outcomes:
            out[o.status] += 1
        return out

    @property
    def ok(self) -> bool:
        return all(o.status == "passed" for o in self.outcomes)

    def outcome(self, expectation_id: str) -> Outcome:
        for o in self.outcomes:
            if o.id == expectation_id:
                return o
        raise KeyError(expectation_id)

    def by_status(self, status: Status) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    def failures_for(self, record_type: str, record_id: str) -> list[tuple[Outcome, FailingRow]]:
        return [
            (o, r)
            for o in self.outcomes
            if o.record_type == record_type
            for r in o.failing
            if r.record_id == record_id
        ]

    def findings(self) -> list[DataQualityFinding]:
        """Every failing row of every violated expectation, messages filled in both languages."""
        out: list[DataQualityFinding] = []
        for o in self.outcomes:
            e = o.expectation
            for r in o.failing:
                out.append(
                    DataQualityFinding(
                        e.id,
                        e.record_type,
                        r.record_id,
                        r.row,
                        e.fields,
                        e.severity,
                        Text(o.message(r, "zh", suites=self.suites), o.message(r, "en", suites=self.suites)),
                        e.clauses,
                    )
                )
        return out


# --- running ---------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """One record type's batch: the frame GX sees and the expectations with resolved kwargs."""

    record_type: str
    frame: pd.DataFrame
    items: list[tuple[Expectation, str, dict[str, Any]]]  # GX type and kwargs of each


@dataclass
class _Raw:
    success: bool
    element_count: int = 0
    unexpected_count: int = 0
    index: list[Any] = field(default_factory=list)
    error: str | None = None


def warm_up() -> None:
    """Import great_expectations now (seconds), e.g. in a worker at start-up, so the first
    inspection does not pay for it."""
    _import_gx()


def run_checks(
    suites: Suites,
    frames: Mapping[str, pd.DataFrame],
    *,
    as_of: pd.Timestamp,
    tz: ZoneInfo | str,
) -> CheckRun:
    """Run every suite on the typed frames (`rules.readers` conventions) as of `as_of` (without
    an offset it is in `tz`, the company's time zone). A suite whose record type has no frame is
    not evaluated; nothing raises for bad data: failures are outcomes."""
    started = time.perf_counter()
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    as_of_utc = _aware(pd.Timestamp(as_of), zone)
    outcomes: dict[str, Outcome] = {}
    plans: list[_Plan] = []
    for suite in suites:
        frame = frames.get(suite.record_type)
        if frame is None:
            for e in suite.expectations:
                outcomes[e.id] = Outcome(
                    e, "not_evaluated", detail=f"no {suite.record_type} data in this run"
                )
            continue
        plan = _plan(suite, frame, frames, as_of_utc, zone, outcomes)
        if plan.items:
            plans.append(plan)

    gx_started = time.perf_counter()
    raw = _validate(plans)
    gx_seconds = time.perf_counter() - gx_started

    for plan in plans:
        for e, _, _ in plan.items:
            outcomes[e.id] = _outcome(e, raw.get(e.id), plan.frame, suites.model, zone)
    ordered = tuple(outcomes[e.id] for e in suites.expectations if e.id in outcomes)
    unverifiable: dict[tuple[str, str], set[str]] = {}
    for o in ordered:
        if o.status != "violated" or not o.expectation.marks_unverifiable:
            continue
        for r in o.failing:
            if r.record_id is not None:
                unverifiable.setdefault((o.record_type, r.record_id), set()).update(o.expectation.fields)
    return CheckRun(
        as_of=as_of_utc,
        outcomes=ordered,
        unverifiable=unverifiable,
        seconds=time.perf_counter() - started,
        gx_seconds=gx_seconds,
        suites=suites,
    )


def _aware(ts: pd.Timestamp, zone: ZoneInfo) -> pd.Timestamp:
    if ts.tzinfo is None:
        ts = ts.tz_localize(zone)
    return ts.tz_convert("UTC")


def _plan(
    suite: Suite,
    frame: pd.DataFrame,
    frames: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    zone: ZoneInfo,
    outcomes: dict[str, Outcome],
) -> _Plan:
    """The batch frame of one type, shared by all its expectations: only the columns the suite
    reads (plus id and the message's fields), positions as index, derived columns added.
    With copy-on-write none of this copies the data."""
    present = set(frame.columns)
    wanted: dict[str, None] = {"id": None} if "id" in present else {}
    items: list[tuple[Expectation, str, dict[str, Any]]] = []
    derived_needed: dict[str, None] = {}
    for e in suite.expectations:
        columns = [*e.columns, *(f for f, _ in e.where)]
        sources = [s for c in columns if c in suite.derived for s in suite.derived[c].sources]
        missing = [c for c in [*columns, *sources] if c not in suite.derived and c not in present]
        if missing:
            outcomes[e.id] = Outcome(
                e, "error", detail=f"the {e.record_type} data has no column {', '.join(sorted(set(missing)))}"
            )
            continue
        absent = sorted({r.type for r in e.references if r.type not in frames})
        if absent:
            outcomes[e.id] = Outcome(
                e, "not_evaluated", detail=f"the referenced {', '.join(absent)} data is not in this run"
            )
            continue
        unknown = [f"{r.type}.{r.field}" for r in e.references if r.field not in frames[r.type].columns]
        if unknown:
            outcomes[e.id] = Outcome(
                e, "error", detail=f"the referenced data has no column {', '.join(unknown)}"
            )
            continue
        try:
            gx_type, kwargs = _resolve_kwargs(e, frame, frames, as_of, zone)
        except (TypeError, ValueError) as exc:  # values this run cannot compare
            outcomes[e.id] = Outcome(e, "error", detail=f"{type(exc).__name__}: {exc}")
            continue
        for c in columns:
            if c in suite.derived:
                derived_needed[c] = None
            else:
                wanted[c] = None
        for name in e.placeholders:
            if name in present:
                wanted[name] = None
        items.append((e, gx_type, kwargs))
    batch = frame[list(wanted)].reset_index(drop=True)
    if derived_needed:
        extra: dict[str, Any] = {}
        for name in derived_needed:
            d = suite.derived[name]
            delta = frame[d.end] - frame[d.start]
            extra[name] = (
                delta.dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan) / SECONDS_PER_DAY
            )
        batch = batch.assign(**extra)
    return _Plan(suite.record_type, batch, items)


def _resolve_kwargs(
    e: Expectation,
    frame: pd.DataFrame,
    frames: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    zone: ZoneInfo,
) -> tuple[str, dict[str, Any]]:
    """The GX expectation type and kwargs of one expectation for this run.

    A `value_set: {ref: ...}` (referential integrity) is turned into its complement: GX's
    `expect_column_values_to_not_be_in_set` with the *dangling* values, those of the column
    (in the rows `where` selects) that the referenced frame does not have. Same rows fail, but
    GX validates and serialises its kwargs (pydantic) dozens of times per expectation, which
    with a set of every id of a large frame (150k claim ids at 1M records) cost ~90 s; the
    dangling values are usually none."""
    gx_type = e.type
    out: dict[str, Any] = {}
    for key, value in e.kwargs.items():
        if isinstance(value, AsOf):
            out[key] = as_of + pd.Timedelta(days=value.days)
        elif isinstance(value, TimeLiteral):
            out[key] = _aware(pd.Timestamp(value.text), zone)
        elif isinstance(value, ValuesOf):
            column = frame[str(e.kwargs["column"])]
            for name, wanted in e.where:
                column = column[(frame[name] == wanted).fillna(False).to_numpy(dtype=bool)]
            # Python sets: pandas' isin on arrow strings builds a scalar per value of the set.
            known = set(frames[value.type][value.field].dropna().unique().tolist())
            present = column.dropna().unique().tolist()
            if e.type == "expect_column_values_to_be_in_set":
                gx_type = "expect_column_values_to_not_be_in_set"
                out[key] = [v for v in present if v not in known]
            else:  # not_in_set a reference: the values that do exist
                out[key] = [v for v in present if v in known]
        else:
            out[key] = value
    return gx_type, out


def _import_gx() -> Any:
    import great_expectations as gx

    for name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())
    return gx


def _context(gx: Any) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def gx_expectation(gx: Any, e: Expectation, gx_type: str, kwargs: Mapping[str, Any]) -> Any:
    """The GX expectation object of one zhidu expectation with its run-time type and kwargs."""
    from great_expectations.expectations.row_conditions import Column

    cls = getattr(gx.expectations, class_name(gx_type))
    extra: dict[str, Any] = {}
    if e.where:
        condition: Any = None
        for name, value in e.where:
            part = Column(name) == value
            condition = part if condition is None else condition & part
        extra["row_condition"] = condition
    # `description` carries the id too: GX drops an expectation equal to one already in the suite
    # (meta aside), which two zhidu expectations may become once their run-time values are known.
    return cls(**kwargs, **extra, description=e.id, meta={META_KEY: e.id}, catch_exceptions=True)


def _validate(plans: list[_Plan]) -> dict[str, _Raw]:
    """Every plan through GX: one ephemeral context for the run, one batch per record type,
    the whole suite validated on it. Serialised by `_GX_LOCK` (see the module docstring)."""
    raw: dict[str, _Raw] = {}
    if not plans:
        return raw
    with _GX_LOCK, warnings.catch_warnings():
        # GX's own warnings, and the pandas 3 deprecation its pair expectations trigger on
        # tz-aware columns (values compared in UTC all the same), say nothing about the data and
        # must not reach the service's stderr. Only these are filtered, for the GX section only.
        warnings.filterwarnings("ignore", module=r"great_expectations(\.|$)")
        warnings.filterwarnings("ignore", message=r"Series\.values returning an ndarray that drops timezone")
        gx = _import_gx()
        context = _context(gx)
        source = context.data_sources.add_pandas(name="zhidu")
        try:
            for plan in plans:
                asset = source.add_dataframe_asset(name=plan.record_type)
                definition = asset.add_batch_definition_whole_dataframe(name="all")
                suite = gx.ExpectationSuite(name=f"zhidu-{plan.record_type}")
                for e, gx_type, kwargs in plan.items:
                    try:
                        suite.add_expectation(gx_expectation(gx, e, gx_type, kwargs))
                    except Exception as exc:  # GX rejects the arguments: this expectation errs
                        raw[e.id] = _Raw(False, error=f"{type(exc).__name__}: {exc}")
                if not suite.expectations:
                    continue
                try:
                    batch = definition.get_batch(batch_parameters={"dataframe": plan.frame})
                    result = batch.validate(suite, result_format=RESULT_FORMAT)
                except Exception as exc:  # the whole batch failed: every expectation of it errs
                    for e, _, _ in plan.items:
                        raw.setdefault(e.id, _Raw(False, error=f"{type(exc).__name__}: {exc}"))
                    continue
                for r in result.results:
                    raw[str(r.expectation_config.meta[META_KEY])] = _raw(r)
        finally:
            context.data_sources.delete("zhidu")  # drop the context's references to the frames
    return raw


def _raw(r: Any) -> _Raw:
    info = r.exception_info or {}
    error: str | None = None
    if info.get("raised_exception"):
        error = str(info.get("exception_message"))
    else:  # GX keys metric failures by metric id
        for value in info.values():
            if isinstance(value, dict) and value.get("raised_exception"):
                error = str(value.get("exception_message"))
                break
    result = r.result or {}
    return _Raw(
        success=bool(r.success),
        element_count=int(result.get("element_count") or 0),
        unexpected_count=int(result.get("unexpected_count") or 0),
        index=list(result.get("unexpected_index_list") or []),
        error=error,
    )


def _outcome(
    e: Expectation, raw: _Raw | None, frame: pd.DataFrame, model: RecordModel, zone: ZoneInfo
) -> Outcome:
    if raw is None:
        return Outcome(e, "error", detail="great_expectations returned no result for this expectation")
    if raw.error is not None:
        return Outcome(e, "error", detail=raw.error)
    if raw.success and not raw.index:
        return Outcome(e, "passed", raw.element_count, raw.unexpected_count)
    positions = np.asarray(sorted({int(i) for i in raw.index}), dtype=np.int64)
    ids = frame["id"].to_numpy()[positions] if "id" in frame.columns else np.full(len(positions), None)
    shown = _shown_values(e, frame, positions, model, zone)
    failing = tuple(
        FailingRow(int(p), None if pd.isna(i) else str(i), {k: v[n] for k, v in shown.items()})
        for n, (p, i) in enumerate(zip(positions, ids, strict=True))
    )
    # `mostly` below 1 lets an expectation pass with some failing rows; they are still listed.
    return Outcome(
        e, "passed" if raw.success else "violated", raw.element_count, raw.unexpected_count, failing
    )


def _shown_values(
    e: Expectation, frame: pd.DataFrame, positions: np.ndarray, model: RecordModel, zone: ZoneInfo
) -> dict[str, list[str]]:
    """Display texts, per failing row, of the fields its message may show and of `value` (the
    first column the expectation checks)."""
    rt = model.types[e.record_type]
    names = [n for n in e.placeholders if n in frame.columns and n != "id"]
    out: dict[str, list[str]] = {}
    for name in names:
        spec = rt.fields.get(name)
        out[name] = _texts(frame[name].take(positions), spec.type if spec else None, zone)
    first = e.columns[0] if e.columns else None
    if first is not None and first in frame.columns:
        spec = rt.fields.get(first)
        out["value"] = _texts(frame[first].take(positions), spec.type if spec else None, zone)
    return out


def _texts(values: pd.Series, ftype: FieldType | None, zone: ZoneInfo) -> list[str]:
    missing = values.isna().to_numpy(dtype=bool)
    if ftype is FieldType.DECIMAL:
        texts = [f"{v / DECIMAL_SCALE:.2f}" for v in values.fillna(0).astype("int64").tolist()]
    elif ftype in (FieldType.TIMESTAMP, FieldType.DATE):
        fmt = "%Y-%m-%d %H:%M" if ftype is FieldType.TIMESTAMP else "%Y-%m-%d"
        texts = values.dt.tz_convert(zone).dt.strftime(fmt).fillna("").tolist()
    elif values.dtype.kind == "f":
        texts = [f"{v:.1f}" for v in values.tolist()]
    else:
        texts = [str(v) for v in values.tolist()]
    return ["" if m else t for t, m in zip(texts, missing, strict=True)]


def _param_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
