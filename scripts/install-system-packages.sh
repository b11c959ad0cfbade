#!/usr/bin/env bash
# Installs the Debian packages the services and tests need, only those that are missing.
# Needs root and apt-get; elsewhere it names what to install by hand and fails.
set -euo pipefail

packages=(
  mariadb-server mariadb-client          # node 1's MySQL stand-in
  postgresql postgresql-client           # MLflow's backend store
  prometheus                             # node 3's Prometheus and promtool
  chromium                               # renders the Streamlit pages in the browser test
  default-libmysqlclient-dev pkg-config  # to build mysqlclient
  python3-venv
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "setup: missing Debian packages: ${missing[*]} (install them as root with apt-get)" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d stops the packages from trying to start daemons through an init system that isn't there.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
