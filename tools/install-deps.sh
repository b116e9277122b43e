#!/usr/bin/env bash
# install-deps.sh: the Debian 12 packages deepc builds, tests and runs with (sudo when not root).
set -euo pipefail
PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libopenblas0-openmp libopenblas-openmp-dev libcmocka-dev libcjson-dev libpcre2-dev libutf8proc-dev
      zlib1g-dev libpng-dev libcairo2-dev libcurl4-openssl-dev libstb-dev dataset-fashion-mnist)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
