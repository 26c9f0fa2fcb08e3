#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The whole test suite, as README.md gives it and as CI runs it: install
# what is missing, build the dev preset (warnings as errors, address and
# undefined sanitizers) and run every CTest label except the long drills.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
cmake --preset dev >/dev/null
cmake --build --preset dev
ctest --preset dev -LE drill "$@"
