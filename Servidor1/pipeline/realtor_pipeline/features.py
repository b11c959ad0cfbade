"""Model features from raw listing columns: one vectorised sklearn transformer, cheap enough to serve.

`ListingFeatures` turns the raw columns of listings (a DataFrame, or any mapping of column name
to 1-D values, such as a dict of lists) into a float matrix:
- bed, bath, log acre_lot, log house_size and years since the previous sale, with missing values
  imputed by the training medians, plus one missing-value indicator per input;
- status one-hot over the statuses seen in training (an unseen status is all zeros);
- state, city and zip code as smoothed mean targets, each shrunk towards the broader level
  (zip → city → state → all rows), so an unseen zip falls back to its city, an unseen city to
  its state, and an unseen state to the overall mean.

Years since the previous sale count from `reference_date_`, fixed at fit time (the latest sale
in the training rows unless given), never from today, so a model predicts the same tomorrow.

It must never read `price` (a `price` column is ignored, so requests may carry one or not) or the
listing identifiers `brokered_by` and `street`, and it must never use per-call pandas machinery
(ColumnTransformer, encoders, `to_datetime` on ISO dates): serving calls it on one row with a few
milliseconds to spare. Learned state is plain lists, dicts and arrays, so skops can save it.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

SIZE_INPUTS = ("bed", "bath", "acre_lot", "house_size")
DATE_INPUT = "prev_sold_date"
LOCATION_LEVELS = ("state", "city", "zip_code")  # broad to narrow; each is shrunk towards the one before
INPUT_COLUMNS = ("status", *SIZE_INPUTS, *LOCATION_LEVELS, DATE_INPUT)
IMPUTED_FEATURES = ("bed", "bath", "log_acre_lot", "log_house_size", "years_since_prev_sale")
DAYS_PER_YEAR = 365.25
# Used only when no training row has a previous sale: then the feature is constant anyway.
FALLBACK_REFERENCE_DATE = "2000-01-01"

Listings = pd.DataFrame | Mapping[str, Any]


class ListingFeatures(TransformerMixin, BaseEstimator):
    """Raw listing columns → float matrix; see the module docstring for the columns.

    `smoothing` is how many rows of the broader level a location's own mean is blended with;
    `cv_folds` > 1 makes `fit_transform` (what a Pipeline calls when fitting) encode each row's
    location from the other folds only, so a later model does not learn from its own target.
    """

    def __init__(
        self,
        smoothing: float = 10.0,
        cv_folds: int = 5,
        reference_date: str | None = None,
        random_state: int = 0,
    ) -> None:
        self.smoothing = smoothing
        self.cv_folds = cv_folds
        self.reference_date = reference_date
        self.random_state = random_state

    def fit(self, X: Listings, y: Any) -> "ListingFeatures":
        inputs = _read_inputs(X)
        self._fit(inputs, _target(y, inputs))
        return self

    def fit_transform(self, X: Listings, y: Any = None, **fit_params: Any) -> np.ndarray:
        inputs = _read_inputs(X)
        target = _target(y, inputs)
        self._fit(inputs, target)
        if self.cv_folds <= 1:
            return self.transform(X)
        fold_of_row = np.random.default_rng(self.random_state).permutation(len(target)) % self.cv_folds
        locations = np.empty((len(target), len(LOCATION_LEVELS)))
        for fold in range(self.cv_folds):
            held_out = fold_of_row == fold
            stats = _location_stats(_subset(inputs, ~held_out), target[~held_out])
            prior_mean = float(target[~held_out].mean())
            locations[held_out] = self._encode_locations(_subset(inputs, held_out), stats, prior_mean)
        return self._matrix(inputs, locations)

    def transform(self, X: Listings) -> np.ndarray:
        check_is_fitted(self, "location_stats_")
        inputs = _read_inputs(X)
        return self._matrix(inputs, self._encode_locations(inputs, self.location_stats_, self.global_mean_))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # the location encodings learn from the target
        return tags

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "statuses_")
        return np.array(
            [
                *IMPUTED_FEATURES,
                *(f"{name}_missing" for name in (*SIZE_INPUTS, DATE_INPUT)),
                *(f"status_{status}" for status in self.statuses_),
                *(f"{level}_mean_target" for level in LOCATION_LEVELS),
            ],
            dtype=object,
        )

    def _fit(self, inputs: dict[str, np.ndarray], target: np.ndarray) -> None:
        dates = inputs[DATE_INPUT][~np.isnat(inputs[DATE_INPUT])]
        if self.reference_date is not None:
            self.reference_date_ = str(np.datetime64(self.reference_date, "D"))
        else:
            self.reference_date_ = str(dates.max()) if len(dates) else FALLBACK_REFERENCE_DATE
        raw = self._imputable(inputs)
        self.medians_ = np.nanmedian(np.where(np.isnan(raw).all(axis=0), 0.0, raw), axis=0).tolist()
        self.statuses_ = sorted(set(inputs["status"][~pd.isna(inputs["status"])].tolist()))
        self.location_stats_ = _location_stats(inputs, target)
        self.global_mean_ = float(target.mean())

    def _imputable(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The features that get imputed, with NaN where an input is missing (or a size is negative)."""
        dates = inputs[DATE_INPUT]
        days_since_sale = (np.datetime64(self.reference_date_, "D") - dates).astype(float)
        days_since_sale[np.isnat(dates)] = np.nan
        return np.column_stack(
            [
                inputs["bed"],
                inputs["bath"],
                np.log1p(_non_negative(inputs["acre_lot"])),
                np.log1p(_non_negative(inputs["house_size"])),
                days_since_sale / DAYS_PER_YEAR,
            ]
        )

    def _matrix(self, inputs: dict[str, np.ndarray], locations: np.ndarray) -> np.ndarray:
        raw = self._imputable(inputs)
        missing = np.isnan(raw)
        imputed = np.where(missing, np.asarray(self.medians_), raw)
        status_one_hot = inputs["status"][:, None] == np.array(self.statuses_, dtype=object)[None, :]
        return np.hstack([imputed, missing, status_one_hot, locations]).astype(np.float64)

    def _encode_locations(
        self, inputs: dict[str, np.ndarray], stats: dict[str, dict], prior_mean: float
    ) -> np.ndarray:
        """Each level's mean target, blended with the broader level's by `smoothing` rows."""
        n_rows = len(inputs["status"])
        encoded = np.empty((n_rows, len(LOCATION_LEVELS)))
        prior = np.full(n_rows, prior_mean)
        for position, (level, keys) in enumerate(_location_keys(inputs).items()):
            sums_counts = np.array([stats[level].get(key, (0.0, 0.0)) for key in keys], dtype=float)
            sums_counts = sums_counts.reshape(-1, 2)  # also when there are no rows
            prior = (sums_counts[:, 0] + self.smoothing * prior) / (sums_counts[:, 1] + self.smoothing)
            encoded[:, position] = prior
        return encoded


def _read_inputs(X: Listings) -> dict[str, np.ndarray]:
    """The columns the features need, as numpy arrays: floats, objects and days."""
    absent = [column for column in INPUT_COLUMNS if column not in X]
    if absent:
        raise ValueError(f"listings lack columns {absent}; expected at least {list(INPUT_COLUMNS)}")
    inputs = {}
    for column in (*SIZE_INPUTS, "zip_code"):
        try:
            inputs[column] = _column(X, column, float)
        except (TypeError, ValueError) as error:
            raise ValueError(f"column {column!r} must hold numbers or nulls: {error}") from None
    for column in ("status", "state", "city"):
        inputs[column] = _column(X, column, object)
    inputs[DATE_INPUT] = _as_days(_column(X, DATE_INPUT, object))
    return inputs


def _column(X: Listings, name: str, dtype: type) -> np.ndarray:
    values = X[name]
    if isinstance(values, pd.Series):  # its own to_numpy is 2-3x faster than np.asarray on a Series
        return values.to_numpy(dtype=dtype, na_value=np.nan if dtype is float else None)
    return np.asarray(values, dtype=dtype).reshape(-1)


def _as_days(values: np.ndarray) -> np.ndarray:
    """Dates (ISO strings, date objects or timestamps; nulls allowed) as datetime64[D].

    numpy parses ISO dates a hundred times faster than `pd.to_datetime` on one value; anything
    else (another format, a bad string) goes through pandas, where it becomes missing.
    """
    values = np.where(pd.isna(values), None, values)
    try:
        return values.astype("datetime64[D]")
    except (TypeError, ValueError):
        return pd.to_datetime(pd.Series(values), errors="coerce", format="mixed").to_numpy("datetime64[D]")


def _non_negative(values: np.ndarray) -> np.ndarray:
    return np.where(values >= 0, values, np.nan)


def _target(y: Any, inputs: dict[str, np.ndarray]) -> np.ndarray:
    if y is None:
        raise ValueError("ListingFeatures needs the target (price) to fit its location encodings")
    target = np.asarray(y, dtype=float).reshape(-1)
    if len(target) != len(inputs["status"]):
        raise ValueError(f"target has {len(target)} values for {len(inputs['status'])} listings")
    return target


def _subset(inputs: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {column: values[rows] for column, values in inputs.items()}


def _location_keys(inputs: dict[str, np.ndarray]) -> dict[str, list]:
    """Per level, the key of each row's location, or None when it is unknown.

    A city is keyed with its state ("Portland, Maine" is not "Portland, Oregon").
    """
    state, city, zip_code = inputs["state"], inputs["city"], inputs["zip_code"]
    state_known = ~pd.isna(state)
    city_known = state_known & ~pd.isna(city)
    return {
        "state": [s if known else None for s, known in zip(state, state_known, strict=True)],
        "city": [f"{c}, {s}" if known else None for c, s, known in zip(city, state, city_known, strict=True)],
        "zip_code": [z if z == z else None for z in zip_code.tolist()],  # z != z only for NaN
    }


def _location_stats(inputs: dict[str, np.ndarray], target: np.ndarray) -> dict[str, dict]:
    """Per level, key → (sum of target, number of rows), over rows whose key is known."""
    stats = {}
    for level, keys in _location_keys(inputs).items():
        frame = pd.DataFrame({"key": keys, "target": target}).dropna(subset=["key"])
        grouped = frame.groupby("key", sort=True)["target"].agg(["sum", "count"])
        sums, counts = grouped["sum"].tolist(), grouped["count"].astype(float).tolist()
        stats[level] = dict(zip(grouped.index.tolist(), zip(sums, counts, strict=True), strict=True))
    return stats
