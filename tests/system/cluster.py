"""The three nodes as network namespaces, each running its server's processes with the environment
its overlay renders, and the external data API beside them. `Cluster.start()` brings it up,
`Cluster.stop()` takes everything down (processes, namespaces, links, the blackhole route), also
after a failure; see tests/README.md, "Three-node system test".

node1 (Servidor1): a private mariadbd on the MySQL NodePort, made by Servidor1/mysql/init-databases.sh,
  holding RawData, CleanData, InferenceLog and Airflow's own metadata database; the DAG runs with
  `dag.test()` in node 1's namespace.
node2 (Servidor2): a private PostgreSQL cluster and moto_server (standing in for MinIO) on loopback,
  the bucket job, and `mlflow server` through Servidor2/mlflow/start-mlflow.sh on MLflow's NodePort.
node3 (Servidor3): the inference API (restarted when it dies, like a pod), Prometheus with node 3's
  config and rules (targets resolved like the rest), Locust headless through `make load-test`.
external: the data API on the topology's external address.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests
import yaml

from tests.harness.processes import REPO_ROOT, VENV_BIN, ServiceProcess, service_failed
from tests.system.network import NetnsClient, Network, wait_until
from tests.system.overlays import Overlay
from topology import Topology

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DAG_FILE = REPO_ROOT / "Servidor1" / "airflow" / "dags" / "realtor_price_model.py"
PROMETHEUS_DIR = REPO_ROOT / "Servidor3" / "prometheus"
STREAMLIT_APP = REPO_ROOT / "Servidor3" / "streamlit_app" / "app.py"
RENDER_PAGE = """
import json, sys
from streamlit.testing.v1 import AppTest
app = AppTest.from_file(sys.argv[1], default_timeout=120).run()
app.switch_page(f"views/{sys.argv[2]}.py").run()
print(json.dumps({
    "headers": [header.value for header in app.header],
    "metrics": {metric.label: metric.value for metric in app.metric},
    "errors": [error.value for error in app.error],
    "exceptions": [exception.value for exception in app.exception],
}))
"""
# What a process sees besides its Deployment's environment (the image's PATH, a locale).
BASE_ENV = {"PATH": f"{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}

# Loads the DAG file and runs it once with dag.test(), printing each task's state and the run id.
DAG_RUNNER = """
import json, runpy, sys
from datetime import datetime, timezone
dag = runpy.run_path(sys.argv[1])["realtor_price_model"]()
logical = datetime.fromisoformat(sys.argv[2]) if len(sys.argv) > 2 else None
run = dag.test(logical_date=logical, run_after=logical) if logical else dag.test()
states = {ti.task_id: getattr(ti.state, "value", ti.state) for ti in run.get_task_instances()}
print("DAG_RESULT " + json.dumps({"run_id": run.run_id, "states": states}))
"""


class NodeProcess(ServiceProcess):
    """A service process inside a node's namespace, with only the environment it is given."""

    def __init__(self, name: str, network: Network, host: str, command: list[str], log: Path, env: dict):
        super().__init__(name, [*network.exec_prefix(host), *command], log)
        self.env = {**BASE_ENV, **env}
        self.restarts = 0
        self._supervisor: threading.Thread | None = None
        self._supervise = threading.Event()

    def launch(self) -> "NodeProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=REPO_ROOT,
                start_new_session=True,
            )  # fmt: skip
        return self

    def wait_ready(self, ready: Callable[[], bool], timeout: float) -> "NodeProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None and not self._supervise.is_set():
                service_failed(self.name, f"exited with code {self.process.returncode}", self.log_path)
            if ready():
                return self
            time.sleep(0.5)
        service_failed(self.name, f"not ready after {timeout:.0f} s", self.log_path)
        return self

    def start(self, ready: Callable[[], bool], timeout: float = 60) -> "NodeProcess":
        return self.launch().wait_ready(ready, timeout)

    def supervise(self, delay: float = 1.0) -> None:
        """Restart the process whenever it exits, as the kubelet restarts a pod's container."""
        self._supervise.set()

        def loop() -> None:
            while self._supervise.is_set():
                if self.process.poll() is not None and self._supervise.is_set():
                    time.sleep(delay)
                    if self._supervise.is_set():
                        self.launch()
                        self.restarts += 1
                time.sleep(0.2)

        self._supervisor = threading.Thread(target=loop, name=f"supervise-{self.name}", daemon=True)
        self._supervisor.start()

    def kill(self) -> None:
        """SIGKILL the service itself (not `ip netns exec`: it has exec'd into the service)."""
        os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        self._supervise.clear()
        if self._supervisor:
            self._supervisor.join(timeout=5)
        super().stop()


def http_ok_in(client: NetnsClient, url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return client.run(lambda: requests.get(url, timeout=3).ok)
        except requests.RequestException:
            return False

    return check


class Cluster:
    def __init__(self, topology: Topology, folder: Path, data_api_env: dict[str, str] | None = None):
        self.topology = topology
        self.folder = folder
        self.overlays = {name: Overlay(node) for name, node in topology.nodes.items()}
        external_host, self.data_api_port = topology.external["data-api"]
        self.network = Network(
            subnet=_subnet([node.ip for node in topology.nodes.values()] + [external_host]),
            hosts={**{name: node.ip for name, node in topology.nodes.items()}, "external": external_host},
        )
        self.secrets = {
            "PIPELINE_DB_PASSWORD": secrets.token_hex(12),
            "AIRFLOW_DB_PASSWORD": secrets.token_hex(12),
            "INFERENCE_LOG_PASSWORD": secrets.token_hex(12),
            "PIPELINE_STATUS_PASSWORD": secrets.token_hex(12),
            "MYSQL_ROOT_PASSWORD": "",  # the init script runs over node 1's socket as root
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            "MLFLOW_DB_PASSWORD": secrets.token_hex(12),
            "MINIO_ROOT_USER": secrets.token_hex(8),
            "MINIO_ROOT_PASSWORD": secrets.token_hex(16),
            "ADMIN_API_KEY": secrets.token_hex(8),
        }
        self.data_api_env = data_api_env or {}
        self.processes: dict[str, NodeProcess] = {}
        self.clients: dict[str, NetnsClient] = {}
        self.airflow_env: dict[str, str] = {}
        self.timings: dict[str, float] = {}

    # -- addresses, as the overlays render them ------------------------------------------------
    def client(self, host: str) -> NetnsClient:
        if host not in self.clients:
            self.clients[host] = NetnsClient(self.network.namespace(host), workers=8)
        return self.clients[host]

    @property
    def mlflow_uri(self) -> str:
        """Where node 1 reaches MLflow, as node 1's Airflow Deployment says."""
        return self.airflow_env["MLFLOW_TRACKING_URI"]

    @property
    def api_url(self) -> str:
        """The inference API as node 3's own clients (Locust, Streamlit, Prometheus) address it."""
        host, port = self.overlays["node3"].address(" ".join(self.overlays["node3"].command("locust")))
        return f"http://{host}:{port}"

    @property
    def prometheus_url(self) -> str:
        host, port = self.overlays["node3"].listen_address("prometheus")
        return f"http://{host}:{port}"

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "Cluster":
        started = time.monotonic()
        if os.geteuid() != 0:
            service_failed("network namespaces", "the system test creates namespaces and veths: run as root")
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        os.chmod(self.folder, 0o755)  # node 2's PostgreSQL runs as postgres under it
        self.network.create()
        self.timings["network_s"] = time.monotonic() - started
        self.start_data_api()
        self.start_node2_storage()
        mlflow = self.launch_mlflow()
        self.start_node1()
        self.migrate_airflow()
        mlflow.wait_ready(http_ok_in(self.client("node1"), f"{self.mlflow_uri}/health"), timeout=300)
        self.start_node3()
        self.timings["cluster_start_s"] = time.monotonic() - started
        return self

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            try:
                process.stop()
            except Exception as error:  # keep tearing down the rest
                print(f"stopping {process.name}: {error}", file=sys.stderr)
        for client in self.clients.values():
            client.close()
        self.network.destroy()

    def _process(self, name: str, host: str, command: list[str], env: dict[str, str]) -> NodeProcess:
        process = NodeProcess(name, self.network, host, command, self.folder / host / f"{name}.log", env)
        self.processes[name] = process
        return process

    # -- external -----------------------------------------------------------------------------
    def start_data_api(self, **env: str) -> NodeProcess:
        """The course's data server stand-in, on the topology's external address; `env` on top of
        the cluster's data API settings (its batch state survives a restart)."""
        if "data-api" in self.processes:
            self.processes.pop("data-api").stop()
        host = self.network.hosts["external"]
        settings = {
            **self.data_api_env,
            **env,
            "DATA_API_STATE_FILE": str(self.folder / "data_api_state.json"),
        }
        process = self._process(
            "data-api", "external",
            [str(VENV_BIN / "uvicorn"), "--factory", "data_api.app:create_app",
             "--host", host, "--port", str(self.data_api_port)],
            {"PYTHONPATH": str(REPO_ROOT), **settings},
        )  # fmt: skip
        return process.start(
            http_ok_in(self.client("external"), f"http://{host}:{self.data_api_port}/health")
        )

    # -- node 2 -------------------------------------------------------------------------------
    def start_node2_storage(self) -> None:
        node2 = self.overlays["node2"]
        # PostgreSQL: a private cluster owned by postgres, on loopback in node 2 (Service postgres).
        postgres_env = node2.env("postgres", self.secrets)
        pg_folder = self.folder / "node2" / "pg"
        pg_folder.mkdir(parents=True)
        shutil.chown(pg_folder, "postgres", "postgres")
        as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups"]
        subprocess.run([*as_postgres, PG_BIN / "initdb", "-D", pg_folder / "data", "-U", "postgres",
                        "--auth=trust"], check=True, capture_output=True)  # fmt: skip
        host, port = node2.resolve("postgres", 5432)
        self._process(
            "postgres", "node2",
            [*as_postgres, str(PG_BIN / "postgres"), "-D", str(pg_folder / "data"), "-k", str(pg_folder),
             "-c", f"listen_addresses={host}", "-p", str(port)],
            {},
        ).start(lambda: (pg_folder / f".s.PGSQL.{port}").exists(), timeout=60)  # fmt: skip
        user, database = postgres_env["POSTGRES_USER"], postgres_env["POSTGRES_DB"]
        sql = (
            f"CREATE ROLE {user} LOGIN PASSWORD '{self.secrets['MLFLOW_DB_PASSWORD']}';"
            f"CREATE DATABASE {database} OWNER {user};"
        )
        for statement in sql.split(";")[:-1]:
            subprocess.run(["psql", "-h", str(pg_folder), "-p", str(port), "-U", "postgres", "-v",
                            "ON_ERROR_STOP=1", "-c", statement], check=True, capture_output=True)  # fmt: skip
        # S3: moto_server where Service minio points inside node 2.
        s3_host, s3_port = node2.resolve("minio", 9000)
        self._process(
            "s3", "node2", [str(VENV_BIN / "moto_server"), "-H", s3_host, "-p", str(s3_port)], {}
        ).start(http_ok_in(self.client("node2"), f"http://{s3_host}:{s3_port}/moto-api/"))
        bucket_env = node2.env("artifact-bucket", self.secrets)
        job = subprocess.run(
            [*self.network.exec_prefix("node2"), str(VENV_BIN / "python"),
             str(REPO_ROOT / "Servidor2" / "minio" / "create_bucket.py")],
            env={**BASE_ENV, **bucket_env}, capture_output=True, text=True,
        )  # fmt: skip
        if job.returncode != 0:
            service_failed("bucket job", job.stdout + job.stderr)

    def launch_mlflow(self) -> NodeProcess:
        node2 = self.overlays["node2"]
        host, port = node2.listen_address("mlflow")
        env = {**node2.env("mlflow", self.secrets), "MLFLOW_HOST": host, "MLFLOW_PORT": str(port)}
        return self._process(
            "mlflow", "node2", [str(REPO_ROOT / "Servidor2" / "mlflow" / "start-mlflow.sh")], env
        ).launch()

    def mlflow_process(self) -> NodeProcess:
        return self.processes["mlflow"]

    def restart_mlflow(self) -> None:
        process = self.mlflow_process()
        process.launch().wait_ready(http_ok_in(self.client("node1"), f"{self.mlflow_uri}/health"), 300)

    # -- node 1 -------------------------------------------------------------------------------
    def start_node1(self) -> None:
        node1 = self.overlays["node1"]
        folder = self.folder / "node1"
        data, socket = folder / "mysql", folder / "mysqld.sock"
        subprocess.run(["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={data}"],
                       check=True, capture_output=True)  # fmt: skip
        host, port = node1.listen_address("mysql")
        self._process(
            "mysql", "node1",
            ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}", "--user=root", f"--socket={socket}",
             f"--port={port}", f"--bind-address={host}", "--skip-name-resolve"],
            {},
        ).start(lambda: socket.exists(), timeout=60)  # fmt: skip
        # The mysql-init Job's environment; the test runs it over the socket instead of as root by TCP.
        init_env = node1.env("mysql-init", self.secrets)
        init_env = {key: value for key, value in init_env.items() if not key.startswith("MYSQL_")}
        init = subprocess.run(
            [*self.network.exec_prefix("node1"), str(REPO_ROOT / "Servidor1/mysql/init-databases.sh")],
            env={**BASE_ENV, **init_env, "MYSQL_UNIX_PORT": str(socket)}, capture_output=True, text=True,
        )  # fmt: skip
        if init.returncode != 0:
            service_failed("mysql-init", init.stderr)
        self.mysql_socket = socket
        home = folder / "airflow"
        home.mkdir()
        (home / "passwords.json").write_text(json.dumps({"admin": secrets.token_hex(8)}))
        self.airflow_env = {
            **node1.env("airflow-scheduler", self.secrets),
            # Paths inside the image, here the repository's and a temporary home:
            "AIRFLOW_HOME": str(home),
            "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FILE.parent),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "PYTHONPATH": str(REPO_ROOT / "Servidor1" / "pipeline"),  # installed in the image
            # Test pace: every run trains (there is a champion after the first), failures come fast.
            "PIPELINE_NEW_ROWS_THRESHOLD": "1",
            "PIPELINE_TASK_RETRIES": "1",
            "PIPELINE_RETRY_DELAY_SECONDS": "2",
            "OMP_NUM_THREADS": "1",
            # MLflow's client retries a dead server for minutes by default; a fault test waits less.
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
        }

    def migrate_airflow(self) -> None:
        started = time.monotonic()
        result = subprocess.run(
            [*self.network.exec_prefix("node1"), str(VENV_BIN / "airflow"), "db", "migrate"],
            env={**BASE_ENV, **self.airflow_env}, capture_output=True, text=True, cwd=REPO_ROOT,
        )  # fmt: skip
        if result.returncode != 0:
            service_failed("airflow db migrate", result.stderr[-3000:])
        self.timings["airflow_migrate_s"] = time.monotonic() - started

    def run_dag(self, logical_date: str | None = None, timeout: float = 900, **env: str) -> dict:
        """One `dag.test()` run in node 1: {"run_id", "states", "seconds", "log"}."""
        started = time.monotonic()
        result = subprocess.run(
            [*self.network.exec_prefix("node1"), str(VENV_BIN / "python"), "-c", DAG_RUNNER, str(DAG_FILE),
             *([logical_date] if logical_date else [])],
            env={**BASE_ENV, **self.airflow_env, **env}, capture_output=True, text=True, timeout=timeout,
            cwd=REPO_ROOT,
        )  # fmt: skip
        log = self.folder / "node1" / f"dag-{time.strftime('%H%M%S')}.log"
        log.write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise AssertionError(
                f"dag.test() process failed ({result.returncode}), log {log}:\n{result.stderr[-3000:]}"
            )
        (line,) = [line for line in result.stdout.splitlines() if line.startswith("DAG_RESULT ")]
        outcome = json.loads(line.removeprefix("DAG_RESULT "))
        return {**outcome, "seconds": time.monotonic() - started, "log": str(log)}

    def mysql(self, sql: str) -> list[list[str]]:
        """A query as root over node 1's socket (a file: no network involved)."""
        result = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.mysql_socket}", "-N", "-B", "-e", sql],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return [line.split("\t") for line in result.stdout.splitlines()]

    # -- node 3 -------------------------------------------------------------------------------
    def start_node3(self) -> None:
        node3 = self.overlays["node3"]
        host, port = node3.listen_address("inference-api")
        command = node3.command("inference-api")
        assert command[:3] == ["uvicorn", "--factory", "inference_api.app:create_app"], command
        options = dict(zip(command[3::2], command[4::2], strict=True))
        options.update({"--host": host, "--port": str(port)})
        env = {
            **node3.env("inference-api", self.secrets),
            "PYTHONPATH": str(REPO_ROOT / "Servidor3" / "inference_api"),  # the image's working dir
            "MODEL_POLL_SECONDS": "2",  # 30 s in the manifest; the test waits for it several times
        }
        api = self._process(
            "inference-api", "node3",
            [str(VENV_BIN / "uvicorn"), *command[1:3], *(item for pair in options.items() for item in pair)],
            env,
        )  # fmt: skip
        api.start(http_ok_in(self.client("node3"), f"http://{host}:{port}/health"), timeout=120)
        api.supervise()
        self.start_prometheus()
        self.start_streamlit()

    def start_streamlit(self) -> None:
        """Node 3's Streamlit page with its Deployment's environment and its image's command."""
        host, port = self.overlays["node3"].listen_address("streamlit")
        health = http_ok_in(self.client("node3"), f"http://{host}:{port}/_stcore/health")
        self._process(
            "streamlit", "node3",
            [str(VENV_BIN / "streamlit"), "run", str(STREAMLIT_APP), f"--server.address={host}",
             f"--server.port={port}", "--server.headless=true"],
            self.streamlit_env(),
        ).start(health, timeout=120)  # fmt: skip

    def streamlit_env(self) -> dict[str, str]:
        return {**self.overlays["node3"].env("streamlit", self.secrets), "HOME": str(self.folder / "node3")}

    def render_streamlit_page(self, page: str) -> dict:
        """One page of the Streamlit app run by Streamlit's AppTest in node 3, with the Deployment's
        environment: its headers, metrics, error banners and exceptions."""
        result = subprocess.run(
            ["ip", "netns", "exec", self.network.namespace("node3"), str(VENV_BIN / "python"), "-c",
             RENDER_PAGE, str(STREAMLIT_APP), page],
            env={**os.environ, **self.streamlit_env()}, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.splitlines()[-1])

    def start_prometheus(self) -> None:
        """Node 3's prometheus.yml and rules, with each target resolved like any in-node address."""
        node3 = self.overlays["node3"]
        host, port = node3.listen_address("prometheus")
        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        rendered = yaml.safe_load(node3.configmap("prometheus-config")["prometheus.yml"])
        assert rendered["scrape_configs"] == config["scrape_configs"], "the ConfigMap is prometheus.yml"
        for job in config["scrape_configs"]:
            for static in job["static_configs"]:
                targets = []
                for target in static["targets"]:
                    name, target_port = target.rsplit(":", 1)
                    if name == "localhost":  # Prometheus itself, in its pod
                        targets.append(f"{host}:{port}")
                    else:
                        targets.append("{}:{}".format(*node3.resolve(name, int(target_port))))
                static["targets"] = targets
        folder = self.folder / "node3" / "prometheus"
        (folder / "data").mkdir(parents=True)
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        (folder / "rules").symlink_to(PROMETHEUS_DIR / "rules")
        self._process(
            "prometheus", "node3",
            ["prometheus", f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address={host}:{port}"],
            {},
        ).start(http_ok_in(self.client("node3"), f"http://{host}:{port}/-/ready"))  # fmt: skip

    def prometheus_query(self, expr: str) -> list[dict]:
        def query() -> list[dict]:
            response = requests.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
            response.raise_for_status()
            return response.json()["data"]["result"]

        return self.client("node3").run(query)

    def load_test(self, run_time: str, users: int, reports: Path, **env: str) -> subprocess.CompletedProcess:
        """`make load-test` in node 3 against the API address of node 3's Locust Deployment."""
        reports.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            [*self.network.exec_prefix("node3"), "make", "-s", "load-test", f"LOCUST_HOST={self.api_url}",
             f"LOCUST_USERS={users}", f"LOCUST_SPAWN_RATE={users}", f"LOCUST_RUN_TIME={run_time}",
             f"LOAD_TEST_REPORTS={reports}"],
            env={**BASE_ENV, **env}, capture_output=True, text=True, cwd=REPO_ROOT, timeout=600,
        )  # fmt: skip


def _subnet(addresses: list[str]) -> str:
    """The /24 all the addresses share (the topology's nodes and the external API)."""
    prefixes = {address.rsplit(".", 1)[0] for address in addresses}
    if len(prefixes) != 1:
        raise ValueError(f"the system test expects one /24 for {addresses}")
    return f"{prefixes.pop()}.0/24"


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    if not wait_until(check, timeout):
        raise AssertionError(f"{what}: not within {timeout:.0f} s")
