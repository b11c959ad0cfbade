"""Every prediction, written to node 1's `InferenceLog.inference_log` in batches, off the request path.

Requests only put rows on a bounded queue (never blocking); one writer thread inserts them in
multi-row batches. When MySQL is slow or down, the writer holds its batch and retries with
backoff while the queue absorbs new rows; once the queue is full, new rows are dropped and
counted (`realtor_inference_log_rows_dropped_total`), so a database outage never slows or fails
a prediction. The table is created by node 1's MySQL init (Servidor1/mysql/init-databases.sh); the
API's user may only insert into it. It is not a training table and nothing trains on it.
"""

import contextlib
import logging
import queue
import threading
from collections.abc import Iterable

import MySQLdb

from inference_api.metrics import ServingMetrics
from inference_api.schemas import LISTING_FIELDS
from inference_api.settings import ServingSettings

logger = logging.getLogger(__name__)

LOG_COLUMNS = (
    "request_id", "row_in_request", "logged_at", "endpoint", "model_name", "model_version",
    "latency_ms", "predicted_price", *LISTING_FIELDS,
)  # fmt: skip
INSERT = (
    f"INSERT INTO inference_log ({', '.join(LOG_COLUMNS)}) VALUES ({', '.join(['%s'] * len(LOG_COLUMNS))})"
)
MAX_RETRY_SECONDS = 30.0
TIMEOUT_SECONDS = 5  # connect, read and write: a hung server must not stall the writer for long


class InferenceLog:
    def __init__(self, settings: ServingSettings, metrics: ServingMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._queue: queue.Queue[tuple] = queue.Queue(maxsize=settings.inference_log_queue_size)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._write_forever, name="inference-log", daemon=True)
        self._connection: MySQLdb.Connection | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._settings.inference_log_host)

    def start(self) -> None:
        if self.enabled:
            self._thread.start()

    def stop(self) -> None:
        """Flush what can be written within a few seconds; the rest counts as dropped."""
        if not self.enabled:
            return
        self._stopped.set()
        self._thread.join(timeout=TIMEOUT_SECONDS * 2)
        self._metrics.log_rows_dropped.inc(self._queue.qsize())

    def record(self, rows: Iterable[tuple]) -> None:
        """Queue rows (values in LOG_COLUMNS order) without ever blocking."""
        if not self.enabled:
            return
        for row in rows:
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                self._metrics.log_rows_dropped.inc()
        self._metrics.log_queue_depth.set(self._queue.qsize())

    def _write_forever(self) -> None:
        backoff = 0.5
        batch: list[tuple] = []
        while not (self._stopped.is_set() and batch == [] and self._queue.empty()):
            batch = batch or self._next_batch()
            if not batch:
                continue
            try:
                self._insert(batch)
            except MySQLdb.Error as error:
                self._disconnect()
                logger.warning("event=inference_log_write_failed rows=%d error=%r", len(batch), error)
                if self._stopped.wait(backoff):
                    self._metrics.log_rows_dropped.inc(len(batch))
                    return
                backoff = min(backoff * 2, MAX_RETRY_SECONDS)
                continue
            self._metrics.log_rows_written.inc(len(batch))
            self._metrics.log_queue_depth.set(self._queue.qsize())
            batch, backoff = [], 0.5

    def _next_batch(self) -> list[tuple]:
        try:
            batch = [self._queue.get(timeout=self._settings.inference_log_flush_seconds)]
        except queue.Empty:
            return []
        while len(batch) < self._settings.inference_log_batch_rows:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _insert(self, batch: list[tuple]) -> None:
        if self._connection is None:
            settings = self._settings
            self._connection = MySQLdb.connect(
                host=settings.inference_log_host,
                port=settings.inference_log_port,
                user=settings.inference_log_user,
                password=settings.inference_log_password,
                database=settings.inference_log_database,
                connect_timeout=TIMEOUT_SECONDS,
                read_timeout=TIMEOUT_SECONDS,
                write_timeout=TIMEOUT_SECONDS,
                charset="utf8mb4",
            )
        with self._connection.cursor() as cursor:
            cursor.executemany(INSERT, batch)  # mysqlclient sends one multi-row INSERT
        self._connection.commit()

    def _disconnect(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(MySQLdb.Error):  # it is being dropped anyway
                self._connection.close()
            self._connection = None
