"""Benchmark of storing listing batches: realtor_pipeline's ingest path against DataFrame.to_sql.

`make bench-ingest`. Generates synthetic listings with the data API's generator, cuts them into
responses shaped like the data API's and loads them into a scratch MariaDB database twice: with
`ingest_batch` (checks, hashing, one multi-row INSERT IGNORE transaction per batch) and with
`pandas.DataFrame(rows).to_sql(..., method=None)`, the way the seed scripts stored batches.
Also times storing every batch again, which must insert nothing. Exits 1 when a target is missed
(at least MIN_ROWS_PER_S rows/s and MIN_SPEEDUP times to_sql).

The scratch database is created and dropped with the machine's local admin user, from the
credentials file `make setup` writes (found as the test harness finds it); nothing else on the
server is touched.
"""

import argparse
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import sqlalchemy

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))  # benches may use the data API's generator; the library may not

from data_api.generator import generate_listings  # noqa: E402
from data_api.sources import batch_records  # noqa: E402
from realtor_pipeline.ingest import ingest_batch  # noqa: E402
from realtor_pipeline.tables import create_tables  # noqa: E402

CREDENTIALS_FILE = Path(
    os.environ.get("REALTOR_CREDENTIALS_FILE")
    or Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "realtor-mlops" / "credentials.env"
)
MARIADB_HOST, MARIADB_PORT = "127.0.0.1", 3306
STATE, SEED, GROUP_NUMBER, DAY = "Massachusetts", 7, 5, "Wednesday"
TO_SQL_TABLE = "realtor_raw_to_sql"
MIN_ROWS_PER_S = 20_000
MIN_SPEEDUP = 5.0


def admin_url(database: str = "") -> str:
    """URL of the local admin, read from the credentials file the way the test harness does."""
    if not CREDENTIALS_FILE.exists():
        sys.exit(f"bench-ingest: {CREDENTIALS_FILE} is missing: run `make setup`")
    pairs = (line.split("=", 1) for line in CREDENTIALS_FILE.read_text().splitlines() if "=" in line)
    credentials = dict(pairs)
    return (
        f"mysql+mysqldb://{credentials['LOCAL_ADMIN_USER']}:{credentials['LOCAL_ADMIN_PASSWORD']}"
        f"@{MARIADB_HOST}:{MARIADB_PORT}/{database}"
    )


def make_responses(rows: int, batch_rows: int) -> list[dict]:
    listings = generate_listings(STATE, rows, SEED)
    return [
        {
            "group_number": GROUP_NUMBER,
            "day": DAY,
            "batch_number": number,
            "data": batch_records(listings.iloc[start : start + batch_rows]),
        }
        for number, start in enumerate(range(0, rows, batch_rows), start=1)
    ]


def timed(store_one: Callable[[dict], object], responses: list[dict]) -> float:
    clock = time.perf_counter()
    for response in responses:
        store_one(response)
    return time.perf_counter() - clock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="listings to generate and load")
    parser.add_argument("--batch-rows", type=int, default=4_000, help="rows per batch (the real API: ~4,000)")
    options = parser.parse_args()

    responses = make_responses(options.rows, options.batch_rows)
    database = f"bench_ingest_{secrets.token_hex(4)}"
    admin = sqlalchemy.create_engine(admin_url())
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    engine = sqlalchemy.create_engine(admin_url(database))
    try:
        create_tables(engine)
        ingest_s = timed(lambda response: ingest_batch(engine, response, generation=1), responses)
        repeat_s = timed(lambda response: ingest_batch(engine, response, generation=1), responses)
        to_sql_s = timed(
            lambda response: pd.DataFrame(response["data"]).to_sql(
                TO_SQL_TABLE, engine, if_exists="append", index=False, method=None
            ),
            responses,
        )
        with engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT COUNT(*) FROM realtor_raw").scalar_one()
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{database}`")
        admin.dispose()

    ingest_rate = options.rows / ingest_s
    speedup = to_sql_s / ingest_s
    print(f"bench-ingest: {options.rows:,} rows in {len(responses)} batches of {options.batch_rows:,}")
    for label, seconds in (
        ("ingest_batch", ingest_s),
        ("ingest_batch again (adds nothing)", repeat_s),
        ("DataFrame.to_sql(method=None)", to_sql_s),
    ):
        print(f"  {label:<34} {seconds:7.2f} s {options.rows / seconds:>9,.0f} rows/s")
    met = ingest_rate >= MIN_ROWS_PER_S and speedup >= MIN_SPEEDUP and stored == options.rows
    verdict = "met" if met else "MISSED"
    print(f"  rows stored by ingest_batch: {stored:,}; speed-up over to_sql: {speedup:.1f}x")
    print(f"  targets (>= {MIN_ROWS_PER_S:,} rows/s, >= {MIN_SPEEDUP:g}x to_sql, all rows stored): {verdict}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
