-- mtl's side of sparse.sh: train each variant (psql variable variants, a
-- jsonb object of name -> config keys) with seeds 1..:seeds on the training
-- split of :schema's impressions, and print held-out CTR and CTCVR AUC.
-- Tasks: ctr, and cvr given ctr (ctcvr = ctr x cvr); scenario as context.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT set_config('sp.variants', :'variants', false) AS sp_variants, set_config('sp.seeds', :'seeds', false) AS sp_seeds \gset
CREATE TEMP TABLE sp_rows AS
SELECT i.impression_id, i.user_id, i.item_id, i.test, i.clicked, i.purchased,
	   CASE WHEN i.clicked = 1 THEN i.purchased END AS bought_after_click, i.p_click, i.p_click * i.p_buy_given_click AS p_buy,
	   to_jsonb(u) - 'user_id' AS uf, to_jsonb(it) - 'item_id' AS itf,
	   jsonb_build_object('scenario', i.scenario) AS ctx
FROM :"schema".impressions i JOIN :"schema".users u USING (user_id) JOIN :"schema".items it USING (item_id);
CREATE TEMP TABLE trained (name text, seed int, seconds float8, model bytea);
DO $$
DECLARE v record; started timestamptz; m bytea;
BEGIN
	FOR v IN SELECT * FROM jsonb_each(current_setting('sp.variants')::jsonb) LOOP
		FOR s IN 1..current_setting('sp.seeds')::int LOOP
			started := clock_timestamp();
			SELECT mtl_train(user_id, item_id, ARRAY[clicked, bought_after_click]::float8[], uf, itf, ctx,
					v.value || jsonb_build_object('seed', s, 'scenario', 'scenario', 'tasks',
						'[{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}]'::jsonb))
			INTO m FROM sp_rows WHERE NOT test;
			INSERT INTO trained VALUES (v.key, s, extract(epoch FROM clock_timestamp() - started), m);
		END LOOP;
	END LOOP;
END $$;
CREATE TEMP TABLE scored AS
SELECT t.name, t.seed, x.*
FROM trained t
CROSS JOIN LATERAL (SELECT r.clicked, r.purchased, s[1] AS ctr, s[1] * s[2] AS ctcvr
					FROM sp_rows r, LATERAL (SELECT mtl_predict(t.model, r.user_id, r.item_id, r.uf, r.itf, r.ctx) AS s) p
					WHERE r.test OFFSET 0) x;
SELECT name, round(avg(ctr)::numeric, 4) AS ctr_auc, round(min(ctr)::numeric, 4) || '-' || round(max(ctr)::numeric, 4) AS ctr_range,
	   round(avg(ctcvr)::numeric, 4) AS ctcvr_auc, round(min(ctcvr)::numeric, 4) || '-' || round(max(ctcvr)::numeric, 4) AS ctcvr_range,
	   round(avg(secs)::numeric, 1) AS train_seconds
FROM (SELECT s.name, s.seed, mtl_auc(ctr, clicked) AS ctr, mtl_auc(ctcvr, purchased) AS ctcvr,
			 (SELECT seconds FROM trained t WHERE t.name = s.name AND t.seed = s.seed) AS secs
	  FROM scored s GROUP BY s.name, s.seed) a GROUP BY name ORDER BY name;
SELECT 'truth' AS name, round(mtl_auc(p_click, clicked)::numeric, 4) AS ctr_auc, round(mtl_auc(p_buy, purchased)::numeric, 4) AS ctcvr_auc FROM sp_rows WHERE test;
