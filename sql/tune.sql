-- mtl_cross_validate and mtl_tune: splits by user, metrics per fold, trials kept
CREATE TABLE tu_rows AS
SELECT u AS user_id, i AS item_id,
	   ((u * 7 + i * 3) % 5 < 2)::int::float8 AS clicked,
	   jsonb_build_object('segment', 's' || u % 3) AS uf, jsonb_build_object('category', 'c' || i % 4) AS itf
FROM generate_series(1, 60) u, generate_series(1, 15) i;
-- a user's rows are in one fold
SELECT count(*) AS users_in_two_folds
FROM (SELECT user_id FROM tu_rows GROUP BY user_id HAVING count(DISTINCT mtl_user_fold(user_id, item_id, 3)) > 1) x;

CREATE TABLE tu_cv AS
SELECT mtl_cross_validate('SELECT user_id, item_id, ARRAY[clicked], uf, itf FROM tu_rows',
	'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 3, "seed": 3, "verbose": false}', 3) AS r;
-- each fold: its held-out rows are exactly the rows of its users, training the rest
SELECT (f ->> 'fold')::int AS fold,
	   (f ->> 'test_rows')::bigint = (SELECT count(*) FROM tu_rows WHERE mtl_user_fold(user_id, item_id, 3) = (f ->> 'fold')::int - 1) AS test_rows,
	   (f ->> 'train_rows')::bigint + (f ->> 'test_rows')::bigint = 900 AS all_rows,
	   (f #>> '{metrics,tasks,ctr,auc}')::float8 BETWEEN 0 AND 1 AS auc,
	   (f #>> '{metrics,rows}')::bigint = (f ->> 'test_rows')::bigint AS evaluated_rows
FROM tu_cv, jsonb_array_elements(r -> 'folds') f ORDER BY 1;
-- the mean of each metric over the folds
SELECT abs((r #>> '{mean,tasks,ctr,auc}')::float8
		   - (SELECT avg((f #>> '{metrics,tasks,ctr,auc}')::float8) FROM jsonb_array_elements(r -> 'folds') f)) < 1e-12 AS mean_auc,
	   abs((r #>> '{mean,fused}')::float8
		   - (SELECT avg((f #>> '{metrics,fused}')::float8) FROM jsonb_array_elements(r -> 'folds') f)) < 1e-12 AS mean_fused,
	   (r #>> '{mean,tasks,ctr,count}')::float8 = 300 AS mean_count
FROM tu_cv;
-- the same folds and models every run
SELECT mtl_cross_validate('SELECT user_id, item_id, ARRAY[clicked], uf, itf FROM tu_rows',
	'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 3, "seed": 3, "verbose": false}', 3) = r AS reproducible
FROM tu_cv;

-- grid search: every combination when trials is NULL; the best stored
SELECT mtl_tune('tuned', 'SELECT user_id, item_id, ARRAY[clicked], uf, itf FROM tu_rows',
	'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 2, "verbose": false}',
	'{"learning_rate": [0.003, 0.03], "embedding_dim": [4, 8]}', NULL, 'ctr.auc') AS version;
SELECT trial, config - 'tasks' - 'epochs' AS tried, version FROM mtl_trials WHERE name = 'tuned' ORDER BY trial;
SELECT (SELECT score FROM mtl_trials WHERE name = 'tuned' AND version = 1)
		   = (SELECT max(score) FROM mtl_trials WHERE name = 'tuned') AS best_stored,
	   (SELECT config FROM mtl_versions WHERE name = 'tuned' AND version = 1)
		   = (SELECT config FROM mtl_trials WHERE name = 'tuned' AND version = 1) AS its_config,
	   (SELECT abs(score - (metrics #>> '{tasks,ctr,auc}')::float8) < 1e-12 FROM mtl_trials WHERE name = 'tuned' AND trial = 1) AS score_is_metric,
	   (SELECT bool_and((metrics ->> 'rows')::int BETWEEN 100 AND 300) FROM mtl_trials WHERE name = 'tuned') AS held_out_users;
-- random search over a range (and a list), lower is better for logloss; a second run is version 2
SELECT mtl_tune('tuned', 'SELECT user_id, item_id, ARRAY[clicked], uf, itf FROM tu_rows',
	'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 2, "verbose": false}',
	'{"learning_rate": {"min": 0.001, "max": 0.05, "log": true}, "experts": {"min": 2, "max": 4, "integer": true}}',
	3, 'ctr.logloss', 0.3) AS version;
SELECT trial, (config ->> 'learning_rate')::float8 BETWEEN 0.001 AND 0.05 AS lr_in_range,
	   (config ->> 'experts')::int BETWEEN 2 AND 4 AS experts_in_range, metric, version
FROM mtl_trials WHERE name = 'tuned' AND metric = 'ctr.logloss' ORDER BY trial;
SELECT (SELECT score FROM mtl_trials WHERE name = 'tuned' AND version = 2)
		   = (SELECT min(score) FROM mtl_trials WHERE name = 'tuned' AND metric = 'ctr.logloss') AS lowest_stored;
-- a grid larger than the trials: draws from it
SELECT mtl_tune('tuned_draws', 'SELECT user_id, item_id, ARRAY[clicked] FROM tu_rows',
	'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 1, "verbose": false}',
	'{"learning_rate": [0.001, 0.003, 0.01], "dropout": [0, 0.1, 0.2]}', 2) AS version;
SELECT count(*) AS trials FROM mtl_trials WHERE name = 'tuned_draws';

-- errors, with their SQLSTATEs
\set VERBOSITY sqlstate
SELECT mtl_cross_validate('SELECT user_id, item_id, ARRAY[clicked] FROM tu_rows', '{"tasks": [{"name": "ctr", "type": "binary"}]}', 1);
SELECT mtl_cross_validate(NULL, '{"tasks": [{"name": "ctr", "type": "binary"}]}', 3);
SELECT mtl_cross_validate('SELECT user_id, item_id FROM tu_rows', '{"tasks": [{"name": "ctr", "type": "binary"}]}', 3);
SELECT mtl_cross_validate('SELECT user_id, item_id, ARRAY[clicked] FROM tu_rows', '{"tasks": [{"name": "ctr", "type": "binary"}], "typo": 1, "verbose": false}', 3);
SELECT mtl_cross_validate('SELECT user_id, item_id, ARRAY[clicked] FROM tu_rows WHERE user_id = 1', '{"tasks": [{"name": "ctr", "type": "binary"}], "verbose": false}', 2);
SELECT mtl_tune('t', 'SELECT user_id, item_id, ARRAY[clicked] FROM tu_rows', '{"tasks": [{"name": "ctr", "type": "binary"}]}', '{}');
SELECT mtl_tune('t', 'SELECT user_id, item_id, ARRAY[clicked] FROM tu_rows', '{"tasks": [{"name": "ctr", "type": "binary"}]}', '{"learning_rate": 0.1}');
SELECT mtl_tune('t', 'SELECT user_id, item_id, ARRAY[clicked] FROM tu_rows', '{"tasks": [{"name": "ctr", "type": "binary"}]}', '{"learning_rate": {"min": 0, "max": 1, "log": true}}', 2);
SELECT mtl_tune('t', 'SELECT user_id, item_id, ARRAY[clicked] FROM tu_rows', '{"tasks": [{"name": "ctr", "type": "binary"}]}', '{"learning_rate": {"min": 0.1, "max": 1}}');
SELECT mtl_tune('t', 'SELECT user_id, item_id, ARRAY[clicked] FROM tu_rows', '{"tasks": [{"name": "ctr", "type": "binary"}]}', '{"learning_rate": [0.1]}', 0);
SELECT mtl_tune('t', 'SELECT user_id, item_id, ARRAY[clicked] FROM tu_rows', '{"tasks": [{"name": "ctr", "type": "binary"}]}', '{"learning_rate": [0.1]}', 1, 'auc');
SELECT mtl_tune('t', 'SELECT user_id, item_id, ARRAY[clicked] FROM tu_rows', '{"tasks": [{"name": "ctr", "type": "binary"}], "verbose": false, "epochs": 1}', '{"learning_rate": [0.1]}', 1, 'cvr.auc');
SELECT mtl_tune('t', 'SELECT user_id, item_id, ARRAY[clicked] FROM tu_rows', '{"tasks": [{"name": "ctr", "type": "binary"}]}', '{"learning_rate": [0.1]}', 1, 'fused', 1);
SELECT mtl_tune('', 'SELECT user_id, item_id, ARRAY[clicked] FROM tu_rows', '{"tasks": [{"name": "ctr", "type": "binary"}]}', '{"learning_rate": [0.1]}');
SELECT mtl_tune('t', 'SELECT user_id, item_id, ARRAY[clicked] FROM tu_rows', '{"tasks": [{"name": "ctr", "type": "binary"}]}',
				(SELECT jsonb_object_agg('k' || g, '[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]'::jsonb) FROM generate_series(1, 5) g));
\set VERBOSITY default
-- a failed run leaves nothing: no trial, no version, no table
SELECT count(*) AS trials_of_failed_runs FROM mtl_trials WHERE name = 't';
SELECT count(*) AS leftover_tables FROM pg_class WHERE relname LIKE 'mtl_tune_rows_%' OR relname LIKE 'mtl_cv_rows_%';
-- mtl_tune writes the registry: mtl_trainer only
CREATE ROLE tu_analyst;
SET ROLE tu_analyst;
SELECT mtl_tune('t', 'SELECT 1', '{}', '{"learning_rate": [0.1]}');
SELECT count(*) FROM mtl_trials;
RESET ROLE;
DROP ROLE tu_analyst;
