#!/usr/bin/env bash
# Make sure a local PostgreSQL answers on 127.0.0.1:5432 for `make demo` and `make test`.
# Skipped when IOC_DATABASE_URL points elsewhere. Installs Debian's server where it is missing
# (needs root), starts the cluster, and lets local TCP connections in without a password: a
# development server on loopback only, never a production setting.
set -euo pipefail

if [[ -n "${IOC_DATABASE_URL:-}" ]]; then
  echo "postgres: using IOC_DATABASE_URL; not managing a local server"
  exit 0
fi

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "postgres: installing Debian's postgresql"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fresh=1
fi

if ! pg_lsclusters -h | grep -q .; then
  version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  as_root pg_createcluster "$version" main
  fresh=1
fi

if [[ -n "${fresh:-}" ]]; then
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    grep -q "ioc-dev-trust" "$hba" || as_root sed -i \
      '1i host all all 127.0.0.1/32 trust # ioc-dev-trust\nhost all all ::1/128 trust # ioc-dev-trust' "$hba"
  done
fi

pg_lsclusters -h | while read -r version cluster _port status _; do
  if [[ "$status" != online* ]]; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start
  fi
done

for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p 5432; then echo "postgres: ready on 127.0.0.1:5432"; exit 0; fi
  sleep 0.5
done
echo "postgres: not answering on 127.0.0.1:5432" >&2
exit 1
