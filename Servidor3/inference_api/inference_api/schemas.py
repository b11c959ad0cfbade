"""The request and response bodies, with the bounds a real listing stays within.

The bounds are those node 1 quarantines training rows by (Servidor1's validate.py, set from the
measured real data); they are repeated here on purpose, because serving never imports training
code. Numbers are strict (a string or a boolean is a 422, not a silent conversion), unknown
fields are a 422 (a `price` in the body is a client's mistake, not an input), and every field
but `status` and `state` is optional, as in the raw data.
"""

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Field, Strict

EARLIEST_SALE = date(1900, 1, 1)
LISTING_FIELDS = (
    "brokered_by", "status", "bed", "bath", "acre_lot", "street",
    "city", "state", "zip_code", "house_size", "prev_sold_date",
)  # fmt: skip


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_text(value: Any) -> Any:
    """Only YYYY-MM-DD text: pydantic alone would read 20140620 (or "20140620") as a Unix time."""
    if value is not None and not (isinstance(value, str) and ISO_DATE.fullmatch(value)):
        raise ValueError(f"expected a date as text, YYYY-MM-DD, got {value!r}")
    return value


def _not_in_future(value: date) -> date:
    if value > date.today():
        raise ValueError(f"a previous sale cannot be in the future (today is {date.today()})")
    return value


Number = Annotated[float, Strict(), AllowInfNan(False)]  # JSON parsers accept NaN and Infinity
SaleDate = Annotated[
    date, BeforeValidator(_iso_text), Field(ge=EARLIEST_SALE), AfterValidator(_not_in_future)
]


class Listing(BaseModel):
    """One listing as the data API serves it, without `price`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "brokered_by": 10481.0,
                    "status": "for_sale",
                    "bed": 3.0,
                    "bath": 2.0,
                    "acre_lot": 0.12,
                    "street": 1612297.0,
                    "city": "Boston",
                    "state": "Massachusetts",
                    "zip_code": 2128.0,
                    "house_size": 1480.0,
                    "prev_sold_date": "2014-06-20",
                }
            ]
        },
    )

    brokered_by: Number | None = Field(None, ge=0, description="Broker id (encoded)")
    status: Literal["for_sale", "sold", "ready_to_build"]
    bed: Number | None = Field(None, ge=0, le=50, description="Bedrooms")
    bath: Number | None = Field(None, ge=0, le=50, description="Bathrooms")
    acre_lot: Number | None = Field(None, ge=0, le=10_000, description="Lot size in acres")
    street: Number | None = Field(None, ge=0, description="Street id (encoded)")
    city: str | None = Field(None, min_length=1, max_length=255)
    state: str = Field(min_length=1, max_length=64)
    zip_code: Number | None = Field(None, ge=1, le=99_999, description="Zip code, leading zeros dropped")
    house_size: Number | None = Field(None, gt=100, le=50_000, description="Living space in sq ft")
    prev_sold_date: SaleDate | None = Field(None, description="Previous sale, YYYY-MM-DD")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    listings: list[Listing] = Field(min_length=1, description="Up to MAX_BATCH_SIZE listings")


class Prediction(BaseModel):
    price: float = Field(description="Predicted price in US dollars")
    model_name: str
    model_version: str
    request_id: str


class BatchPrediction(BaseModel):
    prices: list[float] = Field(description="One predicted price per listing, in request order")
    model_name: str
    model_version: str
    request_id: str


class ModelDescription(BaseModel):
    model_name: str
    model_version: str
    alias: str
    run_id: str
    metrics: dict[str, float] = Field(description="The version's run metrics (test_* on the test split)")
    loaded_at: str = Field(description="When this process loaded the version (UTC, ISO 8601)")


class Contribution(BaseModel):
    feature: str
    value: float = Field(description="The feature's value as the model sees it")
    shap_value: float = Field(description="Its push on log(1 + price); +0.1 is about +10.5%")


class Explanation(BaseModel):
    price: float
    model_name: str
    model_version: str
    base_value: float = Field(description="The model's expected log(1 + price) before any feature")
    contributions: list[Contribution] = Field(description="Largest absolute push first")
