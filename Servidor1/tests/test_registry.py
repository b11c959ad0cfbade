"""Registering, promoting, rolling back and explaining models on a real `mlflow server` (Postgres, S3).

The client holds no S3 credentials, so every artefact goes through the tracking server's proxy.
The server is shared by the session: each test registers under a model name of its own.
"""

import json
import os
import subprocess
import sys
import uuid

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.types import DataType
from sklearn.dummy import DummyRegressor
from threadpoolctl import threadpool_limits

from data_api.generator import generate_listings
from realtor_pipeline import explain, registry
from realtor_pipeline.evaluate import TARGET
from realtor_pipeline.features import ListingFeatures
from realtor_pipeline.split import clean_training_rows, priced_rows, split_of
from realtor_pipeline.train import TrainedModel, build_candidates, on_log_price, train_best

STATES = ("Connecticut", "Florida")
ROWS_PER_STATE = 3_000
SEED = 11
WORSE_TRAINING_ROWS = 300
MARGIN = 0.02
OPTIONAL_INPUTS = ("bed", "bath", "house_size", "acre_lot", "prev_sold_date")
S3_CLIENT_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "MLFLOW_S3_ENDPOINT_URL",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One OpenMP thread: the machine's two cores are shared."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(autouse=True)
def tracking(mlflow_server, monkeypatch):
    """The library's ambient tracking URI points at the test server; no S3 credentials in the client."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
    for name in S3_CLIENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return mlflow_server


@pytest.fixture(scope="module")
def splits() -> dict[str, pd.DataFrame]:
    listings = pd.concat(
        [generate_listings(state, ROWS_PER_STATE, SEED) for state in STATES], ignore_index=True
    )
    priced = priced_rows(listings)
    split = split_of(priced)
    return {
        "train": clean_training_rows(priced[split == "train"]),
        "validation": priced[split == "validation"],
        "test": priced[split == "test"],
    }


@pytest.fixture(scope="module")
def good_model(splits) -> TrainedModel:
    return train_best(splits["train"], splits["validation"])


@pytest.fixture(scope="module")
def worse_model(splits) -> TrainedModel:
    """Ridge on a few hundred rows: clearly worse than the full search."""
    ridge = [candidate for candidate in build_candidates() if candidate.name == "ridge"]
    return train_best(splits["train"].head(WORSE_TRAINING_ROWS), splits["validation"], candidates=ridge)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def training_run(experiment_name: str, trained: TrainedModel) -> str:
    """A finished run with the params and metrics, as the pipeline's train step leaves it."""
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(experiment_name)
    run = client.create_run(experiment_id, run_name=trained.name)
    for name, value in {"model_name": trained.name, **trained.params}.items():
        client.log_param(run.info.run_id, name, value)
    for name, value in trained.validation_metrics.items():
        client.log_metric(run.info.run_id, f"validation_{name}", value)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def register(model_name: str, trained: TrainedModel, splits) -> str:
    run_id = training_run(model_name, trained)
    version = registry.register_model(
        run_id,
        trained.pipeline,
        splits["train"].head(5),
        model_name,
        {"trained_on": "generated", "git": "test"},
    )
    return version.version


def aliases(model_name: str) -> dict[str, str]:
    return {
        alias: str(version)
        for alias, version in mlflow.MlflowClient().get_registered_model(model_name).aliases.items()
    }


def awkward_rows(test: pd.DataFrame) -> pd.DataFrame:
    """Served rows with missing optional fields, an unseen status, state and city."""
    rows = registry.as_served(test.head(8)).reset_index(drop=True)
    for position, column in enumerate(OPTIONAL_INPUTS):
        rows.loc[position, column] = None
    rows.loc[5, list(OPTIONAL_INPUTS)] = None
    rows.loc[6, "status"] = "pending"
    rows.loc[7, ["state", "city"]] = ["Atlantis", "Poseidonia"]
    return rows


SERVE_WITHOUT_PACKAGE = """
import json, sys
try:
    import realtor_pipeline
except ModuleNotFoundError:
    pass
else:
    sys.exit("realtor_pipeline is importable here: " + realtor_pipeline.__file__)
import mlflow
import pandas as pd
rows = pd.DataFrame(json.load(open(sys.argv[2])))
uri = f"models:/{sys.argv[1]}@champion"
print(json.dumps({
    "sklearn": mlflow.sklearn.load_model(uri).predict(rows).tolist(),
    "pyfunc": mlflow.pyfunc.load_model(uri).predict(rows).tolist(),
}))
"""


def test_first_promotion_makes_a_champion_that_serves_without_the_package(
    good_model, splits, tracking, tmp_path
):
    model_name = unique("first-champion")
    version = register(model_name, good_model, splits)

    outcome = registry.promote_if_better(model_name, version, splits["test"], MARGIN, "dag-run-1")

    assert outcome.promoted and outcome.champion_version is None and outcome.reason == "no champion yet"
    assert aliases(model_name) == {"champion": version}
    champion = registry.champion_info(model_name)
    assert champion["version"] == version
    assert champion["metrics"]["validation_mae"] == pytest.approx(good_model.validation_metrics["mae"])
    assert champion["tags"]["promotion"] == "promoted" and champion["tags"]["trained_on"] == "generated"

    rows = awkward_rows(splits["test"])
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(rows.to_json(orient="records"))
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in S3_CLIENT_VARIABLES and not key.startswith("PYTHON")
    }
    served = subprocess.run(
        [sys.executable, "-I", "-c", SERVE_WITHOUT_PACKAGE, model_name, str(rows_file)],
        cwd=tmp_path,
        env={**env, "MLFLOW_TRACKING_URI": tracking.tracking_uri},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert served.returncode == 0, served.stderr[-3000:]
    predictions = json.loads(served.stdout.strip().splitlines()[-1])
    expected = good_model.pipeline.predict(rows)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(predictions["sklearn"], expected, rtol=1e-12)
    np.testing.assert_allclose(predictions["pyfunc"], expected, rtol=1e-12)


def test_signature_accepts_null_optional_fields_and_registering_a_run_again_returns_its_version(
    good_model, splits
):
    model_name = unique("idempotent-register")
    run_id = training_run(model_name, good_model)
    first = registry.register_model(run_id, good_model.pipeline, splits["train"].head(5), model_name, {})
    again = registry.register_model(run_id, good_model.pipeline, splits["train"].head(5), model_name, {})

    assert again.version == first.version
    assert [
        found.version for found in mlflow.MlflowClient().search_model_versions(f"name = '{model_name}'")
    ] == [first.version]
    assert first.tags["run_id"] == run_id
    inputs = mlflow.models.get_model_info(f"models:/{model_name}/{first.version}").signature.inputs
    required = {spec.name for spec in inputs.inputs if spec.required}
    assert required == {"status", "state"}
    assert TARGET not in inputs.input_names()
    assert {spec.name: spec.type for spec in inputs.inputs}["prev_sold_date"] == DataType.string


def test_a_worse_candidate_is_rejected_once_and_the_champion_stays(good_model, worse_model, splits):
    model_name = unique("rejection")
    champion = register(model_name, good_model, splits)
    registry.promote_if_better(model_name, champion, splits["test"], MARGIN, "dag-run-1")
    candidate = register(model_name, worse_model, splits)

    outcome = registry.promote_if_better(model_name, candidate, splits["test"], MARGIN, "dag-run-2")
    again = registry.promote_if_better(model_name, candidate, splits["test"], MARGIN, "dag-run-2-retry")

    assert not outcome.promoted and outcome.champion_version == champion
    assert outcome.candidate_mae > outcome.champion_mae * (1 - MARGIN)
    assert again == outcome
    assert aliases(model_name) == {"champion": champion}
    tags = mlflow.MlflowClient().get_model_version(model_name, candidate).tags
    assert tags["promotion"] == "rejected" and float(tags["promotion_candidate_mae"]) == outcome.candidate_mae
    history = registry.promotion_history(model_name)
    assert history[["outcome", "from_version", "to_version", "dag_run_id"]].values.tolist() == [
        ["rejected", champion, champion, "dag-run-2"],
        ["promoted", "", champion, "dag-run-1"],
    ]
    assert history["champion_mae"].iloc[0] == pytest.approx(outcome.champion_mae)


def test_rollback_restores_the_previous_champion_and_a_second_rollback_undoes_it(
    good_model, worse_model, splits
):
    model_name = unique("rollback")
    first = register(model_name, worse_model, splits)
    registry.promote_if_better(model_name, first, splits["test"], MARGIN, "dag-run-1")
    second = register(model_name, good_model, splits)
    promoted = registry.promote_if_better(model_name, second, splits["test"], MARGIN, "dag-run-2")
    assert promoted.promoted and aliases(model_name) == {"champion": second, "previous": first}

    outcome = registry.rollback(model_name, "complaints about prices")

    assert (outcome.event, outcome.candidate_version, outcome.champion_version) == ("rollback", first, second)
    assert aliases(model_name) == {"champion": first, "previous": second}
    client = mlflow.MlflowClient()
    assert client.get_model_version(model_name, second).tags["rolled_back"] == "true"

    registry.rollback(model_name, "false alarm")

    assert aliases(model_name) == {"champion": second, "previous": first}
    assert "rolled_back" not in client.get_model_version(model_name, second).tags
    assert client.get_model_version(model_name, first).tags["rolled_back"] == "true"
    history = registry.promotion_history(model_name)
    assert history[["event", "outcome", "from_version", "to_version", "reason"]].values.tolist()[:2] == [
        ["rollback", "rolled_back", first, second, "false alarm"],
        ["rollback", "rolled_back", second, first, "complaints about prices"],
    ]
    assert history["recorded_at"].is_monotonic_decreasing and len(history) == 4


def test_promotion_finishes_when_the_aliases_moved_but_no_verdict_was_recorded(
    good_model, worse_model, splits
):
    model_name = unique("interrupted")
    first = register(model_name, worse_model, splits)
    second = register(model_name, good_model, splits)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(model_name, "previous", first)
    client.set_registered_model_alias(model_name, "champion", second)

    outcome = registry.promote_if_better(model_name, second, splits["test"], MARGIN, "dag-run-2")

    assert outcome.promoted and outcome.champion_version == first
    assert aliases(model_name) == {"champion": second, "previous": first}
    assert registry.promotion_history(model_name)["outcome"].tolist() == ["promoted"]


def test_rollback_without_a_previous_version_fails_clearly(good_model, splits):
    model_name = unique("lone-champion")
    version = register(model_name, good_model, splits)
    registry.promote_if_better(model_name, version, splits["test"], MARGIN, "dag-run-1")

    with pytest.raises(LookupError, match=r"needs both @champion and @previous.*@previous=None"):
        registry.rollback(model_name, "just because")
    assert aliases(model_name) == {"champion": version}
    assert registry.champion_info(unique("never-registered")) is None


def test_explanations_are_logged_to_the_run_through_the_proxy(good_model, splits, tmp_path):
    run_id = training_run(unique("explain"), good_model)

    paths = explain.log_explanations(run_id, good_model.pipeline, splits["test"], max_rows=300)

    client = mlflow.MlflowClient()
    logged = {item.path for item in client.list_artifacts(run_id, explain.EXPLANATIONS_DIR)}
    assert (
        logged
        == set(paths)
        == {
            "explanations/shap_summary.png",
            "explanations/shap_importance.png",
            "explanations/shap_importance.csv",
        }
    )
    folder = client.download_artifacts(run_id, explain.EXPLANATIONS_DIR, str(tmp_path))
    for png in ("shap_summary.png", "shap_importance.png"):
        content = (tmp_path / "explanations" / png).read_bytes()
        assert content.startswith(PNG_SIGNATURE) and len(content) > 10_000, png
    importance = pd.read_csv(f"{folder}/shap_importance.csv")
    names = good_model.pipeline.regressor_[:-1].get_feature_names_out()
    assert sorted(importance["feature"]) == sorted(names)
    assert importance["mean_abs_shap"].is_monotonic_decreasing
    # Generated prices are size times a location level (city and zip): those must lead.
    leaders = list(importance["feature"].head(3))
    assert "log_house_size" in leaders and any(name.endswith("_mean_target") for name in leaders), leaders


def test_an_estimator_shap_does_not_know_is_explained_by_permutation(splits):
    dummy = on_log_price([("features", ListingFeatures()), ("model", DummyRegressor())])
    dummy.fit(splits["train"], splits["train"][TARGET])

    explanation = explain.shap_values(dummy, splits["test"].head(10))

    assert explanation.values.shape == (10, len(dummy.regressor_[:-1].get_feature_names_out()))
    assert np.allclose(explanation.values, 0)  # a constant model: no feature moves it


@pytest.mark.parametrize("model", ["good_model", "worse_model"])
def test_shap_values_add_up_to_the_estimators_output(model, request, splits):
    """Boosting gets the exact tree algorithm, Ridge the exact linear one: no additivity gap."""
    inner = request.getfixturevalue(model).pipeline.regressor_
    rows = splits["test"].head(50)

    explanation = explain.shap_values(request.getfixturevalue(model).pipeline, rows)

    np.testing.assert_allclose(
        explanation.values.sum(axis=1) + explanation.base_values,
        inner[-1].predict(inner[:-1].transform(rows)),
        atol=1e-6,
    )
