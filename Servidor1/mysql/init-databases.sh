#!/usr/bin/env bash
# Creates node 1's training databases and the pipeline's least-privilege user; when
# AIRFLOW_DB_PASSWORD is set, Airflow's own metadata database and user; when INFERENCE_LOG_PASSWORD
# is set, the inference API's prediction log (database, table, and a user that can only insert
# into it); when PIPELINE_STATUS_PASSWORD is set, a SELECT-only user for the inference API's
# /pipeline endpoints. Idempotent, and re-running it with new passwords rotates them.
# Runs wherever a `mysql` client reaches the server: the MySQL pod's init (as root), `make setup`
# and the test harness (with session-unique names). Connection: MYSQL_HOST, MYSQL_TCP_PORT and
# MYSQL_PWD as the client reads them, or MYSQL_UNIX_PORT for a socket; MYSQL_ADMIN_USER (default root).
set -euo pipefail

# --socket explicitly: a [client] socket in /etc/mysql/my.cnf would win over MYSQL_UNIX_PORT.
run_sql() { mysql --user="${MYSQL_ADMIN_USER:-root}" ${MYSQL_UNIX_PORT:+--socket="$MYSQL_UNIX_PORT"}; }

: "${RAW_DATA_DB:=RawData}"
: "${CLEAN_DATA_DB:=CleanData}"
: "${PIPELINE_DB_USER:=realtor_pipeline}"
: "${PIPELINE_DB_PASSWORD:?PIPELINE_DB_PASSWORD must be set}"

# No DROP: the pipeline creates and fills its tables but can never drop a database.
privileges="SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, CREATE TEMPORARY TABLES"

run_sql <<SQL
CREATE DATABASE IF NOT EXISTS \`${RAW_DATA_DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS \`${CLEAN_DATA_DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '${PIPELINE_DB_USER}'@'%' IDENTIFIED BY '${PIPELINE_DB_PASSWORD}';
ALTER USER '${PIPELINE_DB_USER}'@'%' IDENTIFIED BY '${PIPELINE_DB_PASSWORD}';
GRANT ${privileges} ON \`${RAW_DATA_DB}\`.* TO '${PIPELINE_DB_USER}'@'%';
GRANT ${privileges} ON \`${CLEAN_DATA_DB}\`.* TO '${PIPELINE_DB_USER}'@'%';
SQL
if [ -n "${AIRFLOW_DB_PASSWORD:-}" ]; then
  : "${AIRFLOW_DB:=airflow}" "${AIRFLOW_DB_USER:=airflow}"
  # Airflow migrates its own schema, so it owns its database, and only that one.
  run_sql <<SQL
CREATE DATABASE IF NOT EXISTS \`${AIRFLOW_DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '${AIRFLOW_DB_USER}'@'%' IDENTIFIED BY '${AIRFLOW_DB_PASSWORD}';
ALTER USER '${AIRFLOW_DB_USER}'@'%' IDENTIFIED BY '${AIRFLOW_DB_PASSWORD}';
GRANT ALL ON \`${AIRFLOW_DB}\`.* TO '${AIRFLOW_DB_USER}'@'%';
SQL
  echo "mysql-init: database ${AIRFLOW_DB} ready for ${AIRFLOW_DB_USER}"
fi
if [ -n "${INFERENCE_LOG_PASSWORD:-}" ]; then
  : "${INFERENCE_LOG_DB:=InferenceLog}" "${INFERENCE_LOG_USER:=inference_logger}"
  # Predictions live apart from the training databases: nothing trains on them by accident.
  # Columns: Servidor3/inference_api/inference_api/inference_log.py (LOG_COLUMNS).
  run_sql <<SQL
CREATE DATABASE IF NOT EXISTS \`${INFERENCE_LOG_DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE TABLE IF NOT EXISTS \`${INFERENCE_LOG_DB}\`.inference_log (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  request_id CHAR(32) NOT NULL,
  row_in_request INT UNSIGNED NOT NULL,
  logged_at DATETIME(6) NOT NULL,
  endpoint VARCHAR(16) NOT NULL,
  model_name VARCHAR(255) NOT NULL,
  model_version VARCHAR(32) NOT NULL,
  latency_ms DOUBLE NOT NULL,
  predicted_price DOUBLE NOT NULL,
  brokered_by DOUBLE NULL,
  status VARCHAR(32) NOT NULL,
  bed DOUBLE NULL,
  bath DOUBLE NULL,
  acre_lot DOUBLE NULL,
  street DOUBLE NULL,
  city VARCHAR(255) NULL,
  state VARCHAR(64) NOT NULL,
  zip_code DOUBLE NULL,
  house_size DOUBLE NULL,
  prev_sold_date DATE NULL,
  UNIQUE KEY uq_inference_log_request_row (request_id, row_in_request),
  KEY ix_inference_log_logged_at (logged_at),
  KEY ix_inference_log_model_version (model_version)
) ENGINE=InnoDB;
CREATE USER IF NOT EXISTS '${INFERENCE_LOG_USER}'@'%' IDENTIFIED BY '${INFERENCE_LOG_PASSWORD}';
ALTER USER '${INFERENCE_LOG_USER}'@'%' IDENTIFIED BY '${INFERENCE_LOG_PASSWORD}';
GRANT INSERT ON \`${INFERENCE_LOG_DB}\`.inference_log TO '${INFERENCE_LOG_USER}'@'%';
SQL
  echo "mysql-init: ${INFERENCE_LOG_DB}.inference_log ready for ${INFERENCE_LOG_USER} (insert only)"
fi
if [ -n "${PIPELINE_STATUS_PASSWORD:-}" ]; then
  : "${PIPELINE_STATUS_USER:=pipeline_status}"
  # The inference API's /pipeline endpoints read only ingestion_log and realtor_quarantine, but
  # the grant is on the database: MySQL and MariaDB refuse a table grant (without CREATE) before
  # the table exists (ERROR 1146), and the pipeline creates its tables later, on its first run.
  mysql --user="${MYSQL_ADMIN_USER:-root}" <<SQL
CREATE USER IF NOT EXISTS '${PIPELINE_STATUS_USER}'@'%' IDENTIFIED BY '${PIPELINE_STATUS_PASSWORD}';
ALTER USER '${PIPELINE_STATUS_USER}'@'%' IDENTIFIED BY '${PIPELINE_STATUS_PASSWORD}';
GRANT SELECT ON \`${RAW_DATA_DB}\`.* TO '${PIPELINE_STATUS_USER}'@'%';
SQL
  echo "mysql-init: ${RAW_DATA_DB} readable by ${PIPELINE_STATUS_USER} (select only)"
fi
echo "mysql-init: databases ${RAW_DATA_DB}, ${CLEAN_DATA_DB} ready for ${PIPELINE_DB_USER}"
