"""Our model against the seed recipes on generated listings, through the CLI's split → clean → train → test.

The bars against recipe B sit a little above what the model reaches here, far from the 0.85x the
project aims for on real data, because that is out of reach on generated listings: their price
is size times a city level plus 25% log-normal noise, which recipe B mostly captures from zip
codes and sizes, and even the generator's own formula (the best possible predictor) is only 3-9%
better than recipe B on API-like slices, depending on the states.
"""

import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from data_api.generator import generate_listings
from data_api.settings import DataApiSettings
from data_api.sources import SliceBuilder, SyntheticSource
from realtor_pipeline.cli import Comparison, compare_models

GROUPS = (1, 2, 5, 8)  # Connecticut, Florida, Massachusetts, Puerto Rico
ROWS_PER_STATE = 5_000
SEED = 7
OURS, RECIPE_A, RECIPE_B = 0, 1, 2  # rows of the comparison table


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One OpenMP thread: on shared cores a second one stalls whenever another process holds a core."""
    with threadpool_limits(limits=1):
        yield


def slices(rows_per_state: int) -> SliceBuilder:
    settings = DataApiSettings(source="synthetic", batches=1, batch_rows=rows_per_state, seed=SEED)
    return SliceBuilder(SyntheticSource(rows_per_state), settings)


@pytest.fixture(scope="module")
def api_like() -> Comparison:
    builder = slices(ROWS_PER_STATE)
    return compare_models(
        pd.concat([builder.batches(group, "Monday")[0] for group in GROUPS], ignore_index=True)
    )


@pytest.fixture(scope="module")
def full_price() -> Comparison:
    states = [slices(ROWS_PER_STATE).state_of_group(group) for group in GROUPS]
    return compare_models(
        pd.concat([generate_listings(state, ROWS_PER_STATE, SEED) for state in states], ignore_index=True)
    )


def ratio(comparison: Comparison, column: str, baseline: int) -> float:
    return comparison.table[column].iloc[OURS] / comparison.table[column].iloc[baseline]


def test_beats_the_recipes_on_api_like_slices(api_like):
    assert ratio(api_like, "MAE", RECIPE_A) <= 0.60, api_like.table
    assert ratio(api_like, "MAE", RECIPE_B) <= 0.97, api_like.table


def test_beats_the_recipes_on_full_price_rows(full_price):
    assert ratio(full_price, "MAE", RECIPE_A) <= 0.60, full_price.table
    assert ratio(full_price, "MAE", RECIPE_B) <= 0.95, full_price.table
    # Learning log price pays most on relative errors across a wide price range.
    assert ratio(full_price, "MdAPE %", RECIPE_B) <= 0.95, full_price.table


def test_the_chosen_configuration_has_the_lowest_validation_error(api_like):
    trained = api_like.trained
    best = min(api_like.trained.search, key=lambda tried: tried["validation_mae"])

    assert len(trained.search) > 1
    assert (best["name"], best["params"]) == (trained.name, trained.params)
    assert trained.validation_metrics["mae"] == best["validation_mae"]
