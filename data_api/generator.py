"""Seeded synthetic US house listings shaped like the Realtor.com "USA Real Estate Dataset".

`generate_listings` returns raw rows of one state, with the real file's columns, types and
quirks: float ids and zip codes (leading zeros lost), missing values, re-scraped duplicate rows,
a few absurd values, and prices that follow size, city, neighbourhood (zip code), status and, for
sold homes, the market level on the sale date. Slicing them the way the course server did
(complete rows, capped price) is left to the caller.
"""

import hashlib
from dataclasses import dataclass
from statistics import NormalDist
from types import MappingProxyType

import numpy as np
import pandas as pd

from data_api.geography import State, find_state

COLUMNS: tuple[str, ...] = (
    "brokered_by",
    "status",
    "price",
    "bed",
    "bath",
    "acre_lot",
    "street",
    "city",
    "state",
    "zip_code",
    "house_size",
    "prev_sold_date",
)
STATUSES = ("for_sale", "sold", "ready_to_build")


@dataclass(frozen=True)
class BadValue:
    """Absurd values injected into a share of a column's non-missing values, drawn in [low, high]."""

    column: str
    low: float
    high: float
    share: float


# --- Rates, calibrated on /work/shared/DATA-FACTS.md (raw file and the API's batches) ---------
# Share of all rows where the column is missing.
NULL_RATES = MappingProxyType(
    {
        "bed": 0.26,
        "bath": 0.26,
        "house_size": 0.26,
        "acre_lot": 0.13,
        "street": 0.005,
        "zip_code": 0.002,
        "city": 0.001,
        "brokered_by": 0.0003,
    }
)
# Rows (land, lots) missing bed, bath and house_size together; the rest of those columns' nulls
# fall on other rows independently, so the three columns are mostly missing on the same rows.
NO_BUILDING_SHARE = 0.23
# The raw file is mostly for_sale; `sold` is sized so that the complete rows, where for_sale
# survives only with its occasional prev_sold_date, come out ~90% sold like the API's slice.
STATUS_SHARES = MappingProxyType({"for_sale": 0.547, "sold": 0.443, "ready_to_build": 0.01})
FOR_SALE_PREV_SOLD_SHARE = 0.09
DUPLICATE_SHARE = 0.01  # the same listing re-scraped
# Per 12,885 raw rows: price <= 1,000: 6; > 20M: 5; house_size > 50,000: 3; acre_lot > 100: 186;
# bed > 15: 21; bath > 15: 12 (as shares of the non-missing values).
BAD_VALUES = (
    BadValue("price", 0, 1_000, 0.0005),
    BadValue("price", 20_000_100, 60_000_000, 0.0004),
    BadValue("house_size", 50_001, 1_450_112, 0.0003),
    BadValue("acre_lot", 100.01, 100_000, 0.01),
    BadValue("bed", 16, 40, 0.0015),
    BadValue("bath", 16, 30, 0.001),
)

# --- Shape of the clean values -------------------------------------------------------------
TYPICAL_HOUSE_SIZE = 1_800  # sq ft; raw p50 1,785
HOUSE_SIZE_SIGMA = 0.55  # log scale
TYPICAL_ACRE_LOT = 0.3
ACRE_LOT_SIGMA = 1.4  # log scale; heavy tail of rural lots
# log price = log(state level · city factor) + zip offset + elasticity · log(size / typical)
#             + market trend to the price date + small effects
SIZE_ELASTICITY = 0.65
# Neighbourhoods differ a lot within a city, in ways not smooth in the zip number: on the real
# API slice a zip-code median alone is a strong baseline. Each zip of a state gets a fixed normal
# log-price offset drawn from a hash of (state, zip), the same in every call; the offsets are
# centred within each city so that the city factor stays the city's level.
ZIP_PRICE_SIGMA = 0.25  # log scale: a typical zip sits ~25% above or below its city
# Market appreciation over the sale window: US prices rose ~15-18% in 2021 and ~5-10% in 2022
# (~+21-30% over the two years), i.e. ~0.12 a year in log price. A sold row is priced at its
# sale date; for_sale and ready_to_build rows ask the "now" price, the end of the window.
APPRECIATION_PER_YEAR = 0.12  # log price per year
# The date the state levels in geography.py refer to: the middle of the sale window, so sold
# rows (~90% of the API's slices) keep the price level those slices were calibrated on.
PRICE_LEVEL_DATE = np.datetime64("2022-01-01")
PRICE_NOISE_SIGMA = 0.25
STATUS_PRICE_EFFECT = MappingProxyType({"for_sale": 0.0, "sold": -0.05, "ready_to_build": -0.35})
CLEAN_PRICE_RANGE = (10_000, 20_000_000)  # the API slice's minimum is 10,000
CHARM_PRICE_SHARE = 0.5  # asking prices like 299,900 rather than 300,000
# Sale dates of sold rows, and how far back for_sale rows' earlier sales go (median ~2004).
# The end of the window is "now": the date of the asking prices.
SALE_DATES = (np.datetime64("2021-01-01"), np.datetime64("2022-12-31"))
EARLIEST_PREV_SALE = np.datetime64("1910-01-01")
PREV_SALE_AGE_SCALE_DAYS = 27 * 365.25
# Broker ids are drawn from a fixed pool per state, so the same brokers recur across batches.
BROKER_POOL_SIZE = 2_000
MAX_BROKER_ID = 110_000
MAX_STREET_ID = 2_000_000

_COLUMN_GRAIN = {"price": 100, "house_size": 1, "bed": 1, "bath": 1, "acre_lot": 0.01}


def _rng(*parts: object) -> np.random.Generator:
    """A generator seeded the same in every process (unlike the salted built-in hash)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _round_to(values: np.ndarray, grain: float) -> np.ndarray:
    return np.round(values / grain) * grain


def _standard_normal(*parts: object) -> float:
    """A standard normal value fixed by `parts`, the same in every process."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    uniform = (int.from_bytes(digest[:6], "little") + 0.5) / 2**48  # strictly inside (0, 1)
    return NormalDist().inv_cdf(uniform)


def _zip_offsets(geo: State) -> tuple[np.ndarray, np.ndarray]:
    """Log-price offsets of every zip in the state's city ranges, centred within each city.

    Returns each city's start in the flat array of offsets and the array itself; the offset of a
    zip `z` in city `i` is `offsets[starts[i] + z - zip_low of city i]`.
    """
    per_city = []
    for city in geo.cities:
        draws = np.array(
            [_standard_normal("zip price", geo.name, z) for z in range(city.zip_low, city.zip_high + 1)]
        )
        per_city.append(ZIP_PRICE_SIGMA * (draws - draws.mean()))
    starts = np.cumsum([0] + [len(offsets) for offsets in per_city[:-1]])
    return starts, np.concatenate(per_city)


def generate_listings(state: str, n_rows: int, seed: int) -> pd.DataFrame:
    """`n_rows` raw listings of `state` with the dataset's 12 columns; deterministic per arguments."""
    geo = find_state(state)
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    rng = _rng("listings", state, seed)
    n_duplicates = round(DUPLICATE_SHARE * n_rows) if n_rows > 1 else 0
    m = n_rows - n_duplicates  # distinct listings

    cities = geo.cities
    weights = np.array([city.weight for city in cities])
    city_idx = rng.choice(len(cities), size=m, p=weights / weights.sum())
    zip_low = np.array([city.zip_low for city in cities])[city_idx]
    zip_span = np.array([city.zip_high - city.zip_low + 1 for city in cities])[city_idx]
    zip_step = np.floor(rng.random(m) * zip_span).astype(int)
    zip_code = (zip_low + zip_step).astype(float)
    city_factor = np.array([city.price_factor for city in cities])[city_idx]
    zip_starts, zip_offsets = _zip_offsets(geo)
    zip_offset = zip_offsets[zip_starts[city_idx] + zip_step]

    status_idx = rng.choice(len(STATUSES), size=m, p=[STATUS_SHARES[s] for s in STATUSES])
    status = np.array(STATUSES, dtype=object)[status_idx]

    log_size = rng.normal(0.0, HOUSE_SIZE_SIGMA, m)
    house_size = np.clip(np.round(TYPICAL_HOUSE_SIZE * np.exp(log_size)), 300, 20_000)
    bed = np.clip(np.round(3 + 1.8 * log_size + rng.normal(0.0, 0.6, m)), 1, 9)
    bath = np.clip(np.round(0.2 + 0.6 * bed + 0.8 * log_size + rng.normal(0.0, 0.5, m)), 1, 8)
    acre_lot = np.clip(
        _round_to(TYPICAL_ACRE_LOT * np.exp(rng.normal(0.0, ACRE_LOT_SIGMA, m)), 0.01), 0.01, 100
    )

    status_effect = np.array([STATUS_PRICE_EFFECT[s] for s in STATUSES])[status_idx]
    log_price = (
        np.log(geo.price_level * city_factor)
        + zip_offset
        + SIZE_ELASTICITY * log_size
        + 0.02 * (bed - 3)
        + 0.04 * (bath - 2)
        + 0.06 * np.log(acre_lot / TYPICAL_ACRE_LOT)
        + status_effect
        + rng.normal(0.0, PRICE_NOISE_SIGMA, m)
    )
    charm = np.where(rng.random(m) < CHARM_PRICE_SHARE, 100, 0)

    is_sold = status == "sold"
    has_prev = is_sold | ((status == "for_sale") & (rng.random(m) < FOR_SALE_PREV_SOLD_SHARE))
    first_sale, last_sale = SALE_DATES
    sale_day = first_sale + rng.integers(0, (last_sale - first_sale).astype(int) + 1, m)
    # Truncated exponential age so that no earlier sale predates EARLIEST_PREV_SALE.
    max_age = (last_sale - EARLIEST_PREV_SALE).astype(float)
    reach = 1 - np.exp(-max_age / PREV_SALE_AGE_SCALE_DAYS)
    age = -PREV_SALE_AGE_SCALE_DAYS * np.log1p(-rng.random(m) * reach)
    prev_day = last_sale - age.astype(int).astype("timedelta64[D]")
    dates = np.datetime_as_string(np.where(is_sold, sale_day, prev_day), unit="D").astype(object)
    prev_sold_date = np.where(has_prev, dates, None)

    # Sold rows at the market level of their sale date, the others at "now" (the window's end).
    price_day = np.where(is_sold, sale_day, last_sale)
    years = (price_day - PRICE_LEVEL_DATE).astype(float) / 365.25
    price = np.exp(log_price + APPRECIATION_PER_YEAR * years)
    # Asking prices sit on round steps, often just under them; sale prices are to the hundred.
    step = np.where(price < 100_000, 1_000, 5_000)
    asking = np.round(price / step) * step - charm
    price = np.where(is_sold, _round_to(price, 100), asking)
    price = np.clip(price, *CLEAN_PRICE_RANGE)

    pool = _rng("brokers", state).choice(MAX_BROKER_ID, size=BROKER_POOL_SIZE, replace=False) + 1
    broker_weights = 1 / (np.arange(BROKER_POOL_SIZE) + 20)  # a few big agencies, a long tail
    brokered_by = rng.choice(pool, size=m, p=broker_weights / broker_weights.sum()).astype(float)
    street = rng.integers(1, MAX_STREET_ID + 1, m).astype(float)

    numeric = {"price": price, "bed": bed, "bath": bath, "acre_lot": acre_lot, "house_size": house_size}
    for bad in BAD_VALUES:
        hit = rng.random(m) < bad.share
        if bad.low > 0:
            values = np.exp(rng.uniform(np.log(bad.low), np.log(bad.high), m))
        else:
            values = rng.uniform(bad.low, bad.high, m)
        grain = _COLUMN_GRAIN[bad.column]
        numeric[bad.column] = np.where(
            hit, np.clip(_round_to(values, grain), bad.low, bad.high), numeric[bad.column]
        )

    frame = pd.DataFrame(
        {
            "brokered_by": brokered_by,
            "status": status,
            "price": numeric["price"],
            "bed": numeric["bed"],
            "bath": numeric["bath"],
            "acre_lot": numeric["acre_lot"],
            "street": street,
            "city": np.array([city.name for city in cities], dtype=object)[city_idx],
            "state": np.full(m, geo.name, dtype=object),
            "zip_code": zip_code,
            "house_size": numeric["house_size"],
            "prev_sold_date": prev_sold_date,
        },
        columns=list(COLUMNS),
    )

    no_building = rng.random(m) < NO_BUILDING_SHARE
    for column, rate in NULL_RATES.items():
        if column in ("bed", "bath", "house_size"):
            extra = (rate - NO_BUILDING_SHARE) / (1 - NO_BUILDING_SHARE)
            missing = no_building | (rng.random(m) < extra)
        else:
            missing = rng.random(m) < rate
        frame.loc[missing, column] = np.nan

    return frame.take(_with_duplicates(rng, n_rows, n_duplicates)).reset_index(drop=True)


def _with_duplicates(rng: np.random.Generator, n_rows: int, n_duplicates: int) -> np.ndarray:
    """Row order of the output: the distinct rows in order, with re-scrapes of earlier ones mixed in."""
    is_duplicate = np.zeros(n_rows, dtype=bool)
    if n_duplicates:
        # Never at position 0, so every duplicate has an earlier row to copy.
        is_duplicate[rng.choice(n_rows - 1, size=n_duplicates, replace=False) + 1] = True
    last_distinct = np.cumsum(~is_duplicate) - 1  # the latest distinct row at or before each slot
    copied = np.floor(rng.random(n_rows) * (last_distinct + 1)).astype(int)
    return np.where(is_duplicate, copied, last_distinct)
