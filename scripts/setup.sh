#!/usr/bin/env bash
# Installs every system package ftsplice's tests and demo need. Idempotent;
# run as root on a fresh Debian machine. Rust itself is expected on PATH.
set -euo pipefail

PKGS=(
    iproute2       # ip netns / veth for the testbed
    ethtool
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
