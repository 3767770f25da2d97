#!/bin/bash
# The main job on a fresh Debian 12 machine: install what is missing, build and
# install mtl, start a local PostgreSQL as the postgres user (port 5499,
# data and socket in /tmp/mtl-demo), generate a demo shop, train on days
# 1-12 (ctr, cvr given ctr, rating, scenario-aware), score days 13-14 and
# print per-task AUC beside the oracle's, and mtl_evaluate per scenario.
# Afterwards: psql -h /tmp/mtl-demo -p 5499 -U postgres
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${MTL_DEMO_DIR:-/tmp/mtl-demo}
port=${MTL_DEMO_PORT:-5499}
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

scripts/install_deps.sh
make -s
$sudo make -s install
scripts/cluster.sh stop "$dir"
scripts/cluster.sh start "$dir" "$port"
export PGHOST=$dir PGPORT=$port PGUSER=postgres
psql -X -q -v ON_ERROR_STOP=1 -f scripts/demo.sql
echo
echo "server running: psql -h $dir -p $port -U postgres   (stop: scripts/cluster.sh stop $dir)"
