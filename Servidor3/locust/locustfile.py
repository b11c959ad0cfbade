"""Load test of node 3's inference API: single predictions, batches and model info.

Listings come from listings.json (rows cut by the data API's own code, see sample_listings.py),
so this file needs nothing but Locust and runs the same from `make load-test` and in the Locust
Deployment. When the run quits it fails (exit code 1) if the failure ratio is above
--max-failure-ratio or the p95 response time is above --p95-slo-ms, and logs the numbers.
"""

import json
import logging
import random
from functools import cache
from pathlib import Path

from locust import HttpUser, between, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

# The API's latency SLO, also the threshold of the InferenceApiLatencyAboveSlo alert (a test
# keeps the two equal).
P95_SLO_MS = 500
MAX_FAILURE_RATIO = 0.01
BATCH_ROWS = (2, 32)  # rows per /predict/batch request, drawn uniformly

log = logging.getLogger("realtor_load_test")


@events.init_command_line_parser.add_listener
def add_options(parser) -> None:
    parser.add_argument(
        "--p95-slo-ms",
        type=float,
        env_var="LOCUST_P95_SLO_MS",
        default=P95_SLO_MS,
        help="fail the run when the p95 response time of all requests is above this (ms)",
    )
    parser.add_argument(
        "--max-failure-ratio",
        type=float,
        env_var="LOCUST_MAX_FAILURE_RATIO",
        default=MAX_FAILURE_RATIO,
        help="fail the run when a larger share of the requests failed",
    )
    parser.add_argument(
        "--listings-file",
        env_var="LOCUST_LISTINGS_FILE",
        default=str(Path(__file__).with_name("listings.json")),
        help="JSON list of listings to send",
    )


@cache
def read_listings(path: str) -> list[dict]:
    return json.loads(Path(path).read_text())


class ListingClient(HttpUser):
    """A client pricing listings: mostly one at a time, sometimes a batch, now and then asking
    which model answers."""

    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.listings = read_listings(self.environment.parsed_options.listings_file)

    @task(6)
    def predict_one(self) -> None:
        self.client.post("/predict", json=random.choice(self.listings))

    @task(2)
    def predict_batch(self) -> None:
        rows = random.sample(self.listings, random.randint(*BATCH_ROWS))
        self.client.post("/predict/batch", json={"listings": rows})

    @task(1)
    def model_info(self) -> None:
        self.client.get("/model")


@events.quitting.add_listener
def enforce_slo(environment: Environment, **_kwargs) -> None:
    """Sets the exit code from the SLO alone: Locust's own default fails on any failure at all."""
    if isinstance(environment.runner, WorkerRunner):
        return  # the master judges the aggregated numbers
    options = environment.parsed_options
    total = environment.stats.total
    p95_ms = total.get_response_time_percentile(0.95) or 0
    breaches = []
    if total.num_requests == 0:
        breaches.append("no requests were made")
    if total.fail_ratio > options.max_failure_ratio:
        breaches.append("failure_ratio")
    if p95_ms > options.p95_slo_ms:
        breaches.append("p95")
    numbers = (
        f"requests={total.num_requests} failures={total.num_failures} "
        f"failure_ratio={total.fail_ratio:.4f} max_failure_ratio={options.max_failure_ratio:g} "
        f"p95_ms={p95_ms:.0f} p95_slo_ms={options.p95_slo_ms:g}"
    )
    if breaches:
        log.error("event=slo_failed %s breached=%s", numbers, ",".join(breaches))
        environment.process_exit_code = 1
    else:
        log.info("event=slo_met %s", numbers)
        environment.process_exit_code = 0
