"""The split tables (RawData.train|validation|test) and the clean tables (CleanData.*_clean).

Splits are append-only: new valid rows of realtor_raw are placed by `split_of` (a hash of the
listing, so a row never moves) and a listing served again — in a repeated batch or a later
generation — is stored once. Clean tables are rebuilt from the splits on every run, so a change
of outlier policy applies to all rows. Everything here is safe to re-run: nothing is duplicated.
"""

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import delete, func, insert, select, union_all
from sqlalchemy.engine import Connection, Engine

from realtor_pipeline.split import clean_training_rows, split_of
from realtor_pipeline.tables import LISTING_COLUMNS, SPLITS, clean_tables, realtor_raw, split_tables

SPLIT_COLUMNS = ("raw_id", "listing_hash", "generation", "batch_number", *LISTING_COLUMNS)


@dataclass(frozen=True)
class SplitReport:
    new_rows: dict[str, int]  # per split, added by this run
    rows: dict[str, int]  # per split, in total
    clean_rows: dict[str, int]  # per split, after the outlier policy


def raw_watermark(raw: Engine) -> int:
    """The newest realtor_raw id: everything up to it is what a model trained now has seen."""
    with raw.connect() as connection:
        return connection.execute(select(func.coalesce(func.max(realtor_raw.c.id), 0))).scalar_one()


def _records(rows: pd.DataFrame) -> list[dict]:
    return rows.astype(object).where(rows.notna(), None).to_dict("records")


def _insert_new(connection: Connection, split: str, rows: pd.DataFrame) -> int:
    if rows.empty:
        return 0
    statement = insert(split_tables[split]).prefix_with("IGNORE")  # listing stored already: skip
    return connection.execute(statement, _records(rows[list(SPLIT_COLUMNS)])).rowcount


def place_new_rows(raw: Engine) -> dict[str, int]:
    """Add realtor_raw's rows not yet placed to their split; returns the rows added per split."""
    with raw.begin() as connection:
        placed = union_all(
            *(select(func.max(split_tables[split].c.raw_id).label("id")) for split in SPLITS)
        ).subquery()
        last_placed = connection.execute(select(func.coalesce(func.max(placed.c.id), 0))).scalar_one()
        new = pd.read_sql(
            select(realtor_raw.c.id.label("raw_id"), *(realtor_raw.c[c] for c in SPLIT_COLUMNS[1:]))
            .where(realtor_raw.c.id > last_placed)
            .order_by(realtor_raw.c.id),
            connection,
        ).drop_duplicates("listing_hash")  # the first copy stands for the listing
        assignment = split_of(new)
        return {split: _insert_new(connection, split, new[assignment == split]) for split in SPLITS}


def rebuild_clean_tables(raw: Engine, clean: Engine) -> dict[str, tuple[int, int]]:
    """Apply the outlier policy to every split into CleanData; returns (rows, clean rows) per split."""
    splits = {split: load_split(raw, split) for split in SPLITS}
    cleaned = {split: clean_training_rows(rows) for split, rows in splits.items()}
    with clean.begin() as connection:
        for split, rows in cleaned.items():
            connection.execute(delete(clean_tables[split]))
            if not rows.empty:
                connection.execute(insert(clean_tables[split]), _records(rows[list(SPLIT_COLUMNS)]))
    return {split: (len(splits[split]), len(cleaned[split])) for split in SPLITS}


def store_splits(raw: Engine, clean: Engine) -> SplitReport:
    """Both steps: place new rows, then rebuild the clean tables."""
    new_rows = place_new_rows(raw)
    counts = rebuild_clean_tables(raw, clean)
    return SplitReport(
        new_rows=new_rows,
        rows={split: total for split, (total, _) in counts.items()},
        clean_rows={split: kept for split, (_, kept) in counts.items()},
    )


def load_split(source: Engine | Connection, split: str, clean: bool = False) -> pd.DataFrame:
    """One split's rows, in raw_id order; `clean=True` reads CleanData's `<split>_clean`."""
    table = (clean_tables if clean else split_tables)[split]
    rows = pd.read_sql(select(table).order_by(table.c.raw_id), source)
    # Dates come back as date objects; the model reads YYYY-MM-DD text as the data API serves it.
    rows["prev_sold_date"] = pd.to_datetime(rows["prev_sold_date"]).dt.strftime("%Y-%m-%d")
    return rows
