#!/usr/bin/env bash
# Creates the project's own users and databases on this machine's MariaDB and PostgreSQL:
# an admin user the test harness uses to make session-unique databases, node 1's RawData and
# CleanData with the pipeline user, the inference API's InferenceLog, and MLflow's database. Passwords are generated once into a
# per-machine file outside the checkout (the servers are per machine, so every clone shares
# it), REALTOR_CREDENTIALS_FILE or ~/.config/realtor-mlops/credentials.env. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

credentials=${REALTOR_CREDENTIALS_FILE:-${XDG_CONFIG_HOME:-$HOME/.config}/realtor-mlops/credentials.env}
if [ ! -f "$credentials" ]; then
  mkdir -p "$(dirname "$credentials")"
  umask 077
  cat > "$credentials" <<ENV
LOCAL_ADMIN_USER=realtor_admin
LOCAL_ADMIN_PASSWORD=$(openssl rand -hex 16)
PIPELINE_DB_PASSWORD=$(openssl rand -hex 16)
MLFLOW_DB_PASSWORD=$(openssl rand -hex 16)
ENV
fi
# Added after the first release: files written before them get the new passwords appended.
for name in INFERENCE_LOG_PASSWORD PIPELINE_STATUS_PASSWORD; do
  grep -q "^$name=" "$credentials" || echo "$name=$(openssl rand -hex 16)" >> "$credentials"
done
set -a; . "$credentials"; set +a

# As the machine's root, over the socket (MariaDB's unix_socket auth).
mariadb --socket=/run/mysqld/mysqld.sock <<SQL
CREATE USER IF NOT EXISTS '${LOCAL_ADMIN_USER}'@'localhost' IDENTIFIED BY '${LOCAL_ADMIN_PASSWORD}';
CREATE USER IF NOT EXISTS '${LOCAL_ADMIN_USER}'@'127.0.0.1' IDENTIFIED BY '${LOCAL_ADMIN_PASSWORD}';
GRANT ALL ON *.* TO '${LOCAL_ADMIN_USER}'@'localhost' WITH GRANT OPTION;
GRANT ALL ON *.* TO '${LOCAL_ADMIN_USER}'@'127.0.0.1' WITH GRANT OPTION;
SQL
MYSQL_HOST=127.0.0.1 MYSQL_ADMIN_USER="$LOCAL_ADMIN_USER" MYSQL_PWD="$LOCAL_ADMIN_PASSWORD" \
  Servidor1/mysql/init-databases.sh

psql_as_postgres() { (cd / && runuser -u postgres -- psql -qtAX -v ON_ERROR_STOP=1 "$@"); }
upsert_role() {  # upsert_role NAME PASSWORD ATTRIBUTES
  if psql_as_postgres -c "SELECT 1 FROM pg_roles WHERE rolname = '$1'" | grep -q 1; then
    psql_as_postgres -c "ALTER ROLE \"$1\" WITH LOGIN $3 PASSWORD '$2'"
  else
    psql_as_postgres -c "CREATE ROLE \"$1\" WITH LOGIN $3 PASSWORD '$2'"
  fi
}
upsert_role "$LOCAL_ADMIN_USER" "$LOCAL_ADMIN_PASSWORD" "CREATEDB CREATEROLE"
upsert_role mlflow "$MLFLOW_DB_PASSWORD" ""
psql_as_postgres -c "SELECT 1 FROM pg_database WHERE datname = 'mlflow'" | grep -q 1 \
  || psql_as_postgres -c "CREATE DATABASE mlflow OWNER mlflow"
echo "setup: local databases ready (credentials in $credentials)"
