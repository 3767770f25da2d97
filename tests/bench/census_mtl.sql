-- mtl's side of the features-only benchmark: prints key=value lines.
\set ON_ERROR_STOP on
\ir timing.sql
SET max_parallel_workers_per_gather = 0;
SET client_min_messages = warning;
DROP TABLE IF EXISTS census_models;
CREATE TABLE census_models (name text, model bytea);

SELECT unnest(ARRAY['train_seconds=' || round(s::numeric, 3),
	   'train_samples_per_s=' || round(n * 10 / s)])
FROM (SELECT pg_temp.seconds($q$
	INSERT INTO census_models
	SELECT 'fixed', mtl_train(NULL::bigint, NULL::bigint, ARRAY[y1, y2], features, NULL::jsonb,
		'{"tasks": [{"name": "t1", "type": "binary"}, {"name": "t2", "type": "binary"}],
		  "epochs": 10, "validation_fraction": 0, "interaction": "ids", "embedding_l2": 1e-6}')
	FROM census WHERE NOT test$q$) AS s,
	(SELECT count(*) FROM census WHERE NOT test) AS n) AS t;

SELECT unnest(ARRAY['train_seconds_2_threads=' || round(s::numeric, 3),
	   'train_samples_per_s_2_threads=' || round(n * 10 / s)])
FROM (SELECT pg_temp.seconds($q$
	SELECT mtl_train(NULL::bigint, NULL::bigint, ARRAY[y1, y2], features, NULL::jsonb,
		'{"tasks": [{"name": "t1", "type": "binary"}, {"name": "t2", "type": "binary"}],
		  "epochs": 10, "validation_fraction": 0, "interaction": "ids", "embedding_l2": 1e-6, "threads": 2}')
	FROM census WHERE NOT test$q$) AS s,
	(SELECT count(*) FROM census WHERE NOT test) AS n) AS t;

INSERT INTO census_models
SELECT 'default', mtl_train(NULL::bigint, NULL::bigint, ARRAY[y1, y2], features, NULL::jsonb,
	'{"tasks": [{"name": "t1", "type": "binary"}, {"name": "t2", "type": "binary"}]}')
FROM census WHERE NOT test;

SELECT unnest(ARRAY['predict_seconds=' || round(s::numeric, 3),
	   'predict_rows_per_s=' || round(n / s)])
FROM pg_temp.seconds($q$
	SELECT sum((mtl_predict(m.model, NULL, NULL, c.features, NULL))[1])
	FROM census c, census_models m WHERE m.name = 'fixed'$q$) AS s,
	(SELECT count(*) AS n FROM census) AS c;

SELECT unnest(ARRAY['auc_t1=' || round(mtl_auc(s[1], y1)::numeric, 4),
	   'auc_t2=' || round(mtl_auc(s[2], y2)::numeric, 4),
	   'oracle_t1=' || round(mtl_auc(p1, y1)::numeric, 4),
	   'oracle_t2=' || round(mtl_auc(p2, y2)::numeric, 4)])
FROM (SELECT c.*, mtl_predict(m.model, NULL, NULL, c.features, NULL) AS s
	  FROM census c, census_models m WHERE c.test AND m.name = 'fixed') x;
SELECT unnest(ARRAY['default_auc_t1=' || round(mtl_auc(s[1], y1)::numeric, 4),
	   'default_auc_t2=' || round(mtl_auc(s[2], y2)::numeric, 4)])
FROM (SELECT c.*, mtl_predict(m.model, NULL, NULL, c.features, NULL) AS s
	  FROM census c, census_models m WHERE c.test AND m.name = 'default') x;
