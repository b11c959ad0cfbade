"""The split is a stable function of the listing, and the outlier policy drops only implausible rows."""

import io

import pandas as pd
import pytest

from data_api.generator import generate_listings
from realtor_pipeline.split import SPLIT_SHARES, clean_training_rows, outlier_mask, split_of


@pytest.fixture(scope="module")
def listings() -> pd.DataFrame:
    return pd.concat(
        [generate_listings(state, 6_000, seed=3) for state in ("Connecticut", "New York")], ignore_index=True
    )


def test_old_rows_keep_their_split_when_new_rows_arrive(listings):
    first_run = split_of(listings)
    new_rows = generate_listings("Vermont", 3_000, seed=4)
    # The second run reads the old rows back in another order and with other dtypes (whole
    # numbers as integers, text as object), as a reload from storage might; the index keeps the
    # first run's labels.
    reloaded = pd.read_csv(io.StringIO(listings.sample(frac=1, random_state=1).to_csv()), index_col=0)
    reloaded = reloaded.astype({"bed": "Int64", "zip_code": "Int64", "city": object, "state": object})
    second_run = split_of(pd.concat([new_rows, reloaded], ignore_index=True))

    old_rows_second_run = second_run.iloc[len(new_rows) :].to_numpy()
    assert (old_rows_second_run == first_run.loc[reloaded.index].to_numpy()).all()


def test_shares_are_sixty_twenty_twenty(listings):
    shares = split_of(listings).value_counts(normalize=True)

    for name, share in SPLIT_SHARES.items():
        assert shares[name] == pytest.approx(share, abs=0.02)


def test_a_listing_lands_in_one_split_whatever_its_price_status_or_sale_date(listings):
    rows = listings.head(500)
    relisted = rows.assign(price=rows["price"] * 1.1, status="for_sale", prev_sold_date="2023-01-01")

    both = split_of(pd.concat([rows, rows, relisted], ignore_index=True)).to_numpy().reshape(3, -1)

    assert (both[0] == both[1]).all() and (both[0] == both[2]).all()
    other_house = split_of(rows.assign(house_size=rows["house_size"] + 1))
    assert (other_house.to_numpy() != both[0]).any(), "the key must include the listing's own fields"


def plausible_row(**changes: object) -> dict:
    row = {
        "brokered_by": 1.0, "status": "sold", "price": 350_000.0, "bed": 3.0, "bath": 2.0, "acre_lot": 0.3,
        "street": 7.0, "city": "Hartford", "state": "Connecticut", "zip_code": 6103.0, "house_size": 1_600.0,
        "prev_sold_date": "2022-01-01",
    }  # fmt: skip
    return row | changes


@pytest.mark.parametrize(
    "changes",
    [
        {"price": 900.0},
        {"price": 45_000_000.0},
        {"house_size": 120_000.0},
        {"acre_lot": 5_000.0},
        {"bed": 22.0},
        {"bath": 18.0},
        {"house_size": 11_000.0, "bed": 2.0},  # 5,500 sq ft a bed
        {"price": 12_000.0, "house_size": 2_400.0},  # $5 a sq ft
    ],
)
def test_implausible_rows_are_outliers(changes):
    assert outlier_mask(pd.DataFrame([plausible_row(**changes)])).iloc[0]


def test_plausible_and_incomplete_rows_are_not_outliers():
    rows = pd.DataFrame(
        [
            plausible_row(),
            plausible_row(bed=None, bath=None, house_size=None, acre_lot=None, prev_sold_date=None),
            plausible_row(price=10_000.0, house_size=600.0),
        ]
    )

    assert not outlier_mask(rows).any()


def test_clean_training_rows_drops_unpriced_outliers_and_exact_duplicates():
    rows = pd.DataFrame(
        [
            plausible_row(),
            plausible_row(),  # a re-scrape
            plausible_row(price=None),
            plausible_row(price=0.0),
            plausible_row(bed=40.0),
            plausible_row(street=8.0),
        ]
    )

    assert clean_training_rows(rows).index.tolist() == [0, 5]
