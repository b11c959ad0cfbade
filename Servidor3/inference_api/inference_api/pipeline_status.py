"""Read-only view of node 1's ingestion for the Streamlit page: `GET /pipeline/ingestion` and
`GET /pipeline/quarantine`.

The page holds no database credentials, so it asks this API, which reads RawData's
`ingestion_log` and `realtor_quarantine` as a SELECT-only MySQL user (created by
Servidor1/mysql/init-databases.sh when PIPELINE_STATUS_PASSWORD is set). The tables are the
pipeline's (Servidor1's tables.py); their column names are repeated here because serving never
imports training code. Nothing here writes, and nothing here is on the prediction path: one short
connection per request, and an empty PIPELINE_STATUS_HOST turns both endpoints into 503s.
"""

import contextlib
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated

import MySQLdb
from fastapi import APIRouter, HTTPException, Query
from pydantic import AfterValidator, BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

TIMEOUT_SECONDS = 5
NO_SUCH_TABLE = 1146  # MySQL's ER_NO_SUCH_TABLE: the pipeline has not ingested anything yet
RULE_SEPARATOR = "; "  # how node 1's validate.py joins the rules one row broke


class PipelineStatusSettings(BaseSettings):
    """Where node 1's RawData is, as the SELECT-only status user sees it."""

    model_config = SettingsConfigDict(env_prefix="PIPELINE_STATUS_")

    host: str = ""  # empty: the endpoints answer 503
    port: int = 3306
    database: str = "RawData"
    user: str = "pipeline_status"
    password: str = ""


# Node 1 stores times in UTC without an offset; JSON Schema's date-time (RFC 3339) needs one.
UtcDatetime = Annotated[datetime, AfterValidator(lambda value: value.replace(tzinfo=value.tzinfo or UTC))]


class IngestionRow(BaseModel):
    id: int
    group_number: int
    day: str
    generation: int
    batch_number: int | None
    started_at: UtcDatetime
    duration_s: float
    rows_received: int
    rows_inserted: int
    rows_duplicate: int
    rows_quarantined: int
    outcome: str
    detail: str | None


class QuarantineReason(BaseModel):
    reason: str
    rows: int


class QuarantinedRow(BaseModel):
    id: int
    generation: int
    group_number: int
    day: str
    batch_number: int
    position: int
    fetched_at: UtcDatetime
    rule: str
    served_row: str


class QuarantineSummary(BaseModel):
    total_rows: int
    reasons: list[QuarantineReason]  # each rule on its own (a row may break several), most rows first
    recent: list[QuarantinedRow]  # newest first


INGESTION_QUERY = (
    f"SELECT {', '.join(IngestionRow.model_fields)} FROM ingestion_log ORDER BY id DESC LIMIT %s"
)
RULE_COUNTS_QUERY = "SELECT rule, COUNT(*) FROM realtor_quarantine GROUP BY rule"
RECENT_QUARANTINE_QUERY = (
    f"SELECT {', '.join(QuarantinedRow.model_fields)} FROM realtor_quarantine ORDER BY id DESC LIMIT %s"
)


def router(settings: PipelineStatusSettings | None = None) -> APIRouter:
    settings = settings or PipelineStatusSettings()
    routes = APIRouter(prefix="/pipeline", tags=["pipeline status"])

    def query(sql: str, *parameters: object) -> list[tuple]:
        if not settings.host:
            raise HTTPException(503, "pipeline status is off: PIPELINE_STATUS_HOST is not set")
        try:
            connection = MySQLdb.connect(
                host=settings.host,
                port=settings.port,
                user=settings.user,
                password=settings.password,
                database=settings.database,
                connect_timeout=TIMEOUT_SECONDS,
                read_timeout=TIMEOUT_SECONDS,
                charset="utf8mb4",
            )
        except MySQLdb.Error as error:
            raise HTTPException(
                503, f"node 1's MySQL at {settings.host}:{settings.port} is not reachable: {error}"
            ) from None
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, parameters or None)
                return list(cursor.fetchall())
        except MySQLdb.ProgrammingError as error:
            if error.args[0] == NO_SUCH_TABLE:
                return []
            raise
        finally:
            with contextlib.suppress(MySQLdb.Error):  # the answer is read already
                connection.close()

    # Plain `def`: FastAPI runs them in its thread pool, so a slow MySQL never blocks predictions.
    @routes.get("/ingestion")
    def ingestion(limit: int = Query(200, ge=1, le=5_000)) -> list[IngestionRow]:
        """The newest `limit` calls to the data API, newest first, with their row counts."""
        fields = IngestionRow.model_fields
        return [IngestionRow(**dict(zip(fields, row, strict=True))) for row in query(INGESTION_QUERY, limit)]

    @routes.get("/quarantine")
    def quarantine(limit: int = Query(50, ge=0, le=1_000)) -> QuarantineSummary:
        """How many rows each validation rule rejected, and the newest `limit` rejected rows."""
        rule_counts = query(RULE_COUNTS_QUERY)
        reasons: Counter[str] = Counter()
        for rules, rows in rule_counts:
            for rule in rules.split(RULE_SEPARATOR):
                reasons[rule] += rows
        fields = QuarantinedRow.model_fields
        recent = query(RECENT_QUARANTINE_QUERY, limit) if limit else []
        return QuarantineSummary(
            total_rows=sum(rows for _, rows in rule_counts),
            reasons=[QuarantineReason(reason=rule, rows=rows) for rule, rows in reasons.most_common()],
            recent=[QuarantinedRow(**dict(zip(fields, row, strict=True))) for row in recent],
        )

    return routes
