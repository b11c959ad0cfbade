"""`make bench-serving`: our inference API against `mlflow models serve` and the seed's per-request
model loading, serving the same registered version with the same payloads, in one run.

The bench starts its own `mlflow server` (node 2's start script, with a SQLite backend and a local
artefact folder in a temporary directory), trains one HistGradientBoosting configuration of node
1's search on generated listings, registers it with node 1's `register_model` and points
`@champion` at it. Then it starts, one at a time so they never compete for the cores, each with
one uvicorn worker and one OpenMP thread:
- ours: the inference API's POST /predict and /predict/batch (the inference log off: no MySQL);
- `mlflow models serve -m models:/NAME@champion --env-manager local -w 1`, POST /invocations
  with `{"dataframe_records": [...]}`;
- the seed's design, `bench_peers/per_request_loading.py`: `mlflow.pyfunc.load_model` inside every
  request, then a one-row DataFrame predict.
Each gets the same payloads (the test split's listings as the API receives them, no price) from
client threads in this process (one keep-alive connection each) at each concurrency level for a
fixed time, so the slow peer finishes too; ours and mlflow serve then get 1,000-row batches.

It prints RPS and p50/p95/p99 latency per server and level with the ratio of our RPS to each
peer's, batch rows/s of both with their ratio, and each target as met or missed. It also prints
the server CPU each request cost (the server's processes and the registry's, from /proc): on
shared cores other people's work moves RPS and latency from run to run, CPU per request much less.

A benchmark, not a test: it never fails on a missed target. Run it from the repository root with
`.` and `Servidor1/pipeline` on PYTHONPATH (the Makefile does); every process it starts is stopped
on exit, error or Ctrl-C.
"""

import argparse
import http.client
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from data_api.generator import generate_listings
from realtor_pipeline import registry
from realtor_pipeline.evaluate import TARGET
from realtor_pipeline.split import clean_training_rows, priced_rows, split_of
from realtor_pipeline.train import build_candidates
from realtor_pipeline.validate import validate_listings

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent  # the Makefile runs the venv's python; its servers live beside it
HOST = "127.0.0.1"
JSON_HEADERS = {"Content-Type": "application/json"}

STATES = ("Connecticut", "Florida", "Massachusetts", "Puerto Rico")
SEED = 2024
MODEL_NAME = "bench-serving"
# The first of node 1's boosting configurations: sklearn's default shape at the search's tree cap,
# the costliest of them to serve.
BOOSTING_CONFIG = 0

OURS, MLFLOW_SERVE, PER_REQUEST = "ours: /predict", "mlflow models serve", "per-request loading (seed)"
TARGET_P50_MS = 5.0  # ours, at the lowest concurrency
TARGET_RPS_RATIO = {MLFLOW_SERVE: 4.0, PER_REQUEST: 50.0}  # ours / theirs, at every concurrency
TARGET_BATCH_ROWS_PER_S = 50_000
START_TIMEOUT_S = 240  # a cold `mlflow server` migrates its database first; ~60 s on a loaded machine
REQUEST_TIMEOUT_S = 120  # the per-request loader at concurrency 16 takes seconds per request


class ServerFailed(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def answers_200(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


@contextmanager
def running(name: str, command: list[str], env: dict[str, str], log: Path, port: int, ready_path: str):
    """A server in its own process group, once GET `ready_path` answers 200; stopped with its
    children however the block ends."""
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not answers_200(port, ready_path):
            if process.poll() is not None:
                raise ServerFailed(f"{name} exited with code {process.returncode}{log_tail(log)}")
            if time.monotonic() > deadline:
                raise ServerFailed(f"{name} not ready after {START_TIMEOUT_S} s{log_tail(log)}")
            time.sleep(0.25)
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the group (uvicorn and mlflow fork workers), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def log_tail(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()[-30:]
    return f"\n--- last lines of {log.name} ---\n" + "\n".join(lines)


def server_env(scratch: Path, **settings: str) -> dict[str, str]:
    """The bench's environment for a server, with one OpenMP thread and temporary files in `scratch`
    (the per-request loader downloads the model into a new folder every request)."""
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",
        "TMPDIR": str(scratch),
        "PYTHONPATH": "",  # servers import only what their own settings add: never training code
        **settings,
    }


def as_json(rows: pd.DataFrame) -> list[dict]:
    """Rows as a client sends them: NaN becomes null."""
    return [
        {
            key: (None if isinstance(value, float) and math.isnan(value) else value)
            for key, value in row.items()
        }
        for row in rows.to_dict("records")
    ]


@dataclass(frozen=True)
class BenchModel:
    version: str
    description: str
    listings: list[dict]  # the test split, as the API receives it


def train_and_register(rows_per_state: int) -> BenchModel:
    """One configuration of node 1's boosting candidate, trained as the DAG trains, made @champion."""
    listings = pd.concat(
        [generate_listings(state, rows_per_state, SEED) for state in STATES], ignore_index=True
    )
    priced = priced_rows(validate_listings(listings).valid)
    split = split_of(priced)
    train = clean_training_rows(priced[split == "train"])
    boosting = next(
        candidate for candidate in build_candidates() if candidate.name == "hist_gradient_boosting"
    )
    config = boosting.configs[BOOSTING_CONFIG]
    model = clone(boosting.estimator).set_params(
        **{f"regressor__{key}": value for key, value in config.items()}
    )
    with threadpool_limits(limits=1):
        model.fit(train, train[TARGET])
    mlflow.set_experiment(MODEL_NAME)
    with mlflow.start_run() as run:
        version = registry.register_model(
            run.info.run_id, model, train, MODEL_NAME, {"source": "bench-serving"}
        )
    mlflow.MlflowClient().set_registered_model_alias(MODEL_NAME, registry.CHAMPION, version.version)
    description = f"{boosting.name} {config}, trained on {len(train):,} rows"
    return BenchModel(version.version, description, as_json(registry.as_served(priced[split == "test"])))


@dataclass(frozen=True)
class BatchForm:
    """How a server takes many listings in one request and answers their prices."""

    path: str
    body: Callable[[list[dict]], dict]
    prices: Callable[[dict], list[float]]


@dataclass(frozen=True)
class Served:
    """How one server is started and asked: its command, readiness path and request bodies."""

    name: str
    log_name: str
    command: list[str]
    settings: dict[str, str]
    ready_path: str
    predict_path: str
    one_listing: Callable[[dict], dict]
    batch: BatchForm | None = None


def servers_of(tracking_uri: str) -> list[Served]:
    mlflow_serve = [
        str(VENV_BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        f"models:/{MODEL_NAME}@{registry.CHAMPION}",
    ]
    uvicorn = [str(VENV_BIN / "uvicorn"), "--host", HOST, "--workers", "1", "--log-level", "warning"]
    champion_of = {"MLFLOW_TRACKING_URI": tracking_uri, "MODEL_NAME": MODEL_NAME}  # alias: champion
    return [
        Served(
            OURS,
            "inference_api",
            [*uvicorn, "--factory", "inference_api.app:create_app"],
            {
                **champion_of,
                "PYTHONPATH": str(REPO_ROOT / "Servidor3" / "inference_api"),
                "INFERENCE_LOG_HOST": "",
            },
            ready_path="/ready",
            predict_path="/predict",
            one_listing=lambda listing: listing,
            batch=BatchForm(
                "/predict/batch", lambda listings: {"listings": listings}, lambda body: body["prices"]
            ),
        ),
        Served(
            MLFLOW_SERVE,
            "mlflow_models_serve",
            [*mlflow_serve, "--env-manager", "local", "-w", "1", "-h", HOST],
            {"MLFLOW_TRACKING_URI": tracking_uri},
            ready_path="/ping",
            predict_path="/invocations",
            one_listing=lambda listing: {"dataframe_records": [listing]},
            batch=BatchForm(
                "/invocations",
                lambda listings: {"dataframe_records": listings},
                lambda body: body["predictions"],
            ),
        ),
        Served(
            PER_REQUEST,
            "per_request_loading",
            [*uvicorn, "--factory", "bench_peers.per_request_loading:create_app"],
            {**champion_of, "PYTHONPATH": str(REPO_ROOT / "Servidor3")},
            ready_path="/health",
            predict_path="/predict",
            one_listing=lambda listing: listing,
        ),
    ]


@dataclass(frozen=True)
class Endpoint:
    server: str
    port: int
    # Process groups whose CPU time a request costs: the server's and the registry's (which the
    # per-request loader calls every request, and the others not at all).
    process_groups: tuple[int, ...]


@dataclass(frozen=True)
class Measured:
    server: str
    concurrency: int
    seconds: float  # from the first request to the last answer
    latencies_s: list[float]  # of the 200s
    errors: int
    cpu_seconds: float  # used by the endpoint's process groups meanwhile

    @property
    def per_second(self) -> float:
        return len(self.latencies_s) / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return 1_000 * self.cpu_seconds / len(self.latencies_s) if self.latencies_s else math.nan

    def percentile_ms(self, percent: float) -> float:
        return 1_000 * float(np.percentile(self.latencies_s, percent)) if self.latencies_s else math.nan


def group_cpu_seconds(process_groups: Sequence[int]) -> float:
    """User + system CPU of every live process in the groups, from /proc (Linux)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # the name before ")" may hold spaces
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) in process_groups:  # pgrp; then utime and stime, in clock ticks
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def drive(
    endpoint: Endpoint, path: str, bodies: Sequence[bytes], concurrency: int, seconds: float
) -> Measured:
    """`concurrency` client threads, each on its own keep-alive connection, posting bodies in turn
    until `seconds` have passed; requests in flight then are waited for and counted."""
    deadline = time.perf_counter() + seconds
    interrupted = threading.Event()

    def client(first: int) -> tuple[list[float], int]:
        connection = http.client.HTTPConnection(HOST, endpoint.port, timeout=REQUEST_TIMEOUT_S)
        latencies, errors, position = [], 0, first
        while time.perf_counter() < deadline and not interrupted.is_set():
            body = bodies[position % len(bodies)]
            position += concurrency
            started = time.perf_counter()
            try:
                connection.request("POST", path, body, JSON_HEADERS)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                connection.close()  # reconnects on the next request
                errors += 1
                continue
            if response.status == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
        connection.close()
        return latencies, errors

    cpu_before = group_cpu_seconds(endpoint.process_groups)
    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        try:
            results = list(pool.map(client, range(concurrency)))
        except BaseException:
            interrupted.set()
            raise
        elapsed = time.perf_counter() - started
    cpu = group_cpu_seconds(endpoint.process_groups) - cpu_before
    latencies = [latency for thread_latencies, _ in results for latency in thread_latencies]
    errors = sum(thread_errors for _, thread_errors in results)
    return Measured(endpoint.server, concurrency, elapsed, latencies, errors, cpu)


def post_json(port: int, path: str, body: bytes) -> dict:
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
    try:
        connection.request("POST", path, body, JSON_HEADERS)
        response = connection.getresponse()
        text = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise ServerFailed(f"POST {path} answered {response.status}: {text[:500]!r}")
    return json.loads(text)


@dataclass
class Results:
    single: list[Measured]
    batches: list[Measured]
    batch_rows: int
    batch_prices: dict[str, list[float]]


def bench_server(
    served: Served,
    registry_group: int,
    scratch: Path,
    listings: list[dict],
    options: argparse.Namespace,
    results: Results,
) -> None:
    port = free_port()
    command = [*served.command, "--port", str(port)]
    env = server_env(scratch, **served.settings)
    started = time.perf_counter()
    log = scratch / f"{served.log_name}.log"
    with running(served.name, command, env, log, port, served.ready_path) as process:
        print(f"  {served.name}: up in {time.perf_counter() - started:.1f} s", flush=True)
        endpoint = Endpoint(served.name, port, (process.pid, registry_group))
        bodies = [json.dumps(served.one_listing(listing)).encode() for listing in listings]
        drive(endpoint, served.predict_path, bodies, 1, options.warmup_seconds)
        for concurrency in options.concurrency:
            results.single.append(drive(endpoint, served.predict_path, bodies, concurrency, options.seconds))
        if served.batch:
            batch = [listings[row % len(listings)] for row in range(options.batch_rows)]
            body = json.dumps(served.batch.body(batch)).encode()
            results.batch_prices[served.name] = served.batch.prices(post_json(port, served.batch.path, body))
            results.batches.append(drive(endpoint, served.batch.path, [body], 1, options.batch_seconds))
        failed = sum(m.errors for m in [*results.single, *results.batches] if m.server == served.name)
        if failed:  # the log goes with the temporary directory: show why now
            errors = [line for line in log.read_text(errors="replace").splitlines() if "Error" in line]
            print(
                f"  {served.name}: {failed} failed requests; its last errors:",
                *errors[-5:] or ["none logged"],
                sep="\n    ",
            )


def ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else math.inf


def single_table(results: Results) -> pd.DataFrame:
    ours = {m.concurrency: m.per_second for m in results.single if m.server == OURS}
    rows = [
        {
            "server": m.server,
            "concurrency": m.concurrency,
            "requests": len(m.latencies_s),
            "errors": m.errors,
            "RPS": m.per_second,
            "p50 ms": m.percentile_ms(50),
            "p95 ms": m.percentile_ms(95),
            "p99 ms": m.percentile_ms(99),
            "CPU ms/req": m.cpu_ms_per_request,
            "ours RPS / this": ratio(ours[m.concurrency], m.per_second),
        }
        for m in sorted(results.single, key=lambda m: m.concurrency)
    ]
    return pd.DataFrame(rows)


def batch_table(results: Results) -> pd.DataFrame:
    rows_per_s = {m.server: m.per_second * results.batch_rows for m in results.batches}
    rows = [
        {
            "server": m.server,
            "batch rows": results.batch_rows,
            "batches": len(m.latencies_s),
            "errors": m.errors,
            "rows/s": rows_per_s[m.server],
            "p50 ms per batch": m.percentile_ms(50),
            "CPU ms per batch": m.cpu_ms_per_request,
            "ours rows/s / this": ratio(rows_per_s[OURS], rows_per_s[m.server]),
        }
        for m in results.batches
    ]
    return pd.DataFrame(rows)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def print_report(results: Results) -> None:
    single, batches = single_table(results), batch_table(results)
    print("\nSingle listings (one per request):")
    print(single.to_string(index=False, float_format="{:,.2f}".format))
    print(f"\nBatches of {results.batch_rows:,} listings:")
    print(batches.to_string(index=False, float_format="{:,.1f}".format))
    if len(results.batch_prices) == 2:
        ours, theirs = (np.asarray(results.batch_prices[name]) for name in (OURS, MLFLOW_SERVE))
        print(f"same predictions: max |ours / mlflow serve - 1| = {np.max(np.abs(ours / theirs - 1)):.1e}")

    print("\nTargets:")
    lowest = single[(single["server"] == OURS)].sort_values("concurrency").iloc[0]
    print(
        f"  ours p50 at concurrency {lowest['concurrency']}: {lowest['p50 ms']:.2f} ms "
        f"(target <= {TARGET_P50_MS:g} ms: {verdict(lowest['p50 ms'] <= TARGET_P50_MS)})"
    )
    for peer, target in TARGET_RPS_RATIO.items():
        ratios = single[single["server"] == peer].set_index("concurrency")["ours RPS / this"]
        each = ", ".join(f"{ratio:,.1f}x at {concurrency}" for concurrency, ratio in ratios.items())
        met = verdict(ratios.min() >= target)
        print(f"  ours RPS / {peer} RPS: {each} (target >= {target:g}x at each: {met})")
    ours_rows = batches.set_index("server")["rows/s"].get(OURS, math.nan)
    print(
        f"  ours batch rows/s: {ours_rows:,.0f} "
        f"(target >= {TARGET_BATCH_ROWS_PER_S:,}: {verdict(ours_rows >= TARGET_BATCH_ROWS_PER_S)})"
    )


def registry_server(scratch: Path) -> tuple[int, list[str], dict[str, str]]:
    port = free_port()
    env = server_env(
        scratch,
        MLFLOW_BACKEND_STORE_URI=f"sqlite:///{scratch / 'mlflow.db'}",
        MLFLOW_ARTIFACTS_DESTINATION=str(scratch / "artifacts"),
        MLFLOW_HOST=HOST,
        MLFLOW_PORT=str(port),
    )
    return port, [str(REPO_ROOT / "Servidor2" / "mlflow" / "start-mlflow.sh")], env


def run(options: argparse.Namespace) -> None:
    clock = time.perf_counter()
    print(
        f"bench-serving: {os.cpu_count()} cores (shared; load average {os.getloadavg()[0]:.2f} at start), "
        f"{options.seconds:g} s per server and concurrency, batches for {options.batch_seconds:g} s",
        flush=True,
    )
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-serving-")))
        port, command, env = registry_server(scratch)
        registry_process = stack.enter_context(
            running("mlflow server", command, env, scratch / "mlflow_server.log", port, "/health")
        )
        tracking_uri = f"http://{HOST}:{port}"
        mlflow.set_tracking_uri(tracking_uri)
        model = train_and_register(options.rows_per_state)
        print(
            f"  model {MODEL_NAME} v{model.version}@{registry.CHAMPION}: {model.description}; "
            f"{len(model.listings):,} test listings as payloads",
            flush=True,
        )
        results = Results([], [], options.batch_rows, {})
        for served in servers_of(tracking_uri):
            bench_server(served, registry_process.pid, scratch, model.listings, options, results)
    print_report(results)
    print(
        f"\nwhole run {time.perf_counter() - clock:.0f} s; load average at the end {os.getloadavg()[0]:.2f}"
    )


def parse_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="load time per server and concurrency level"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 4, 16],
        help="client threads, one level after another",
    )
    parser.add_argument("--batch-rows", type=int, default=1_000, help="listings per batch request")
    parser.add_argument("--batch-seconds", type=float, default=5.0, help="load time of the batch requests")
    parser.add_argument(
        "--warmup-seconds", type=float, default=1.0, help="unmeasured requests before each server"
    )
    parser.add_argument(
        "--rows-per-state", type=int, default=2_500, help=f"generated listings of each of {STATES}"
    )
    return parser.parse_args(argv)


def main() -> int:
    options = parse_options()
    # Only the bench's own lines on the console: MLflow's run links and INFO logs are noise here.
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # Ctrl-C raises KeyboardInterrupt; a plain `kill` must unwind the same way, so servers are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        run(options)
    except ServerFailed as error:
        print(f"bench-serving: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench-serving: interrupted; every server it started is stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
