#!/usr/bin/env bash
# `npm run sbom [out-dir]`: a CycloneDX 1.6 SBOM (JSON) for each deployable part, from the
# installed tree (run after `npm ci`), runtime dependencies only:
#   gateway.cdx.json   the on-site gateway (packages/gateway-site and what it loads: packages/gateway; what `arteria-gateway` runs)
#   platform.cdx.json  the platform image (packages/cli and everything it loads: platform,
#                      bundled algorithms, inference), as deploy/container/Dockerfile builds it
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-sbom}"
mkdir -p "$out"
gen() {
  npx --no-install cyclonedx-npm --omit dev --mc-type application --spec-version 1.6 --output-format JSON \
    --output-reproducible -w "$2" --output-file "$out/$1.cdx.json"
  echo "sbom: $out/$1.cdx.json ($(node -e "console.log(require('./$out/$1.cdx.json').components.length)") components)"
}
gen gateway packages/gateway-site
gen platform packages/cli
