-- The model family on the demo shop: per-task held-out AUC (days 13-14),
-- averaged over seeds 1-3, for CVR trained on clicks alone and for CVR
-- given CTR (ESMM-style), and with and without the scenario.
\set ON_ERROR_STOP 1
CREATE TEMP TABLE rows AS
SELECT i.impression_id, i.user_id, i.item_id, i.day, i.scenario, i.clicked, i.purchased,
	   CASE WHEN i.clicked = 1 THEN i.purchased END AS bought_after_click,
	   i.p_click, i.p_buy_given_click, i.p_purchase,
	   to_jsonb(u) - 'user_id' AS uf, to_jsonb(it) - 'item_id' AS itf,
	   jsonb_build_object('scenario', i.scenario) AS ctx
FROM shop.impressions i JOIN shop.users u USING (user_id) JOIN shop.items it USING (item_id);

CREATE TEMP TABLE variants (ord serial, name text, config jsonb, scenario bool);
INSERT INTO variants (name, config, scenario) VALUES
	('single_task, cvr on clicks', '{"model": "single_task"}', false),
	('shared_bottom, cvr on clicks', '{"model": "shared_bottom"}', false),
	('mmoe, cvr on clicks', '{"model": "mmoe"}', false),
	('ple, cvr on clicks', '{"model": "ple"}', false),
	('esmm (cvr given ctr)', '{"model": "esmm", "given": true}', false),
	('mmoe, cvr given ctr', '{"model": "mmoe", "given": true}', false),
	('ple, cvr given ctr', '{"model": "ple", "given": true}', false),
	('mmoe, cvr given ctr, scenario', '{"model": "mmoe", "given": true, "scenario": "scenario"}', true);

CREATE TEMP TABLE trained (name text, seed int, seconds float8, model bytea);
DO $$
DECLARE
	v record;
	started timestamptz;
	m bytea;
BEGIN
	FOR v IN SELECT * FROM variants LOOP
		FOR s IN 1..3 LOOP
			started := clock_timestamp();
			SELECT mtl_train(user_id, item_id, ARRAY[clicked, bought_after_click]::float8[], uf, itf,
					CASE WHEN v.scenario THEN ctx END,
					(v.config - 'given') || jsonb_build_object('seed', s, 'tasks', jsonb_build_array(
						'{"name": "ctr", "type": "binary"}'::jsonb,
						CASE WHEN v.config ? 'given' THEN '{"name": "cvr", "type": "binary", "given": "ctr"}'::jsonb
							 ELSE '{"name": "cvr", "type": "binary"}'::jsonb END)))
			INTO m FROM rows WHERE day <= 12;
			INSERT INTO trained VALUES (v.name, s, extract(epoch FROM clock_timestamp() - started), m);
		END LOOP;
	END LOOP;
END $$;

-- model by model (the lateral scan keeps one model per call site: no re-decoding)
CREATE TEMP TABLE scored AS
SELECT t.name, t.seed, x.*
FROM trained t
CROSS JOIN LATERAL (SELECT r.scenario, r.clicked, r.purchased, s[1] AS ctr, s[2] AS cvr
					FROM rows r,
						 LATERAL (SELECT mtl_predict(t.model, r.user_id, r.item_id, r.uf, r.itf, r.ctx) AS s) p
					WHERE r.day > 12 OFFSET 0) x;	-- OFFSET 0: not flattened into a join

\echo 'held-out AUC, mean of seeds 1-3 (min-max); cvr on clicked impressions, ctcvr = ctr x cvr over all'
SELECT name,
	   round(avg(ctr_auc)::numeric, 4) AS ctr_auc,
	   round(avg(cvr_auc)::numeric, 4) AS cvr_auc,
	   round(min(cvr_auc)::numeric, 3) || '-' || round(max(cvr_auc)::numeric, 3) AS cvr_range,
	   round(avg(ctcvr_auc)::numeric, 4) AS ctcvr_auc,
	   round(min(ctcvr_auc)::numeric, 3) || '-' || round(max(ctcvr_auc)::numeric, 3) AS ctcvr_range,
	   round(avg(seconds)::numeric, 1) AS train_s
FROM (SELECT s.name, s.seed, t.seconds,
			 mtl_auc(s.ctr, s.clicked) AS ctr_auc,
			 mtl_auc(CASE WHEN s.clicked = 1 THEN s.cvr END, s.purchased) AS cvr_auc,
			 mtl_auc(s.ctr * s.cvr, s.purchased) AS ctcvr_auc
	  FROM scored s JOIN trained t USING (name, seed)
	  GROUP BY s.name, s.seed, t.seconds) x
JOIN variants v USING (name)
GROUP BY name ORDER BY min(v.ord);

SELECT 'oracle' AS name, round(mtl_auc(p_click, clicked)::numeric, 4) AS ctr_auc,
	   round(mtl_auc(CASE WHEN clicked = 1 THEN p_buy_given_click END, purchased)::numeric, 4) AS cvr_auc,
	   round(mtl_auc(p_purchase, purchased)::numeric, 4) AS ctcvr_auc
FROM rows WHERE day > 12;

\echo 'per scenario: mmoe with cvr given ctr, blind vs scenario-aware (mean of seeds 1-3)'
SELECT scenario,
	   round(avg(ctr_auc) FILTER (WHERE name = 'mmoe, cvr given ctr')::numeric, 4) AS ctr_blind,
	   round(avg(ctr_auc) FILTER (WHERE name = 'mmoe, cvr given ctr, scenario')::numeric, 4) AS ctr_aware,
	   round(avg(ctcvr_auc) FILTER (WHERE name = 'mmoe, cvr given ctr')::numeric, 4) AS ctcvr_blind,
	   round(avg(ctcvr_auc) FILTER (WHERE name = 'mmoe, cvr given ctr, scenario')::numeric, 4) AS ctcvr_aware
FROM (SELECT name, seed, scenario, mtl_auc(ctr, clicked) AS ctr_auc, mtl_auc(ctr * cvr, purchased) AS ctcvr_auc
	  FROM scored WHERE name LIKE 'mmoe, cvr given ctr%' GROUP BY name, seed, scenario) x
GROUP BY scenario ORDER BY scenario;
SELECT scenario, round(mtl_auc(p_click, clicked)::numeric, 4) AS ctr_oracle,
	   round(mtl_auc(p_purchase, purchased)::numeric, 4) AS ctcvr_oracle
FROM rows WHERE day > 12 GROUP BY scenario ORDER BY scenario;

\echo 'gate utilisation of ple (seed 1), level 2: mean weight per expert'
SELECT o ->> 'output' AS output, o -> 'experts' AS experts
FROM trained t, jsonb_array_elements(mtl_info(t.model) -> 'gates' -> 'outputs') o
WHERE t.name = 'ple, cvr on clicks' AND t.seed = 1 AND (o ->> 'level')::int = 2;
