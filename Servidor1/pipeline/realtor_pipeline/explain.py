"""SHAP explanations of a trained model, saved as artefacts of its MLflow run under `explanations/`.

The explained function is the pipeline's final estimator on the features its earlier steps make
(`pipeline.regressor_[:-1]`), so each feature is one named model input (`bed`,
`zip_code_mean_target`, …). The estimator learns log(1 + price): a SHAP value of 0.1 moves the
predicted price by about +10.5%, whatever the home's price. Trees and linear models get shap's
exact algorithms; an estimator shap does not know is explained by permutation through its
`predict`, against a background of sampled rows (slow: keep `max_rows` small for those).

Artefacts: `shap_summary.png` (beeswarm), `shap_importance.png` (bar of mean |SHAP|) and
`shap_importance.csv` (`feature`, `mean_abs_shap`, most important first). They are logged through
the tracking server, so no S3 credentials are needed. Figures are drawn on Agg canvases, never
through pyplot's global state, so this works in any worker without a display.
"""

import logging
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import shap
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

EXPLANATIONS_DIR = "explanations"
SUMMARY_PNG, IMPORTANCE_PNG, IMPORTANCE_CSV = "shap_summary.png", "shap_importance.png", "shap_importance.csv"
BACKGROUND_ROWS = 100
SAMPLE_SEED = 0
FEATURES_SHOWN = 16  # every feature of ListingFeatures today; a longer tail is summed by shap
SHAP_UNITS = "SHAP value (log(1 + price))"


def log_explanations(run_id: str, pipeline, rows: pd.DataFrame, max_rows: int = 500) -> list[str]:
    """Explain `pipeline` (a fitted `TransformedTargetRegressor` around a Pipeline) on up to `max_rows`
    of `rows` (raw listing rows) and log the artefacts to run `run_id`; returns their artefact paths."""
    if rows.empty:
        raise ValueError("no rows to explain")
    sample = rows.sample(n=min(max_rows, len(rows)), random_state=SAMPLE_SEED)
    explanation = shap_values(pipeline, sample)
    importance = mean_abs_shap(explanation)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        _save(_summary_figure(explanation), out / SUMMARY_PNG)
        _save(_importance_figure(importance), out / IMPORTANCE_PNG)
        importance.to_csv(out / IMPORTANCE_CSV, index=False)
        mlflow.MlflowClient().log_artifacts(run_id, folder, artifact_path=EXPLANATIONS_DIR)
    paths = [f"{EXPLANATIONS_DIR}/{name}" for name in (SUMMARY_PNG, IMPORTANCE_PNG, IMPORTANCE_CSV)]
    logger.info(
        "event=explanations_logged run_id=%s rows=%d top_feature=%s artefacts=%s",
        run_id,
        len(sample),
        importance["feature"].iloc[0],
        ",".join(paths),
    )
    return paths


def shap_values(pipeline, rows: pd.DataFrame) -> shap.Explanation:
    """SHAP values of the final estimator for `rows`, on the features the earlier steps make."""
    inner = pipeline.regressor_
    featurize, estimator = inner[:-1], inner[-1]
    features = featurize.transform(rows)
    names = [str(name) for name in featurize.get_feature_names_out()]
    background = features[:BACKGROUND_ROWS]  # rows are already a random sample
    return _explainer(estimator, background, names)(features)


def _explainer(estimator, background: np.ndarray, names: list[str]) -> shap.Explainer:
    """Trees: shap's exact path-dependent algorithm, which takes no background (given one, shap 0.51
    switches to its interventional algorithm, whose values miss HistGradientBoosting's output by
    ~0.1 log-price). Linear models: exact against the background. Anything else: permutation."""
    try:
        return shap.Explainer(estimator, feature_names=names)
    except TypeError:  # not a tree model
        pass
    try:
        return shap.Explainer(estimator, background, feature_names=names)
    except TypeError:  # no exact algorithm for this estimator
        return shap.Explainer(estimator.predict, background, feature_names=names)


def mean_abs_shap(explanation: shap.Explanation) -> pd.DataFrame:
    importance = pd.DataFrame(
        {
            "feature": explanation.feature_names,
            "mean_abs_shap": np.abs(explanation.values).mean(axis=0),
        }
    )
    return importance.sort_values("mean_abs_shap", ascending=False, ignore_index=True)


def _summary_figure(explanation: shap.Explanation) -> Figure:
    figure = Figure(figsize=(9, 7))
    axes = figure.add_subplot()
    shap.plots.beeswarm(explanation, max_display=FEATURES_SHOWN, ax=axes, show=False, plot_size=None)
    axes.set_xlabel(SHAP_UNITS)
    axes.set_title(f"SHAP summary, {len(explanation.values)} listings")
    return figure


def _importance_figure(importance: pd.DataFrame) -> Figure:
    shown = importance.head(FEATURES_SHOWN).iloc[::-1]  # barh draws bottom-up: most important on top
    figure = Figure(figsize=(8, 6))
    axes = figure.add_subplot()
    axes.barh(shown["feature"], shown["mean_abs_shap"], color="#1f77b4")
    axes.set_xlabel(f"mean |{SHAP_UNITS}|")
    axes.set_title("Feature importance (mean |SHAP|)")
    return figure


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
