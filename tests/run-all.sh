#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The whole test suite, as README.md gives it and as CI runs it: install
# what is missing, build the dev preset (warnings as errors, address and
# undefined sanitizers) and the release build of gearraftd, and run every
# test: units, simulators, integration, and the drills (a local cluster,
# and the Docker Compose cluster when a Docker engine is there).
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
cmake --preset dev >/dev/null
cmake --build --preset dev
# The optimised build of what deploy/run-node.sh starts: it warns about
# things the debug build does not see, and warnings are errors there too.
cmake --preset release >/dev/null
cmake --build --preset release --target gearraftd
ctest --preset dev "$@"
