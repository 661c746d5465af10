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
        self._indexes: dict[tuple[str, str], ValueIndex] = {}
        self._lock = threading.Lock()

    def _index(self, type: str, field: str) -> ValueIndex:
        key = (type, field)
        index = self._indexes.get(key)
        if index is None:
            with self._lock:
                index = self._indexes.get(key)
                if index is None:
                    index = self._indexes[key] = ValueIndex.build(self._frames[type], field)
        return index

    def fetch(self, type: str, field: str, values: Collection[Scalar]) -> pd.DataFrame:
        frame = self._frames.get(type)
        if frame is None:
            return pd.DataFrame()
        if len(frame) == 0 or not values:
            return frame.iloc[:0]
        return frame.iloc[self._index(type, field).positions(values)]

    def scan(self, type: str) -> pd.DataFrame:
        return self._frames.get(type, pd.DataFrame())


class ValueIndex:
    """Row positions of the present values of one field of a frame, grouped by value."""

    def __init__(self, codes: dict[object, int], order: np.ndarray, starts: np.ndarray) -> None:
        self.codes = codes  # value -> its group
        self.order = order  # row positions, grouped
        self.starts = starts  # group g is order[starts[g]:starts[g + 1]]

    @classmethod
    def build(cls, frame: pd.DataFrame, field: str) -> ValueIndex:
        present = np.flatnonzero(frame[field + PRESENT_SUFFIX].to_numpy() == 1)
        codes, uniques = pd.factorize(frame[field].to_numpy()[present])
        order = present[np.argsort(codes, kind="stable")]
        starts = np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=len(uniques)))))
        return cls(dict(zip(uniques.tolist(), range(len(uniques)), strict=True)), order, starts)

    def positions(self, values: Collection[Scalar]) -> np.ndarray:
        """Sorted positions of the rows holding one of `values` (each row once)."""
        codes = self.codes
        groups = np.fromiter({codes[v] for v in values if v in codes}, dtype=np.int64)
        if len(groups) == 0:
            return np.zeros(0, dtype=np.int64)
        starts, stops = self.starts[groups], self.starts[groups + 1]
        sizes = stops - starts
        # positions into `order` of every selected group, without a Python loop over groups
        offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(sizes)[:-1])), sizes)
        return np.sort(self.order[np.arange(int(sizes.sum())) + offsets])
