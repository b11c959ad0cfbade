"""The Models page's tables, assembled from the MLflow runs node 1 leaves behind.

Node 1 logs a decision run per DAG run in the pipeline experiment (tags `event=decision`,
`decision`, `reason`, `dag_run_id`) and one run per promotion decision or rollback in
`<model>-promotion-history` (tags `event`, `outcome`, `model_name`, `candidate_version`,
`to_version`, `reason`, `dag_run_id`; metrics `candidate_mae`, `champion_mae`). Those names are
node 1's registry.py and steps.py; they are read here, never imported. Pure functions over the
plain dicts of backends.py.
"""

import pandas as pd

TEST_METRIC = "test_mae"  # what node 1 promotes on: MAE on the fixed test split
PROMOTED_OUTCOMES = ("promoted", "rolled_back")  # both moved @champion to `to_version`
HISTORY_COLUMNS = (
    "recorded at", "DAG run id", "decision", "reason", "model name", "model version",
    "candidate test MAE", "champion test MAE", "promoted", "promotion reason",
)  # fmt: skip


def history_experiment(model_name: str) -> str:
    return f"{model_name}-promotion-history"


def _recorded_at(found: dict) -> pd.Timestamp:
    return pd.Timestamp(found["start_time"], unit="ms", tz="UTC")


def _promotion_columns(promotion: dict) -> dict:
    tags, metrics = promotion["tags"], promotion["metrics"]
    return {
        "model name": tags.get("model_name"),
        "model version": tags.get("candidate_version"),
        "candidate test MAE": metrics.get("candidate_mae"),
        "champion test MAE": metrics.get("champion_mae"),
        "promoted": tags.get("outcome") in PROMOTED_OUTCOMES,
        "promotion reason": tags.get("reason"),
    }


def run_history(decisions: list[dict], promotions: list[dict]) -> pd.DataFrame:
    """One row per DAG run, newest first: train or skip and why, joined with the promotion decision
    that followed. Promotions and rollbacks with no decision run (made by hand) get rows of their own."""
    by_dag_run = {
        found["tags"]["dag_run_id"]: found
        for found in promotions
        if found["tags"].get("event") == "promotion" and found["tags"].get("dag_run_id")
    }
    joined, rows = set(), []
    for decision in decisions:
        tags = decision["tags"]
        promotion = by_dag_run.get(tags.get("dag_run_id", ""))
        row = {
            "recorded at": _recorded_at(decision),
            "DAG run id": tags.get("dag_run_id"),
            "decision": tags.get("decision"),
            "reason": tags.get("reason"),
        }
        if promotion is not None:
            joined.add(promotion["run_id"])
            row |= _promotion_columns(promotion)
        rows.append(row)
    for promotion in promotions:
        if promotion["run_id"] not in joined:
            tags = promotion["tags"]
            rows.append(
                {
                    "recorded at": _recorded_at(promotion),
                    "DAG run id": tags.get("dag_run_id") or "(by hand)",
                    "decision": tags.get("event"),
                    "reason": tags.get("reason"),
                    **_promotion_columns(promotion),
                }
            )
    history = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    return history.sort_values("recorded at", ascending=False, ignore_index=True)


def promoted_at(promotions: list[dict], version: str) -> pd.Timestamp | None:
    """When `version` last became champion (a promotion or a rollback to it)."""
    times = [
        _recorded_at(found)
        for found in promotions
        if found["tags"].get("to_version") == version and found["tags"].get("outcome") in PROMOTED_OUTCOMES
    ]
    return max(times, default=None)


def metric_by_version(versions: list[dict], runs: dict[str, dict], champion: str | None) -> pd.DataFrame:
    """version, test MAE (of its training run), verdict (promoted / rejected / not judged), champion."""
    rows = [
        {
            "version": int(version["version"]),
            "test MAE": runs[version["run_id"]]["metrics"].get(TEST_METRIC),
            "verdict": version["tags"].get("promotion", "not judged"),
            "champion": version["version"] == champion,
        }
        for version in versions
    ]
    return pd.DataFrame(rows, columns=["version", "test MAE", "verdict", "champion"]).sort_values("version")
