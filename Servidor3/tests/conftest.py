"""Node 3's observability tests: a real Prometheus running node 3's own config and rules."""

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.harness.processes import free_port
from tests.harness.services import Prometheus

PROMETHEUS_DIR = Path(__file__).resolve().parents[1] / "prometheus"


@pytest.fixture(scope="session")
def start_local_prometheus(
    start_prometheus: Callable[..., Prometheus], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Prometheus]:
    """Starts Prometheus on node 3's prometheus.yml and rules with only the targets moved to local
    addresses and the intervals cut to 1 s, so a test of a few seconds sees several scrapes and
    rule evaluations."""

    def start(api_target: str) -> Prometheus:
        port = free_port()
        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
        targets = {"prometheus": f"127.0.0.1:{port}", "inference-api": api_target}
        for job in config["scrape_configs"]:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
        folder = tmp_path_factory.mktemp("prometheus-config")
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        (folder / "rules").symlink_to(PROMETHEUS_DIR / "rules")  # rule_files are relative
        return start_prometheus(folder / "prometheus.yml", port)

    return start
