#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# deploy/install-compose-plugin.sh - makes `docker compose` work where
# only Debian's docker-compose (1.29) is packaged: builds Docker Compose
# v5 from its Go module (github.com/docker/compose/v5) and installs it
# as the Docker CLI plugin /usr/local/lib/docker/cli-plugins/docker-compose.
#
# Does nothing when `docker compose version` already answers. Needs Go
# (go on PATH or /usr/local/go/bin/go) and the Go module proxy; about two
# minutes on two cores. Exits 0 when `docker compose` works at the end,
# 1 when it could not be built, 77 when there is no Go to build it with.
# COMPOSE_VERSION picks another release (default v5.6.0).
set -euo pipefail

VERSION=${COMPOSE_VERSION:-v5.6.0}
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins

say() { echo "install-compose-plugin: $*"; }

if docker compose version >/dev/null 2>&1; then
  say "docker compose is already there: $(docker compose version)"
  exit 0
fi
GO=$(command -v go || true)
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then
  GO=/usr/local/go/bin/go
fi
if [ -z "$GO" ]; then
  say "no Go to build Docker Compose with; docker-compose 1.29 (Debian) still works"
  exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/compose-plugin.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "building Docker Compose $VERSION from the Go module proxy (a couple of minutes)"
# `go install pkg@version` refuses this module (its go.mod has exclude
# directives), so the module's source is fetched and built in place.
dir=$("$GO" mod download -json "github.com/docker/compose/v5@$VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] || { say "could not fetch github.com/docker/compose/v5@$VERSION"; exit 1; }
cp -r "$dir" "$work/src"
chmod -R u+w "$work/src"
(cd "$work/src" && CGO_ENABLED=0 "$GO" build -trimpath \
  -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$VERSION" \
  -o "$work/docker-compose" ./cmd)
install -d "$PLUGIN_DIR"
install -m 0755 "$work/docker-compose" "$PLUGIN_DIR/docker-compose"
docker compose version
