-- The census-like data (census.sql, features only): mtl's defaults against the
-- 0.1 settings (interaction ids, no embedding penalty), MMoE and PLE; test AUC.
SET client_min_messages = warning;
CREATE TEMP TABLE cm AS
SELECT v.key AS name, (SELECT mtl_train(NULL::bigint, NULL::bigint, ARRAY[y1, y2], features, NULL::jsonb,
		'{"tasks": [{"name": "t1", "type": "binary"}, {"name": "t2", "type": "binary"}]}'::jsonb || v.value)
	FROM census WHERE NOT test) AS model
FROM jsonb_each('{"defaults": {}, "0.1-like": {"interaction": "ids", "embedding_l2": 0}, "ple defaults": {"model": "ple"}, "ple 0.1-like": {"model": "ple", "interaction": "ids", "embedding_l2": 0}}') v;
SELECT name, round(mtl_auc(s[1], y1)::numeric, 4) t1, round(mtl_auc(s[2], y2)::numeric, 4) t2
FROM (SELECT m.name, c.y1, c.y2, mtl_predict(m.model, NULL, NULL, c.features, NULL) AS s FROM census c, cm m WHERE c.test OFFSET 0) x GROUP BY name ORDER BY name;
