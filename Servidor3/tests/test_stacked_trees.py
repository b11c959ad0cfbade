"""The stacked-trees fast path reproduces sklearn's HistGradientBoostingRegressor, missing values
included, and declines the models it does not handle."""

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge

from inference_api.stacked_trees import StackedTrees

RNG = np.random.default_rng(7)


def training_data(rows: int = 2_000) -> tuple[np.ndarray, np.ndarray]:
    features = RNG.normal(size=(rows, 5))
    target = features[:, 0] * 3 + np.sin(features[:, 1] * 2) + (features[:, 2] > 0.5) * 2
    features[RNG.random(features.shape) < 0.1] = np.nan  # missing values learn a side per split
    return features, target + RNG.normal(scale=0.1, size=rows)


@pytest.mark.parametrize(
    "params", [{"max_iter": 100}, {"max_iter": 30, "max_depth": 3, "learning_rate": 0.3}]
)
def test_stacked_trees_predict_what_sklearn_predicts(params):
    features, target = training_data()
    model = HistGradientBoostingRegressor(random_state=0, **params).fit(features, target)
    stacked = StackedTrees.of(model)
    unseen, _ = training_data(300)
    unseen[:5] = np.nan  # a row with nothing known goes down every missing-value branch
    np.testing.assert_allclose(stacked.predict(unseen), model.predict(unseen), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stacked.predict(unseen[:1]), model.predict(unseen[:1]), rtol=1e-12)


def test_models_it_does_not_handle_are_left_to_sklearn():
    features, target = training_data()
    assert StackedTrees.of(Ridge().fit(np.nan_to_num(features), target)) is None
    assert (
        StackedTrees.of(
            HistGradientBoostingRegressor(loss="absolute_error", max_iter=5).fit(features, target)
        )
        is None
    )
    category = RNG.integers(0, 4, size=len(target))
    categorical = HistGradientBoostingRegressor(categorical_features=[0], max_iter=10).fit(
        np.column_stack([category, features[:, :2]]),
        target + 5 * (category % 2),  # splits on it
    )
    assert StackedTrees.of(categorical) is None
