"""The listing schema: real-looking rows pass, each kind of impossible value is quarantined with its rule."""

from datetime import date

import pandas as pd
import pytest

from data_api.generator import generate_listings
from realtor_pipeline.validate import validate_listings

TODAY = date(2026, 11, 22)


@pytest.fixture
def listings() -> pd.DataFrame:
    rows = generate_listings("Massachusetts", 5_000, seed=3)
    rows["batch_number"] = 7  # provenance rides along
    return rows


def test_real_looking_rows_pass_and_every_row_is_accounted_for(listings):
    result = validate_listings(listings, TODAY)
    assert len(result.valid) + len(result.quarantined) == len(listings)
    assert len(result.valid) > 0.97 * len(listings)
    assert result.valid["batch_number"].eq(7).all()
    assert not result.valid.index.intersection(result.quarantined.index).size
    # The generator's absurd values (price <= $1,000, houses above 50,000 sq ft) never pass.
    assert not (result.valid["price"] <= 1_000).any()
    assert not (result.valid["house_size"] > 50_000).any()
    # Values the real API served (bed up to 20, missing optional fields) are not rejected.
    kept = pd.concat([result.valid, result.quarantined])
    assert kept.loc[listings["bed"].between(16, 20), "rule"].isna().all()
    assert result.valid["bed"].isna().any() and result.valid["prev_sold_date"].isna().any()


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("price", 0.0, "price: in_range"),
        ("price", None, "price: not_nullable"),
        ("price", "abc", "price: not a number"),
        ("status", "rented", "status: isin"),
        ("house_size", 1_450_112.0, "house_size: in_range"),
        ("bed", -1.0, "bed: in_range"),
        ("zip_code", 123_456.0, "zip_code: in_range"),
        ("prev_sold_date", "2099-01-01", "prev_sold_date: in_range"),
        # Beyond what pandas holds in nanoseconds: once failed the whole batch's coercion.
        ("prev_sold_date", "0001-01-01", "prev_sold_date: in_range"),
        ("prev_sold_date", "9999-12-31", "prev_sold_date: in_range"),
        ("prev_sold_date", "yesterday", "prev_sold_date: not a date"),
        ("state", None, "state: not_nullable"),
    ],
)
def test_each_bad_value_is_quarantined_with_the_rule_it_broke(listings, column, value, rule):
    clean = validate_listings(listings, TODAY).valid.head(50).copy()
    clean[column] = clean[column].astype(object)
    victim = clean.index[10]
    clean.loc[victim, column] = value
    result = validate_listings(clean, TODAY)
    assert list(result.quarantined.index) == [victim]
    assert rule in result.quarantined.loc[victim, "rule"]
    assert len(result.valid) == 49


def test_a_batch_without_a_column_fails_as_a_whole(listings):
    with pytest.raises(ValueError, match="listing schema"):
        validate_listings(listings.drop(columns="price"), TODAY)
