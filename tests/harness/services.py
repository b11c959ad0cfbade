"""Session fixtures for the real services every later test builds on.

MariaDB and PostgreSQL are the machine's own servers (`make setup` installs and starts them;
this harness starts them again if they are down) with databases and users unique to the test
session. The S3 server (moto, standing in for MinIO), `mlflow server`, Prometheus and the data
API are processes started here on free ports, each through the same script or command its
deployment uses, and stopped at the end.
"""

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy
from psycopg2 import sql

from tests.harness.processes import REPO_ROOT, VENV_BIN, ServiceProcess, free_port, http_ok, service_failed

# Per machine, like the servers it opens; written by scripts/create-local-databases.sh.
CREDENTIALS_FILE = Path(
    os.environ.get("REALTOR_CREDENTIALS_FILE")
    or Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "realtor-mlops" / "credentials.env"
)


@pytest.fixture(scope="session")
def session_id() -> str:
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def admin_credentials() -> dict[str, str]:
    """The local admin user `make setup` created, able to create databases and users."""
    if not CREDENTIALS_FILE.exists():
        service_failed("local databases", f"{CREDENTIALS_FILE} is missing: run `make setup`")
    pairs = (line.split("=", 1) for line in CREDENTIALS_FILE.read_text().splitlines() if "=" in line)
    return dict(pairs)


def _ensure_system_services() -> None:
    result = subprocess.run(
        [REPO_ROOT / "scripts" / "system-services.sh", "start"], capture_output=True, text=True
    )
    if result.returncode != 0:
        service_failed("MariaDB/PostgreSQL", result.stdout + result.stderr)


@dataclass(frozen=True)
class MariaDB:
    host: str
    port: int
    raw_db: str
    clean_db: str
    user: str
    password: str
    inference_log_db: str  # with its table, and a user that may only insert into it
    inference_log_user: str
    inference_log_password: str
    status_user: str  # may only read RawData, for the inference API's /pipeline endpoints
    status_password: str

    def url(self, database: str) -> str:
        return f"mysql+mysqldb://{self.user}:{self.password}@{self.host}:{self.port}/{database}"


@pytest.fixture(scope="session")
def create_mariadb(session_id: str, admin_credentials: dict[str, str]) -> Iterator[Callable[[str], MariaDB]]:
    """Makes a RawData/CleanData pair and its pipeline user, named `<name>_<suffix>`, with node 1's
    own init script; all are dropped at the end of the session. For tests that need databases
    no other test writes to."""
    _ensure_system_services()
    made: list[MariaDB] = []
    admin_env = {
        "MYSQL_HOST": "127.0.0.1",
        "MYSQL_TCP_PORT": "3306",
        "MYSQL_ADMIN_USER": admin_credentials["LOCAL_ADMIN_USER"],
        "MYSQL_PWD": admin_credentials["LOCAL_ADMIN_PASSWORD"],
    }

    def create(suffix: str) -> MariaDB:
        service = MariaDB(
            host="127.0.0.1",
            port=3306,
            raw_db=f"RawData_{session_id}_{suffix}",
            clean_db=f"CleanData_{session_id}_{suffix}",
            user=f"pipeline_{session_id}_{suffix}",
            password=secrets.token_hex(12),
            inference_log_db=f"InferenceLog_{session_id}_{suffix}",
            inference_log_user=f"inflog_{session_id}_{suffix}",
            inference_log_password=secrets.token_hex(12),
            status_user=f"status_{session_id}_{suffix}",
            status_password=secrets.token_hex(12),
        )
        env = {
            **os.environ,
            **admin_env,
            "RAW_DATA_DB": service.raw_db,
            "CLEAN_DATA_DB": service.clean_db,
            "PIPELINE_DB_USER": service.user,
            "PIPELINE_DB_PASSWORD": service.password,
            "INFERENCE_LOG_DB": service.inference_log_db,
            "INFERENCE_LOG_USER": service.inference_log_user,
            "INFERENCE_LOG_PASSWORD": service.inference_log_password,
            "PIPELINE_STATUS_USER": service.status_user,
            "PIPELINE_STATUS_PASSWORD": service.status_password,
        }
        init = subprocess.run(
            [REPO_ROOT / "Servidor1" / "mysql" / "init-databases.sh"], env=env, capture_output=True, text=True
        )
        if init.returncode != 0:
            service_failed("MariaDB", f"init-databases.sh failed: {init.stderr.strip()}")
        made.append(service)
        return service

    yield create
    admin = sqlalchemy.create_engine(
        f"mysql+mysqldb://{admin_env['MYSQL_ADMIN_USER']}:{admin_env['MYSQL_PWD']}@127.0.0.1:3306/"
    )
    with admin.begin() as connection:
        for service in made:
            for database in (service.raw_db, service.clean_db, service.inference_log_db):
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{database}`")
            for user in (service.user, service.inference_log_user, service.status_user):
                # %% escapes the driver's paramstyle
                connection.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")
    admin.dispose()


@pytest.fixture(scope="session")
def mariadb(create_mariadb: Callable[[str], MariaDB]) -> MariaDB:
    """RawData/CleanData shared by the session's tests."""
    return create_mariadb("shared")


@dataclass(frozen=True)
class Postgres:
    url: str  # SQLAlchemy URL of the session's MLflow database, as its owner


@pytest.fixture(scope="session")
def postgres(session_id: str, admin_credentials: dict[str, str]) -> Iterator[Postgres]:
    _ensure_system_services()
    database, owner, password = f"mlflow_{session_id}", f"mlflow_{session_id}", secrets.token_hex(12)
    admin = psycopg2.connect(
        host="127.0.0.1",
        port=5432,
        dbname="postgres",
        user=admin_credentials["LOCAL_ADMIN_USER"],
        password=admin_credentials["LOCAL_ADMIN_PASSWORD"],
    )
    admin.autocommit = True  # CREATE DATABASE cannot run in a transaction
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(owner)), [password])
        cursor.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(owner)))
        cursor.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(owner))
        )
    yield Postgres(url=f"postgresql+psycopg2://{owner}:{password}@127.0.0.1:5432/{database}")
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        cursor.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(owner)))
    admin.close()


@dataclass(frozen=True)
class S3:
    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str

    def env(self) -> dict[str, str]:
        """What a process needs to reach this bucket, by the names boto3 and MLflow read."""
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "ARTIFACT_BUCKET": self.bucket,
        }


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """moto's S3 server, with the artefact bucket made by node 2's own bucket job."""
    port = free_port()
    service = S3(f"http://127.0.0.1:{port}", secrets.token_hex(8), secrets.token_hex(16), "mlflow-artifacts")
    logs = tmp_path_factory.mktemp("s3")
    server = ServiceProcess(
        "S3 (moto_server)",
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        logs / "moto.log",
    ).start(http_ok(f"{service.endpoint_url}/moto-api/"))
    job = subprocess.run(
        [sys.executable, REPO_ROOT / "Servidor2" / "minio" / "create_bucket.py"],
        env={**os.environ, **service.env()},
        capture_output=True,
        text=True,
    )
    if job.returncode != 0:
        server.stop()
        service_failed("S3 bucket job", job.stdout + job.stderr)
    yield service
    server.stop()


@dataclass(frozen=True)
class MLflowServer:
    tracking_uri: str
    process: ServiceProcess


@pytest.fixture(scope="session")
def mlflow_server(
    postgres: Postgres, s3: S3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MLflowServer]:
    """A real `mlflow server` started by node 2's start script: Postgres backend, S3 artefacts."""
    port = free_port()
    env = {
        **s3.env(),
        "MLFLOW_BACKEND_STORE_URI": postgres.url,
        "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{s3.bucket}",
        "MLFLOW_HOST": "127.0.0.1",
        "MLFLOW_PORT": str(port),
    }
    process = ServiceProcess(
        "mlflow server",
        [str(REPO_ROOT / "Servidor2" / "mlflow" / "start-mlflow.sh")],
        tmp_path_factory.mktemp("mlflow") / "mlflow.log",
        env,
    )
    # A cold start migrates an empty database; measured at up to ~60 s on a loaded machine.
    process.start(http_ok(f"http://127.0.0.1:{port}/health"), timeout=240)
    yield MLflowServer(f"http://127.0.0.1:{port}", process)
    process.stop()


@dataclass(frozen=True)
class Prometheus:
    url: str


@pytest.fixture(scope="session")
def start_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Path], Prometheus]]:
    """Starts the Debian `prometheus` binary with a config file (and a port, for a config that
    scrapes Prometheus itself); stopped at session end."""
    started: list[ServiceProcess] = []

    def start(config_file: Path, port: int | None = None) -> Prometheus:
        port = port or free_port()
        data = tmp_path_factory.mktemp("prometheus")
        process = ServiceProcess(
            "prometheus",
            [
                "prometheus",
                f"--config.file={config_file}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            data / "prometheus.log",
        )
        started.append(process.start(http_ok(f"http://127.0.0.1:{port}/-/ready")))
        return Prometheus(f"http://127.0.0.1:{port}")

    yield start
    for process in started:
        process.stop()


@dataclass(frozen=True)
class DataApi:
    url: str
    state_file: Path
    process: ServiceProcess


@pytest.fixture(scope="session")
def start_data_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., DataApi]]:
    """Starts the listing data API the way its image does; `env` overrides its settings."""
    started: list[ServiceProcess] = []

    def start(state_file: Path | None = None, **env: str) -> DataApi:
        port = free_port()
        folder = tmp_path_factory.mktemp("data_api")
        state_file = state_file or folder / "state.json"
        process = ServiceProcess(
            "data API",
            [
                str(VENV_BIN / "uvicorn"),
                "--factory",
                "data_api.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            folder / "data_api.log",
            {"DATA_API_STATE_FILE": str(state_file), **env},
        )
        started.append(process.start(http_ok(f"http://127.0.0.1:{port}/health")))
        return DataApi(f"http://127.0.0.1:{port}", state_file, process)

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def data_api(start_data_api: Callable[..., DataApi]) -> DataApi:
    """The shared data API: small synthetic batches that advance on every call."""
    return start_data_api(MIN_UPDATE_TIME="0", DATA_API_BATCHES="4", DATA_API_BATCH_ROWS="500")
