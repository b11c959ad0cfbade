"""`make demo`: the whole system on this machine, until a champion model serves predictions.

Starts, as local processes with the commands and settings the manifests use: the listing data API,
MLflow (node 2's start script; the machine's PostgreSQL for metadata, a local folder for
artefacts), Airflow with the `realtor_price_model` DAG (`airflow standalone`: api-server,
scheduler, dag-processor, triggerer; SQLite metadata), the inference API, the Streamlit page and
Prometheus (node 3's config and rules, targets moved to local ports). It then triggers DAG runs
until `@champion` exists, waits for the API to serve it, prints the URLs, the champion's metrics
and a sample prediction, and keeps everything running until Ctrl-C (`--once`: stops there).

Databases default to the ones `make setup` created (credentials from
~/.config/realtor-mlops/credentials.env); PIPELINE_RAW_DATA_URL, PIPELINE_CLEAN_DATA_URL,
MLFLOW_BACKEND_STORE_URI and INFERENCE_LOG_* override them. State (Airflow's home, the data API's
progress, artefacts, logs) lives under --state-dir.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import requests
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
CREDENTIALS_FILE = Path(
    os.environ.get("REALTOR_CREDENTIALS_FILE")
    or Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "realtor-mlops" / "credentials.env"
)
DAG_ID = "realtor_price_model"
MODEL_NAME = "realtor-price"
# Local ports: each service's own container port, Airflow's moved off the data API's 8080.
PORTS = {
    "data_api": 8080,
    "mlflow": 5000,
    "airflow": 8090,
    "inference_api": 8000,
    "streamlit": 8501,
    "prometheus": 9090,
}
MAX_DAG_RUNS = 4  # the first run trains (there is no champion yet); more only if one failed


def log(message: str, started: float = time.monotonic()) -> None:
    print(f"demo [{time.monotonic() - started:6.0f}s] {message}", flush=True)


class Stack:
    """The started processes, each in its own process group, stopped in reverse order."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.processes: list[tuple[str, subprocess.Popen]] = []

    def start(
        self, name: str, command: list[str], env: dict[str, str], ready: Callable[[], bool], timeout=180
    ):
        log_file = self.logs / f"{name}.log"
        with open(log_file, "ab") as out:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((name, process))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"demo: {name} exited with code {process.returncode}; see {log_file}")
            if ready():
                return
            time.sleep(0.5)
        raise SystemExit(f"demo: {name} not ready after {timeout} s; see {log_file}")

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log(f"stopped {name}")


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return requests.get(url, timeout=3).ok
        except requests.RequestException:
            return False

    return check


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_ports_free(ports: dict[str, int]) -> None:
    for name, port in ports.items():
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(
                    f"demo: port {port} ({name}) is in use; stop what uses it or pass --free-ports"
                )


def local_credentials() -> dict[str, str]:
    """The passwords `make setup` generated; empty when the environment names every database."""
    if not CREDENTIALS_FILE.exists():
        return {}
    return dict(line.split("=", 1) for line in CREDENTIALS_FILE.read_text().splitlines() if "=" in line)


def mysql_connection(url: str) -> str:
    """A SQLAlchemy MySQL URL as an Airflow connection in JSON form (how the DAG is configured)."""
    parts = urlsplit(url)
    return json.dumps(
        {
            "conn_type": "mysql",
            "host": parts.hostname,
            "port": parts.port or 3306,
            "schema": parts.path.lstrip("/"),
            "login": parts.username,
            "password": parts.password,
        }
    )


def settings(credentials: dict[str, str]) -> dict[str, str]:
    """Where the databases are: the environment's choice, else the ones `make setup` created."""
    mysql = f"mysql+mysqldb://realtor_pipeline:{credentials.get('PIPELINE_DB_PASSWORD', '')}@127.0.0.1:3306"
    defaults = {
        "PIPELINE_RAW_DATA_URL": f"{mysql}/RawData",
        "PIPELINE_CLEAN_DATA_URL": f"{mysql}/CleanData",
        "MLFLOW_BACKEND_STORE_URI": (
            f"postgresql+psycopg2://mlflow:{credentials.get('MLFLOW_DB_PASSWORD', '')}@127.0.0.1:5432/mlflow"
        ),
        "INFERENCE_LOG_HOST": "127.0.0.1",
        "INFERENCE_LOG_PORT": "3306",
        "INFERENCE_LOG_DATABASE": "InferenceLog",
        "INFERENCE_LOG_USER": "inference_logger",
        "INFERENCE_LOG_PASSWORD": credentials.get("INFERENCE_LOG_PASSWORD", ""),
        "PIPELINE_STATUS_HOST": "127.0.0.1",
        "PIPELINE_STATUS_PORT": "3306",
        "PIPELINE_STATUS_DATABASE": "RawData",
        "PIPELINE_STATUS_USER": "pipeline_status",
        "PIPELINE_STATUS_PASSWORD": credentials.get("PIPELINE_STATUS_PASSWORD", ""),
    }
    chosen = {name: os.environ.get(name, default) for name, default in defaults.items()}
    secret = (
        "PIPELINE_RAW_DATA_URL",
        "PIPELINE_CLEAN_DATA_URL",
        "MLFLOW_BACKEND_STORE_URI",
        "INFERENCE_LOG_PASSWORD",
    )
    if not credentials and any(name not in os.environ for name in secret):
        raise SystemExit(
            f"demo: {CREDENTIALS_FILE} is missing: run `make setup` (or set {', '.join(secret)})"
        )
    return chosen


def airflow(env: dict[str, str], *arguments: str) -> str:
    result = subprocess.run(
        [str(VENV_BIN / "airflow"), *arguments],
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"demo: `airflow {' '.join(arguments)}` failed:\n{result.stderr[-2000:]}")
    return result.stdout


def airflow_json(env: dict[str, str], *arguments: str) -> list[dict]:
    """An `airflow … -o json` answer; Airflow prints its warnings on the same stdout, first."""
    output = airflow(env, *arguments, "-o", "json")
    return json.loads(next(line for line in output.splitlines() if line.startswith("[")))


def champion_version(tracking_uri: str) -> str | None:
    response = requests.get(
        f"{tracking_uri}/api/2.0/mlflow/registered-models/alias",
        params={"name": MODEL_NAME, "alias": "champion"},
        timeout=10,
    )
    return response.json()["model_version"]["version"] if response.ok else None


def run_dag_until_champion(airflow_env: dict[str, str], tracking_uri: str) -> None:
    """Unpause the DAG (its schedule starts a run at once), then follow runs, triggering another
    whenever none is active, until `@champion` exists."""
    deadline = time.monotonic() + 600
    while DAG_ID not in airflow(airflow_env, "dags", "list", "-o", "plain"):
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: the dag-processor never listed {DAG_ID}")
        time.sleep(3)
    airflow(airflow_env, "dags", "unpause", DAG_ID)
    followed: dict[str, set[tuple[str, str]]] = {}  # run id → tasks already reported
    while champion_version(tracking_uri) is None:
        runs = airflow_json(airflow_env, "dags", "list-runs", DAG_ID)
        active = [run for run in runs if run["state"] in ("queued", "running")]
        for run in runs:
            if run["run_id"] in followed and run["state"] in ("success", "failed"):
                log(f"[3/4] DAG run {run['run_id']}: {run['state']}")
                del followed[run["run_id"]]
        if not active:
            if len(runs) >= MAX_DAG_RUNS:
                raise SystemExit(f"demo: no champion after {len(runs)} DAG runs; see the Airflow logs")
            run_id = f"demo__{time.strftime('%Y%m%dT%H%M%S')}"
            airflow(airflow_env, "dags", "trigger", DAG_ID, "--run-id", run_id)
            log(f"[3/4] triggered DAG run {run_id}")
        for run in active:
            report_tasks(airflow_env, run["run_id"], followed.setdefault(run["run_id"], set()))
        time.sleep(3)


def report_tasks(airflow_env: dict[str, str], run_id: str, reported: set[tuple[str, str]]) -> None:
    for task in airflow_json(airflow_env, "tasks", "states-for-dag-run", DAG_ID, run_id):
        if (
            task["state"] in ("success", "failed", "up_for_retry", "upstream_failed")
            and (
                task["task_id"],
                task["state"],
            )
            not in reported
        ):
            reported.add((task["task_id"], task["state"]))
            log(f"      {run_id} · {task['task_id']}: {task['state']}")


def prometheus_config(state: Path, ports: dict[str, int]) -> Path:
    """Node 3's prometheus.yml and rules, with the targets moved to this machine's ports."""
    folder = state / "prometheus"
    shutil.copytree(REPO_ROOT / "Servidor3" / "prometheus" / "rules", folder / "rules", dirs_exist_ok=True)
    config = yaml.safe_load((REPO_ROOT / "Servidor3" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        "prometheus": f"127.0.0.1:{ports['prometheus']}",
        "inference-api": f"127.0.0.1:{ports['inference_api']}",
    }
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    return folder / "prometheus.yml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="stop everything after the sample prediction")
    parser.add_argument("--free-ports", action="store_true", help="any free ports instead of the usual ones")
    parser.add_argument(
        "--state-dir", type=Path, default=REPO_ROOT / ".local" / "demo", help="state and logs"
    )
    args = parser.parse_args()

    ports = {name: free_port() for name in PORTS} if args.free_ports else dict(PORTS)
    check_ports_free(ports)
    state = args.state_dir.resolve()
    (state / "logs").mkdir(parents=True, exist_ok=True)
    config = settings(local_credentials())
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    stack = Stack(state / "logs")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        log(f"[1/4] starting the data API, MLflow and Airflow (logs in {state / 'logs'})")
        stack.start(
            "data-api",
            ["uvicorn", "--factory", "data_api.app:create_app", "--port", str(ports["data_api"])],
            {"DATA_API_STATE_FILE": str(state / "data_api_state.json"), "MIN_UPDATE_TIME": "0"},
            http_ok(f"{url['data_api']}/health"),
        )
        stack.start(
            "mlflow",
            [str(REPO_ROOT / "Servidor2" / "mlflow" / "start-mlflow.sh")],
            {
                "MLFLOW_BACKEND_STORE_URI": config["MLFLOW_BACKEND_STORE_URI"],
                "MLFLOW_ARTIFACTS_DESTINATION": str(state / "mlflow-artifacts"),
                "MLFLOW_HOST": "127.0.0.1",
                "MLFLOW_PORT": str(ports["mlflow"]),
            },
            http_ok(f"{url['mlflow']}/health"),
            timeout=300,
        )
        airflow_env = {
            "AIRFLOW_HOME": str(state / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "Servidor1" / "airflow" / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__PORT": str(ports["airflow"]),
            # Task processes report to the api-server; its default address assumes port 8080.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url['airflow']}/execution/",
            # A local demo: everyone who reaches the UI on this machine is an admin, no login.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "PYTHONPATH": str(REPO_ROOT / "Servidor1" / "pipeline"),
            "AIRFLOW_CONN_RAW_DATA": mysql_connection(config["PIPELINE_RAW_DATA_URL"]),
            "AIRFLOW_CONN_CLEAN_DATA": mysql_connection(config["PIPELINE_CLEAN_DATA_URL"]),
            "AIRFLOW_CONN_DATA_API": json.dumps(
                {"conn_type": "http", "host": "127.0.0.1", "port": ports["data_api"]}
            ),
            "MLFLOW_TRACKING_URI": url["mlflow"],
            "OMP_NUM_THREADS": "1",
        }
        stack.start(
            "airflow",
            ["airflow", "standalone"],
            airflow_env,
            http_ok(f"{url['airflow']}/api/v2/monitor/health"),
            timeout=300,
        )
        log("[2/4] starting the inference API, Streamlit and Prometheus")
        stack.start(
            "inference-api",
            [
                "uvicorn",
                "--factory",
                "inference_api.app:create_app",
                "--port",
                str(ports["inference_api"]),
                "--workers",
                "1",
            ],
            {
                "PYTHONPATH": str(REPO_ROOT / "Servidor3" / "inference_api"),
                "MLFLOW_TRACKING_URI": url["mlflow"],
                "MODEL_NAME": MODEL_NAME,
                "MODEL_POLL_SECONDS": "5",
                "OMP_NUM_THREADS": "1",
                **{
                    name: value
                    for name, value in config.items()
                    if name.startswith(("INFERENCE_LOG_", "PIPELINE_STATUS_"))
                },
            },
            http_ok(f"{url['inference_api']}/health"),
        )
        streamlit_app = REPO_ROOT / "Servidor3" / "streamlit_app" / "app.py"
        if streamlit_app.exists():
            stack.start(
                "streamlit",
                [
                    "streamlit",
                    "run",
                    str(streamlit_app),
                    f"--server.port={ports['streamlit']}",
                    "--server.headless=true",
                ],
                {
                    "INFERENCE_API_URL": url["inference_api"],
                    "MLFLOW_TRACKING_URI": url["mlflow"],
                    "MODEL_NAME": MODEL_NAME,
                },
                http_ok(f"{url['streamlit']}/_stcore/health"),
            )
        stack.start(
            "prometheus",
            [
                "prometheus",
                f"--config.file={prometheus_config(state, ports)}",
                f"--storage.tsdb.path={state / 'prometheus' / 'data'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            ],
            {},
            http_ok(f"{url['prometheus']}/-/ready"),
        )
        run_dag_until_champion(airflow_env, url["mlflow"])
        log("[4/4] waiting for the inference API to load the champion")
        deadline = time.monotonic() + 120
        while not http_ok(f"{url['inference_api']}/ready")():
            if time.monotonic() > deadline:
                raise SystemExit("demo: the inference API did not load the champion; see its log")
            time.sleep(1)
        report(url, ports)
        if not args.once:
            log("running; Ctrl-C stops everything")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        log("Ctrl-C: stopping")
    finally:
        stack.stop()


def report(url: dict[str, str], ports: dict[str, int]) -> None:
    model = requests.get(f"{url['inference_api']}/model", timeout=10).json()
    batch = requests.get(
        f"{url['data_api']}/data", params={"group_number": 5, "day": "Wednesday"}, timeout=10
    )
    listing = batch.json()["data"][0] if batch.ok else None
    metrics = ", ".join(
        f"{name}={value:,.3f}" for name, value in sorted(model["metrics"].items()) if name.startswith("test_")
    )
    print(f"\nChampion: {model['model_name']} version {model['model_version']} ({metrics})")
    if listing:
        actual = listing.pop("price")
        price = requests.post(f"{url['inference_api']}/predict", json=listing, timeout=10).json()["price"]
        print(f"Sample prediction: {listing['bed']:.0f} bed, {listing['bath']:.0f} bath, "
              f"{listing['house_size']:,.0f} sq ft in {listing['city']}, {listing['state']}: "
              f"${price:,.0f} (listed at ${actual:,.0f})")  # fmt: skip
    print("\nOpen:")
    for name, label in (
        ("airflow", "Airflow (DAG realtor_price_model)"),
        ("mlflow", "MLflow"),
        ("inference_api", "Inference API docs: /docs"),
        ("streamlit", "Streamlit"),
        ("prometheus", "Prometheus"),
    ):
        print(f"  {label:<36} {url[name]}")
    print(flush=True)


if __name__ == "__main__":
    main()
