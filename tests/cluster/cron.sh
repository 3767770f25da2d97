#!/bin/bash
# Scheduled retraining with pg_cron (Debian's postgresql-15-cron): a cluster
# of its own with pg_cron preloaded runs a job that retrains a named model
# with mtl_fit every minute; the test waits for one run to succeed and for
# the registry to hold the new version, deployed by nobody (the first version
# stays deployed). Skipped with a message when the package cannot be
# installed. Takes up to about 70 seconds: pg_cron 1.4's schedules count in
# minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! why=$(scripts/install_deps.sh postgresql-15-cron 2>&1); then
	echo "SKIPPED (pg_cron): $why"
	exit 0
fi
dir=$(mktemp -d /tmp/mtl-cron.XXXXXX)
chmod 755 "$dir"
port=$((47000 + RANDOM % 3000))
trap 'scripts/cluster.sh stop "$dir/c" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
# jobs run in background workers: no connection, no password
MTL_PG_OPTS="-c shared_preload_libraries=pg_cron -c cron.database_name=postgres -c cron.use_background_workers=on -c max_worker_processes=16" \
	scripts/cluster.sh start "$dir/c" "$port" >/dev/null
run() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$dir/c" -p "$port" -U postgres "$@"; }
run >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION pg_cron;
CREATE EXTENSION mtl;
CREATE EXTENSION mtl_demo;
SELECT mtl_demo_shop('shop', 400, 100, 8000, 0.2);
SELECT mtl_fit('shop', $$SELECT user_id, item_id, ARRAY[clicked]::float8[] FROM shop.impressions WHERE day <= 7$$,
			   '{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 2}');
-- the nightly job of the README, every minute here
SELECT cron.schedule('mtl-retrain', '* * * * *',
	$job$SELECT mtl_fit('shop', $$SELECT user_id, item_id, ARRAY[clicked]::float8[] FROM shop.impressions$$,
						'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 2}')$job$);
SQL
for _ in $(seq 1 90); do
	status=$(run -c "SELECT status FROM cron.job_run_details ORDER BY runid DESC LIMIT 1")
	[ "$status" = succeeded ] || [ "$status" = failed ] && break
	sleep 1
done
[ "$status" = succeeded ] ||
	{ echo "FAIL: the scheduled retraining did not succeed: ${status:-no run}; $(run -c "SELECT return_message FROM cron.job_run_details ORDER BY runid DESC LIMIT 1")"; exit 1; }
versions=$(run -c "SELECT string_agg(version || ':' || deployed || ':' || (metrics ->> 'training_rows'), ' ' ORDER BY version) FROM mtl_versions WHERE name = 'shop'")
case "$versions" in
	"1:true:"*" 2:false:"*) ;;
	*) echo "FAIL: expected version 2 trained by the job, version 1 still deployed: $versions"; exit 1 ;;
esac
run -c "SELECT cron.unschedule('mtl-retrain')" >/dev/null
echo "pg_cron: a scheduled mtl_fit stored version 2 ($versions): ok"
