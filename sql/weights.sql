-- Sample weights: a weight argument to mtl_train, or the labels' last element
-- with config key sample_weight; each row's loss counts that many times
SET client_min_messages = warning;
SELECT mtl_demo_shop('wt', 1500, 300, 40000, 0.41);
RESET client_min_messages;
CREATE TABLE wt_rows AS
SELECT i.user_id, i.item_id, i.clicked, i.day, to_jsonb(u) - 'user_id' AS uf, to_jsonb(it) - 'item_id' AS itf,
	   jsonb_build_object('scenario', i.scenario) AS ctx
FROM wt.impressions i JOIN wt.users u USING (user_id) JOIN wt.items it USING (item_id);
\set config '{"tasks": [{"name": "ctr", "type": "binary"}], "scenario": "scenario", "epochs": 3, "seed": 5}'

-- weights of 1 change nothing: the same model, bit for bit, whichever way they come
CREATE TABLE wt_models AS
SELECT 'plain' AS how, mtl_train(user_id, item_id, ARRAY[clicked]::float8[], uf, itf, ctx, :'config') AS model
FROM wt_rows WHERE day <= 12
UNION ALL
SELECT 'ones', mtl_train(user_id, item_id, ARRAY[clicked]::float8[], 1.0, uf, itf, ctx, :'config')
FROM wt_rows WHERE day <= 12
UNION ALL
SELECT 'ones in labels', mtl_train(user_id, item_id, ARRAY[clicked, 1]::float8[], uf, itf, ctx,
								   (:'config')::jsonb || '{"sample_weight": true}')
FROM wt_rows WHERE day <= 12;
SELECT how, model = (SELECT model FROM wt_models WHERE how = 'plain') AS same_as_plain
FROM wt_models ORDER BY how;

-- clicks weighted 3: the model learns the weighted click rate. Its intercept
-- is calibrated with the weights, so on the training days the weighted mean
-- prediction is the weighted rate (within 5%), and higher than the plain
-- model's mean prediction, which is the plain rate
INSERT INTO wt_models
SELECT 'clicks x3', mtl_train(user_id, item_id, ARRAY[clicked]::float8[], CASE WHEN clicked = 1 THEN 3 ELSE 1 END,
							  uf, itf, ctx, :'config')
FROM wt_rows WHERE day <= 12;
SELECT m.how,
	   abs(sum(w * p) / sum(w) / (sum(w * clicked) / sum(w)) - 1) < 0.05 AS weighted_mean_is_weighted_rate,
	   round(avg(p)::numeric, 2) > round(avg(clicked)::numeric, 2) + 0.1 AS above_plain_rate
FROM wt_models m,
	 LATERAL (SELECT r.clicked::float8 AS clicked, CASE WHEN r.clicked = 1 THEN 3.0 ELSE 1.0 END::float8 AS w,
					 (mtl_predict(m.model, r.user_id, r.item_id, r.uf, r.itf, r.ctx))[1] AS p
			  FROM wt_rows r WHERE r.day <= 12) s
WHERE m.how = 'clicks x3' GROUP BY m.how;
SELECT abs(avg(p) / avg(clicked)::float8 - 1) < 0.05 AS plain_mean_is_plain_rate
FROM (SELECT r.clicked, (mtl_predict(m.model, r.user_id, r.item_id, r.uf, r.itf, r.ctx))[1] AS p
	  FROM wt_models m, wt_rows r WHERE m.how = 'plain' AND r.day <= 12) s;

-- the same through mtl_fit, whose query's labels carry the weight last, and mtl_update
SELECT mtl_fit('wt', $$SELECT user_id, item_id, ARRAY[clicked, CASE WHEN clicked = 1 THEN 3 ELSE 1 END]::float8[]
					   FROM wt_rows WHERE day <= 12$$,
			   '{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 2, "sample_weight": true}') AS version;
SELECT (mtl_info(mtl_update(model, user_id, item_id, ARRAY[clicked, 2]::float8[], '{"sample_weight": true, "epochs": 1}'))
		#>> '{training,rows}')::int > 0 AS updated
FROM wt_models, wt_rows WHERE how = 'plain' AND day = 13 GROUP BY model;
-- scoring and evaluation take no weight
SELECT (mtl_evaluate(model, user_id, item_id, ARRAY[clicked]::float8[]) #>> '{tasks,ctr,count}')::int > 0 AS evaluated
FROM wt_models, wt_rows WHERE how = 'clicks x3' AND day > 12 GROUP BY model;

-- bad weights
\set VERBOSITY sqlstate
SELECT mtl_train(1, 2, ARRAY[1]::float8[], NULL::float8, '{"tasks": [{"name": "ctr", "type": "binary"}]}');
SELECT mtl_train(1, 2, ARRAY[1]::float8[], -1, '{"tasks": [{"name": "ctr", "type": "binary"}]}');
SELECT mtl_train(1, 2, ARRAY[1]::float8[], 'NaN', '{"tasks": [{"name": "ctr", "type": "binary"}]}');
SELECT mtl_train(1, 2, ARRAY[1]::float8[], 'Infinity', '{"tasks": [{"name": "ctr", "type": "binary"}]}');
SELECT mtl_train(1, 2, ARRAY[1, 1]::float8[], 1, '{"tasks": [{"name": "ctr", "type": "binary"}]}');
SELECT mtl_train(1, 2, ARRAY[1, 1]::float8[], 1, '{"tasks": [{"name": "ctr", "type": "binary"}], "sample_weight": true}');
SELECT mtl_train(1, 2, ARRAY[1]::float8[], '{"tasks": [{"name": "ctr", "type": "binary"}], "sample_weight": true}');
SELECT mtl_train(1, 2, ARRAY[1, NULL]::float8[], '{"tasks": [{"name": "ctr", "type": "binary"}], "sample_weight": true}');
SELECT mtl_train(1, 2, ARRAY[1, -0.5]::float8[], '{"tasks": [{"name": "ctr", "type": "binary"}], "sample_weight": true}');
SELECT mtl_train(1, 2, ARRAY[1]::float8[], '{"tasks": [{"name": "ctr", "type": "binary"}], "sample_weight": 1}');
SELECT mtl_fit_parallel('wt_rounds', 'SELECT user_id, item_id, ARRAY[clicked, 1]::float8[] FROM wt_rows',
						'{"tasks": [{"name": "ctr", "type": "binary"}], "sample_weight": true, "verbose": false}');
\set VERBOSITY default
