#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Installs the Debian packages gearraft builds and tests with, if missing.
# Build: cmake, libevent, protobuf-c (library and protoc-c), LMDB, cmocka.
# Tests: stock gearmand and the real Gearman clients we test against
# (gearman-tools, Perl's Gearman::Client, PHP's gearman extension).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libevent-dev libprotobuf-c-dev
      protobuf-c-compiler liblmdb-dev lmdb-utils libcmocka-dev
      gearman-job-server gearman-tools libgearman-dev
      libgearman-client-perl php-cli php-gearman iproute2 procps)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# Debian's gearman-job-server package starts a gearmand on port 4730 as a
# service; the tests start their own servers on ephemeral ports, so a
# running system gearmand is harmless, but stop it so that port 4730 is
# free for gearraftd's default.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet gearman-job-server 2>/dev/null; then
  systemctl stop gearman-job-server || true
fi
