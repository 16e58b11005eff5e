#!/usr/bin/env bash
# Make sure an Alertmanager binary is on PATH for `make demo`, `make test` and the bench, which
# start their own instances on free loopback ports (ioc/services/alertmanager.py). Installs
# Debian's prometheus-alertmanager where neither `prometheus-alertmanager` nor `alertmanager` is
# found (needs root or sudo) and keeps the package from starting its system daemon: we never
# use one, and it would sit on 0.0.0.0:9093 and gossip on 9094.
set -euo pipefail

for bin in prometheus-alertmanager alertmanager; do
  if command -v "$bin" >/dev/null 2>&1; then
    echo "alertmanager: $(command -v "$bin") ($("$bin" --version 2>&1 | head -1))"
    exit 0
  fi
done

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

echo "alertmanager: installing Debian's prometheus-alertmanager"
# policy-rc.d exit 101 tells invoke-rc.d / deb-systemd-invoke not to start services during
# the install (Debian policy); only ours, only if none exists, removed again afterwards.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
  trap 'as_root rm -f "$policy"' EXIT
fi
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  prometheus-alertmanager >/dev/null

# Should a daemon have been started anyway (another policy-rc.d, a systemd preset), stop it
# and keep it from coming back at boot.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
  as_root systemctl disable --now prometheus-alertmanager.service >/dev/null 2>&1 || true
elif [[ -x /etc/init.d/prometheus-alertmanager ]]; then
  as_root /etc/init.d/prometheus-alertmanager stop >/dev/null 2>&1 || true
fi

command -v prometheus-alertmanager >/dev/null 2>&1 || {
  echo "alertmanager: prometheus-alertmanager is still not on PATH" >&2
  exit 1
}
echo "alertmanager: installed $(prometheus-alertmanager --version 2>&1 | head -1)"
