#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# deploy/healthcheck.sh - the container image's health check
# (/usr/local/bin/gearraft-health): asks the node's GET /health on its
# --http-listen port (deploy/gearraftd.conf: 8080) and exits 0 on a 200,
# which gearraftd answers while it serves and, on a cluster member, knows
# a leader; 1 otherwise (503, no answer within 3 s, nothing listening).
# Plain bash, so that the image needs no HTTP client.
port=${GEARRAFT_HEALTH_PORT:-8080}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 3 _ code _ <&3 || exit 1
[ "$code" = 200 ]
