-- Negative down-sampling: probabilities stay calibrated (mean prediction
-- against the observed rate on held-out impressions, one in five), with and without sampling
SET client_min_messages = warning;
SELECT mtl_demo_shop('samp', 3000, 400, 100000, 0.21);
RESET client_min_messages;
CREATE TABLE sa_models AS
SELECT rate, mtl_train(user_id, item_id, ARRAY[clicked]::float8[], NULL, NULL, jsonb_build_object('scenario', scenario),
	jsonb_build_object('tasks', jsonb_build_array(jsonb_build_object('name', 'ctr', 'type', 'binary', 'negative_rate', rate)),
					   'scenario', 'scenario', 'seed', 5)) AS model
FROM samp.impressions, (VALUES (1.0), (0.25)) r(rate) WHERE impression_id % 5 <> 0 GROUP BY rate;
-- training kept every click and about a quarter of the rest
SELECT rate, (mtl_info(model) #>> '{tasks,0,negative_rate}') AS negative_rate,
	   round((mtl_info(model) #>> '{training,rows}')::numeric
			 / (SELECT count(*) FROM samp.impressions WHERE impression_id % 5 <> 0), 1) AS share_of_rows_trained
FROM sa_models ORDER BY rate;
CREATE TABLE sa_scored AS
SELECT m.rate, i.clicked, i.p_click, (mtl_predict(m.model, i.user_id, i.item_id, NULL, NULL, jsonb_build_object('scenario', i.scenario)))[1] AS p
FROM sa_models m, samp.impressions i WHERE i.impression_id % 5 = 0;
-- the mean prediction within 5% of the true probabilities' mean (the 20,000
-- rows' observed rate is itself about 2% off it) and within 7% of the observed
-- rate; without the correction (the kept rows' odds) far above both
SELECT rate, abs(avg(p) / avg(p_click) - 1) < 0.05 AS calibrated, abs(avg(p) / avg(clicked) - 1) < 0.07 AS near_observed,
	   avg(p / (p + (1 - p) * rate)) / avg(clicked) > 1.5 AS uncorrected_would_be_high,
	   mtl_auc(p, clicked) > 0.6 AS ranks
FROM sa_scored GROUP BY rate ORDER BY rate;
-- the same ranking, nearly: AUCs within 0.02
SELECT abs((SELECT mtl_auc(p, clicked) FROM sa_scored WHERE rate = 1)
		   - (SELECT mtl_auc(p, clicked) FROM sa_scored WHERE rate = 0.25)) < 0.02 AS similar_auc;
-- mtl_evaluate sees the corrected probabilities
SELECT abs((e #>> '{tasks,ctr,mean_predicted}')::float8 - (SELECT avg(p) FROM sa_scored WHERE rate = 0.25)) < 1e-9 AS evaluate_corrected
FROM (SELECT mtl_evaluate(m.model, i.user_id, i.item_id, ARRAY[i.clicked]::float8[], NULL, NULL,
						  jsonb_build_object('scenario', i.scenario)) AS e
	  FROM sa_models m, samp.impressions i WHERE i.impression_id % 5 = 0 AND m.rate = 0.25) x;
-- mtl_update keeps the model's rate and samples the new rows alike
SELECT (mtl_info(mtl_update(m.model, i.user_id, i.item_id, ARRAY[i.clicked]::float8[], NULL, NULL,
							jsonb_build_object('scenario', i.scenario), '{"epochs": 1}')) #>> '{tasks,0,negative_rate}') AS updated_rate
FROM (SELECT model FROM sa_models WHERE rate = 0.25) m, samp.impressions i WHERE i.day = 12;

-- errors, with their SQLSTATEs
\set VERBOSITY sqlstate
SELECT mtl_train(1, 1, ARRAY[1]::float8[], '{"tasks": [{"name": "ctr", "type": "binary", "negative_rate": 0}]}');
SELECT mtl_train(1, 1, ARRAY[1]::float8[], '{"tasks": [{"name": "ctr", "type": "binary", "negative_rate": 1.5}]}');
SELECT mtl_train(1, 1, ARRAY[1]::float8[], '{"tasks": [{"name": "ctr", "type": "binary", "negative_rate": "half"}]}');
SELECT mtl_train(1, 1, ARRAY[1]::float8[], '{"tasks": [{"name": "rating", "type": "regression", "negative_rate": 0.5}]}');
SELECT mtl_train(1, 1, ARRAY[1, 1]::float8[], '{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr", "negative_rate": 0.5}]}');
SELECT mtl_train(1, 1, ARRAY[1, 1]::float8[], '{"tasks": [{"name": "ctr", "type": "binary", "negative_rate": 0.5}, {"name": "buy", "type": "binary", "negative_rate": 0.5}]}');
SELECT mtl_update(model, 1, 1, ARRAY[1, 1]::float8[], '{"add_tasks": [{"name": "buy", "type": "binary", "negative_rate": 0.5}]}')
FROM sa_models WHERE rate = 1;
\set VERBOSITY default
SELECT mtl_train(1, 1, ARRAY[1]::float8[], '{"tasks": [{"name": "rating", "type": "regression", "negative_rate": 0.5}]}');
