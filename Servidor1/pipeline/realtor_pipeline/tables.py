"""Tables of the RawData database: listings as the data API served them, and how they got there.

`realtor_raw` keeps every valid row of every batch with its provenance and never rewrites one,
`realtor_quarantine` every row that failed the listing schema with the rules it broke;
`ingestion_log` has one row per call to the data API, whatever its outcome;
`collection_generation` numbers each collection of a (group, day), so a restart of the data API
starts a new generation instead of deleting the rows of the earlier one.

The DDL is explicit (types, keys, engine) rather than inferred from a DataFrame, and
`create_tables` only creates what is missing: the pipeline's database user cannot drop tables.
"""

import enum

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Enum,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.mysql import BINARY, DATETIME, DOUBLE
from sqlalchemy.engine import Engine

# The data API's row, in its order: every listing has exactly these keys.
LISTING_COLUMNS: tuple[str, ...] = (
    "brokered_by", "status", "price", "bed", "bath", "acre_lot",
    "street", "city", "state", "zip_code", "house_size", "prev_sold_date",
)  # fmt: skip
TEXT_COLUMN_LENGTHS = {"status": 32, "city": 255, "state": 64}
DATE_COLUMNS = ("prev_sold_date",)

LISTING_HASH_BYTES = 20  # sha1
DAY_LENGTH = len("Wednesday")  # the longest weekday the data API accepts

# SQLAlchemy's MySQL DOUBLE reads back as Decimal unless told otherwise.
FLOAT64 = DOUBLE(asdecimal=False)
MYSQL_TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


class IngestOutcome(enum.StrEnum):
    INGESTED = "ingested"  # the batch added rows
    REPEAT = "repeat"  # the data API served a batch already stored: nothing added
    EXHAUSTED = "exhausted"  # the data API has no batch left for this (group, day)
    ERROR = "error"  # the call or the write failed; `detail` says why


metadata = MetaData()


def _listing_column(name: str) -> Column:
    if name in TEXT_COLUMN_LENGTHS:
        return Column(name, String(TEXT_COLUMN_LENGTHS[name]))
    if name in DATE_COLUMNS:
        return Column(name, Date)
    return Column(name, FLOAT64)  # ids and zip codes too: the data API sends every number as a float


realtor_raw = Table(
    "realtor_raw",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("generation", Integer, nullable=False),
    Column("group_number", SmallInteger, nullable=False),
    Column("day", String(DAY_LENGTH), nullable=False),
    Column("batch_number", Integer, nullable=False),
    Column("fetched_at", DATETIME(fsp=6), nullable=False, comment="UTC"),
    Column("listing_hash", BINARY(LISTING_HASH_BYTES), nullable=False, comment="sha1 of the 12 values"),
    Column("occurrence", SmallInteger, nullable=False, comment="1 + earlier identical rows in the batch"),
    *(_listing_column(name) for name in LISTING_COLUMNS),
    # A batch served again maps onto the same keys and adds nothing, while a listing repeated
    # inside one batch (a re-scrape in the source data) differs by `occurrence` and is kept.
    UniqueConstraint(
        *("generation", "group_number", "day", "batch_number", "listing_hash", "occurrence"),
        name="uq_realtor_raw_batch_listing",
    ),
    comment="Valid listings as the data API served them; rejected rows are in realtor_quarantine",
    **MYSQL_TABLE_OPTIONS,
)

realtor_quarantine = Table(
    "realtor_quarantine",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("generation", Integer, nullable=False),
    Column("group_number", SmallInteger, nullable=False),
    Column("day", String(DAY_LENGTH), nullable=False),
    Column("batch_number", Integer, nullable=False),
    Column("position", Integer, nullable=False, comment="the row's index in its batch"),
    Column("fetched_at", DATETIME(fsp=6), nullable=False, comment="UTC"),
    Column("served_row", Text, nullable=False, comment="the row exactly as served, as JSON"),
    Column("rule", Text, nullable=False, comment="every rule the row broke"),
    # The same served row quarantined again (a batch served twice) adds nothing.
    UniqueConstraint(
        *("generation", "group_number", "day", "batch_number", "position"),
        name="uq_realtor_quarantine_batch_position",
    ),
    comment="Served rows that could not be stored as listings, with the reason; never dropped",
    **MYSQL_TABLE_OPTIONS,
)

ingestion_log = Table(
    "ingestion_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("group_number", SmallInteger, nullable=False),
    Column("day", String(DAY_LENGTH), nullable=False),
    Column("batch_number", Integer, comment="NULL when no batch came back"),
    Column("generation", Integer, nullable=False),
    Column("started_at", DATETIME(fsp=6), nullable=False, comment="UTC"),
    Column("duration_s", FLOAT64, nullable=False),
    Column("rows_received", Integer, nullable=False, server_default="0"),
    Column("rows_inserted", Integer, nullable=False, server_default="0"),
    Column("rows_duplicate", Integer, nullable=False, server_default="0"),
    Column("rows_quarantined", Integer, nullable=False, server_default="0", comment="in realtor_quarantine"),
    Column(
        "outcome",
        Enum(IngestOutcome, values_callable=lambda outcomes: [o.value for o in outcomes]),
        nullable=False,
    ),
    Column("detail", Text, comment="the data API's message or the error"),
    comment="One row per call to the data API",
    **MYSQL_TABLE_OPTIONS,
)

collection_generation = Table(
    "collection_generation",
    metadata,
    Column("group_number", SmallInteger, nullable=False),
    Column("day", String(DAY_LENGTH), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("started_at", DATETIME(fsp=6), nullable=False, comment="UTC"),
    Column("reason", String(255), nullable=False),
    PrimaryKeyConstraint("group_number", "day", "generation"),
    comment="Each collection of a (group, day); a data API restart starts the next one",
    **MYSQL_TABLE_OPTIONS,
)


SPLITS = ("train", "validation", "test")


def _split_table(name: str, split_metadata: MetaData) -> Table:
    """One distinct listing per row (re-served copies collapse on `listing_hash`), with the
    realtor_raw row it was first stored as."""
    return Table(
        name,
        split_metadata,
        Column("raw_id", BigInteger, primary_key=True, autoincrement=False, comment="realtor_raw.id"),
        Column("listing_hash", BINARY(LISTING_HASH_BYTES), nullable=False, unique=True),
        Column("generation", Integer, nullable=False),
        Column("batch_number", Integer, nullable=False),
        *(_listing_column(name) for name in LISTING_COLUMNS),
        **MYSQL_TABLE_OPTIONS,
    )


# RawData.train|validation|test: append-only, a listing's split never changes (split.py).
split_tables = {split: _split_table(split, metadata) for split in SPLITS}

# CleanData.*_clean: each split after the outlier policy, rebuilt on every training run.
clean_metadata = MetaData()
clean_tables = {split: _split_table(f"{split}_clean", clean_metadata) for split in SPLITS}


def create_tables(raw_engine: Engine, clean_engine: Engine | None = None) -> None:
    """Create the tables that do not exist yet; existing ones are left as they are."""
    metadata.create_all(raw_engine, checkfirst=True)
    if clean_engine is not None:
        clean_metadata.create_all(clean_engine, checkfirst=True)
