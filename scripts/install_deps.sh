#!/bin/bash
# Install the Debian 12 packages mtl needs to build and test (plus any given
# as arguments), skipping those already present. Uses sudo when not root.
set -euo pipefail
packages=(postgresql-15 postgresql-server-dev-15 libopenblas-dev make gcc clang libclang-rt-14-dev "$@")
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
