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
							  exclude bigint[] DEFAULT NULL, context jsonb DEFAULT NULL)
RETURNS TABLE (item_id bigint, score float8, scores float8[])
AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 20;

COMMENT ON FUNCTION mtl_recommend(bytea, bigint, int, text, bigint[], jsonb) IS
'the k best items of every item the model knows for one user (NULL or unseen: anonymous), by objective: a product of task names, numbers and numeric item features such as ''ctr*cvr*price'' (default: the first task); exclude leaves item ids out; context (scenario...) as in mtl_predict; scores holds every task''s output';

-- Model registry: versions of named models and their deployments.

CREATE TABLE mtl_models (
	id bigserial UNIQUE,
	name text NOT NULL CHECK (name <> ''),
	version int NOT NULL CHECK (version > 0),
	model bytea NOT NULL,
	config jsonb,
	query text,
	info jsonb NOT NULL,
	metrics jsonb NOT NULL,
	train_seconds float8,
	created_at timestamptz NOT NULL DEFAULT now(),
	created_by name NOT NULL DEFAULT current_user,
	PRIMARY KEY (name, version)
);

-- A stack per name: the deployed version is the newest row not rolled back.
CREATE TABLE mtl_deployments (
	id bigserial PRIMARY KEY,
	name text NOT NULL,
	version int NOT NULL,
	deployed_at timestamptz NOT NULL DEFAULT now(),
	deployed_by name NOT NULL DEFAULT current_user,
	rolled_back_at timestamptz,
	FOREIGN KEY (name, version) REFERENCES mtl_models (name, version)
);
CREATE INDEX mtl_deployments_current ON mtl_deployments (name, id) WHERE rolled_back_at IS NULL;

SELECT pg_catalog.pg_extension_config_dump('mtl_models', '');
SELECT pg_catalog.pg_extension_config_dump('mtl_models_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('mtl_deployments', '');
SELECT pg_catalog.pg_extension_config_dump('mtl_deployments_id_seq', '');

COMMENT ON TABLE mtl_models IS 'every version of every named model, with its mtl_info and metrics';
COMMENT ON TABLE mtl_deployments IS 'deployments of named models; the newest row of a name not rolled back is the deployed version';

-- Every backend learns at commit that the registry changed (see src/pg/registry.c).
CREATE FUNCTION mtl_registry_changed() RETURNS trigger AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE TRIGGER mtl_models_changed AFTER UPDATE OR DELETE OR TRUNCATE ON mtl_models
	FOR EACH STATEMENT EXECUTE FUNCTION mtl_registry_changed();
CREATE TRIGGER mtl_deployments_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mtl_deployments
	FOR EACH STATEMENT EXECUTE FUNCTION mtl_registry_changed();

CREATE FUNCTION mtl_metrics(info jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT jsonb_strip_nulls(jsonb_build_object(
		'holdout', info->'training'->'holdout',
		'best_epoch', info->'training'->'best_epoch',
		'validation_loss', info->'training'->'validation_loss'->(coalesce((info->'training'->>'best_epoch')::int, 0) - 1),
		'training_rows', info->'training'->'rows',
		'validation_rows', info->'training'->'validation_rows',
		'epochs', info->'training'->'epochs'))
$$;
COMMENT ON FUNCTION mtl_metrics(jsonb) IS
'the metrics the registry keeps of a model, from its mtl_info: held-out metrics per task, best epoch and its validation loss, rows';

-- Serialises version numbering and deployments of one name.
CREATE FUNCTION mtl_registry_lock(model_name text) RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(hashtext('mtl registry'), hashtext(model_name)) $$;

CREATE FUNCTION mtl_registry_add(model_name text, model_bytes bytea, train_config jsonb,
								 train_query text, seconds float8)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	info jsonb;
	new_version int;
BEGIN
	IF model_name IS NULL OR model_bytes IS NULL THEN
		RAISE EXCEPTION 'model_name and model_bytes must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF model_name = '' THEN
		RAISE EXCEPTION 'model name must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	info := @extschema@.mtl_info(model_bytes);	-- also rejects bytes that are not a valid model
	PERFORM @extschema@.mtl_registry_lock(model_name);
	SELECT coalesce(max(m.version), 0) + 1 INTO new_version
	  FROM @extschema@.mtl_models m WHERE m.name = model_name;
	INSERT INTO @extschema@.mtl_models (name, version, model, config, query, info, metrics, train_seconds)
	VALUES (model_name, new_version, model_bytes, train_config, train_query, info,
			@extschema@.mtl_metrics(info), seconds);
	IF NOT EXISTS (SELECT 1 FROM @extschema@.mtl_deployments d WHERE d.name = model_name) THEN
		INSERT INTO @extschema@.mtl_deployments (name, version) VALUES (model_name, new_version);
	END IF;
	RETURN new_version;
END
$$;
COMMENT ON FUNCTION mtl_registry_add(text, bytea, jsonb, text, float8) IS
'store a trained model (from mtl_train, mtl_update or mtl_fit) as the next version of its name; the first version of a name is deployed';

CREATE FUNCTION mtl_fit(name text, query text, config jsonb)
RETURNS int AS 'MODULE_PATHNAME', 'mtl_fit_query' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION mtl_fit(text, text, jsonb) IS
'train on the rows of query (run as written, as the calling user) and store the model as the next version of name; returns the version. Columns: user_id, item_id, labels [, user_features, item_features [, context]]';

CREATE FUNCTION mtl_deploy(name text, version int)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF name IS NULL OR version IS NULL THEN
		RAISE EXCEPTION 'name and version must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM @extschema@.mtl_models m
				   WHERE m.name = mtl_deploy.name AND m.version = mtl_deploy.version) THEN
		RAISE EXCEPTION 'model "%" has no version %', name, version
			USING ERRCODE = 'undefined_object',
				  HINT = 'SELECT name, version FROM mtl_versions lists the versions.';
	END IF;
	PERFORM @extschema@.mtl_registry_lock(name);
	INSERT INTO @extschema@.mtl_deployments (name, version) VALUES (name, version);
END
$$;
COMMENT ON FUNCTION mtl_deploy(text, int) IS
'deploy a version of a named model: the next statement of every session scores with it';

CREATE FUNCTION mtl_rollback(name text)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	current_id bigint;
	previous int;
BEGIN
	IF name IS NULL THEN
		RAISE EXCEPTION 'name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM @extschema@.mtl_registry_lock(name);
	SELECT d.id INTO current_id FROM @extschema@.mtl_deployments d
	 WHERE d.name = mtl_rollback.name AND d.rolled_back_at IS NULL ORDER BY d.id DESC LIMIT 1;
	IF current_id IS NULL THEN
		RAISE EXCEPTION 'model "%" has no deployed version', name USING ERRCODE = 'undefined_object';
	END IF;
	SELECT d.version INTO previous FROM @extschema@.mtl_deployments d
	 WHERE d.name = mtl_rollback.name AND d.rolled_back_at IS NULL AND d.id < current_id
	 ORDER BY d.id DESC LIMIT 1;
	IF previous IS NULL THEN
		RAISE EXCEPTION 'model "%" has no earlier deployment to roll back to', name
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	UPDATE @extschema@.mtl_deployments SET rolled_back_at = now() WHERE id = current_id;
	RETURN previous;
END
$$;
COMMENT ON FUNCTION mtl_rollback(text) IS
'undo the last deployment of a named model and return the version deployed again';

CREATE FUNCTION mtl_deployed_version(name text)
RETURNS int LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT d.version FROM @extschema@.mtl_deployments d
	 WHERE d.name = mtl_deployed_version.name AND d.rolled_back_at IS NULL
	 ORDER BY d.id DESC LIMIT 1
$$;
COMMENT ON FUNCTION mtl_deployed_version(text) IS 'the deployed version of a named model, or NULL';

CREATE FUNCTION mtl_model(name text, version int DEFAULT NULL)
RETURNS bytea LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
	wanted int := coalesce(version, @extschema@.mtl_deployed_version(name));
	bytes bytea;
BEGIN
	IF name IS NULL THEN
		RAISE EXCEPTION 'name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT m.model INTO bytes FROM @extschema@.mtl_models m
	 WHERE m.name = mtl_model.name AND m.version = wanted;
	IF bytes IS NULL THEN
		IF wanted IS NULL THEN
			RAISE EXCEPTION 'model "%" has no deployed version', name USING ERRCODE = 'undefined_object';
		END IF;
		RAISE EXCEPTION 'model "%" has no version %', name, wanted USING ERRCODE = 'undefined_object';
	END IF;
	RETURN bytes;
END
$$;
COMMENT ON FUNCTION mtl_model(text, int) IS
'the model bytes of a named model: the deployed version, or the version given';

CREATE VIEW mtl_versions AS
SELECT m.name, m.version, coalesce(m.version = dep.version, false) AS deployed,
	   m.metrics, m.train_seconds, octet_length(m.model) AS bytes,
	   m.created_at, m.created_by, m.config, m.query
  FROM @extschema@.mtl_models m
  LEFT JOIN LATERAL (SELECT d.version FROM @extschema@.mtl_deployments d
					  WHERE d.name = m.name AND d.rolled_back_at IS NULL
					  ORDER BY d.id DESC LIMIT 1) dep ON true;
COMMENT ON VIEW mtl_versions IS 'every version of every named model, whether it is deployed, and its metrics';

-- mtl 0.1 as first released let every role read the registry here. Model
-- bytes hold training ids with their features and the registry keeps each
-- training query, so this script grants nothing: the owner and superusers
-- read it, and 0.2's roles (mtl_scorer, mtl_trainer) come with the update,
-- which also revokes what the released 0.1 granted.

-- Scoring with the deployed version of a named model.

CREATE FUNCTION mtl_predict(name text, user_id bigint, item_id bigint)
RETURNS float8[] AS 'MODULE_PATHNAME', 'mtl_predict_named' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION mtl_predict(name text, user_id bigint, item_id bigint,
							user_features jsonb, item_features jsonb)
RETURNS float8[] AS 'MODULE_PATHNAME', 'mtl_predict_named' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION mtl_predict(name text, user_id bigint, item_id bigint,
							user_features jsonb, item_features jsonb, context jsonb)
RETURNS float8[] AS 'MODULE_PATHNAME', 'mtl_predict_named' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION mtl_predict(text, bigint, bigint) IS
'scores of every task for (user, item) with the deployed version of a named model, looked up once per statement';
COMMENT ON FUNCTION mtl_predict(text, bigint, bigint, jsonb, jsonb) IS
'scores with feature objects, with the deployed version of a named model';
COMMENT ON FUNCTION mtl_predict(text, bigint, bigint, jsonb, jsonb, jsonb) IS
'scores with feature objects and context, with the deployed version of a named model';

CREATE FUNCTION mtl_recommend(name text, user_id bigint, k int, objective text DEFAULT NULL,
							  exclude bigint[] DEFAULT NULL, context jsonb DEFAULT NULL)
RETURNS TABLE (item_id bigint, score float8, scores float8[])
AS 'MODULE_PATHNAME', 'mtl_recommend_named' LANGUAGE C STABLE PARALLEL SAFE ROWS 20;
COMMENT ON FUNCTION mtl_recommend(text, bigint, int, text, bigint[], jsonb) IS
'the k best items for one user with the deployed version of a named model';

-- Refreshing a user's top-k rows when an order arrives.

CREATE FUNCTION mtl_refresh_trigger() RETURNS trigger AS 'MODULE_PATHNAME' LANGUAGE C;
COMMENT ON FUNCTION mtl_refresh_trigger() IS
'AFTER INSERT/UPDATE row trigger; arguments: model name, k, scores table, its user, item and score columns [, objective [, the triggering row''s user column]]: replaces that user''s rows with the top k of the deployed model';

-- Continuing training on new rows.

CREATE FUNCTION mtl_update_step(internal, bytea, bigint, bigint, float8[], jsonb)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE FUNCTION mtl_update_step(internal, bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE FUNCTION mtl_update_step(internal, bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb, jsonb)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE FUNCTION mtl_update_final(internal)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C;

CREATE AGGREGATE mtl_update(model bytea, user_id bigint, item_id bigint, labels float8[], config jsonb) (
	SFUNC = mtl_update_step, STYPE = internal, FINALFUNC = mtl_update_final
);
CREATE AGGREGATE mtl_update(model bytea, user_id bigint, item_id bigint, labels float8[],
							user_features jsonb, item_features jsonb, config jsonb) (
	SFUNC = mtl_update_step, STYPE = internal, FINALFUNC = mtl_update_final
);
CREATE AGGREGATE mtl_update(model bytea, user_id bigint, item_id bigint, labels float8[],
							user_features jsonb, item_features jsonb, context jsonb, config jsonb) (
	SFUNC = mtl_update_step, STYPE = internal, FINALFUNC = mtl_update_final
);
COMMENT ON AGGREGATE mtl_update(bytea, bigint, bigint, float8[], jsonb) IS
'continue training model on new rows (new ids join, config may lower the learning rate, freeze the shared parts, add tasks); labels hold the model''s tasks then any added ones';
COMMENT ON AGGREGATE mtl_update(bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb) IS
'continue training model on new rows with feature objects';
COMMENT ON AGGREGATE mtl_update(bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb, jsonb) IS
'continue training model on new rows with feature objects and context';
COMMENT ON FUNCTION mtl_update_step(internal, bytea, bigint, bigint, float8[], jsonb) IS 'transition function of mtl_update';
COMMENT ON FUNCTION mtl_update_step(internal, bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb) IS 'transition function of mtl_update with features';
COMMENT ON FUNCTION mtl_update_step(internal, bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb, jsonb) IS 'transition function of mtl_update with features and context';
COMMENT ON FUNCTION mtl_update_final(internal) IS 'final function of mtl_update: continues training and encodes the model';
