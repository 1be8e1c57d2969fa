#!/usr/bin/env bash
# Makes sure the system tools the test suite talks to are installed, installing what a
# fresh Debian 12 machine lacks with apt-get (as root, or through sudo). Cheap when
# everything is present: `npm test` runs it every time.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have dcmdump     || need+=(dcmtk)         # DICOM C-STORE peer and validator
have dciodvfy    || need+=(dicom3tools)   # IOD validator for the SRs the gateway writes
have nats-server || need+=(nats-server)   # JetStream queue and ledger
have mosquitto   || need+=(mosquitto)     # MQTT 5 broker for the cluster roles
have openssl     || need+=(openssl)       # TLS material for broker tests
have chromium    || need+=(chromium)      # dashboard and report tests (playwright-core)
have promtool    || need+=(prometheus)    # alert rule unit tests
have opj_decompress || need+=(libopenjp2-tools) # JPEG 2000 reference decoder for exactness tests

[ ${#need[@]} -eq 0 ] && exit 0

echo "test tools: installing ${need[*]} (apt-get)" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "test tools: missing ${need[*]}; install them with: apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts the broker and NATS as services on install only where systemd runs; the
# tests start their own instances on free ports, so nothing else is needed here.
