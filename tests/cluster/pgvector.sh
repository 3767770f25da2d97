#!/bin/bash
# Similar items through pgvector: the item vectors of mtl_embeddings in a
# vector column with an HNSW index (cosine distance); for 40 items, the 10
# nearest found by the index are the 10 nearest by brute force over
# mtl_embeddings' arrays in plain SQL, in the same order.
# Uses an installed pgvector or builds it once (scripts/pgvector.sh); skipped
# with a message when neither is possible. Needs PGHOST/PGPORT/PGUSER of a
# running cluster with mtl installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! why=$(scripts/pgvector.sh 2>&1); then
	echo "SKIPPED (pgvector): $why"
	exit 0
fi
db=mtl_pgvector_test
psql -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap 'psql -X -q -c "DROP DATABASE IF EXISTS $db"' EXIT
run() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d $db "$@"; }
run >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION mtl;
CREATE EXTENSION mtl_demo;
CREATE EXTENSION vector;
SELECT mtl_demo_shop('shop', 1500, 600, 80000, 0.11);
CREATE TABLE m AS
SELECT mtl_train(i.user_id, i.item_id, ARRAY[i.clicked]::float8[], to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id',
	'{"tasks": [{"name": "ctr", "type": "binary"}], "embedding_dim": 16, "epochs": 3}') AS model
FROM shop.impressions i JOIN shop.users u USING (user_id) JOIN shop.items it USING (item_id);
CREATE TABLE item_vectors (item_id bigint PRIMARY KEY, embedding vector(16));
INSERT INTO item_vectors SELECT e.id, e.embedding::real[]::vector FROM m, mtl_embeddings(m.model, 'item') e;
CREATE INDEX ON item_vectors USING hnsw (embedding vector_cosine_ops);
SQL
result=$(run <<'SQL'
SET enable_seqscan = off;
SET hnsw.ef_search = 400;
CREATE TEMP TABLE arrays AS SELECT e.id, e.embedding FROM m, mtl_embeddings(m.model, 'item') e;
CREATE TEMP TABLE probes AS SELECT id FROM arrays ORDER BY id LIMIT 40;
-- the index: the plan must use it
CREATE TEMP TABLE by_index AS
SELECT p.id AS probe, array_agg(n.item_id ORDER BY n.rank) AS nearest
FROM probes p, LATERAL (
	SELECT v.item_id, row_number() OVER () AS rank
	FROM (SELECT item_id FROM item_vectors
		  ORDER BY embedding <=> (SELECT embedding FROM item_vectors WHERE item_id = p.id) LIMIT 11) v) n
WHERE n.item_id <> p.id GROUP BY p.id;
-- brute force over mtl_embeddings' arrays, without pgvector
CREATE TEMP TABLE by_brute AS
SELECT p.id AS probe, array_agg(n.id ORDER BY n.dist, n.id) AS nearest
FROM probes p, LATERAL (
	SELECT b.id, 1 - (SELECT sum(x * y) FROM unnest(a.embedding, b.embedding) t(x, y))
			   / sqrt((SELECT sum(x * x) FROM unnest(a.embedding) x) * (SELECT sum(y * y) FROM unnest(b.embedding) y)) AS dist
	FROM arrays a, arrays b WHERE a.id = p.id AND b.id <> p.id
	ORDER BY 2, 1 LIMIT 10) n
GROUP BY p.id;
SELECT (SELECT count(*) FROM by_index i JOIN by_brute b USING (probe) WHERE i.nearest[1:10] = b.nearest)
	   || ' ' || (SELECT count(*) FROM probes)
	   || ' ' || (SELECT count(*) FROM by_index i JOIN by_brute b USING (probe)
				  WHERE (SELECT count(*) FROM unnest(i.nearest[1:10]) x WHERE x = ANY (b.nearest)) = 10);
SQL
)
read -r same total same_sets <<< "$result"
plan=$(run -c "SET enable_seqscan = off" -c "EXPLAIN (COSTS OFF) SELECT item_id FROM item_vectors ORDER BY embedding <=> (SELECT embedding FROM item_vectors WHERE item_id = 1) LIMIT 10")
echo "$plan" | grep -q "Index Scan using item_vectors_embedding_idx" || { echo "FAIL: the nearest-items query does not use the HNSW index: $plan"; exit 1; }
[ "$same" = "$total" ] || { echo "FAIL: nearest items by the index equal brute force for $same of $total items ($same_sets as sets)"; exit 1; }
echo "pgvector: the 10 nearest items by the HNSW index equal brute force over mtl_embeddings for $same of $total items: ok"
