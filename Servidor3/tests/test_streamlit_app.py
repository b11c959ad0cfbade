"""The Streamlit page, run by Streamlit's AppTest against the real inference API and `mlflow server`
that node 1's real pipeline steps filled (Servidor3/tests/conftest.py)."""

import itertools
import math
import secrets

import pandas as pd
import pytest
import requests
import streamlit as st
from streamlit.testing.v1 import AppTest

from realtor_pipeline import registry
from tests.harness.processes import REPO_ROOT, free_port

APP_DIR = REPO_ROOT / "Servidor3" / "streamlit_app"
RUN_SECONDS = 60  # the first run of a page waits for /explain or several MLflow calls on 2 busy cores


@pytest.fixture(autouse=True)
def app_modules(monkeypatch):
    """The page imports its modules as `streamlit run` lets it (its folder on sys.path); caches are
    per process, so each test starts without the last one's answers."""
    monkeypatch.syspath_prepend(str(APP_DIR))
    st.cache_data.clear()


def open_page(monkeypatch, page: str, **env: str) -> AppTest:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = AppTest.from_file(APP_DIR / "app.py", default_timeout=RUN_SECONDS).run()
    if page != "predict":
        app.switch_page(f"views/{page}.py").run()
    assert not app.exception, [exception.value for exception in app.exception]
    return app


def pipeline_env(pipeline_runs, mlflow_server, api_url: str) -> dict[str, str]:
    return {
        "INFERENCE_API_URL": api_url,
        "MLFLOW_TRACKING_URI": mlflow_server.tracking_uri,
        "MODEL_NAME": pipeline_runs.settings.model_name,
        "PIPELINE_EXPERIMENT": pipeline_runs.settings.experiment,
    }


def test_a_prediction_round_trip_shows_price_model_and_shap_waterfall(
    monkeypatch, pipeline_api, pipeline_runs, mlflow_server
):
    app = open_page(monkeypatch, "predict", **pipeline_env(pipeline_runs, mlflow_server, pipeline_api.url))
    assert app.title[0].value == "Predict a price"
    assert [box.value for box in app.selectbox] == ["for_sale", "Massachusetts"]  # the schema's example
    app.number_input(key="listing_bed").set_value(4.0)
    app.button[0].click().run()
    assert not app.exception and not app.error, [element.value for element in app.error]

    import backends  # the page's own client, on the path the fixture set
    import charts

    listing = backends.listing_schema(pipeline_api.url)["examples"][0] | {"bed": 4.0}
    expected = requests.post(f"{pipeline_api.url}/predict", json=listing, timeout=30).json()
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Predicted price"] == f"${expected['price']:,.0f}"
    assert metrics["Model"] == f"{pipeline_runs.settings.model_name} v{pipeline_runs.champion} @champion"
    assert [header.value for header in app.header] == ["Predicted price", "What moved the price"]

    # The waterfall's steps chain from the model's typical price to exactly this price.
    chart = charts.shap_waterfall(backends.explain(pipeline_api.url, listing)).to_dict()
    [steps] = chart["datasets"].values()
    assert steps[0]["step"] == "typical price" and steps[-1]["step"] == "this listing"
    assert steps[-1]["end"] == pytest.approx(expected["price"], rel=1e-6)
    assert all(before["end"] == after["start"] for before, after in itertools.pairwise(steps[:-1]))
    assert steps[-2]["end"] == pytest.approx(steps[-1]["end"])


def test_input_errors_appear_next_to_their_fields_and_nothing_is_sent(monkeypatch, pipeline_api):
    app = open_page(monkeypatch, "predict", INFERENCE_API_URL=pipeline_api.url)
    app.number_input(key="listing_house_size").set_value(50.0)
    app.number_input(key="listing_bath").set_value(60.0)
    app.button[0].click().run()
    assert [element.value for element in app.error] == [
        "bath: must be at most 50, got 60",
        "house_size: must be more than 100, got 50",
    ]
    assert "not priced" in app.warning[0].value
    assert not app.metric
    # The error sits in the same column, right under its input.
    for column in app.columns:
        children = list(column.children.values())
        keys = [getattr(child, "key", None) for child in children]
        if "listing_house_size" in keys:
            assert children[keys.index("listing_house_size") + 1].value == app.error[1].value


def test_the_apis_own_422s_become_field_messages(pipeline_api):
    import backends

    listing = backends.listing_schema(pipeline_api.url)["examples"][0]
    with pytest.raises(backends.ListingRejected) as rejected:
        backends.predict(pipeline_api.url, {**listing, "prev_sold_date": "2999-01-01", "bed": "three"})
    assert set(rejected.value.field_errors) == {"prev_sold_date", "bed"}
    assert "future" in rejected.value.field_errors["prev_sold_date"]


def test_models_page_shows_champion_run_history_metric_chart_and_shap_summary(
    monkeypatch, pipeline_api, pipeline_runs, mlflow_server
):
    app = open_page(monkeypatch, "models", **pipeline_env(pipeline_runs, mlflow_server, pipeline_api.url))
    assert [header.value for header in app.header] == [
        "Champion", "Run history", "Test MAE by version", "SHAP summary of the champion",
    ]  # fmt: skip
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Version"] == pipeline_runs.champion
    assert metrics["Promoted"].endswith("UTC")
    assert float(metrics["test_mae"].replace(",", "")) > 0

    runs_table = app.dataframe[0].value
    assert list(runs_table["DAG run id"]) == ["run-3", "run-2", "run-1"]
    assert list(runs_table["decision"]) == ["train", "skip", "train"]
    assert runs_table["reason"].str.len().gt(0).all()
    history = registry.promotion_history(pipeline_runs.settings.model_name).set_index("dag_run_id")
    for dag_run_id, version in zip(("run-1", "run-3"), pipeline_runs.versions, strict=True):
        row = runs_table.set_index("DAG run id").loc[dag_run_id]
        recorded = history.loc[dag_run_id]
        assert (row["model name"], row["model version"]) == (pipeline_runs.settings.model_name, version)
        assert row["promoted"] == (recorded["outcome"] == "promoted")
        assert row["candidate test MAE"] == pytest.approx(recorded["candidate_mae"])
        assert (math.isnan(row["champion test MAE"]) and math.isnan(recorded["champion_mae"])) or row[
            "champion test MAE"
        ] == pytest.approx(recorded["champion_mae"])
    assert pd.isna(runs_table.set_index("DAG run id").loc["run-2", "model version"])
    assert runs_table.set_index("DAG run id").loc["run-1", "promoted"]  # the first model always is

    [summary] = app.get("image")
    assert summary.captions == [f"SHAP summary of version {pipeline_runs.champion}"]
    import backends

    champion_run = app.get("link_button")[0].proto.url.rsplit("/", 1)[-1]
    assert backends.run_artifact(mlflow_server.tracking_uri, champion_run, "explanations/none.png") is None
    [link] = app.get("link_button")
    assert link.proto.url.startswith(f"{mlflow_server.tracking_uri}/#/experiments/")


def test_run_history_shows_its_columns_before_the_first_model(monkeypatch, mlflow_server):
    fresh = f"no-model-{secrets.token_hex(4)}"
    app = open_page(
        monkeypatch, "models", MLFLOW_TRACKING_URI=mlflow_server.tracking_uri, MODEL_NAME=fresh,
        PIPELINE_EXPERIMENT=fresh,
    )  # fmt: skip
    runs_table = app.dataframe[0].value
    assert runs_table.empty
    assert list(runs_table.columns) == [
        "recorded at", "DAG run id", "decision", "reason", "model name", "model version",
        "candidate test MAE", "champion test MAE", "promoted", "promotion reason",
    ]  # fmt: skip
    infos = " ".join(info.value for info in app.info)
    assert f"No model is `{fresh}@champion` yet" in infos and "No DAG run has been recorded yet" in infos
    assert not app.error


def test_data_page_shows_the_ingestion_log_and_quarantine_reasons(monkeypatch, pipeline_api, pipeline_runs):
    app = open_page(monkeypatch, "data", INFERENCE_API_URL=pipeline_api.url)
    assert [header.value for header in app.header] == ["Ingestion log", "Quarantine"]
    by_generation, log, reasons, recent = (frame.value for frame in app.dataframe)
    status = requests.get(f"{pipeline_api.url}/pipeline/quarantine", timeout=10).json()
    assert len(log) == 4 and list(by_generation.index) == [1]
    assert (
        by_generation.loc[1, "rows_quarantined"]
        == status["total_rows"]
        == int(app.metric[0].value.replace(",", ""))
    )
    assert list(reasons["reason"]) == [item["reason"] for item in status["reasons"]]
    assert len(recent) == min(50, status["total_rows"])


@pytest.mark.parametrize("page", ["predict", "models", "data"])
def test_a_backend_that_is_down_gives_a_banner_not_a_traceback(monkeypatch, page):
    dead = f"http://127.0.0.1:{free_port()}"
    app = open_page(monkeypatch, page, INFERENCE_API_URL=dead, MLFLOW_TRACKING_URI=dead)
    [banner] = app.error
    assert f"at {dead}" in banner.value and "not available" in banner.value
    assert "connection refused" in banner.value


def test_data_page_says_when_the_api_has_no_pipeline_status(monkeypatch, start_inference_api):
    api = start_inference_api(PIPELINE_STATUS_HOST="")
    app = open_page(monkeypatch, "data", INFERENCE_API_URL=api.url)
    [banner] = app.error
    assert "HTTP 503" in banner.value and "PIPELINE_STATUS_HOST is not set" in banner.value
