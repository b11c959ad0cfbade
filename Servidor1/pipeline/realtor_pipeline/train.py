"""Candidate models, a small hyper-parameter search on the validation split, and the chosen model.

Every candidate is one sklearn estimator from raw listing rows to a price: `ListingFeatures`,
then a regressor, fitted on log price (`TransformedTargetRegressor`), so one relative error
costs the same on a $100k and a $2M home and the prediction is a typical price, not a mean
pulled up by mansions. The search tries a handful of configurations, each fitted on the
training rows and scored on the validation rows; the lowest validation MAE wins.

Training must never see test rows: they belong to evaluation and promotion.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from realtor_pipeline.evaluate import RANDOM_STATE, TARGET, regression_metrics
from realtor_pipeline.features import ListingFeatures

# Serving predicts one row at a time, and each boosting iteration costs it ~10 µs of Python
# call overhead whatever the tree's size, so configurations stay at or under this many trees.
MAX_TREES = 100
RIDGE_ALPHAS = (1.0, 30.0)
# Sklearn's default shape; smaller, more regularised trees; fewer, bigger steps (the fastest).
BOOSTING_CONFIGS = (
    {"learning_rate": 0.1, "max_iter": MAX_TREES},
    {"learning_rate": 0.1, "max_iter": MAX_TREES, "max_leaf_nodes": 15, "min_samples_leaf": 40},
    {
        "learning_rate": 0.15,
        "max_iter": 80,
        "max_leaf_nodes": 21,
        "min_samples_leaf": 40,
        "l2_regularization": 1.0,
    },
    {"learning_rate": 0.2, "max_iter": 60, "min_samples_leaf": 40},
)


@dataclass(frozen=True)
class Candidate:
    """An unfitted model and the configurations (its inner pipeline's parameters) to try."""

    name: str
    estimator: TransformedTargetRegressor
    configs: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class TrainedModel:
    """The winner of the search: fitted on the training rows, scored on the validation rows."""

    pipeline: TransformedTargetRegressor
    name: str
    params: dict[str, Any]
    validation_metrics: dict[str, float]
    train_seconds: float  # fitting the chosen configuration once
    search: list[dict[str, Any]] = field(default_factory=list)  # every configuration tried, in order


def on_log_price(steps: list[tuple[str, Any]]) -> TransformedTargetRegressor:
    """A pipeline of `steps` that learns log(1 + price) and predicts a price."""
    return TransformedTargetRegressor(
        regressor=Pipeline(steps), func=np.log1p, inverse_func=np.expm1, check_inverse=False
    )


def build_candidates() -> list[Candidate]:
    ridge = on_log_price([("features", ListingFeatures()), ("scale", StandardScaler()), ("model", Ridge())])
    boosting = on_log_price(
        [
            ("features", ListingFeatures()),
            ("model", HistGradientBoostingRegressor(early_stopping=False, random_state=RANDOM_STATE)),
        ]
    )
    return [
        Candidate("ridge", ridge, tuple({"model__alpha": alpha} for alpha in RIDGE_ALPHAS)),
        Candidate(
            "hist_gradient_boosting",
            boosting,
            tuple({f"model__{name}": value for name, value in config.items()} for config in BOOSTING_CONFIGS),
        ),
    ]


def train_best(
    train: pd.DataFrame, validation: pd.DataFrame, candidates: Sequence[Candidate] | None = None
) -> TrainedModel:
    """Fit every configuration on `train` (already cleaned), keep the best MAE on `validation`."""
    if train.empty or validation.empty:
        raise ValueError(f"need training and validation rows, got {len(train)} and {len(validation)}")
    best: TrainedModel | None = None
    search = []
    for candidate in candidates or build_candidates():
        for config in candidate.configs:
            model = clone(candidate.estimator).set_params(**{f"regressor__{k}": v for k, v in config.items()})
            started = time.perf_counter()
            model.fit(train, train[TARGET])
            seconds = time.perf_counter() - started
            metrics = regression_metrics(validation[TARGET], model.predict(validation))
            search.append(
                {
                    "name": candidate.name,
                    "params": config,
                    "validation_mae": metrics["mae"],
                    "train_seconds": seconds,
                }
            )
            if best is None or metrics["mae"] < best.validation_metrics["mae"]:
                best = TrainedModel(model, candidate.name, dict(config), metrics, seconds)
    if best is None:
        raise ValueError("no candidate configuration to train")
    return replace(best, search=search)
