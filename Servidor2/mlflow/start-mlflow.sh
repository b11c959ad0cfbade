#!/usr/bin/env bash
# The MLflow tracking server as node 2 runs it: Postgres backend store, artefacts proxied to S3
# (MinIO) so only this server holds the S3 credentials. The Deployment, `make demo` and the
# test harness all start it through this script with the environment of docs/configuration.md.
set -euo pipefail

: "${MLFLOW_BACKEND_STORE_URI:?e.g. postgresql+psycopg2://mlflow:PASSWORD@postgres:5432/mlflow}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?e.g. s3://mlflow-artifacts}"
# Without this switch MLflow 3 forks job-runner processes this deployment never uses (~2 GB).
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"

args=(
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI"
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION"
  --host "${MLFLOW_HOST:-0.0.0.0}"
  --port "${MLFLOW_PORT:-5000}"
  --workers "${MLFLOW_WORKERS:-1}"
)
# MLflow 3 answers 403 to Host headers it does not know; the NodePort address must be listed.
[ -n "${MLFLOW_ALLOWED_HOSTS:-}" ] && args+=(--allowed-hosts "$MLFLOW_ALLOWED_HOSTS")
exec mlflow server "${args[@]}"
