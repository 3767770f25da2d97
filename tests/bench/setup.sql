-- Benchmark data: a demo shop and 1M (user, item) pairs to score.
-- psql variables: impressions, users, items.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS mtl CASCADE;
CREATE EXTENSION mtl;
CREATE EXTENSION IF NOT EXISTS mtl_demo;
SELECT mtl_demo_shop('shop', users => :users, items => :items, impressions => :impressions, seed => 0.42);
SELECT setseed(0.5);
DROP TABLE IF EXISTS pairs, pairs_features, models;
CREATE TABLE pairs AS
SELECT 1 + (random() * (:users - 1))::bigint AS user_id, 1 + (random() * (:items - 1))::bigint AS item_id
FROM generate_series(1, 1000000);
CREATE TABLE pairs_features AS
SELECT p.user_id, p.item_id, to_jsonb(u) - 'user_id' AS user_features,
	   to_jsonb(it) - 'item_id' AS item_features
FROM pairs p JOIN shop.users u USING (user_id) JOIN shop.items it USING (item_id);
CREATE TABLE models (name text PRIMARY KEY, model bytea);
VACUUM ANALYZE pairs;
VACUUM ANALYZE pairs_features;
