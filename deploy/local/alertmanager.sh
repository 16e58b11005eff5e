#!/usr/bin/env bash
# Make sure the Prometheus tool binaries are on PATH for `make demo`, `make test` and the bench:
# an Alertmanager (Debian's prometheus-alertmanager, with amtool), which they start on free
# loopback ports (ioc/services/alertmanager.py), and promtool (Debian's prometheus), which the
# tests use to check and unit-test the pipeline alert rules (deploy/prometheus/).
# Installs the packages where their binaries are missing (needs root or sudo) and keeps them
# from starting their system daemons: we never use one, and they would sit on 0.0.0.0:9090,
# 9093 and gossip on 9094.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
have prometheus-alertmanager || have alertmanager || missing+=(prometheus-alertmanager)
have amtool || [[ " ${missing[*]} " == *" prometheus-alertmanager "* ]] || missing+=(prometheus-alertmanager)
have promtool || missing+=(prometheus)

if [[ ${#missing[@]} -gt 0 ]]; then
  as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
  echo "prometheus tools: installing Debian's ${missing[*]}"
  # policy-rc.d exit 101 tells invoke-rc.d / deb-systemd-invoke not to start services during
  # the install (Debian policy); only ours, only if none exists, removed again afterwards.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    trap 'as_root rm -f "$policy"' EXIT
  fi
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null

  # Should a daemon have been started anyway (another policy-rc.d, a systemd preset), stop it
  # and keep it from coming back at boot.
  for unit in prometheus prometheus-alertmanager prometheus-node-exporter; do
    if have systemctl && [[ -d /run/systemd/system ]]; then
      as_root systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/$unit ]]; then
      as_root "/etc/init.d/$unit" stop >/dev/null 2>&1 || true
    fi
  done
fi

for bin in prometheus-alertmanager amtool promtool; do
  have "$bin" || {
    [[ $bin == prometheus-alertmanager ]] && have alertmanager && continue
    echo "prometheus tools: $bin is still not on PATH" >&2
    exit 1
  }
done
am=$(command -v prometheus-alertmanager || command -v alertmanager)
echo "alertmanager: $am ($("$am" --version 2>&1 | head -1))"
echo "promtool: $(command -v promtool) ($(promtool --version 2>&1 | head -1))"
