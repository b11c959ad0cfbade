"""The page's two backends over HTTP: node 3's inference API and node 2's MLflow REST API.

The page holds no database or S3 credentials: listings, models and the pipeline's status all come
through these calls, MLflow's only read (artefacts through the tracking server's proxy). It uses
MLflow's REST API with `requests`, not the mlflow package, to keep the image light. Every call has
a timeout; a backend that cannot be reached, or answers 5xx, raises `BackendUnavailable`, which
the pages show as a banner. Reads are cached for `CACHE_SECONDS` (failures are not cached).
"""

import os
from dataclasses import dataclass
from typing import Any

import requests
import streamlit as st

TIMEOUT = (3.05, 30)  # connect, read (seconds): /explain on a cold model takes a few seconds
CACHE_SECONDS = 30
CHAMPION = "champion"
MAX_RUNS = 1_000  # one page of runs/search: the history of years of 15-minute DAG runs is not shown


@dataclass(frozen=True)
class Settings:
    inference_api_url: str
    mlflow_tracking_uri: str
    mlflow_ui_url: str  # where people open MLflow; may differ from the address the page calls
    model_name: str
    pipeline_experiment: str  # where node 1 logs its decision runs

    @classmethod
    def from_env(cls) -> "Settings":
        tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000").rstrip("/")
        return cls(
            inference_api_url=os.environ.get("INFERENCE_API_URL", "http://127.0.0.1:8000").rstrip("/"),
            mlflow_tracking_uri=tracking_uri,
            mlflow_ui_url=os.environ.get("MLFLOW_UI_URL", tracking_uri).rstrip("/"),
            model_name=os.environ.get("MODEL_NAME", "realtor-price"),
            pipeline_experiment=os.environ.get("PIPELINE_EXPERIMENT", "realtor-price"),
        )


class BackendUnavailable(Exception):
    def __init__(self, backend: str, url: str, detail: str) -> None:
        super().__init__(f"{backend} at {url} is not available: {detail}")


class ListingRejected(Exception):
    """The inference API's 422: the message of each field it rejected."""

    def __init__(self, field_errors: dict[str, str]) -> None:
        super().__init__(f"rejected fields: {field_errors}")
        self.field_errors = field_errors


def _send(backend: str, method: str, url: str, **kwargs: Any) -> requests.Response:
    try:
        response = requests.request(method, url, timeout=TIMEOUT, **kwargs)
    except requests.ConnectionError:
        raise BackendUnavailable(backend, url, "no answer (connection refused or host unreachable)") from None
    except requests.Timeout:
        raise BackendUnavailable(backend, url, f"no answer within {TIMEOUT[1]} s") from None
    if response.status_code >= 500:
        raise BackendUnavailable(backend, url, f"HTTP {response.status_code}: {_message(response)}")
    return response


def _message(response: requests.Response) -> str:
    """What a FastAPI (`detail`) or MLflow (`message`) error body says, else its first 200 characters."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail") or body.get("message") or body) if isinstance(body, dict) else str(body)


def _ok_json(backend: str, response: requests.Response) -> Any:
    return _checked(backend, response).json()


def _checked(backend: str, response: requests.Response) -> requests.Response:
    """A 4xx the page did not expect means the page and the backend disagree: shown as a banner."""
    if not response.ok:
        raise BackendUnavailable(backend, response.url, f"HTTP {response.status_code}: {_message(response)}")
    return response


# --- inference API -------------------------------------------------------------------------------

API = "The inference API"


@st.cache_data(ttl=CACHE_SECONDS * 10, show_spinner=False)
def listing_schema(api_url: str) -> dict:
    """The API's own JSON schema of a listing (bounds, choices, example), so the form repeats none."""
    spec = _ok_json(API, _send(API, "GET", f"{api_url}/openapi.json"))
    return spec["components"]["schemas"]["Listing"]


def _post_listing(api_url: str, path: str, listing: dict) -> dict:
    response = _send(API, "POST", f"{api_url}{path}", json=listing)
    if response.status_code == 422:
        detail = response.json()["detail"]
        raise ListingRejected({str(error["loc"][-1]): error["msg"] for error in detail})
    return _ok_json(API, response)


def predict(api_url: str, listing: dict) -> dict:
    """POST /predict: price, model_name, model_version, request_id. Never cached: each is logged."""
    return _post_listing(api_url, "/predict", listing)


def explain(api_url: str, listing: dict) -> dict:
    """POST /explain: base_value and each feature's SHAP push, in log(1 + price) units."""
    return _post_listing(api_url, "/explain", listing)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def served_model(api_url: str) -> dict:
    """GET /model: the version being served, its alias and metrics."""
    return _ok_json(API, _send(API, "GET", f"{api_url}/model"))


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def ingestion_log(api_url: str, limit: int) -> list[dict]:
    return _ok_json(API, _send(API, "GET", f"{api_url}/pipeline/ingestion", params={"limit": limit}))


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def quarantine(api_url: str, limit: int) -> dict:
    return _ok_json(API, _send(API, "GET", f"{api_url}/pipeline/quarantine", params={"limit": limit}))


# --- MLflow REST API (read-only) -----------------------------------------------------------------

MLFLOW = "MLflow"


def _mlflow(tracking_uri: str, method: str, path: str, **kwargs: Any) -> Any:
    """One MLflow REST call; None when MLflow says the thing does not exist."""
    response = _send(MLFLOW, method, f"{tracking_uri}/api/2.0/mlflow/{path}", **kwargs)
    if response.status_code == 404 and "RESOURCE_DOES_NOT_EXIST" in response.text:
        return None
    return _ok_json(MLFLOW, response)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def champion(tracking_uri: str, model_name: str) -> dict | None:
    """The `@champion` model version (version, run_id, tags, …); None before the first promotion."""
    found = _mlflow(
        tracking_uri, "GET", "registered-models/alias", params={"name": model_name, "alias": CHAMPION}
    )
    return None if found is None else _with_tags(found["model_version"])


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def model_versions(tracking_uri: str, model_name: str) -> list[dict]:
    """Every version of the model, with its tags as a dict (empty before the first one)."""
    found = _mlflow(
        tracking_uri,
        "GET",
        "model-versions/search",
        params={"filter": f"name = '{model_name}'", "max_results": MAX_RUNS},
    )
    return [_with_tags(version) for version in (found or {}).get("model_versions", [])]


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def run(tracking_uri: str, run_id: str) -> dict:
    """One run as {run_id, experiment_id, start_time (ms), tags, metrics}."""
    return _flat_run(_mlflow(tracking_uri, "GET", "runs/get", params={"run_id": run_id})["run"])


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def search_runs(tracking_uri: str, experiment_name: str, filter_string: str) -> list[dict]:
    """Runs of an experiment matching `filter_string`, newest first; empty when it does not exist."""
    experiment = _mlflow(
        tracking_uri, "GET", "experiments/get-by-name", params={"experiment_name": experiment_name}
    )
    if experiment is None:
        return []
    found = _mlflow(
        tracking_uri,
        "POST",  # MLflow's search is a POST; it reads only
        "runs/search",
        json={
            "experiment_ids": [experiment["experiment"]["experiment_id"]],
            "filter": filter_string,
            "order_by": ["attributes.start_time DESC"],
            "max_results": MAX_RUNS,
        },
    )
    return [_flat_run(found_run) for found_run in found.get("runs", [])]


@st.cache_data(ttl=CACHE_SECONDS * 10, show_spinner=False)
def run_artifact(tracking_uri: str, run_id: str, path: str) -> bytes | None:
    """A file logged to a run, through the tracking server (which proxies S3); None if absent.

    Listed first: the proxy answers a missing file with a 500, indistinguishable from an outage."""
    folder = path.rpartition("/")[0]
    listed = _mlflow(tracking_uri, "GET", "artifacts/list", params={"run_id": run_id, "path": folder})
    if path not in {found["path"] for found in (listed or {}).get("files", [])}:
        return None
    url = f"{tracking_uri}/get-artifact"
    return _checked(MLFLOW, _send(MLFLOW, "GET", url, params={"run_uuid": run_id, "path": path})).content


def _with_tags(version: dict) -> dict:
    return {**version, "tags": {tag["key"]: tag["value"] for tag in version.get("tags", [])}}


def _flat_run(found: dict) -> dict:
    data = found.get("data", {})
    return {
        "run_id": found["info"]["run_id"],
        "experiment_id": found["info"]["experiment_id"],
        "start_time": int(found["info"]["start_time"]),
        "tags": {tag["key"]: tag["value"] for tag in data.get("tags", [])},
        "metrics": {metric["key"]: float(metric["value"]) for metric in data.get("metrics", [])},
    }
