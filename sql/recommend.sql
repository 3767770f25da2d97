-- mtl_recommend: catalog-wide top-k equals a brute-force ranking by mtl_predict
SET client_min_messages = warning;
SELECT mtl_demo_shop('rec_shop', 200, 80, 10000, 0.5);
RESET client_min_messages;
CREATE TABLE rec_model AS
SELECT mtl_train(i.user_id, i.item_id, ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END]::float8[],
	to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id',
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "epochs": 3}') AS model
FROM rec_shop.impressions i JOIN rec_shop.users u USING (user_id) JOIN rec_shop.items it USING (item_id);
CREATE TABLE rec_items AS SELECT DISTINCT item_id FROM rec_shop.impressions;

-- for several users (and an anonymous one): the same items in the same order, the same scores
CREATE FUNCTION rec_brute(uid bigint, k int, objective text) RETURNS TABLE (item_id bigint, score float8)
LANGUAGE sql AS $$
	SELECT r.item_id, CASE objective WHEN 'ctr' THEN s[1] ELSE s[1] * s[2] * it.price::float8 END
	FROM rec_model m, rec_items r JOIN rec_shop.items it USING (item_id),
		 LATERAL (SELECT mtl_predict(m.model, uid, r.item_id) AS s) x
	ORDER BY 2 DESC, 1 LIMIT k $$;
SELECT u, o, bool_and(a.item_id = b.item_id AND abs(a.score - b.score) < 1e-5 * greatest(1, abs(b.score))) AS same,
	   count(*) AS k
FROM unnest(ARRAY[1, 7, 42, NULL]::bigint[]) u, unnest(ARRAY['ctr', 'ctr*cvr*price']) o,
	 LATERAL (SELECT row_number() OVER () AS n, * FROM rec_model m, mtl_recommend(m.model, u, 10, o)) a
	 JOIN LATERAL (SELECT row_number() OVER () AS n, * FROM rec_brute(u, 10, o)) b USING (n)
GROUP BY u, o ORDER BY u, o;
-- the default objective is the first task; scores holds every task's output
SELECT bool_and(r.score = r.scores[1]) AS first_task, bool_and(array_length(r.scores, 1) = 2) AS all_tasks
FROM rec_model m, mtl_recommend(m.model, 7, 5) r;
-- exclude leaves items out; k beyond the catalog returns the catalog
SELECT count(*) FILTER (WHERE item_id = ANY (ex)) AS excluded_returned, count(*) AS items
FROM rec_model m,
	 (SELECT array_agg(item_id) AS ex FROM (SELECT item_id FROM rec_model m2, mtl_recommend(m2.model, 7, 3)) t) e,
	 mtl_recommend(m.model, 7, 1000, NULL, e.ex) r;
SELECT count(*) = (SELECT count(*) FROM rec_items) AS whole_catalog FROM rec_model m, mtl_recommend(m.model, 7, 100000);
-- numbers in the objective scale the score
SELECT bool_and(abs(a.score - 2 * b.score) < 1e-12) AS scaled
FROM (SELECT row_number() OVER () n, * FROM rec_model m, mtl_recommend(m.model, 7, 5, '2 * ctr')) a
JOIN (SELECT row_number() OVER () n, * FROM rec_model m, mtl_recommend(m.model, 7, 5, 'ctr')) b USING (n);
-- a batch for many users, as a nightly job would insert it
CREATE TABLE rec_top AS
SELECT u.user_id, r.item_id, r.score FROM rec_shop.users u, rec_model m, LATERAL mtl_recommend(m.model, u.user_id, 3, 'ctr*cvr') r;
SELECT count(*) = 3 * (SELECT count(*) FROM rec_shop.users) AS three_per_user FROM rec_top;
-- with a context: the scenario's towers and context features, ranked as
-- mtl_predict with that context ranks them; an unseen scenario is no context
CREATE TABLE rec_scen_model AS
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[], NULL, NULL, jsonb_build_object('scenario', scenario),
	'{"tasks": [{"name": "ctr", "type": "binary"}], "scenario": "scenario", "epochs": 3}') AS model
FROM rec_shop.impressions;
SELECT sc, bool_and(a.item_id = b.item_id AND abs(a.score - b.score) < 1e-5) AS same, count(*) AS k
FROM unnest(ARRAY['ads', 'home', 'search', 'unseen']) sc,
	 LATERAL (SELECT row_number() OVER () AS n, r.item_id, r.score FROM rec_scen_model m,
			  mtl_recommend(m.model, 7, 10, NULL, NULL, jsonb_build_object('scenario', sc)) r) a
	 JOIN LATERAL (SELECT row_number() OVER (ORDER BY x.score DESC, x.item_id) AS n, x.item_id, x.score
				   FROM (SELECT r.item_id, (mtl_predict(m.model, 7, r.item_id, NULL, NULL,
								jsonb_build_object('scenario', sc)))[1] AS score
						 FROM rec_scen_model m, rec_items r) x
				   ORDER BY x.score DESC, x.item_id LIMIT 10) b USING (n)
GROUP BY sc ORDER BY sc;
SELECT (SELECT array_agg(item_id) FROM mtl_recommend(m.model, 7, 10, NULL, NULL, '{"scenario": "unseen"}')) =
	   (SELECT array_agg(item_id) FROM mtl_recommend(m.model, 7, 10)) AS unseen_is_none,
	   (SELECT array_agg(item_id) FROM mtl_recommend(m.model, 7, 10, NULL, NULL, '{"scenario": "ads"}')) <>
	   (SELECT array_agg(item_id) FROM mtl_recommend(m.model, 7, 10, NULL, NULL, '{"scenario": "search"}')) AS scenarios_differ
FROM rec_scen_model m;

-- NULL model, or a model that knows no items (features only): no rows
SELECT count(*) FROM mtl_recommend(NULL, 1, 5);
SELECT count(*) AS no_items
FROM (SELECT mtl_train(NULL::bigint, NULL::bigint, ARRAY[(g % 2)::float8], jsonb_build_object('x', g), NULL,
		'{"tasks": [{"name": "a", "type": "binary"}], "epochs": 1}') AS m
	  FROM generate_series(1, 20) g) x, mtl_recommend(x.m, 1, 5);
-- errors
SELECT * FROM rec_model m, mtl_recommend(m.model, 1, 5, NULL, NULL, '[1]');
SELECT * FROM rec_model m, mtl_recommend(m.model, 1, 0);
SELECT * FROM rec_model m, mtl_recommend(m.model, 1, NULL);
SELECT * FROM rec_model m, mtl_recommend(m.model, 1, 5, 'ctr*');
SELECT * FROM rec_model m, mtl_recommend(m.model, 1, 5, 'ctr*region');
SELECT * FROM rec_model m, mtl_recommend(m.model, 1, 5, 'ctr*nan');
SELECT * FROM rec_model m, mtl_recommend(m.model, 1, 5, NULL, ARRAY[[1, 2], [3, 4]]::bigint[]);
SELECT * FROM mtl_recommend('\x00'::bytea, 1, 5);
DROP TABLE rec_model, rec_items, rec_top;
DROP FUNCTION rec_brute;
DROP SCHEMA rec_shop CASCADE;
