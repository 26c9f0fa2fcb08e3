#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# deploy/run-node.sh - from a fresh Debian 12 machine to a running
# gearraftd in one command: install what is missing, build the release
# preset, and start gearraftd on its embedded default (one node on
# 0.0.0.0:4730, data in ./gearraft-data). Extra arguments go to gearraftd,
# e.g. deploy/run-node.sh --port 4731 --verbose INFO
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target gearraftd
exec build/release/node/gearraftd "$@"
