#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# deploy/make-base-image.sh - makes the image deploy/Dockerfile starts
# FROM, debian:bookworm-slim, on a machine that reaches Debian's package
# archive but no container registry. When the image is already there it
# does nothing (--force rebuilds it).
#
# It runs debootstrap (minbase variant) against the Debian mirror this
# machine's apt already uses, trims the tree the way the slim images are
# trimmed (no manuals, docs or locales, and dpkg told not to install
# them), and hands it to `docker import` under the tag the Dockerfile
# names, so the Dockerfile is the same here and on a machine that pulls
# the real image. Needs root (or sudo), debootstrap (installed with apt
# if missing) and a running Docker engine.
#
#   MIRROR=http://host/debian   use this mirror instead of apt's
#   SUITE=bookworm              the Debian release
#   TAG=debian:bookworm-slim    the tag to import as
set -euo pipefail

SUITE=${SUITE:-bookworm}
TAG=${TAG:-debian:${SUITE}-slim}
force=false
case "${1:-}" in
  --force) force=true ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

if ! $force && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "make-base-image: $TAG is present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# The first mirror apt is configured with that serves $SUITE's main
# component: one-line sources (sources.list, *.list) and deb822 stanzas
# (*.sources). Security and update suites are skipped: debootstrap wants
# the release itself.
find_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk -v suite="$SUITE" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) { print $i; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    # deb822: stanzas separated by blank lines; Enabled: no skips one.
    awk -v suite="$SUITE" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && enabled != "no" && \
            (" " suites " ") ~ (" " suite " ") && uris != "") {
          split(uris, u, " "); print u[1]; found = 1; exit
        }
        types = ""; suites = ""; uris = ""; enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      {
        key = tolower($1); sub(/:$/, "", key)
        val = $0; sub(/^[^:]*:[ \t]*/, "", val)
        if (key == "types") types = val
        else if (key == "suites") suites = val
        else if (key == "uris") uris = val
        else if (key == "enabled") enabled = tolower(val)
      }
      END { if (!found) flush() }' "$f"
  done | head -n 1
}

MIRROR=${MIRROR:-$(find_mirror)}
if [ -z "$MIRROR" ]; then
  echo "make-base-image: no Debian mirror for $SUITE in /etc/apt; set MIRROR" >&2
  exit 1
fi

if ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then
  echo "make-base-image: installing debootstrap"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq debootstrap
fi
PATH=$PATH:/usr/sbin:/sbin

root=$(mktemp -d "${TMPDIR:-/tmp}/gearraft-rootfs.XXXXXX")
cleanup() { $SUDO rm -rf --one-file-system "$root"; }
trap cleanup EXIT

echo "make-base-image: debootstrap $SUITE from $MIRROR (a few minutes)"
start=$(date +%s)
$SUDO debootstrap --variant=minbase "$SUITE" "$root/fs" \
  "$MIRROR" >"$root.log" 2>&1 || {
  tail -n 30 "$root.log" >&2
  echo "make-base-image: debootstrap failed (log: $root.log)" >&2
  exit 1
}
rm -f "$root.log"

fs=$root/fs
# What the slim images leave out, now and for every later apt-get install.
$SUDO tee "$fs/etc/dpkg/dpkg.cfg.d/docker-slim" >/dev/null <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
CFG
$SUDO find "$fs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
$SUDO find "$fs/usr/share/doc" -mindepth 1 -type d -empty -delete
$SUDO rm -rf "$fs/usr/share/man/"* "$fs/usr/share/info/"* "$fs/usr/share/locale/"*
# apt as in a container: no recommends, no caches kept.
$SUDO tee "$fs/etc/apt/apt.conf.d/docker-slim" >/dev/null <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
CFG
# The sources the image's apt uses: the mirror it was made from, and
# the security archive beside it when that mirror is Debian's own.
$SUDO rm -f "$fs/etc/apt/sources.list"
{
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' \
    "$MIRROR" "$SUITE" "$SUITE"
  printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
  case "$MIRROR" in
    http://deb.debian.org/debian | https://deb.debian.org/debian)
      printf '\nTypes: deb\nURIs: %s-security\nSuites: %s-security\n' \
        "$MIRROR" "$SUITE"
      printf 'Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
      ;;
  esac
} | $SUDO tee "$fs/etc/apt/sources.list.d/debian.sources" >/dev/null
$SUDO rm -rf "$fs/var/lib/apt/lists/"* "$fs/var/cache/apt/"*.bin \
  "$fs/var/cache/apt/archives/"*.deb "$fs/var/log/"*.log "$fs/tmp/"* \
  "$fs/etc/machine-id" "$fs/etc/hostname"
: | $SUDO tee "$fs/etc/machine-id" >/dev/null

echo "make-base-image: importing as $TAG"
$SUDO tar --numeric-owner --xattrs -C "$fs" -c . |
  docker import --change 'CMD ["bash"]' \
    --message "debootstrap $SUITE minbase from $MIRROR" - "$TAG" >/dev/null
echo "make-base-image: $TAG ready ($(( $(date +%s) - start )) s)"
