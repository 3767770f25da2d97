-- mtl_update on the demo shop: a shop whose users and items grow.
-- The old model saw days 1-10 with the first 2,400 users and 650 items; days
-- 11-12 bring every user and item; days 13-14 are the test. Compared: the
-- stale old model, the old model updated on days 11-12 (mtl_update), and a
-- full retrain on the same rows as both (the old rows and days 11-12).
-- Needs a database with mtl and the shop schema of
-- mtl_demo_shop('shop', users => 3000, items => 800, impressions => 200000, seed => 0.42).
-- (The OFFSET 0 in the scoring query keeps each model on the outer side: joined
-- the other way round, the 5 models would alternate per row and be decoded again
-- and again, as a call site keeps 4.)
\set ON_ERROR_STOP on
\set labels 'ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END]::float8[]'
\set config '{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "record_seconds": true}'
CREATE TEMP TABLE bench_models (name text, model bytea, seconds float8);
CREATE TEMP TABLE t0 (t timestamptz);

INSERT INTO t0 VALUES (clock_timestamp());
INSERT INTO bench_models
SELECT 'stale (days 1-10, old users/items)', mtl_train(i.user_id, i.item_id, :labels, :'config'), NULL
FROM shop.impressions i WHERE i.day <= 10 AND i.user_id <= 2400 AND i.item_id <= 650;
UPDATE bench_models SET seconds = extract(epoch FROM clock_timestamp() - (SELECT t FROM t0));

TRUNCATE t0; INSERT INTO t0 VALUES (clock_timestamp());
INSERT INTO bench_models
SELECT 'updated on days 11-12', mtl_update((SELECT model FROM bench_models WHERE name LIKE 'stale%'),
	i.user_id, i.item_id, :labels, '{}'), NULL
FROM shop.impressions i WHERE i.day BETWEEN 11 AND 12;
UPDATE bench_models SET seconds = extract(epoch FROM clock_timestamp() - (SELECT t FROM t0)) WHERE seconds IS NULL;

TRUNCATE t0; INSERT INTO t0 VALUES (clock_timestamp());
INSERT INTO bench_models
SELECT 'updated at a third of the learning rate', mtl_update((SELECT model FROM bench_models WHERE name LIKE 'stale%'),
	i.user_id, i.item_id, :labels, '{"learning_rate": 0.001}'), NULL
FROM shop.impressions i WHERE i.day BETWEEN 11 AND 12;
UPDATE bench_models SET seconds = extract(epoch FROM clock_timestamp() - (SELECT t FROM t0)) WHERE seconds IS NULL;

TRUNCATE t0; INSERT INTO t0 VALUES (clock_timestamp());
INSERT INTO bench_models
SELECT 'updated, towers only (freeze shared)', mtl_update((SELECT model FROM bench_models WHERE name LIKE 'stale%'),
	i.user_id, i.item_id, :labels, '{"freeze": "shared"}'), NULL
FROM shop.impressions i WHERE i.day BETWEEN 11 AND 12;
UPDATE bench_models SET seconds = extract(epoch FROM clock_timestamp() - (SELECT t FROM t0)) WHERE seconds IS NULL;

TRUNCATE t0; INSERT INTO t0 VALUES (clock_timestamp());
INSERT INTO bench_models
SELECT 'full retrain (the stale rows + days 11-12)', mtl_train(i.user_id, i.item_id, :labels, :'config'), NULL
FROM shop.impressions i
WHERE (i.day <= 10 AND i.user_id <= 2400 AND i.item_id <= 650) OR i.day BETWEEN 11 AND 12;
UPDATE bench_models SET seconds = extract(epoch FROM clock_timestamp() - (SELECT t FROM t0)) WHERE seconds IS NULL;

\echo 'days 13-14: AUC of ctr, of ctcvr (p(click) x p(buy | click)) on all rows, and of ctr on rows with a new user or item'
SELECT b.name, round(b.seconds::numeric, 2) AS seconds,
	   round(mtl_auc(s[1], i.clicked)::numeric, 4) AS ctr_auc,
	   round(mtl_auc(s[1] * s[2], i.purchased)::numeric, 4) AS ctcvr_auc,
	   round((mtl_auc(s[1], i.clicked) FILTER (WHERE i.user_id > 2400 OR i.item_id > 650))::numeric, 4) AS ctr_auc_new_ids,
	   count(*) AS rows
FROM (SELECT * FROM bench_models OFFSET 0) b,
	 LATERAL (SELECT i.*, mtl_predict(b.model, i.user_id, i.item_id) AS s FROM shop.impressions i WHERE i.day > 12 OFFSET 0) i
GROUP BY b.name, b.seconds ORDER BY b.seconds DESC;

\echo 'a shop where nothing is new: trained on days 1-12 (every user and item), updated on day 13, tested on day 14'
CREATE TEMP TABLE still_models AS
SELECT 'trained on days 1-12' AS name, mtl_train(i.user_id, i.item_id, :labels, :'config') AS model
FROM shop.impressions i WHERE i.day <= 12;
INSERT INTO still_models
SELECT 'updated on day 13', mtl_update((SELECT model FROM still_models), i.user_id, i.item_id, :labels, '{}')
FROM shop.impressions i WHERE i.day = 13;
INSERT INTO still_models
SELECT 'updated on day 13 at learning_rate 0.0003', mtl_update((SELECT model FROM still_models WHERE name LIKE 'trained%'),
	i.user_id, i.item_id, :labels, '{"learning_rate": 0.0003}')
FROM shop.impressions i WHERE i.day = 13;
SELECT b.name, round(mtl_auc(s[1], i.clicked)::numeric, 4) AS ctr_auc_day_14,
	   round(mtl_auc(s[1] * s[2], i.purchased)::numeric, 4) AS ctcvr_auc_day_14
FROM (SELECT * FROM still_models OFFSET 0) b,
	 LATERAL (SELECT i.*, mtl_predict(b.model, i.user_id, i.item_id) AS s FROM shop.impressions i WHERE i.day = 14 OFFSET 0) i
GROUP BY b.name ORDER BY b.name;
