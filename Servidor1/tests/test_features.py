"""Behaviour of a trained model on raw rows: what it accepts, what it ignores, and which way it moves.

`price` at predict time is ignored, not rejected: serving requests and test rows may carry one.
"""

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from data_api.generator import generate_listings
from realtor_pipeline.features import INPUT_COLUMNS, ListingFeatures
from realtor_pipeline.split import clean_training_rows
from realtor_pipeline.train import build_candidates

TRAINING_STATES = ("Massachusetts", "Florida")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One OpenMP thread: on shared cores a second one stalls whenever another process holds a core."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def listings() -> pd.DataFrame:
    raw = pd.concat(
        [generate_listings(state, 5_000, seed=11) for state in TRAINING_STATES], ignore_index=True
    )
    return clean_training_rows(raw)


@pytest.fixture(scope="module")
def model(listings: pd.DataFrame):
    boosting = next(
        candidate for candidate in build_candidates() if candidate.name == "hist_gradient_boosting"
    )
    config = {f"regressor__{name}": value for name, value in boosting.configs[0].items()}
    return clone(boosting.estimator).set_params(**config).fit(listings, listings["price"])


@pytest.fixture
def typical_row() -> pd.DataFrame:
    return pd.DataFrame([{
        "brokered_by": 22611.0, "status": "sold", "price": 450_000.0, "bed": 3.0, "bath": 2.0,
        "acre_lot": 0.25, "street": 1_234_567.0, "city": "Boston", "state": "Massachusetts",
        "zip_code": 2130.0, "house_size": 1_800.0, "prev_sold_date": "2022-05-01",
    }])  # fmt: skip


def test_predicts_rows_with_missing_optional_fields_and_unseen_categories(model, typical_row):
    missing = typical_row.assign(
        bed=None, bath=None, acre_lot=None, house_size=None, prev_sold_date=None, city=None, zip_code=None
    )
    unseen = typical_row.assign(status="pending", state="Atlantis", city="Nowhere", zip_code=99_999.0)
    unseen_city = typical_row.assign(city="Nowhere", zip_code=99_999.0)
    unknown_city = typical_row.assign(city=None, zip_code=None)
    rows = pd.concat([typical_row, missing, unseen, unseen_city, unknown_city], ignore_index=True)

    predictions = model.predict(rows)

    assert np.isfinite(predictions).all()
    assert ((predictions > 10_000) & (predictions < 20_000_000)).all(), predictions
    # A city and zip never seen count as unknown ones: the state's level, not an arbitrary code's.
    assert predictions[3] == pytest.approx(predictions[4])


def test_price_is_ignored_when_present_and_not_needed_when_absent(model, typical_row):
    with_price = model.predict(typical_row)
    other_price = model.predict(typical_row.assign(price=5_000_000.0))
    without_price = model.predict(typical_row.drop(columns=["price"]))

    np.testing.assert_array_equal(with_price, other_price)
    np.testing.assert_array_equal(with_price, without_price)


def test_listing_identifiers_do_not_move_the_price(model, listings):
    rows = listings.sample(200, random_state=0)
    relabelled = rows.assign(street=rows["street"] + 1_000_003, brokered_by=rows["brokered_by"] + 17)

    change = model.predict(relabelled) / model.predict(rows) - 1

    assert np.abs(change).max() < 0.01


def test_more_house_size_does_not_lower_the_price(model, typical_row):
    sizes = np.arange(1_000, 3_001, 250, dtype=float)
    rows = pd.concat([typical_row.assign(house_size=size) for size in sizes], ignore_index=True)

    predictions = model.predict(rows)

    # Trees are step functions: allow a 2% wobble between neighbours, but the trend must be up.
    assert (np.diff(predictions) / predictions[:-1] > -0.02).all(), predictions
    assert predictions[-1] > 1.2 * predictions[0]


def test_dict_of_lists_gives_the_dataframe_prediction(model, typical_row):
    as_dict = {column: [value] for column, value in typical_row.iloc[0].items()}

    assert model.predict(as_dict) == pytest.approx(model.predict(typical_row))


def test_days_since_sale_count_from_the_training_data_not_today(listings):
    features = ListingFeatures().fit(listings, np.log1p(listings["price"]))
    names = list(features.get_feature_names_out())
    latest_sale = pd.to_datetime(listings["prev_sold_date"]).max()
    sold_then = listings.head(1).assign(prev_sold_date=latest_sale.strftime("%Y-%m-%d"))
    sold_year_before = sold_then.assign(
        prev_sold_date=(latest_sale - pd.Timedelta(days=365)).strftime("%Y-%m-%d")
    )

    years = features.transform(pd.concat([sold_then, sold_year_before]))[
        :, names.index("years_since_prev_sale")
    ]

    assert features.reference_date_ == latest_sale.strftime("%Y-%m-%d")
    assert years == pytest.approx([0.0, 365 / 365.25])


def test_missing_column_is_named(model, typical_row):
    with pytest.raises(ValueError, match="house_size"):
        model.predict(typical_row.drop(columns=["house_size"]))
    assert "price" not in INPUT_COLUMNS


def test_skops_round_trip_needs_only_our_transformer_and_the_tree_predictor(model, listings):
    saved = skops.io.dumps(model)
    untrusted = skops.io.get_untrusted_types(data=saved)

    assert sorted(untrusted) == [
        "realtor_pipeline.features.ListingFeatures",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    ]
    loaded = skops.io.loads(saved, trusted=untrusted)
    assert loaded.predict(listings.head(50)) == pytest.approx(model.predict(listings.head(50)))
