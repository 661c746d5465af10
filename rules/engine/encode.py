"""Encode typed record frames into the engines' value space (see `rules.lang.ir`).

One encoding serves both engines, so a comparison means the same thing in pandas and in
durable-rules: timestamps -> int epoch ms, decimals -> int hundredths, bools -> 0/1,
missing -> sentinel plus a `<field>__p` presence flag.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rules.records import FieldType, RecordType

PRESENT_SUFFIX = "__p"
_NS_PER_MS = 1_000_000


def presence(field: str) -> str:
    return field + PRESENT_SUFFIX


def encode_frame(rt: RecordType, typed: pd.DataFrame) -> pd.DataFrame:
    """Typed frame (as produced by validation) -> encoded frame with presence flags."""
    out: dict[str, Any] = {}
    values: Any
    n = len(typed)
    for name, spec in rt.fields.items():
        col = typed[name] if name in typed.columns else pd.Series([pd.NA] * n, index=typed.index)
        present = col.notna().to_numpy()
        if spec.type == FieldType.STRING and isinstance(col.dtype, pd.StringDtype) and n > 0:
            # Stays in Arrow memory (shared with the typed frame when nothing is missing); going
            # through Python objects would cost one str per cell, and the frame would convert back.
            # (An empty column stays the object column it always was: pandas infers no type there.)
            values = (col.fillna("") if not present.all() else col).array
        elif spec.type == FieldType.STRING:
            values = col.astype(object).where(present, "").to_numpy(dtype=object)
        elif spec.type in (FieldType.INT, FieldType.DECIMAL):
            values = pd.to_numeric(col).astype("Int64").fillna(0).to_numpy(dtype=np.int64)
        elif spec.type == FieldType.BOOL:
            values = col.astype("boolean").fillna(False).to_numpy(dtype=np.int64)
        else:
            values = encode_times(col)
        out[name] = values
        out[presence(name)] = present.astype(np.int8)  # a flag: int64 would be most of the frame
    return pd.DataFrame(out, index=typed.index)


def encode_times(col: pd.Series) -> np.ndarray:
    """datetime64[ns, UTC] -> int64 epoch milliseconds (missing -> 0)."""
    if not isinstance(col.dtype, pd.DatetimeTZDtype):
        col = pd.to_datetime(col, utc=True)
    as_ns = col.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT"))
    ints = as_ns.astype(np.int64)
    missing = np.isnat(as_ns)
    ms = ints // _NS_PER_MS
    ms[missing] = 0
    return ms


def timestamp_ms(value: pd.Timestamp) -> int:
    ts = value if value.tzinfo is not None else value.tz_localize("UTC")
    return int(ts.value // _NS_PER_MS)
