"""Node 3's Prometheus config and rules: promtool's checks and unit tests, the contract of the
scrape jobs, and the rules loaded by a real Prometheus."""

import ast
import re
import subprocess
import time
from pathlib import Path

import requests
import yaml

from tests.harness.services import Prometheus

SERVIDOR3 = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = SERVIDOR3 / "prometheus"
ALERT_RULES = yaml.safe_load((PROMETHEUS_DIR / "rules" / "alerts.yml").read_text())["groups"][0]["rules"]
RECORDING_RULES = [
    rule
    for group in yaml.safe_load((PROMETHEUS_DIR / "rules" / "recording.yml").read_text())["groups"]
    for rule in group["rules"]
]
UNIT_TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["promtool", *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def test_promtool_accepts_the_config_and_finds_both_rule_files() -> None:
    assert "2 rule files found" in promtool("check", "config", "prometheus.yml").stdout


def test_promtool_accepts_the_rules() -> None:
    promtool("check", "rules", "rules/recording.yml", "rules/alerts.yml")


def test_promtool_unit_tests_pass() -> None:
    promtool("test", "rules", *(str(path.relative_to(PROMETHEUS_DIR)) for path in UNIT_TEST_FILES))


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not() -> None:
    fired, silent = set(), set()
    for path in UNIT_TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in ALERT_RULES}
    assert alerts - fired == set(), "alerts no unit test expects to fire"
    assert alerts - silent == set(), "alerts no unit test expects to stay silent"


def test_every_alert_waits_and_explains_itself() -> None:
    for rule in ALERT_RULES:
        assert rule.get("for"), f"{rule['alert']} has no `for:`"
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description"} <= rule["annotations"].keys(), rule["alert"]


def test_scrape_jobs_are_the_contract() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["inference-api"]["static_configs"] == [{"targets": ["inference-api:8000"]}]
    assert jobs["inference-api"]["metrics_path"] == "/metrics"
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["localhost:9090"]}]
    assert all(not Path(pattern).is_absolute() for pattern in config["rule_files"])


def test_latency_alert_and_locust_pass_mark_are_the_same_slo() -> None:
    """The SLO is written twice, in the alert's expression and as Locust's default: keep them equal."""
    (latency_rule,) = (rule for rule in ALERT_RULES if rule["alert"] == "InferenceApiLatencyAboveSlo")
    alert_slo_seconds = float(re.search(r">\s*([0-9.]+)\s*$", latency_rule["expr"]).group(1))
    locustfile = ast.parse((SERVIDOR3 / "locust" / "locustfile.py").read_text())
    (locust_slo_ms,) = (
        node.value.value
        for node in locustfile.body
        if isinstance(node, ast.Assign) and node.targets[0].id == "P95_SLO_MS"
    )
    assert alert_slo_seconds * 1000 == locust_slo_ms


def test_a_real_prometheus_loads_the_rules_and_fires_api_down_on_a_dead_target(
    prometheus_without_api: Prometheus,
) -> None:
    """Nothing listens on the target: `up` is 0, so InferenceApiDown goes pending (its `for:` is
    longer than the test) while every rule group evaluates without error."""
    prometheus = prometheus_without_api
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alerts = requests.get(f"{prometheus.url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        if any(alert["labels"]["alertname"] == "InferenceApiDown" for alert in alerts):
            break
        time.sleep(0.5)
    else:
        raise AssertionError("InferenceApiDown never became active on a dead target")
    groups = requests.get(f"{prometheus.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == len(ALERT_RULES) + len(RECORDING_RULES)
    assert [rule["name"] for rule in rules if rule["health"] == "err"] == []


def test_every_series_the_rules_read_or_record_has_data_from_the_api_under_load(
    loaded_inference_api, prometheus_query
) -> None:
    """The metric names in the rules are a contract with the API; a misspelt one would leave an
    alert that can never fire."""
    exprs = " ".join(rule["expr"] for rule in [*ALERT_RULES, *RECORDING_RULES])
    # Not the parts of recorded names (level:metric:operation).
    exported = set(re.findall(r"(?<![:\w])(?:realtor|http)_[a-z_]+(?![:\w])", exprs))
    recorded = {rule["record"] for rule in RECORDING_RULES}
    empty = [
        series
        for series in sorted(exported | recorded)
        if not prometheus_query(
            loaded_inference_api.prometheus, series, at=loaded_inference_api.load_ended_at
        )["data"]["result"]
    ]
    assert empty == []
