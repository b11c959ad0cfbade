"""Models: the champion, the history of every DAG run's decision, the test metric by version."""

import backends
import charts
import history
import streamlit as st

settings = backends.Settings.from_env()
uri, name = settings.mlflow_tracking_uri, settings.model_name
st.title("Models")
st.caption(f"Registered model `{name}` in MLflow at {settings.mlflow_ui_url}.")

try:
    with st.spinner("Reading the registry…"):
        champion = backends.champion(uri, name)
        versions = backends.model_versions(uri, name)
        training_runs = {version["run_id"]: backends.run(uri, version["run_id"]) for version in versions}
        decisions = backends.search_runs(uri, settings.pipeline_experiment, "tags.event = 'decision'")
        promotions = backends.search_runs(
            uri, history.history_experiment(name), f"tags.model_name = '{name}'"
        )
except backends.BackendUnavailable as error:
    st.error(f"{error}. The registry cannot be shown until it answers again.", icon=":material/cloud_off:")
    st.stop()

st.header("Champion")
if champion is None:
    st.info(f"No model is `{name}@champion` yet: the first DAG run that trains one promotes it.")
else:
    champion_run = training_runs[champion["run_id"]]
    promoted = history.promoted_at(promotions, champion["version"])
    test_metrics = {key: value for key, value in champion_run["metrics"].items() if key.startswith("test_")}
    version_card, promoted_card = st.columns(2)
    version_card.metric("Version", champion["version"])
    promoted_card.metric(
        "Promoted", f"{promoted:%Y-%m-%d %H:%M} UTC" if promoted is not None else "not recorded"
    )
    for card, (metric, value) in zip(st.columns(len(test_metrics) or 1), sorted(test_metrics.items())):  # noqa: B905 (none: one empty column)
        card.metric(metric, f"{value:,.3g}" if abs(value) < 10 else f"{value:,.0f}")
    run_path = f"#/experiments/{champion_run['experiment_id']}/runs/{champion['run_id']}"
    st.link_button(
        "Open its run in MLflow", f"{settings.mlflow_ui_url}/{run_path}", icon=":material/open_in_new:"
    )

st.header("Run history")
runs_table = history.run_history(decisions, promotions)
if runs_table.empty:
    st.info("No DAG run has been recorded yet: each run of the pipeline adds its decision here.")
st.dataframe(
    runs_table,
    hide_index=True,
    column_config={
        "recorded at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        "candidate test MAE": st.column_config.NumberColumn(format="dollar"),
        "champion test MAE": st.column_config.NumberColumn(format="dollar"),
        "promoted": st.column_config.CheckboxColumn(),
    },
)

st.header("Test MAE by version")
if versions:
    by_version = history.metric_by_version(versions, training_runs, champion and champion["version"])
    st.altair_chart(charts.metric_by_version(by_version, "test MAE (US$)"), width="stretch")
    st.caption("Each version's MAE on its own training run's test rows; the ringed point is the champion.")
else:
    st.info("No version registered yet.")

st.header("SHAP summary of the champion")
if champion is None:
    st.info("Shown once there is a champion.")
else:
    summary = backends.run_artifact(uri, champion["run_id"], "explanations/shap_summary.png")
    if summary is None:
        st.info(f"Version {champion['version']} has no SHAP summary logged.")
    else:
        st.image(summary, caption=f"SHAP summary of version {champion['version']}")
