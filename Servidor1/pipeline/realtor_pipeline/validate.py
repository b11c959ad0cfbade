"""The declared schema of a raw listing, and the split of a batch into valid and quarantined rows.

Validation rejects what cannot be a real listing (a price of 0, a house of a million square feet,
a sale in the future); it does not trim merely unusual rows — that is the training outlier policy
in `split.py`. Nothing is dropped silently: every rejected row comes back with the rules it broke.
Bounds are set from the measured real data (shared DATA-FACTS): they keep every value the real
API served (bed up to 20, house_size up to 15,096, acre_lot up to 9,148) and catch the raw file's
bad values.
"""

from dataclasses import dataclass
from datetime import date

import pandas as pd
import pandera.pandas as pa

STATUSES = ("for_sale", "sold", "ready_to_build")
PRICE_RANGE = (1_000, 100_000_000)  # raw file: 6 in 12,885 rows at or below $1,000
BED_MAX = BATH_MAX = 50
HOUSE_SIZE_RANGE = (100, 50_000)  # sq ft; the raw file's bad values start above 50,000
ACRE_LOT_MAX = 10_000
ZIP_RANGE = (1, 99_999)  # leading zeros are lost, so 01001 arrives as 1001
EARLIEST_SALE = pd.Timestamp("1900-01-01")
NUMERIC_COLUMNS = ("brokered_by", "price", "bed", "bath", "acre_lot", "street", "zip_code", "house_size")


def listing_schema(today: date) -> pa.DataFrameSchema:
    """The schema of one raw row; `today` bounds sale dates (a sale cannot be in the future)."""

    def between(low: float, high: float) -> pa.Check:
        return pa.Check.in_range(low, high, include_min=False)

    return pa.DataFrameSchema(
        {
            "brokered_by": pa.Column(float, pa.Check.ge(0), nullable=True),
            "status": pa.Column(str, pa.Check.isin(STATUSES)),
            "price": pa.Column(float, between(*PRICE_RANGE)),
            "bed": pa.Column(float, pa.Check.in_range(0, BED_MAX), nullable=True),
            "bath": pa.Column(float, pa.Check.in_range(0, BATH_MAX), nullable=True),
            "acre_lot": pa.Column(float, pa.Check.in_range(0, ACRE_LOT_MAX), nullable=True),
            "street": pa.Column(float, pa.Check.ge(0), nullable=True),
            "city": pa.Column(str, nullable=True),
            "state": pa.Column(str),
            "zip_code": pa.Column(float, pa.Check.in_range(*ZIP_RANGE), nullable=True),
            "house_size": pa.Column(float, between(*HOUSE_SIZE_RANGE), nullable=True),
            "prev_sold_date": pa.Column(
                pd.Timestamp, pa.Check.in_range(EARLIEST_SALE, pd.Timestamp(today)), nullable=True
            ),
        },
        coerce=True,
        strict="filter",  # provenance columns ride along untouched
    )


@dataclass(frozen=True)
class ValidationResult:
    valid: pd.DataFrame
    quarantined: pd.DataFrame  # the rejected rows, unchanged, plus `rule`: every rule they broke


def validate_listings(rows: pd.DataFrame, today: date | None = None) -> ValidationResult:
    """Split rows into those that pass the schema and those that do not, with the reason."""
    schema = listing_schema(today or date.today())
    missing = [column for column in schema.columns if column not in rows.columns]
    if missing:  # a batch without a column fails as a whole, not row by row
        raise ValueError(f"batch does not match the listing schema: missing columns {missing}")
    reasons = pd.Series("", index=rows.index)
    # Parse first: pandera skips a column's range checks once its coercion fails, so one
    # unparseable value would hide every other bad value of that column.
    parsed = rows.copy()
    for column in NUMERIC_COLUMNS:
        parsed[column] = pd.to_numeric(rows[column], errors="coerce")
    parsed["prev_sold_date"] = pd.to_datetime(rows["prev_sold_date"], errors="coerce", format="%Y-%m-%d")
    for column in (*NUMERIC_COLUMNS, "prev_sold_date"):
        unparseable = parsed[column].isna() & rows[column].notna()
        reasons[unparseable] += (
            f"; {column}: not a {'date (YYYY-MM-DD)' if column == 'prev_sold_date' else 'number'}"
        )
    # Dates pandas can parse but not hold in nanoseconds (year 1, year 9999) would fail the
    # schema's coercion for the whole batch: the range is checked here, row by row, first.
    dates, latest = parsed["prev_sold_date"], pd.Timestamp(today or date.today())
    out_of_range = dates.notna() & ((dates < EARLIEST_SALE) | (dates > latest))
    reasons[out_of_range] += f"; prev_sold_date: in_range({EARLIEST_SALE.date()}, {latest.date()})"
    parsed.loc[out_of_range, "prev_sold_date"] = pd.NaT
    try:
        schema.validate(parsed, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failures = errors.failure_cases
        if failures["index"].isna().any():
            raise ValueError(
                f"batch does not match the listing schema: {failures['check'].tolist()}"
            ) from None
        for index, broken in failures.groupby("index"):
            pairs = zip(broken["column"], broken["check"], strict=True)
            reasons[index] += "".join(f"; {column}: {check}" for column, check in pairs)
    bad = reasons != ""
    quarantined = rows[bad].assign(rule=reasons[bad].str.removeprefix("; "))
    return ValidationResult(valid=rows[~bad], quarantined=quarantined)
