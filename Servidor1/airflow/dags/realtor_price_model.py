"""realtor_price_model: collect a listing batch, decide whether to train, train, promote, explain.

This file only wires tasks; each task is a few lines calling `realtor_pipeline.steps`, imported
inside the task so that parsing the file does no I/O and imports nothing heavy. Configuration
comes from the environment only (docs/configuration.md): the connections `AIRFLOW_CONN_RAW_DATA`,
`AIRFLOW_CONN_CLEAN_DATA` (MySQL) and `AIRFLOW_CONN_DATA_API` (HTTP), `MLFLOW_TRACKING_URI`, the
`PIPELINE_*` settings, and `REALTOR_DAG_SCHEDULE`. The DAG run id tags every MLflow run and model
version it creates. Every task is safe to clear and re-run.
"""

import os
from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import dag, get_current_context, task

# The I/O tasks retry with exponential backoff: the data API, MySQL and MLflow are other servers.
IO_RETRIES = dict(
    retries=int(os.environ.get("PIPELINE_TASK_RETRIES", "3")),
    retry_delay=timedelta(seconds=float(os.environ.get("PIPELINE_RETRY_DELAY_SECONDS", "20"))),
    retry_exponential_backoff=True,
)
SHORT = timedelta(minutes=5)
LONG = timedelta(minutes=30)
# More quarantined rows than this in one batch means the source is broken, not a few bad rows.
MAX_QUARANTINE_SHARE = float(os.environ.get("PIPELINE_MAX_QUARANTINE_SHARE", "0.2"))


def _settings():
    """Pipeline settings from Airflow's connections plus the PIPELINE_* environment."""
    from airflow.sdk import Connection

    from realtor_pipeline.settings import PipelineSettings

    def sqlalchemy_url(conn_id: str) -> str:
        connection = Connection.get(conn_id)
        return connection.get_uri().replace("mysql://", "mysql+mysqldb://", 1)

    api = Connection.get("data_api")
    return PipelineSettings(
        raw_data_url=sqlalchemy_url("raw_data"),
        clean_data_url=sqlalchemy_url("clean_data"),
        data_api_url=f"{api.schema or 'http'}://{api.host}:{api.port}",
    )


def _run_id() -> str:
    return get_current_context()["run_id"]


@dag(
    dag_id="realtor_price_model",
    schedule=os.environ.get("REALTOR_DAG_SCHEDULE", "*/15 * * * *"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["realtor", "training"],
    doc_md=__doc__,
)
def realtor_price_model():
    @task(**IO_RETRIES, execution_timeout=SHORT)
    def extract_data() -> dict:
        from dataclasses import asdict

        from realtor_pipeline import steps

        report = steps.extract(_settings())
        return {**asdict(report), "outcome": report.outcome.value}

    @task.branch
    def branch_on_exhaustion(report: dict) -> str:
        return "reset_data" if report["outcome"] == "exhausted" else "validate"

    @task(**IO_RETRIES, execution_timeout=SHORT)
    def reset_data() -> int:
        from realtor_pipeline import steps

        return steps.reset(_settings())

    @task
    def validate(report: dict) -> dict:
        """Rows were checked as they were stored; fail the run when a batch is mostly rejected."""
        received, quarantined = report["received"], report["quarantined"]
        if received and quarantined / received > MAX_QUARANTINE_SHARE:
            raise ValueError(
                f"batch {report['batch_number']}: {quarantined} of {received} rows quarantined, "
                f"over PIPELINE_MAX_QUARANTINE_SHARE={MAX_QUARANTINE_SHARE}; see RawData.realtor_quarantine"
            )
        return report

    @task.branch(**IO_RETRIES, execution_timeout=SHORT)
    def decide_to_train(_: dict) -> str:
        from realtor_pipeline import steps

        return "split_data" if steps.decide(_settings(), _run_id()).train else "end_no_train"

    @task(**IO_RETRIES, execution_timeout=SHORT)
    def split_data() -> dict:
        from realtor_pipeline import steps

        return steps.split_data(_settings())

    @task(**IO_RETRIES, execution_timeout=SHORT)
    def preprocess_data(_: dict) -> dict:
        from realtor_pipeline import steps

        return {split: list(counts) for split, counts in steps.preprocess_data(_settings()).items()}

    @task(**IO_RETRIES, execution_timeout=LONG)
    def train_candidates(_: dict) -> dict:
        from dataclasses import asdict

        from realtor_pipeline import steps

        return asdict(steps.train_candidates(_settings(), _run_id()))

    @task(**IO_RETRIES, execution_timeout=SHORT)
    def evaluate_and_promote(training: dict) -> dict:
        from dataclasses import asdict

        from realtor_pipeline import steps

        return asdict(steps.evaluate_and_promote(_settings(), steps.TrainingRun(**training), _run_id()))

    @task(**IO_RETRIES, execution_timeout=LONG)
    def explain(training: dict, _: dict) -> list[str]:
        from realtor_pipeline import steps

        return steps.explain(_settings(), steps.TrainingRun(**training))

    end_after_reset = EmptyOperator(task_id="end_after_reset")
    end_no_train = EmptyOperator(task_id="end_no_train")
    end = EmptyOperator(task_id="end", trigger_rule="none_failed_min_one_success")

    report = extract_data()
    reset = reset_data()
    checked = validate(report)
    branch_on_exhaustion(report) >> [reset, checked]
    reset >> end_after_reset >> end
    decision = decide_to_train(checked)
    split = split_data()
    decision >> [split, end_no_train]
    end_no_train >> end
    training = train_candidates(preprocess_data(split))
    explain(training, evaluate_and_promote(training)) >> end


realtor_price_model()
