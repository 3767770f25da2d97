#!/bin/bash
# The refresh trigger under concurrent inserts: pgbench with 8 clients over
# loopback TCP inserts orders into a table without the trigger and one with
# it, then again with orders concentrated on 10 users (so that refreshes of
# one user collide). Checks: no failed transaction (errors, deadlocks), and
# afterwards every ordering user has exactly the top k of the deployed model.
# Prints the insert latency with and without the trigger.
# Needs PGHOST/PGPORT/PGUSER of a running cluster with mtl installed.
set -euo pipefail
db=mtl_refresh_test
seconds=${MTL_REFRESH_SECONDS:-6}
clients=8
k=20
psql -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
work=$(mktemp -d /tmp/mtl-refresh.XXXXXX)
trap 'psql -X -q -c "DROP DATABASE IF EXISTS $db"; rm -rf "$work"' EXIT
run() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d $db "$@"; }
pgbench=$(pg_config --bindir 2> /dev/null)/pgbench
[ -x "$pgbench" ] || pgbench=/usr/lib/postgresql/15/bin/pgbench

run <<SQL
CREATE EXTENSION mtl;
CREATE EXTENSION IF NOT EXISTS mtl_demo;
SET client_min_messages = warning;
SELECT mtl_demo_shop('shop', 3000, 800, 60000, 0.3);
SELECT mtl_fit('shop', 'SELECT user_id, item_id, ARRAY[clicked, CASE WHEN clicked = 1 THEN purchased END]::float8[] FROM shop.impressions',
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "epochs": 3}');
CREATE TABLE orders_plain (order_id bigserial PRIMARY KEY, user_id bigint, item_id bigint, at timestamptz DEFAULT now());
CREATE TABLE orders (LIKE orders_plain INCLUDING ALL);
CREATE TABLE user_top (user_id bigint, item_id bigint, score float8, PRIMARY KEY (user_id, item_id));
CREATE TRIGGER refresh_top AFTER INSERT ON orders FOR EACH ROW
EXECUTE FUNCTION mtl_refresh_trigger('shop', '$k', 'user_top', 'user_id', 'item_id', 'score', 'ctr*cvr');
SQL

bench() {					# table, number of users [, clients]
	local c=${3:-$clients}
	cat > "$work/order.sql" <<SQL
\\set uid random(1, $2)
\\set iid random(1, 800)
INSERT INTO $1 (user_id, item_id) VALUES (:uid, :iid);
SQL
	"$pgbench" -h 127.0.0.1 -n -c $c -j $((c < 2 ? 1 : 2)) -T "$seconds" -f "$work/order.sql" $db > "$work/$1.$2.$c.out" 2>&1 ||
		{ echo "FAIL: pgbench on $1 ($2 users)"; cat "$work/$1.$2.$c.out"; exit 1; }
	failed=$(awk -F': ' '/number of failed transactions/ {print $2+0}' "$work/$1.$2.$c.out")
	[ "${failed:-0}" = 0 ] || { echo "FAIL: $failed failed transactions on $1"; cat "$work/$1.$2.$c.out"; exit 1; }
	latency=$(awk '/latency average/ {print $4}' "$work/$1.$2.$c.out")
	tps=$(awk '/^tps/ {print int($3)}' "$work/$1.$2.$c.out")
	echo "$1, orders over $2 users, $c clients: latency ${latency} ms, ${tps} inserts/s"
}

added() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a - b}'; }
bench orders_plain 3000 1
plain1=$latency
bench orders 3000 1
echo "added insert latency of the refresh trigger (k=$k, 800 items), 1 client: $(added "$latency" "$plain1") ms"
bench orders_plain 3000
plain=$latency
bench orders 3000
echo "added insert latency of the refresh trigger (k=$k, 800 items), $clients clients: $(added "$latency" "$plain") ms"
bench orders 10

result=$(run <<SQL
SELECT count(*) AS users,
	   count(*) FILTER (WHERE t.rows = $k AND t.matching = $k) AS right_users
FROM (SELECT DISTINCT user_id FROM orders) o,
LATERAL (SELECT count(*) AS rows,
				count(r.item_id) FILTER (WHERE abs(r.score - u.score) < 1e-12) AS matching
		 FROM user_top u
		 LEFT JOIN mtl_recommend('shop', o.user_id, $k, 'ctr*cvr') r ON r.item_id = u.item_id
		 WHERE u.user_id = o.user_id) t
SQL
)
echo "users with orders | users whose rows are the model's top $k: $result"
IFS='|' read -r users right <<< "$result"
[ "$users" = "$right" ] || { echo "FAIL: $((users - right)) users have wrong rows"; exit 1; }
extra=$(run -c "SELECT count(*) FROM user_top WHERE user_id NOT IN (SELECT user_id FROM orders)")
[ "$extra" = 0 ] || { echo "FAIL: $extra rows for users without orders"; exit 1; }
echo "refresh trigger under concurrency: ok"
