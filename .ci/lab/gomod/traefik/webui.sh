#!/bin/bash
# Builds Traefik's dashboard (webui/static) in a local/debian:bookworm container, from the webui
# sources in the traefik module, mounted at the working directory. The module zip carries only a
# placeholder in webui/static (upstream builds it with `make generate-webui` before `go build`).
# Node and npm come from Debian, yarn and the dashboard's packages (pinned by its yarn.lock) from
# the npm registry npm is configured with. The host's CA bundle is mounted at /host-ca.crt.
# Usage: webui.sh YARN_VERSION
set -euo pipefail
t=$(date +%s)
step() { echo "webui: $1 in $(( $(date +%s) - t ))s"; t=$(date +%s); }
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/tmp/apt.log 2>&1 ||
  { tail -n 40 /tmp/apt.log; exit 1; }
step "nodejs $(node --version) and npm $(npm --version) installed"
export NODE_EXTRA_CA_CERTS=/host-ca.crt
npm install -g --no-fund --no-audit --loglevel=warn "@yarnpkg/cli-dist@$1"
step "yarn $(yarn --version) installed"
# what upstream's webui/buildx.Dockerfile and `yarn build:prod` do, minus the tests, tsc and lint
registry=$(npm config get registry)
export YARN_ENABLE_TELEMETRY=0 YARN_NPM_REGISTRY_SERVER=${registry%/}
export VITE_APP_BASE_URL="" VITE_APP_BASE_API_URL=/api
yarn workspaces focus --all --production
step "packages installed"
yarn build
[ -f static/index.html ]
step "dashboard built"
