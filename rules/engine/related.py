"""Where the streaming engine finds the records related to the record it judges.

A source returns *encoded* frames (see `rules.engine.encode`). The index of a returned frame
identifies the row within its type: the same row always comes back with the same label, so the
engine can merge what several look-ups returned without counting a row twice (two rows with
identical content, even an identical `id`, are still two rows).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from typing import Protocol

import numpy as np
import pandas as pd

from rules.engine.encode import PRESENT_SUFFIX
from rules.lang.ir import Scalar


class RelatedSource(Protocol):
    def fetch(self, type: str, field: str, values: Collection[Scalar]) -> pd.DataFrame:
        """Encoded rows of `type` whose encoded `field` is one of `values` and present."""
        ...

    def scan(self, type: str) -> pd.DataFrame:
        """Every encoded row of `type` (for a related condition without a join key)."""
        ...


class FrameSource:
    """In-memory source over encoded frames, with lazily built per-(type, field) indexes
    (value -> row positions): a fetch costs O(matches), not a scan."""

    def __init__(self, encoded: Mapping[str, pd.DataFrame]) -> None:
        self._frames = {t: f.reset_index(drop=True) for t, f in encoded.items()}
        self._indexes: dict[tuple[str, str], dict[object, np.ndarray]] = {}
        self._lock = threading.Lock()

    def _index(self, type: str, field: str) -> dict[object, np.ndarray]:
        key = (type, field)
        index = self._indexes.get(key)
        if index is None:
            with self._lock:
                index = self._indexes.get(key)
                if index is None:
                    frame = self._frames[type]
                    present = frame[field + PRESENT_SUFFIX].to_numpy() == 1
                    positions = np.flatnonzero(present)
                    values = frame[field].to_numpy()[positions]
                    groups = pd.Series(positions).groupby(values, sort=False).indices
                    index = {value: positions[rows] for value, rows in groups.items()}
                    self._indexes[key] = index
        return index

    def fetch(self, type: str, field: str, values: Collection[Scalar]) -> pd.DataFrame:
        frame = self._frames.get(type)
        if frame is None:
            return pd.DataFrame()
        if len(frame) == 0 or not values:
            return frame.iloc[:0]
        index = self._index(type, field)
        hits = [index[v] for v in values if v in index]
        if not hits:
            return frame.iloc[:0]
        positions = np.unique(np.concatenate(hits))
        return frame.iloc[positions]

    def scan(self, type: str) -> pd.DataFrame:
        return self._frames.get(type, pd.DataFrame())
