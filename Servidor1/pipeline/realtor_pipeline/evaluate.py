"""How models are scored, and the two seed recipes every model must beat.

`regression_metrics` is the one definition of the scores (percentages are fractions: 0.12 is
12%). The seed recipes are the naive models the project started from, kept as baselines:
- recipe A: Ridge on raw price from bed, bath, acre_lot, house_size, days since the previous
  sale and status dummies (missing inputs filled with the training medians);
- recipe B: GradientBoostingRegressor on raw price from bed, bath, acre_lot, zip_code and
  house_size, trained on the rows where none of those is missing.
Both score every test row: recipe B fills a test row's missing inputs with its training medians,
since it has no other way to predict one. Nothing here may tune on test rows.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

TARGET = "price"
RECIPE_A_NUMBERS = ("bed", "bath", "acre_lot", "house_size")
RECIPE_B_INPUTS = ("bed", "bath", "acre_lot", "zip_code", "house_size")
RANDOM_STATE = 0


def regression_metrics(y_true: np.ndarray | pd.Series, y_pred: np.ndarray | pd.Series) -> dict[str, float]:
    """rmse, mae, mape and mdape (mean and median absolute error over the true price), r2."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"need as many predictions as prices, got {y_pred.shape} for {y_true.shape}")
    if (y_true <= 0).any():
        raise ValueError("percentage errors need positive prices; drop rows with price <= 0 first")
    errors = y_pred - y_true
    relative = np.abs(errors) / y_true
    total = ((y_true - y_true.mean()) ** 2).sum()
    return {
        "rmse": float(np.sqrt((errors**2).mean())),
        "mae": float(np.abs(errors).mean()),
        "mape": float(relative.mean()),
        "mdape": float(np.median(relative)),
        "r2": float(1 - (errors**2).sum() / total) if total > 0 else float("nan"),
    }


@dataclass(frozen=True)
class Baseline:
    """A seed recipe fitted on training rows: how it turns raw rows into its inputs, and its model."""

    name: str
    inputs_of: Callable[[pd.DataFrame], pd.DataFrame]
    model: object
    train_seconds: float

    def predict(self, listings: pd.DataFrame) -> np.ndarray:
        return self.model.predict(self.inputs_of(listings))


def fit_recipe_a(train: pd.DataFrame) -> Baseline:
    started = time.perf_counter()
    sale_dates = pd.to_datetime(train["prev_sold_date"], errors="coerce", format="mixed")
    reference = sale_dates.max()
    statuses = sorted(train["status"].dropna().unique())

    def raw_inputs(listings: pd.DataFrame) -> pd.DataFrame:
        sold = pd.to_datetime(listings["prev_sold_date"], errors="coerce", format="mixed")
        numbers = (
            listings[list(RECIPE_A_NUMBERS)].astype(float).assign(days_since_sale=(reference - sold).dt.days)
        )
        dummies = {f"status_{status}": (listings["status"] == status).astype(float) for status in statuses}
        return numbers.assign(**dummies)

    medians = raw_inputs(train).median()

    def inputs_of(listings: pd.DataFrame) -> pd.DataFrame:
        return raw_inputs(listings).fillna(medians)

    model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(inputs_of(train), train[TARGET])
    return Baseline("recipe A (Ridge)", inputs_of, model, time.perf_counter() - started)


def fit_recipe_b(train: pd.DataFrame) -> Baseline:
    started = time.perf_counter()
    complete = train.dropna(subset=[*RECIPE_B_INPUTS, TARGET])
    medians = complete[list(RECIPE_B_INPUTS)].median()

    def inputs_of(listings: pd.DataFrame) -> pd.DataFrame:
        return listings[list(RECIPE_B_INPUTS)].astype(float).fillna(medians)

    model = GradientBoostingRegressor(random_state=RANDOM_STATE).fit(inputs_of(complete), complete[TARGET])
    return Baseline("recipe B (GradientBoosting)", inputs_of, model, time.perf_counter() - started)


def comparison_table(
    metrics_by_model: Mapping[str, Mapping[str, float]], train_seconds: Mapping[str, float]
) -> pd.DataFrame:
    """One row per model: MAE, MAPE %, MdAPE %, R² and training seconds, in the given order."""
    return pd.DataFrame(
        {
            "MAE": [metrics["mae"] for metrics in metrics_by_model.values()],
            "MAPE %": [100 * metrics["mape"] for metrics in metrics_by_model.values()],
            "MdAPE %": [100 * metrics["mdape"] for metrics in metrics_by_model.values()],
            "R²": [metrics["r2"] for metrics in metrics_by_model.values()],
            "train s": [train_seconds[name] for name in metrics_by_model],
        },
        index=pd.Index(list(metrics_by_model), name="model"),
    )


def format_table(table: pd.DataFrame) -> str:
    """A comparison table as fixed-width text, numbers rounded for reading."""
    formats = {"MAE": "{:,.0f}".format, "R²": "{:.3f}".format}
    return table.to_string(formatters=formats, float_format="{:.2f}".format)
