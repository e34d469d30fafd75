#!/usr/bin/env bash
# Makes the runtime base image locally, from Debian's packages, for machines whose Docker
# engine cannot pull from a registry (no debian:bookworm-slim): debootstrap a minimal
# bookworm (the release the binaries are built on, so the glibc matches) with
# ca-certificates into a folder, trim what a service never reads (apt's package cache and
# lists, documentation, man pages, locales), and `docker import` the folder.
#
#   scripts/docker-base-image.sh                      # tags hostbridge-base:bookworm
#   scripts/docker-base-image.sh my-base:tag          # another tag
#   DEBIAN_MIRROR=http://mirror.example/debian scripts/docker-base-image.sh
#
# Then build the image on it (the Dockerfile's RUNTIME_IMAGE argument):
#   docker build --build-arg RUNTIME_IMAGE=hostbridge-base:bookworm -t hostbridge:local .
#
# Needs root (debootstrap chroots), debootstrap and the Debian mirror. Installs
# debootstrap with apt-get when it is missing. Idempotent: an existing tag is kept unless
# HOSTBRIDGE_BASE_REBUILD=1.
set -euo pipefail

TAG="${1:-hostbridge-base:bookworm}"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ "${HOSTBRIDGE_BASE_REBUILD:-0}" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "$TAG exists (HOSTBRIDGE_BASE_REBUILD=1 makes it again)"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "debootstrap needs root: run this script as root (or with sudo)" >&2
  exit 1
fi

if ! command -v debootstrap >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q debootstrap >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null; }
fi

ROOTFS="$(mktemp -d -t hostbridge-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT

echo "debootstrap --variant=minbase $SUITE from $MIRROR into $ROOTFS"
debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOTFS" "$MIRROR" \
  >"$ROOTFS.log" 2>&1 || { tail -20 "$ROOTFS.log" >&2; rm -f "$ROOTFS.log"; exit 1; }
rm -f "$ROOTFS.log"

# What a service never reads. apt itself stays (a user can still apt-get install in a
# derived image after `apt-get update`).
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin \
  "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* \
  "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/log/*.log \
  "$ROOTFS"/var/log/apt/*
# The host's resolver configuration that debootstrap copied in; Docker mounts its own.
: >"$ROOTFS/etc/resolv.conf"

tar --numeric-owner -C "$ROOTFS" -c . \
  | docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' \
      --message "debootstrap --variant=minbase --include=ca-certificates $SUITE" \
      - "$TAG" >/dev/null
echo "$TAG: $(docker image inspect --format '{{.Size}}' "$TAG") bytes"
