#!/usr/bin/env bash
# Creates node 1's training databases and the pipeline's least-privilege user, and, when
# AIRFLOW_DB_PASSWORD is set, Airflow's own metadata database and user. Idempotent, and re-running
# it with new passwords rotates them.
# Runs wherever a `mysql` client reaches the server: the MySQL pod's init (as root), `make setup`
# and the test harness (with session-unique names). Connection: MYSQL_HOST, MYSQL_TCP_PORT and
# MYSQL_PWD as the client reads them, MYSQL_ADMIN_USER (default root).
set -euo pipefail

: "${RAW_DATA_DB:=RawData}"
: "${CLEAN_DATA_DB:=CleanData}"
: "${PIPELINE_DB_USER:=realtor_pipeline}"
: "${PIPELINE_DB_PASSWORD:?PIPELINE_DB_PASSWORD must be set}"

# No DROP: the pipeline creates and fills its tables but can never drop a database.
privileges="SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, CREATE TEMPORARY TABLES"

mysql --user="${MYSQL_ADMIN_USER:-root}" <<SQL
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
  mysql --user="${MYSQL_ADMIN_USER:-root}" <<SQL
CREATE DATABASE IF NOT EXISTS \`${AIRFLOW_DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '${AIRFLOW_DB_USER}'@'%' IDENTIFIED BY '${AIRFLOW_DB_PASSWORD}';
ALTER USER '${AIRFLOW_DB_USER}'@'%' IDENTIFIED BY '${AIRFLOW_DB_PASSWORD}';
GRANT ALL ON \`${AIRFLOW_DB}\`.* TO '${AIRFLOW_DB_USER}'@'%';
SQL
  echo "mysql-init: database ${AIRFLOW_DB} ready for ${AIRFLOW_DB_USER}"
fi
echo "mysql-init: databases ${RAW_DATA_DB}, ${CLEAN_DATA_DB} ready for ${PIPELINE_DB_USER}"
