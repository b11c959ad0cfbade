"""Node 3's Grafana provisioning and dashboards. No Grafana server runs here, so each dashboard
file is checked for what Grafana needs to load it as provisioned, and every panel's PromQL is
run against a real Prometheus: it must parse, and against the real inference API under load it
must return data."""

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.harness.services import Prometheus

SERVIDOR3 = Path(__file__).resolve().parents[1]
GRAFANA_DIR = SERVIDOR3 / "grafana"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
DASHBOARD_UIDS = {"inference.json": "realtor-inference", "load-test.json": "realtor-load-test"}
GRID_COLUMNS = 24
# What Grafana puts in place of its variables before sending a query; the live test's Prometheus
# scrapes every second, so these windows hold many samples.
GRAFANA_VARIABLES = {"$__rate_interval": "15s", "$__range": "5m"}


def load_dashboard(name: str) -> dict:
    return json.loads((GRAFANA_DIR / "dashboards" / name).read_text())


def panel_queries() -> list[tuple[str, str]]:
    """(id for the test report, PromQL with Grafana's variables replaced) of every panel target."""
    queries = []
    for name in DASHBOARD_UIDS:
        for panel in load_dashboard(name)["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                queries.append((f"{name}:{panel['title']}:{target['refId']}", expr))
    return queries


QUERIES = panel_queries()


def test_datasource_is_node_3s_prometheus_under_the_fixed_uid() -> None:
    config = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (datasource,) = config["datasources"]
    assert {key: datasource[key] for key in DATASOURCE} == DATASOURCE
    assert datasource["url"] == "http://prometheus:9090"


def test_dashboard_provider_reads_a_folder_of_files() -> None:
    config = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml").read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert Path(provider["options"]["path"]).is_absolute()


def test_dashboard_files_are_exactly_the_known_ones() -> None:
    assert sorted(path.name for path in (GRAFANA_DIR / "dashboards").glob("*.json")) == sorted(DASHBOARD_UIDS)


@pytest.mark.parametrize("name", DASHBOARD_UIDS)
def test_dashboard_loads_as_provisioned(name: str) -> None:
    """Fixed uid and no id (Grafana assigns it), every panel and target on the datasource's uid,
    and no import-time `${DS_...}` inputs, which file provisioning does not fill in."""
    dashboard = load_dashboard(name)
    assert dashboard["uid"] == DASHBOARD_UIDS[name]
    assert dashboard["id"] is None
    assert dashboard["title"]
    assert "__inputs" not in dashboard
    assert "${DS_" not in json.dumps(dashboard)
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels), "panel ids repeat"
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), f"{panel['title']}: refIds repeat"
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


@pytest.mark.parametrize("name", DASHBOARD_UIDS)
def test_panels_fit_the_grid_without_overlapping(name: str) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in load_dashboard(name)["panels"]:
        x, y, w, h = (panel["gridPos"][key] for key in ("x", "y", "w", "h"))
        assert x >= 0 and x + w <= GRID_COLUMNS, panel["title"]
        for cell in ((column, row) for column in range(x, x + w) for row in range(y, y + h)):
            assert cell not in taken, f"{panel['title']} overlaps {taken[cell]}"
            taken[cell] = panel["title"]


def test_inference_dashboard_shows_what_the_issue_asks_for() -> None:
    """A series each: request rate, latency quantiles, error ratio by status, batch sizes,
    predictions by model version, served model, reloads, dropped log rows, price distribution."""
    panels = load_dashboard("inference.json")["panels"]
    exprs = " ".join(target["expr"] for panel in panels for target in panel["targets"])
    for series in (
        "handler:http_requests:rate5m",
        "handler_quantile:http_request_duration_seconds:histogram_quantile",
        "status:http_requests:ratio_rate5m",
        "realtor_batch_size_bucket",
        "model_version:realtor_predictions:rate5m",
        "realtor_model_info",
        "realtor_model_reloads_total",
        "realtor_inference_log_rows_dropped_total",
        "realtor_predicted_price_dollars_bucket",
    ):
        assert series in exprs, f"no panel reads {series}"


def test_recorded_series_the_panels_read_are_recorded() -> None:
    groups = yaml.safe_load((SERVIDOR3 / "prometheus" / "rules" / "recording.yml").read_text())["groups"]
    recorded = {rule["record"] for group in groups for rule in group["rules"]}
    for query_id, expr in QUERIES:
        # Recording-rule names are the only metric names with colons.
        assert set(re.findall(r"[a-z_]+:[a-z0-9_:]+", expr)) <= recorded, query_id


def test_no_grafana_variable_is_left_unreplaced() -> None:
    assert [query_id for query_id, expr in QUERIES if "$" in expr] == []


@pytest.mark.parametrize(("query_id", "expr"), QUERIES, ids=[query_id for query_id, _ in QUERIES])
def test_panel_query_is_valid_promql(
    query_id: str, expr: str, prometheus_without_api: Prometheus, prometheus_query
) -> None:
    answer = prometheus_query(prometheus_without_api, expr)
    assert answer["status"] == "success", f"{query_id}: {answer.get('error')}"


@pytest.mark.parametrize(("query_id", "expr"), QUERIES, ids=[query_id for query_id, _ in QUERIES])
def test_panel_query_returns_data_from_the_api_under_load(
    query_id: str, expr: str, loaded_inference_api, prometheus_query
) -> None:
    answer = prometheus_query(loaded_inference_api.prometheus, expr, at=loaded_inference_api.load_ended_at)
    assert answer["status"] == "success", f"{query_id}: {answer.get('error')}"
    assert answer["data"]["result"], f"{query_id} returned no data: {expr}"
