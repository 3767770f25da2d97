-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION mtl" to load this file. \quit

-- Training: an aggregate over (user, item, labels[, features[, context]], config).

CREATE FUNCTION mtl_train_step(internal, bigint, bigint, float8[], jsonb)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION mtl_train_step(internal, bigint, bigint, float8[], jsonb, jsonb, jsonb)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION mtl_train_step(internal, bigint, bigint, float8[], jsonb, jsonb, jsonb, jsonb)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION mtl_train_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION mtl_train_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C STRICT PARALLEL SAFE;

CREATE FUNCTION mtl_train_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C STRICT PARALLEL SAFE;

CREATE FUNCTION mtl_train_final(internal)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE mtl_train(user_id bigint, item_id bigint, labels float8[], config jsonb) (
	SFUNC = mtl_train_step,
	STYPE = internal,
	FINALFUNC = mtl_train_final,
	FINALFUNC_MODIFY = READ_ONLY,
	COMBINEFUNC = mtl_train_combine,
	SERIALFUNC = mtl_train_serialize,
	DESERIALFUNC = mtl_train_deserialize,
	PARALLEL = SAFE
);

CREATE AGGREGATE mtl_train(user_id bigint, item_id bigint, labels float8[],
						   user_features jsonb, item_features jsonb, config jsonb) (
	SFUNC = mtl_train_step,
	STYPE = internal,
	FINALFUNC = mtl_train_final,
	FINALFUNC_MODIFY = READ_ONLY,
	COMBINEFUNC = mtl_train_combine,
	SERIALFUNC = mtl_train_serialize,
	DESERIALFUNC = mtl_train_deserialize,
	PARALLEL = SAFE
);

CREATE AGGREGATE mtl_train(user_id bigint, item_id bigint, labels float8[],
						   user_features jsonb, item_features jsonb, context jsonb, config jsonb) (
	SFUNC = mtl_train_step,
	STYPE = internal,
	FINALFUNC = mtl_train_final,
	FINALFUNC_MODIFY = READ_ONLY,
	COMBINEFUNC = mtl_train_combine,
	SERIALFUNC = mtl_train_serialize,
	DESERIALFUNC = mtl_train_deserialize,
	PARALLEL = SAFE
);

COMMENT ON AGGREGATE mtl_train(bigint, bigint, float8[], jsonb) IS
'train a multi-task model on (user_id, item_id, labels in the order of config.tasks); NULL ids are anonymous, NULL labels missing; returns the model as bytea';
COMMENT ON AGGREGATE mtl_train(bigint, bigint, float8[], jsonb, jsonb, jsonb) IS
'train a multi-task model on ids, labels and user/item feature objects (strings and booleans categorical, numbers numeric); returns the model as bytea';
COMMENT ON FUNCTION mtl_train_step(internal, bigint, bigint, float8[], jsonb) IS 'transition function of mtl_train';
COMMENT ON AGGREGATE mtl_train(bigint, bigint, float8[], jsonb, jsonb, jsonb, jsonb) IS
'train a multi-task model on ids, labels, user/item feature objects and a context object of the row (its config.scenario key names the scenario); returns the model as bytea';
COMMENT ON FUNCTION mtl_train_step(internal, bigint, bigint, float8[], jsonb, jsonb, jsonb) IS 'transition function of mtl_train with features';
COMMENT ON FUNCTION mtl_train_step(internal, bigint, bigint, float8[], jsonb, jsonb, jsonb, jsonb) IS 'transition function of mtl_train with features and context';
COMMENT ON FUNCTION mtl_train_combine(internal, internal) IS 'combine function of mtl_train: concatenates the rows of partial states';
COMMENT ON FUNCTION mtl_train_serialize(internal) IS 'serialise a partial mtl_train state';
COMMENT ON FUNCTION mtl_train_deserialize(bytea, internal) IS 'deserialise a partial mtl_train state';
COMMENT ON FUNCTION mtl_train_final(internal) IS 'final function of mtl_train: trains and encodes the model';

-- Scoring. Not STRICT: a NULL id means an anonymous user or item.

CREATE FUNCTION mtl_predict(model bytea, user_id bigint, item_id bigint)
RETURNS float8[] AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION mtl_predict(model bytea, user_id bigint, item_id bigint,
							user_features jsonb, item_features jsonb)
RETURNS float8[] AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION mtl_predict(bytea, bigint, bigint) IS
'scores of every task for (user, item), in the order of config.tasks: probabilities for binary tasks, values for regression; ids seen in training use their stored features, unseen ids are anonymous';
CREATE FUNCTION mtl_predict(model bytea, user_id bigint, item_id bigint,
							user_features jsonb, item_features jsonb, context jsonb)
RETURNS float8[] AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION mtl_predict(bytea, bigint, bigint, jsonb, jsonb) IS
'scores of every task for (user, item) with feature objects; a non-NULL object replaces that side''s stored features';
COMMENT ON FUNCTION mtl_predict(bytea, bigint, bigint, jsonb, jsonb, jsonb) IS
'scores of every task for (user, item) with feature objects and the row''s context (scenario); an unseen or missing scenario uses the shared towers';

-- Inspection.

CREATE FUNCTION mtl_info(model bytea)
RETURNS jsonb AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION mtl_info(bytea) IS
'tasks, model type, sizes, parameter count, feature schema and training summary of a model';

-- Evaluation.

CREATE FUNCTION mtl_auc_step(internal, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION mtl_auc_final(internal)
RETURNS float8 AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE mtl_auc(score float8, label float8) (
	SFUNC = mtl_auc_step,
	STYPE = internal,
	FINALFUNC = mtl_auc_final,
	FINALFUNC_MODIFY = READ_ONLY
);

COMMENT ON AGGREGATE mtl_auc(float8, float8) IS
'area under the ROC curve of scores against 0/1 labels, ties counted one half; rows with a NULL are skipped; NULL with one class only';
COMMENT ON FUNCTION mtl_auc_step(internal, float8, float8) IS 'transition function of mtl_auc';
COMMENT ON FUNCTION mtl_auc_final(internal) IS 'final function of mtl_auc';

CREATE FUNCTION mtl_evaluate_step(internal, bytea, bigint, bigint, float8[])
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION mtl_evaluate_step(internal, bytea, bigint, bigint, float8[], jsonb, jsonb)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION mtl_evaluate_step(internal, bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;

CREATE FUNCTION mtl_evaluate_final(internal)
RETURNS jsonb AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE mtl_evaluate(model bytea, user_id bigint, item_id bigint, labels float8[]) (
	SFUNC = mtl_evaluate_step,
	STYPE = internal,
	FINALFUNC = mtl_evaluate_final,
	FINALFUNC_MODIFY = READ_ONLY
);

CREATE AGGREGATE mtl_evaluate(model bytea, user_id bigint, item_id bigint, labels float8[],
							  user_features jsonb, item_features jsonb) (
	SFUNC = mtl_evaluate_step,
	STYPE = internal,
	FINALFUNC = mtl_evaluate_final,
	FINALFUNC_MODIFY = READ_ONLY
);

CREATE AGGREGATE mtl_evaluate(model bytea, user_id bigint, item_id bigint, labels float8[],
							  user_features jsonb, item_features jsonb, context jsonb) (
	SFUNC = mtl_evaluate_step,
	STYPE = internal,
	FINALFUNC = mtl_evaluate_final,
	FINALFUNC_MODIFY = READ_ONLY
);

COMMENT ON AGGREGATE mtl_evaluate(bytea, bigint, bigint, float8[]) IS
'score rows with a model and measure every task: binary AUC, group AUC by user, logloss, accuracy and F1 at 0.5; regression RMSE and MAE; counts; a task-weighted fused score';
COMMENT ON AGGREGATE mtl_evaluate(bytea, bigint, bigint, float8[], jsonb, jsonb) IS
'mtl_evaluate with the user and item feature objects of each row, as mtl_predict takes them';
COMMENT ON FUNCTION mtl_evaluate_step(internal, bytea, bigint, bigint, float8[]) IS 'transition function of mtl_evaluate';
COMMENT ON AGGREGATE mtl_evaluate(bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb) IS
'mtl_evaluate with the feature objects and the context object of each row, as mtl_predict takes them';
COMMENT ON FUNCTION mtl_evaluate_step(internal, bytea, bigint, bigint, float8[], jsonb, jsonb) IS 'transition function of mtl_evaluate with features';
COMMENT ON FUNCTION mtl_evaluate_step(internal, bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb) IS 'transition function of mtl_evaluate with features and context';
COMMENT ON FUNCTION mtl_evaluate_final(internal) IS 'final function of mtl_evaluate';

-- A synthetic shop with a known truth, for the quick start, tests and benchmarks.

CREATE FUNCTION mtl_demo_shop(target_schema text DEFAULT 'shop', users int DEFAULT 5000,
							  items int DEFAULT 1000, impressions int DEFAULT 200000,
							  seed float8 DEFAULT 0.42)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
	IF users < 1 OR items < 1 OR impressions < 1 THEN
		RAISE EXCEPTION 'users, items and impressions must be positive'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF seed < -1 OR seed > 1 THEN
		RAISE EXCEPTION 'seed must be between -1 and 1 (it is passed to setseed)'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM setseed(seed);
	EXECUTE format('DROP SCHEMA IF EXISTS %1$I CASCADE; CREATE SCHEMA %1$I', target_schema);

	-- users: public features, and a hidden taste vector
	EXECUTE format($q$
		CREATE TABLE %1$I.users AS
		SELECT g::bigint AS user_id,
			   (ARRAY['student','family','professional','senior'])[1 + floor(random() * 4)::int] AS segment,
			   (ARRAY['north','south','east','west','city'])[1 + floor(random() * 5)::int] AS region,
			   random() < 0.3 AS member
		FROM generate_series(1, %2$s) g$q$, target_schema, users);
	EXECUTE format($q$
		CREATE TABLE %1$I.user_taste AS
		SELECT g::bigint AS user_id,
			   ARRAY(SELECT sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())
					 FROM generate_series(1, 4) d WHERE g > 0) AS taste
		FROM generate_series(1, %2$s) g$q$, target_schema, users);

	-- items: categorical and numeric features, hidden quality and taste
	EXECUTE format($q$
		CREATE TABLE %1$I.items AS
		SELECT g::bigint AS item_id,
			   'cat_' || (1 + floor(random() * 12)::int) AS category,
			   'brand_' || (1 + floor(random() * 40)::int) AS brand,
			   round(exp(3 + 0.8 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::numeric, 2) AS price,
			   random() < 0.2 AS on_sale
		FROM generate_series(1, %2$s) g$q$, target_schema, items);
	EXECUTE format($q$
		CREATE TABLE %1$I.item_taste AS
		SELECT g::bigint AS item_id,
			   sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS quality,
			   ARRAY(SELECT sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())
					 FROM generate_series(1, 4) d WHERE g > 0) AS taste
		FROM generate_series(1, %2$s) g$q$, target_schema, items);

	-- impressions: who saw what where, the true probabilities, and the outcomes
	EXECUTE format($q$
		CREATE TABLE %1$I.impressions AS
		WITH shown AS MATERIALIZED (
			SELECT g::bigint AS impression_id,
				   1 + floor(%2$s * power(random(), 1.3))::bigint AS user_id,
				   1 + floor(%3$s * power(random(), 1.8))::bigint AS item_id,
				   (ARRAY['home','home','home','home','home','search','search','search','ads','ads'])
					   [1 + floor(random() * 10)::int] AS scenario,
				   1 + floor(random() * 14)::int AS day
			FROM generate_series(1, %4$s) g
		), truth AS MATERIALIZED (
			SELECT s.*,
				   (SELECT sum(a * b) FROM unnest(ut.taste, it.taste) AS t(a, b)) AS affinity,
				   0.8 * sin(array_position(ARRAY['student','family','professional','senior'], u.segment) * 1.7
							 + substr(i.category, 5)::int * 2.3) AS segment_fit,
				   it.quality, u.member, ln(i.price::float8) - 3 AS log_price, i.on_sale
			FROM shown s
			JOIN %1$I.users u USING (user_id)
			JOIN %1$I.user_taste ut USING (user_id)
			JOIN %1$I.items i USING (item_id)
			JOIN %1$I.item_taste it USING (item_id)
			ORDER BY s.impression_id
		), probs AS MATERIALIZED (
			SELECT impression_id, user_id, item_id, scenario, day, affinity, quality,
				   -- the scenario changes what drives a click: taste on the home feed,
				   -- intent and price in search, the discount on ads
				   1 / (1 + exp(-(-2.2 + segment_fit + 0.4 * quality - 0.25 * log_price
								  + 0.4 * on_sale::int
								  + CASE scenario WHEN 'search' THEN 0.7 + 1.3 * affinity - 0.6 * log_price
												  WHEN 'ads' THEN -0.6 + 0.5 * affinity + 1.0 * on_sale::int
												  ELSE 0.9 * affinity + 0.5 * segment_fit END))) AS p_click,
				   1 / (1 + exp(-(-2.2 + 0.6 * affinity + 0.7 * quality + 0.5 * member::int
								  - 0.6 * log_price))) AS p_buy_given_click
			FROM truth
			ORDER BY impression_id
		), drawn AS MATERIALIZED (
			SELECT p.*, random() < p_click AS c, random() AS buy_draw, random() AS r1, random() AS r2
			FROM probs p
			ORDER BY impression_id
		)
		SELECT impression_id, user_id, item_id, scenario, day,
			   c::int AS clicked,
			   (c AND buy_draw < p_buy_given_click)::int AS purchased,
			   CASE WHEN c AND buy_draw < p_buy_given_click THEN
					greatest(1, least(5, round(3.0 + 0.8 * quality + 0.4 * affinity
						+ 0.5 * sqrt(-2 * ln(1 - r1)) * cos(2 * pi() * r2))))::float8
			   END AS rating,
			   p_click, p_buy_given_click, p_click * p_buy_given_click AS p_purchase
		FROM drawn
		ORDER BY impression_id$q$,
		target_schema, users, items, impressions);
	EXECUTE format('ALTER TABLE %1$I.users ADD PRIMARY KEY (user_id);
					ALTER TABLE %1$I.items ADD PRIMARY KEY (item_id);
					ANALYZE %1$I.users, %1$I.items, %1$I.impressions', target_schema);
END
$fn$;

COMMENT ON FUNCTION mtl_demo_shop(text, int, int, int, float8) IS
'create a synthetic shop in a schema (dropped first): users, items, impressions with clicks, purchases, ratings and their true probabilities (p_click, p_buy_given_click, p_purchase)';

-- Catalog-wide top-K.

CREATE FUNCTION mtl_recommend(model bytea, user_id bigint, k int, objective text DEFAULT NULL,
							  exclude bigint[] DEFAULT NULL)
RETURNS TABLE (item_id bigint, score float8, scores float8[])
AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 20;

COMMENT ON FUNCTION mtl_recommend(bytea, bigint, int, text, bigint[]) IS
'the k best items of every item the model knows for one user (NULL or unseen: anonymous), by objective: a product of task names, numbers and numeric item features such as ''ctr*cvr*price'' (default: the first task); exclude leaves item ids out; scores holds every task''s output';
