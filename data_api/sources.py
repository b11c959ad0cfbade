"""Where listings come from and how one (group, day) slice is cut into batches.

A source hands out the raw listings of one state; `SliceBuilder` applies the slice shape of
the real course server (complete rows, one state, capped prices, rows ordered by zip code)
and cuts the slice into batches. Everything is deterministic for a given seed.
"""

import hashlib
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from data_api.generator import COLUMNS, generate_listings
from data_api.geography import STATES
from data_api.settings import DataApiSettings

# Raw rows generated per attempt when filling a synthetic slice; big enough that one or two
# attempts fill a typical slice, small enough to stay fast for tests with tiny slices.
SYNTHETIC_CHUNK_ROWS = 20_000
# Bounds the fill loop so a price cap that no generated row meets fails instead of spinning.
MAX_SYNTHETIC_CHUNKS = 200


def stable_seed(*parts: object) -> int:
    """A seed that is the same in every process (unlike the salted built-in hash)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


class SyntheticSource:
    """Listings from the built-in generator; each state has an endless supply."""

    def __init__(self, rows_per_slice: int) -> None:
        self.states = sorted(state.name for state in STATES)
        self.rows_per_slice = rows_per_slice

    def chunks(self, state: str, seed: int) -> Iterator[pd.DataFrame]:
        for chunk in itertools.count():
            yield generate_listings(state, SYNTHETIC_CHUNK_ROWS, stable_seed(seed, chunk))


class FileSource:
    """Listings read once from a Kaggle "USA Real Estate Dataset" CSV or an API-shaped JSON."""

    rows_per_slice = None  # a file's slice is every row of its state that passes the filters

    def __init__(self, path: Path) -> None:
        self.frame = read_listing_file(path)
        self.states = sorted(self.frame["state"].dropna().unique())

    def chunks(self, state: str, seed: int) -> Iterator[pd.DataFrame]:
        rows = self.frame[self.frame["state"] == state]
        order = np.random.default_rng(seed).permutation(len(rows))
        yield rows.iloc[order].reset_index(drop=True)


def read_listing_file(path: Path) -> pd.DataFrame:
    """Read a CSV with the dataset's 12 columns, or JSON as one API response or a list of them."""
    if path.suffix.lower() == ".json":
        payload = json.loads(path.read_text())
        responses = payload if isinstance(payload, list) else [payload]
        frame = pd.DataFrame([row for response in responses for row in response["data"]])
    else:
        frame = pd.read_csv(path, dtype={"status": str, "city": str, "state": str, "prev_sold_date": str})
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected {list(COLUMNS)}")
    return frame[list(COLUMNS)]


def open_source(settings: DataApiSettings) -> SyntheticSource | FileSource:
    if settings.source == "synthetic":
        return SyntheticSource(settings.batches * settings.batch_rows)
    return FileSource(Path(settings.source))


class SliceBuilder:
    """Cuts the slice of one (group, day) into batches, as the real server did."""

    def __init__(self, source: SyntheticSource | FileSource, settings: DataApiSettings) -> None:
        self.source = source
        self.settings = settings
        self._cache: dict[tuple[int, str], list[pd.DataFrame]] = {}

    def state_of_group(self, group_number: int) -> str:
        return self.source.states[(group_number - 1) % len(self.source.states)]

    def batches(self, group_number: int, day: str) -> list[pd.DataFrame]:
        key = (group_number, day)
        if key not in self._cache:
            self._cache[key] = self._cut(group_number, day)
        return self._cache[key]

    def _cut(self, group_number: int, day: str) -> list[pd.DataFrame]:
        state = self.state_of_group(group_number)
        limit = self.source.rows_per_slice
        parts, have = [], 0
        chunks = self.source.chunks(state, stable_seed(self.settings.seed, group_number, day))
        for chunk in itertools.islice(chunks, MAX_SYNTHETIC_CHUNKS):
            parts.append(self._shape(chunk))
            have += len(parts[-1])
            if limit is not None and have >= limit:
                break
        slice_rows = pd.concat(parts, ignore_index=True).iloc[:limit]
        if len(slice_rows) < self.settings.batches:
            raise ValueError(
                f"group {group_number} ({state}) has {len(slice_rows)} rows after the slice filters, "
                f"fewer than DATA_API_BATCHES={self.settings.batches}"
            )
        bounds = np.linspace(0, len(slice_rows), self.settings.batches + 1).astype(int)
        return [
            slice_rows.iloc[start:end].sort_values("zip_code", kind="stable").reset_index(drop=True)
            for start, end in itertools.pairwise(bounds)
        ]

    def _shape(self, rows: pd.DataFrame) -> pd.DataFrame:
        if self.settings.complete_rows_only:
            rows = rows.dropna()
        if self.settings.price_cap:
            rows = rows[rows["price"] <= self.settings.price_cap]
        return rows


def batch_records(batch: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: numbers as floats, missing values as null."""
    numeric = batch.select_dtypes("number").columns
    batch = batch.astype({column: "float64" for column in numeric}).astype(object)
    return batch.where(batch.notna(), None).to_dict("records")
