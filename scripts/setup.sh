#!/usr/bin/env bash
# Installs every system package ftsplice's tests and demo need. Idempotent;
# run as root on a fresh Debian machine. Rust itself is expected on PATH.
set -euo pipefail

PKGS=(
    iproute2       # ip netns / veth for the testbed, tc for BPF attach
    ethtool
    clang          # compiles crates/bpf/c to BPF objects (build.rs)
    llvm           # llvm-objdump / llvm-strip for inspecting BPF objects
    libbpf-dev     # <bpf/bpf_helpers.h>, <bpf/bpf_endian.h> for the BPF C
    linux-libc-dev # <linux/bpf.h>, <linux/pkt_cls.h>, ... (kernel UAPI)
    iperf3         # testbed throughput runs
    nginx          # unmodified backends in the testbed
    haproxy        # the HAProxy baseline of `ftsplice bench`
    curl           # unmodified clients in the testbed
    nftables       # testbed proxies drop their kernel's own RSTs from the VIP/SSA
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
