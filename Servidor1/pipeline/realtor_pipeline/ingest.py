"""Fetch listing batches from the data API and store them in RawData.realtor_raw.

Storing a batch the data API serves again adds nothing (the unique key of `realtor_raw`), every
call leaves one row in `ingestion_log` whatever its outcome, and restarting the data API starts
a new collection generation so the rows of the earlier one stay. Only the data API's HTTP
contract (docs/architecture.md) is used: this module never imports the data API's code, nor
Airflow.
"""

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import requests
from sqlalchemy import TextClause, func, insert, select, text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from realtor_pipeline.tables import (
    DATE_COLUMNS,
    LISTING_COLUMNS,
    LISTING_HASH_BYTES,
    TEXT_COLUMN_LENGTHS,
    IngestOutcome,
    collection_generation,
    ingestion_log,
    realtor_quarantine,
    realtor_raw,
)
from realtor_pipeline.validate import validate_listings

# The data API's words for "no batch left" (HTTP 400), as the course's server writes them.
EXHAUSTED_DETAIL = "Ya se recolectó toda la información mínima necesaria"
RESPONSE_KEYS = ("group_number", "day", "batch_number", "data")
ERROR_BODY_CHARS = 500  # of a failed answer's body, quoted in the error

log = logging.getLogger(__name__)


class DataApiError(RuntimeError):
    """The data API answered with an error other than end-of-data, or could not be reached."""


@dataclass(frozen=True)
class Batch:
    """One batch as the data API served it."""

    group_number: int
    day: str
    batch_number: int
    rows: list[dict[str, Any]]

    @classmethod
    def from_response(cls, response_json: Mapping[str, Any]) -> "Batch":
        missing = [key for key in RESPONSE_KEYS if key not in response_json]
        if missing or not isinstance(response_json["data"], list):
            raise ValueError(
                f"data API response has keys {sorted(response_json)} and data of type "
                f"{type(response_json.get('data')).__name__}; expected keys {list(RESPONSE_KEYS)} "
                "with data a list of rows"
            )
        return cls(
            int(response_json["group_number"]),
            str(response_json["day"]),
            int(response_json["batch_number"]),
            response_json["data"],
        )


@dataclass(frozen=True)
class Exhausted:
    """The data API has served every batch of this (group, day) until it is restarted."""

    group_number: int
    day: str
    detail: str


@dataclass(frozen=True)
class IngestReport:
    """What one call to the data API added to RawData."""

    group_number: int
    day: str
    generation: int
    outcome: IngestOutcome
    batch_number: int | None = None
    received: int = 0
    inserted: int = 0
    duplicate: int = 0  # rows received that were already stored under the same key
    quarantined: int = 0  # rows received that cannot be a listing, kept in realtor_quarantine
    duration_s: float = 0.0
    log_id: int | None = None  # its ingestion_log row, which validation updates


class DataApiClient:
    """HTTP client of the data API. Connection errors, timeouts and 5xx answers are retried
    `retries` times, waiting `backoff`, 2·`backoff`, 4·`backoff`… seconds in between."""

    def __init__(self, base_url: str, timeout: float = 30.0, retries: int = 3, backoff: float = 1.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = requests.Session()

    def fetch_batch(self, group_number: int, day: str) -> Batch | Exhausted:
        response = self._get("/data", group_number, day)
        if response.status_code == 400 and _detail(response) == EXHAUSTED_DETAIL:
            return Exhausted(group_number, day, EXHAUSTED_DETAIL)
        return Batch.from_response(_json_body(response))

    def restart(self, group_number: int, day: str) -> dict[str, Any]:
        """Ask the data API to serve this (group, day) again from its first batch."""
        return _json_body(self._get("/restart_data_generation", group_number, day))

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "DataApiClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _get(self, path: str, group_number: int, day: str) -> requests.Response:
        """The answer to a GET, after retries; a 5xx still failing after them is returned as is."""
        url = f"{self.base_url}{path}"
        params = {"group_number": group_number, "day": day}
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.session.get(url, params=params, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as error:
                if attempt > self.retries:
                    message = f"data API unreachable at {url} after {attempt} attempts: {error}"
                    raise DataApiError(message) from error
                reason = type(error).__name__
            else:
                if response.status_code < 500 or attempt > self.retries:
                    return response
                reason = f"HTTP_{response.status_code}"
            wait_s = self.backoff * 2 ** (attempt - 1)
            log.warning(
                "event=data_api_retry url=%s attempt=%d reason=%s wait_s=%.2f", url, attempt, reason, wait_s
            )
            time.sleep(wait_s)


def _detail(response: requests.Response) -> Any:
    try:
        return response.json().get("detail")
    except (ValueError, AttributeError):
        return None


def _json_body(response: requests.Response) -> Any:
    body = response.text[:ERROR_BODY_CHARS]
    if response.status_code >= 400:
        raise DataApiError(f"data API answered HTTP {response.status_code} for {response.url}: {body}")
    try:
        return response.json()
    except ValueError as error:
        raise DataApiError(f"data API answered non-JSON for {response.url}: {body}") from error


# --- Rows: checked and normalised, so INSERT IGNORE never has to coerce a value ---------------


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if math.isnan(number):  # how pandas-made JSON may spell a missing value
        return None
    if math.isinf(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _text(max_length: int) -> Callable[[Any], str | None]:
    def convert(value: Any) -> str | None:
        if value is None:
            return None
        string = str(value)
        if len(string) > max_length:
            raise ValueError(f"expected at most {max_length} characters, got {len(string)}: {string[:80]!r}…")
        return string

    return convert


def _iso_date(value: Any) -> str | None:
    return None if value is None else date.fromisoformat(value).isoformat()


_CONVERTERS = tuple(
    _text(TEXT_COLUMN_LENGTHS[name])
    if name in TEXT_COLUMN_LENGTHS
    else _iso_date
    if name in DATE_COLUMNS
    else _number
    for name in LISTING_COLUMNS
)
_EXPECTED_KEYS = frozenset(LISTING_COLUMNS)


def listing_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The 12 values of a served row in column order: numbers as floats, dates as YYYY-MM-DD."""
    if row.keys() != _EXPECTED_KEYS:
        raise ValueError(
            f"row has unexpected keys {sorted(row.keys() - _EXPECTED_KEYS)} and lacks "
            f"{sorted(_EXPECTED_KEYS - row.keys())}; expected exactly {list(LISTING_COLUMNS)}"
        )
    values = []
    for name, convert in zip(LISTING_COLUMNS, _CONVERTERS, strict=True):
        try:
            values.append(convert(row[name]))
        except (TypeError, ValueError) as error:
            raise ValueError(f"column {name}={row[name]!r}: {error}") from error
    return tuple(values)


def listing_hash(values: Sequence[Any]) -> bytes:
    """sha1 of a row's normalised values: the same listing hashes the same in every batch.

    repr keeps the encoding unambiguous (None vs "None", separators inside strings)."""
    normalised = "\x1f".join(repr(value) for value in values)
    return hashlib.sha1(normalised.encode(), usedforsecurity=False).digest()


@dataclass(frozen=True)
class RejectedRow:
    position: int  # index in the batch
    served_row: Any
    rule: str


def _json_rows(batch: Batch) -> tuple[list[list[Any]], list[RejectedRow]]:
    """The batch's valid rows as [hash hex, occurrence, 12 values] (a listing repeated in the
    batch gets occurrence 2, 3…), and the rows that are rejected, with every rule they broke:
    first those whose values cannot be stored at all, then those the listing schema rejects."""
    parsed: dict[int, tuple[Any, ...]] = {}
    rejected = []
    for position, served in enumerate(batch.rows):
        try:
            parsed[position] = listing_values(served)
        except (AttributeError, ValueError) as error:  # AttributeError: a row that is not an object
            rejected.append(RejectedRow(position, served, str(error)))
    frame = pd.DataFrame.from_dict(parsed, orient="index", columns=list(LISTING_COLUMNS))
    checked = validate_listings(frame)
    rejected += [
        RejectedRow(position, batch.rows[position], rule)
        for position, rule in checked.quarantined["rule"].items()
    ]
    occurrences: dict[bytes, int] = {}
    rows = []
    for position in checked.valid.index:
        values = parsed[position]
        digest = listing_hash(values)
        occurrences[digest] = occurrences.get(digest, 0) + 1
        rows.append([digest.hex(), occurrences[digest], *values])
    return rows, sorted(rejected, key=lambda row: row.position)


# Rows per INSERT: ~250 bytes of JSON each, far below max_allowed_packet (16 MB on MariaDB).
ROWS_PER_STATEMENT = 5_000


def _insert_listings_statement() -> TextClause:
    """INSERT IGNORE … SELECT … FROM JSON_TABLE(:rows): rows travel as one JSON parameter.

    The driver then escapes one string instead of every value, which is where about half of an
    executemany's time goes (to_sql's path), and the server parses the JSON in C. JSON_TABLE
    needs MySQL 8.0.4+ or MariaDB 10.6+. IGNORE skips rows whose unique key is stored already
    (a batch served again); it would also store bad values with a warning, which is why
    `listing_values` checks every value first. Column types come from the table definition."""
    dialect = mysql.dialect()
    quote = dialect.identifier_preparer.quote
    provenance = ("generation", "group_number", "day", "batch_number", "fetched_at")
    from_json = ("occurrence", *LISTING_COLUMNS)  # at $[1]…, after the hash's hex at $[0]
    json_columns = ", ".join(
        f"{quote(name)} {realtor_raw.c[name].type.compile(dialect=dialect)} PATH '$[{index}]'"
        for index, name in enumerate(from_json, start=1)
    )
    return text(
        f"INSERT IGNORE INTO {quote(realtor_raw.name)} "
        f"({', '.join(quote(name) for name in (*provenance, 'listing_hash', *from_json))}) "
        f"SELECT {', '.join(f':{name}' for name in provenance)}, UNHEX(j.hash_hex), "
        f"{', '.join(f'j.{quote(name)}' for name in from_json)} "
        f"FROM JSON_TABLE(:rows, '$[*]' COLUMNS (hash_hex CHAR({2 * LISTING_HASH_BYTES}) PATH '$[0]', "
        f"{json_columns})) AS j"
    )


INSERT_LISTINGS = _insert_listings_statement()


def _store_batch(
    connection: Connection, batch: Batch, generation: int, fetched_at: datetime
) -> tuple[int, int]:
    """Insert the batch's rows that are not stored yet and quarantine the rows that cannot be
    stored; returns (rows inserted, rows of the batch quarantined)."""
    batch_key = {
        "generation": generation,
        "group_number": batch.group_number,
        "day": batch.day,
        "batch_number": batch.batch_number,
    }
    # Skipping the stored rows up front is much cheaper than letting IGNORE reject each one,
    # and a batch served again is the usual case; IGNORE still covers a concurrent writer.
    stored = connection.execute(
        select(realtor_raw.c.listing_hash, realtor_raw.c.occurrence).where(
            *(realtor_raw.c[column] == value for column, value in batch_key.items())
        )
    )
    stored_keys = {(digest.hex(), occurrence) for digest, occurrence in stored}
    storable, rejected = _json_rows(batch)
    if rejected:
        quarantine = insert(realtor_quarantine).prefix_with("IGNORE")
        connection.execute(quarantine, [
            {**batch_key, "fetched_at": fetched_at, "position": row.position,
             "served_row": json.dumps(row.served_row, default=str), "rule": row.rule}
            for row in rejected
        ])  # fmt: skip
    rows = [row for row in storable if (row[0], row[1]) not in stored_keys]
    inserted = 0
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = json.dumps(rows[start : start + ROWS_PER_STATEMENT], allow_nan=False, separators=(",", ":"))
        parameters = {**batch_key, "fetched_at": fetched_at, "rows": chunk}
        inserted += connection.execute(INSERT_LISTINGS, parameters).rowcount
    return inserted, len(rejected)


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # DATETIME columns hold naive UTC


def _with_counts(report: IngestReport, inserted: int, quarantined: int) -> IngestReport:
    """The report of a stored batch: what was new, quarantined, or stored already."""
    storable = report.received - quarantined
    return replace(
        report,
        inserted=inserted,
        quarantined=quarantined,
        duplicate=storable - inserted,
        outcome=IngestOutcome.REPEAT if storable and not inserted else IngestOutcome.INGESTED,
    )


def ingest_batch(engine: Engine, response_json: Mapping[str, Any], generation: int) -> IngestReport:
    """Store one data API response under `generation`, in one transaction (no ingestion_log row)."""
    clock = time.monotonic()
    batch = Batch.from_response(response_json)
    with engine.begin() as connection:
        counts = _store_batch(connection, batch, generation, _utc_now())
    report = IngestReport(
        group_number=batch.group_number,
        day=batch.day,
        generation=generation,
        outcome=IngestOutcome.INGESTED,
        batch_number=batch.batch_number,
        received=len(batch.rows),
    )
    return replace(_with_counts(report, *counts), duration_s=time.monotonic() - clock)


# --- Collection generations -------------------------------------------------------------------


def _generation_filter(group_number: int, day: str) -> tuple:
    return (collection_generation.c.group_number == group_number, collection_generation.c.day == day)


def current_generation(engine: Engine, group_number: int, day: str) -> int:
    """The collection generation this (group, day) is on; the first call records generation 1."""
    with engine.begin() as connection:
        latest = connection.execute(
            select(func.max(collection_generation.c.generation)).where(*_generation_filter(group_number, day))
        ).scalar_one()
        if latest is not None:
            return latest
        # IGNORE: a concurrent first call may have recorded it already.
        connection.execute(
            insert(collection_generation)
            .prefix_with("IGNORE")
            .values(
                group_number=group_number,
                day=day,
                generation=1,
                started_at=_utc_now(),
                reason="first collection",
            )
        )
    return 1


def start_new_generation(engine: Engine, group_number: int, day: str, reason: str) -> int:
    """Record the next collection generation of this (group, day) and return its number."""
    with engine.begin() as connection:
        latest = connection.execute(
            select(func.max(collection_generation.c.generation))
            .where(*_generation_filter(group_number, day))
            .with_for_update()
        ).scalar_one()
        generation = (latest or 0) + 1
        connection.execute(
            insert(collection_generation).values(
                group_number=group_number,
                day=day,
                generation=generation,
                started_at=_utc_now(),
                reason=reason,
            )
        )
    log.info(
        "event=new_generation group=%s day=%s generation=%d reason=%r", group_number, day, generation, reason
    )
    return generation


def restart_collection(
    client: DataApiClient, engine: Engine, group_number: int, day: str, reason: str = "data API restarted"
) -> int:
    """Start a new generation and restart the data API's (group, day); returns the generation."""
    # Generation first: should the restart call then fail, the worst case is an empty
    # generation, whereas batches of a restarted API stored under the old generation would
    # collide with its keys and be dropped as repeats.
    generation = start_new_generation(engine, group_number, day, reason)
    client.restart(group_number, day)
    return generation


# --- One call to the data API, logged ---------------------------------------------------------


def _write_log(connection: Connection, report: IngestReport, started_at: datetime, detail: str | None) -> int:
    result = connection.execute(
        insert(ingestion_log).values(
            group_number=report.group_number,
            day=report.day,
            batch_number=report.batch_number,
            generation=report.generation,
            started_at=started_at,
            duration_s=report.duration_s,
            rows_received=report.received,
            rows_inserted=report.inserted,
            rows_duplicate=report.duplicate,
            rows_quarantined=report.quarantined,
            outcome=report.outcome,
            detail=detail,
        )
    )
    return result.inserted_primary_key[0]


def _log_event(report: IngestReport) -> None:
    log.info(
        "event=ingest group=%s day=%s generation=%s batch=%s outcome=%s received=%d inserted=%d "
        "duplicate=%d quarantined=%d duration_s=%.3f",
        report.group_number,
        report.day,
        report.generation,
        report.batch_number,
        report.outcome,
        report.received,
        report.inserted,
        report.duplicate,
        report.quarantined,
        report.duration_s,
    )


def fetch_and_ingest(client: DataApiClient, engine: Engine, group_number: int, day: str) -> IngestReport:
    """Fetch the current batch of (group, day), store it and log the call in ingestion_log.

    The rows and their log row commit together; an exhausted data API is logged and reported
    (outcome `exhausted`); any failure is logged in a transaction of its own and re-raised."""
    started_at, clock = _utc_now(), time.monotonic()
    generation = current_generation(engine, group_number, day)
    report = IngestReport(group_number, day, generation, IngestOutcome.ERROR)
    try:
        result = client.fetch_batch(group_number, day)
        with engine.begin() as connection:
            if isinstance(result, Exhausted):
                report, detail = replace(report, outcome=IngestOutcome.EXHAUSTED), result.detail
            else:
                report = replace(report, batch_number=result.batch_number, received=len(result.rows))
                report = _with_counts(report, *_store_batch(connection, result, generation, started_at))
                detail = None
            report = replace(report, duration_s=time.monotonic() - clock)
            report = replace(report, log_id=_write_log(connection, report, started_at, detail))
    except Exception as error:
        # Nothing of the batch was committed; its number and size are kept when it arrived.
        failed = replace(report, outcome=IngestOutcome.ERROR, inserted=0, duration_s=time.monotonic() - clock)
        _log_event(failed)
        try:
            with engine.begin() as connection:
                _write_log(connection, failed, started_at, f"{type(error).__name__}: {error}")
        except SQLAlchemyError:
            # The original error is the one to report; this one is only logged.
            log.exception("event=ingestion_log_write_failed group=%s day=%s", group_number, day)
        raise
    _log_event(report)
    return report
