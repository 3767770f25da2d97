-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION mtl UPDATE TO '0.2'" to load this file. \quit

-- 0.1 -> 0.2: the demo shop moves to its own extension (mtl_demo), and the
-- registry is no longer readable by every role. Stored models keep scoring:
-- the 0.2 library decodes every model format ever released.

DROP FUNCTION mtl_demo_shop(text, int, int, int, float8);

-- Data-parallel training in rounds: aggregates with bytea states that a
-- parallel query runs in its workers and Citus pushes down to its shards
-- (see src/core/round.h), and a driver that stores the result like mtl_fit.

CREATE FUNCTION mtl_round_init_step(bytea, bigint, bigint, float8[], jsonb)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE COST 1000;
CREATE FUNCTION mtl_round_init_step(bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE COST 1000;
CREATE FUNCTION mtl_round_init_step(bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb, jsonb)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE COST 1000;
CREATE FUNCTION mtl_round_init_combine(bytea, bytea)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mtl_round_init_final(bytea)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE mtl_round_init(user_id bigint, item_id bigint, labels float8[], config jsonb) (
	SFUNC = mtl_round_init_step, STYPE = bytea, COMBINEFUNC = mtl_round_init_combine,
	FINALFUNC = mtl_round_init_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
CREATE AGGREGATE mtl_round_init(user_id bigint, item_id bigint, labels float8[],
								user_features jsonb, item_features jsonb, config jsonb) (
	SFUNC = mtl_round_init_step, STYPE = bytea, COMBINEFUNC = mtl_round_init_combine,
	FINALFUNC = mtl_round_init_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
CREATE AGGREGATE mtl_round_init(user_id bigint, item_id bigint, labels float8[],
								user_features jsonb, item_features jsonb, context jsonb, config jsonb) (
	SFUNC = mtl_round_init_step, STYPE = bytea, COMBINEFUNC = mtl_round_init_combine,
	FINALFUNC = mtl_round_init_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
COMMENT ON AGGREGATE mtl_round_init(bigint, bigint, float8[], jsonb) IS
'the first pass of training in rounds: vocabularies, statistics and initial parameters of a model (arguments as mtl_train)';
COMMENT ON AGGREGATE mtl_round_init(bigint, bigint, float8[], jsonb, jsonb, jsonb) IS
'the first pass of training in rounds, with user and item features';
COMMENT ON AGGREGATE mtl_round_init(bigint, bigint, float8[], jsonb, jsonb, jsonb, jsonb) IS
'the first pass of training in rounds, with features and context';

CREATE FUNCTION mtl_train_round_step(bytea, bytea, bigint, bigint, float8[], jsonb)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE COST 1000;
CREATE FUNCTION mtl_train_round_step(bytea, bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE COST 1000;
CREATE FUNCTION mtl_train_round_step(bytea, bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb, jsonb)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE COST 1000;
CREATE FUNCTION mtl_train_round_combine(bytea, bytea)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mtl_train_round_final(bytea)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE mtl_train_round(model bytea, user_id bigint, item_id bigint, labels float8[], options jsonb) (
	SFUNC = mtl_train_round_step, STYPE = bytea, COMBINEFUNC = mtl_train_round_combine,
	FINALFUNC = mtl_train_round_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
CREATE AGGREGATE mtl_train_round(model bytea, user_id bigint, item_id bigint, labels float8[],
								 user_features jsonb, item_features jsonb, options jsonb) (
	SFUNC = mtl_train_round_step, STYPE = bytea, COMBINEFUNC = mtl_train_round_combine,
	FINALFUNC = mtl_train_round_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
CREATE AGGREGATE mtl_train_round(model bytea, user_id bigint, item_id bigint, labels float8[],
								 user_features jsonb, item_features jsonb, context jsonb, options jsonb) (
	SFUNC = mtl_train_round_step, STYPE = bytea, COMBINEFUNC = mtl_train_round_combine,
	FINALFUNC = mtl_train_round_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
COMMENT ON AGGREGATE mtl_train_round(bytea, bigint, bigint, float8[], jsonb) IS
'one round of data-parallel training from model: each share trains on its rows, and the merge averages every change by the rows each share trained (FedAvg); options: round, learning_rate, row_fraction; apply the result with mtl_round_apply';
COMMENT ON AGGREGATE mtl_train_round(bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb) IS
'one round of data-parallel training, with user and item features';
COMMENT ON AGGREGATE mtl_train_round(bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb, jsonb) IS
'one round of data-parallel training, with features and context';


CREATE FUNCTION mtl_round_apply(model bytea, round bytea)
RETURNS bytea AS 'MODULE_PATHNAME', 'mtl_round_apply_model' LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION mtl_round_apply(bytea, bytea) IS
'the model after a round: the round''s averaged parameters in place of model''s';
CREATE FUNCTION mtl_round_info(round bytea)
RETURNS jsonb AS 'MODULE_PATHNAME' LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION mtl_round_info(bytea) IS
'a round''s rows, mean training loss, held-out rows and the start model''s mean held-out loss, embedding rows updated, bytes';
CREATE FUNCTION mtl_round_rows_final(internal)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE mtl_round_rows(user_id bigint, item_id bigint, labels float8[], config jsonb) (
	SFUNC = mtl_train_step, STYPE = internal, COMBINEFUNC = mtl_train_combine,
	SERIALFUNC = mtl_train_serialize, DESERIALFUNC = mtl_train_deserialize,
	FINALFUNC = mtl_round_rows_final, PARALLEL = SAFE);
CREATE AGGREGATE mtl_round_rows(user_id bigint, item_id bigint, labels float8[],
								user_features jsonb, item_features jsonb, config jsonb) (
	SFUNC = mtl_train_step, STYPE = internal, COMBINEFUNC = mtl_train_combine,
	SERIALFUNC = mtl_train_serialize, DESERIALFUNC = mtl_train_deserialize,
	FINALFUNC = mtl_round_rows_final, PARALLEL = SAFE);
CREATE AGGREGATE mtl_round_rows(user_id bigint, item_id bigint, labels float8[],
								user_features jsonb, item_features jsonb, context jsonb, config jsonb) (
	SFUNC = mtl_train_step, STYPE = internal, COMBINEFUNC = mtl_train_combine,
	SERIALFUNC = mtl_train_serialize, DESERIALFUNC = mtl_train_deserialize,
	FINALFUNC = mtl_round_rows_final, PARALLEL = SAFE);
COMMENT ON AGGREGATE mtl_round_rows(bigint, bigint, float8[], jsonb) IS
'training rows collected as mtl_train collects them, as one chunk (bytea) for mtl_round_init, mtl_train_round and mtl_evaluate: group by mtl_round_chunk_key(n) to keep a query''s rows in chunks of up to n';
COMMENT ON AGGREGATE mtl_round_rows(bigint, bigint, float8[], jsonb, jsonb, jsonb) IS
'training rows with user and item features as one chunk';
COMMENT ON AGGREGATE mtl_round_rows(bigint, bigint, float8[], jsonb, jsonb, jsonb, jsonb) IS
'training rows with features and context as one chunk';
-- Declared STABLE though each call counts a row: to the planner a call with a
-- constant argument is then a constant, so grouping by it needs no sort and
-- each process streams its chunks out as they fill, one in memory at a time
-- (a volatile key would make it expect a group per row and sort them all).
-- The executor still calls it once per row.
CREATE FUNCTION mtl_round_chunk_key(rows_per_chunk int)
RETURNS bigint AS 'MODULE_PATHNAME' LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION mtl_round_chunk_key(int) IS
'a grouping key that puts each run of rows_per_chunk rows one process (a parallel worker or the leader) meets into a group of its own';
CREATE FUNCTION mtl_round_init_chunk_step(bytea, bytea, jsonb)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE COST 1000;
CREATE AGGREGATE mtl_round_init(chunk bytea, config jsonb) (
	SFUNC = mtl_round_init_chunk_step, STYPE = bytea, COMBINEFUNC = mtl_round_init_combine,
	FINALFUNC = mtl_round_init_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
COMMENT ON AGGREGATE mtl_round_init(bytea, jsonb) IS
'the first pass of training in rounds over chunks of rows made by mtl_round_rows';
CREATE FUNCTION mtl_train_round_chunk_step(bytea, bytea, bytea, jsonb)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE COST 1000;
CREATE AGGREGATE mtl_train_round(model bytea, chunk bytea, options jsonb) (
	SFUNC = mtl_train_round_chunk_step, STYPE = bytea, COMBINEFUNC = mtl_train_round_combine,
	FINALFUNC = mtl_train_round_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
COMMENT ON AGGREGATE mtl_train_round(bytea, bytea, jsonb) IS
'one round of data-parallel training over chunks of rows made by mtl_round_rows';
CREATE FUNCTION mtl_evaluate_chunk_step(internal, bytea, bytea)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE mtl_evaluate(model bytea, chunk bytea) (
	SFUNC = mtl_evaluate_chunk_step, STYPE = internal,
	FINALFUNC = mtl_evaluate_final, FINALFUNC_MODIFY = READ_ONLY);
COMMENT ON AGGREGATE mtl_evaluate(bytea, bytea) IS
'mtl_evaluate over the held-out rows of chunks made by mtl_round_rows (those training in rounds with model''s seed never trains on)';
CREATE FUNCTION mtl_round_takes(model bytea, options jsonb, user_id bigint, item_id bigint)
RETURNS bool AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION mtl_round_takes(bytea, jsonb, bigint, bigint) IS
'whether mtl_train_round with this model and options uses the row (to train or to measure): a filter that spares the rows a round skips';
CREATE FUNCTION mtl_round_model(model bytea)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION mtl_round_model(bytea) IS
'model at the first call of each scan, NULL after: as mtl_train_round''s model argument it spares Citus a copy of the model in every row it ships to a shard''s aggregate';
CREATE FUNCTION mtl_query_columns(query text)
RETURNS int AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION mtl_query_columns(text) IS
'the number of columns (3, 5 or 6) of a training query, checked as mtl_fit checks them, without running it';

CREATE FUNCTION mtl_fit_parallel(name text, query text, config jsonb)
RETURNS int LANGUAGE plpgsql
-- every round is a new query: compiling it costs more than it saves
SET jit = off
AS $fn$
DECLARE
	fraction float8 := coalesce((config->>'round_fraction')::float8, 1.0);
	max_rounds int;
	-- progress per round unless the config says "verbose": false
	progress boolean := coalesce((config->>'verbose')::boolean, true);
	citus boolean := EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus');
	-- Citus: the query runs on the shards every round; one server: rows encoded once
	cache boolean := coalesce((config->>'cache_rows')::boolean, NOT citus);
	base jsonb := config - 'round_fraction' - 'max_rounds' - 'cache_rows' - 'verbose' - 'round_batch_size';
	-- a share's batch: see the loop
	fixed_batch int := (config->>'round_batch_size')::int;
	cols int;
	args text;
	source text;
	rows_table text;
	model_table text;
	round_sql text;
	model_arg text := '$1';
	slices int;
	validate boolean;
	-- settings the call changes for its own statements and gives back
	saved jsonb := jsonb_build_object('parallel_leader_participation', current_setting('parallel_leader_participation'),
		'parallel_setup_cost', current_setting('parallel_setup_cost'),
		'parallel_tuple_cost', current_setting('parallel_tuple_cost'), 'enable_hashagg', current_setting('enable_hashagg'),
		'default_toast_compression', current_setting('default_toast_compression'));
	workers int := current_setting('max_parallel_workers_per_gather')::int;
	setting record;
	model bytea;
	best bytea;
	result bytea;
	info jsonb;
	lr float8;
	lr_decay float8;
	patience int;
	batch int;
	share_batch int;
	total_rows float8;
	best_loss float8 := 'Infinity';
	since int := 0;
	val float8;
	best_round int := 0;
	final bytea;
	holdout jsonb;
	-- the round that measured the best model (its held-out metrics, cached rows only)
	best_info jsonb;
	metrics_sql text;
	stored int;
	started timestamptz := clock_timestamp();
	t0 timestamptz;
BEGIN
	IF name IS NULL OR query IS NULL OR config IS NULL THEN
		RAISE EXCEPTION 'name, query and config must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF name = '' THEN
		RAISE EXCEPTION 'model name must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- mtl_train's default epochs (src/pg/config.c), as rounds of fraction of the rows
	IF fraction > 0 THEN
		max_rounds := coalesce((config->>'max_rounds')::int,
							   ceil(coalesce((config->>'epochs')::float8, 30) / fraction)::int);
	END IF;
	IF NOT fraction > 0 OR fraction > 1 OR NOT max_rounds BETWEEN 1 AND 1023
	   OR NOT coalesce(fixed_batch BETWEEN 1 AND 65536, true) THEN
		RAISE EXCEPTION 'round_fraction must be in (0, 1], max_rounds from 1 to 1023 and round_batch_size from 1 to 65536'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	query := regexp_replace(query, '[;[:space:]]+$', '');
	cols := @extschema@.mtl_query_columns(query);
	args := 'q.c1::bigint, q.c2::bigint, q.c3' || CASE WHEN cols >= 5 THEN ', q.c4, q.c5' ELSE '' END
			|| CASE WHEN cols = 6 THEN ', q.c6' ELSE '' END;
	source := format(' FROM (%s) AS q(%s)', query,
					 CASE cols WHEN 3 THEN 'c1, c2, c3' WHEN 5 THEN 'c1, c2, c3, c4, c5'
							   ELSE 'c1, c2, c3, c4, c5, c6' END);
	-- On one server the model of each round sits in a table of this transaction,
	-- owned by the caller and dropped at the end (or with the transaction on
	-- error): parallel workers read it as a parameter, not as a constant in the
	-- plan they parse. Citus gets it as a constant in each shard's query: a
	-- reference table written after the first pass's parallel reads would force
	-- one connection per node for the rest of the transaction.
	IF NOT citus THEN
		BEGIN
			rows_table := 'mtl_round_rows_' || pg_backend_pid() || '_' || (extract(epoch FROM started) * 1000)::bigint;
			model_table := format('%I.%I', current_schema(), rows_table || '_model');
			rows_table := format('%I.%I', current_schema(), rows_table);
			-- parallel query cannot read a temporary table, so it is an unlogged one
			EXECUTE format('CREATE UNLOGGED TABLE %s (model bytea)', model_table);
			-- rewritten every round: compressing it would cost the leader more than it saves
			EXECUTE format('ALTER TABLE %s ALTER COLUMN model SET STORAGE EXTERNAL', model_table);
			model_arg := format('(SELECT m.model FROM %s m)', model_table);
		EXCEPTION WHEN insufficient_privilege OR invalid_schema_name OR undefined_parameter OR null_value_not_allowed THEN
			RAISE NOTICE 'mtl_fit_parallel: cannot create a table in schema %; every round runs the query',
				coalesce(current_schema(), '(none)');
			model_table := NULL;
		END;
	END IF;
	cache := cache AND model_table IS NOT NULL;
	t0 := clock_timestamp();
	IF cache THEN
		-- The query runs once: its join and to_jsonb cost more than reading
		-- the rows they make. Each process keeps the rows it meets as chunks
		-- (row stores, see src/pg/round_rows.c) and hands each on when full,
		-- so the leader writes a few large values instead of inserting every
		-- row. Grouping without a hash table streams the chunks (see
		-- mtl_round_chunk_key). One chunk per page (fillfactor and padding):
		-- a parallel scan then hands the chunks out one at a time.
		PERFORM set_config('enable_hashagg', 'off', true);
		-- the leader reads the workers' chunks as they come (else they wait on it)
		PERFORM set_config('parallel_leader_participation', 'off', true);
		-- a chunk is compressed once and read every round: lz4 where the server has it
		BEGIN
			PERFORM set_config('default_toast_compression', 'lz4', true);
		EXCEPTION WHEN invalid_parameter_value THEN
			NULL;
		END;
		EXECUTE format('CREATE UNLOGGED TABLE %s WITH (fillfactor = 10) AS SELECT @extschema@.mtl_round_rows(%s, %L::jsonb) AS c, '
					   'repeat('' '', %s) AS pad', rows_table, args, base, current_setting('block_size')::int / 8)
			|| source || ' GROUP BY @extschema@.mtl_round_chunk_key(65536)';
		PERFORM set_config('enable_hashagg', saved->>'enable_hashagg', true);
		PERFORM set_config('default_toast_compression', saved->>'default_toast_compression', true);
		EXECUTE format('ALTER TABLE %s SET (parallel_workers = %s)', rows_table, greatest(workers, 1));
		-- a round's cost is in its aggregate, not in its few rows
		PERFORM set_config('parallel_setup_cost', '0', true);
		PERFORM set_config('parallel_tuple_cost', '0', true);
		IF progress THEN
			RAISE INFO 'mtl_fit_parallel: query run and its rows kept in % s',
				round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1);
		END IF;
		t0 := clock_timestamp();
		EXECUTE format('SELECT @extschema@.mtl_round_init(c, $1) FROM %s', rows_table) INTO model USING base;
	ELSE
		EXECUTE format('SELECT @extschema@.mtl_round_init(%s, $1)', args) || source INTO model USING base;
	END IF;
	IF model IS NULL THEN
		RAISE EXCEPTION 'mtl_fit_parallel query returned no rows' USING ERRCODE = 'no_data_found';
	END IF;
	info := @extschema@.mtl_info(model);
	lr := (info->'training'->>'learning_rate')::float8;
	lr_decay := (info->'training'->>'lr_decay')::float8;
	batch := (info->'training'->>'batch_size')::int;
	share_batch := coalesce(fixed_batch, batch);
	-- embedding_l2 is per epoch: shares spread it over an epoch's steps
	total_rows := (info->'training'->>'rows')::float8 * (1 - (info->'training'->>'validation_fraction')::float8);
	-- held-out rows are measured at the end of each epoch (every slices rounds)
	slices := ceil(1 / fraction - 1e-9)::int;
	patience := (info->'training'->>'patience')::int;
	IF progress THEN
		RAISE INFO 'mtl_fit_parallel: vocabularies of % users, % items from % rows, % s',
			info->>'users', info->>'items', info->'training'->>'rows',
			round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1);
	END IF;
	IF model_table IS NOT NULL THEN
		EXECUTE format('INSERT INTO %s VALUES ($1)', model_table) USING model;
	END IF;
	-- only a scan's first row carries the model (mtl_round_model): Citus ships
	-- an aggregate's arguments to the shards as a ROW(...) per row
	round_sql := format('SELECT @extschema@.mtl_train_round(@extschema@.mtl_round_model(%s), %s, $2)', model_arg, args)
		|| source || format(' WHERE @extschema@.mtl_round_takes(%s, $2, q.c1::bigint, q.c2::bigint)', model_arg);
	IF cache THEN
		-- the workers train; the leader only gathers their shares
		round_sql := format('SELECT @extschema@.mtl_train_round(%s, c, $2) FROM %s', model_arg, rows_table);
	END IF;
	-- round max_rounds + 1 trains nothing: it measures the last model
	FOR r IN 1 .. max_rounds + 1 LOOP
		t0 := clock_timestamp();
		validate := (r - 1) % slices = 0 OR r > max_rounds;
		IF model_table IS NOT NULL AND r > 1 THEN
			EXECUTE format('UPDATE %s SET model = $1', model_table) USING model;
		END IF;
		EXECUTE round_sql INTO result
			USING model, jsonb_build_object('round', r,
				-- the full rate: the shares' changes are averaged, which takes out
				-- the extra noise of their smaller batches
				'learning_rate', lr * power(lr_decay, floor((r - 1) * fraction)),
				'row_fraction', CASE WHEN r > max_rounds THEN 0 ELSE fraction END,
				'batch_size', share_batch, 'validate', validate, 'train_rows', total_rows,
				-- the held-out rows' metrics of the start model, with its loss
				'metrics', validate AND cache);
		info := @extschema@.mtl_round_info(result);
		-- K shares of b rows a step move the average about as far as steps of
		-- K b rows: each share steps every batch / K rows
		IF (info->>'shares')::int > 1 THEN
			IF fixed_batch IS NULL THEN
				share_batch := greatest(8, ceil(batch::float8 / (info->>'shares')::int)::int);
			END IF;
			IF r = 1 AND ((info->>'shares')::int > 8
						  OR (info->>'rows')::float8 / (info->>'shares')::int < 20 * share_batch) THEN
				RAISE NOTICE 'mtl_fit_parallel: % shares trained about % rows each in a round; many or small shares need more rounds than one node needs epochs',
					info->>'shares', round((info->>'rows')::numeric / (info->>'shares')::int)
					USING HINT = 'Distribute the training table over fewer, larger shards (e.g. one per worker): they train in fewer rounds.';
			END IF;
		END IF;
		-- a round that validates measures its start model, round r - 1's result
		val := CASE WHEN validate THEN (info->>'validation_loss')::float8 END;
		IF r > 1 AND validate AND (val IS NULL OR val < best_loss) THEN
			best := model;
			best_info := info;
			best_round := r - 1;
			best_loss := coalesce(val, best_loss);
			since := 0;
		ELSIF r > 1 AND validate THEN
			since := since + 1;
		END IF;
		EXIT WHEN r > max_rounds OR (patience > 0 AND since >= patience);
		IF progress THEN
			RAISE INFO 'mtl_fit_parallel: round %/%, loss %, validation loss of round %: %, % s',
				r, max_rounds, round((info->>'loss')::numeric, 6), r - 1,
				coalesce(round(val::numeric, 6)::text, '-'),
				round(extract(epoch FROM clock_timestamp() - t0)::numeric, 2);
		END IF;
		model := @extschema@.mtl_round_apply(model, result);
	END LOOP;
	final := coalesce(best, model);
	-- per task, the metrics mtl_evaluate gives: AUC and logloss (probabilities
	-- clipped to [1e-15, 1 - 1e-15]), or RMSE and MAE; the labelled rows
	metrics_sql := '''{}''::jsonb';
	info := @extschema@.mtl_info(final);
	FOR t IN 0 .. jsonb_array_length(info->'tasks') - 1 LOOP
		metrics_sql := metrics_sql || format(CASE WHEN info->'tasks'->t->>'type' = 'binary' THEN
			' || jsonb_build_object(%1$L, jsonb_build_object(''auc'', @extschema@.mtl_auc(s[%2$s], l[%2$s]), '
			'''logloss'', avg(-(l[%2$s] * ln(least(greatest(s[%2$s], 1e-15), 1 - 1e-15)) '
			'+ (1 - l[%2$s]) * ln(1 - least(greatest(s[%2$s], 1e-15), 1 - 1e-15)))), ''count'', count(l[%2$s])))'
			ELSE ' || jsonb_build_object(%1$L, jsonb_build_object(''rmse'', sqrt(avg((s[%2$s] - l[%2$s]) ^ 2)), '
			'''mae'', avg(abs(s[%2$s] - l[%2$s])), ''count'', count(l[%2$s])))' END,
			info->'tasks'->t->>'name', t + 1);
	END LOOP;
	-- the held-out rows' metrics, as mtl_fit keeps them: from their packed
	-- form, or else the query again on those rows only (the filter is on
	-- the ids, below any join)
	t0 := clock_timestamp();
	IF cache THEN
		-- measured in the round after it, as mtl_evaluate measures (none without held-out rows)
		IF (best_info->>'validation_rows')::bigint > 0 AND best_info->'holdout' IS NOT NULL THEN
			SELECT jsonb_build_object('rows', best_info->'validation_rows',
									  'tasks', jsonb_object_agg(info->'tasks'->t->>'name', best_info->'holdout'->t))
			  INTO holdout FROM generate_series(0, jsonb_array_length(info->'tasks') - 1) t;
		END IF;
		EXECUTE format('DROP TABLE %s', rows_table);
		FOR setting IN SELECT key, value FROM jsonb_each_text(saved) LOOP
			PERFORM set_config(setting.key, setting.value, true);
		END LOOP;
	ELSE
		-- the query again on the held-out rows only (the filter is on the ids,
		-- below any join), scored where the rows are (on Citus, the shards):
		-- only scores and labels travel
		IF model_table IS NOT NULL THEN
			EXECUTE format('UPDATE %s SET model = $1', model_table) USING final;
		END IF;
		EXECUTE format('SELECT jsonb_build_object(''rows'', count(*), ''tasks'', %s) FROM (SELECT q.c3 AS l, '
					   '@extschema@.mtl_predict(%s, q.c1::bigint, q.c2::bigint%s) AS s',
					   metrics_sql, model_arg, CASE cols WHEN 3 THEN '' WHEN 5 THEN ', q.c4, q.c5' ELSE ', q.c4, q.c5, q.c6' END)
			|| source
			-- OFFSET 0: one mtl_predict per row, not one per use of its result
			|| format(' WHERE @extschema@.mtl_round_takes(%s, ''{"round": 1, "row_fraction": 0}'', q.c1::bigint, q.c2::bigint) OFFSET 0) h',
					  model_arg)
			INTO holdout USING final;
	END IF;
	IF model_table IS NOT NULL THEN
		EXECUTE format('DROP TABLE %s', model_table);
	END IF;
	IF progress AND holdout IS NOT NULL THEN
		RAISE INFO 'mtl_fit_parallel: the model of round % measured on % held-out rows in % s',
			best_round, holdout->>'rows', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1);
	END IF;
	stored := @extschema@.mtl_registry_add(name, final, config, query,
										   extract(epoch FROM clock_timestamp() - started));
	-- a model of rounds counts rounds, not epochs, in its own summary
	UPDATE @extschema@.mtl_models m
	   SET metrics = jsonb_strip_nulls((m.metrics - 'epochs' - 'training_rows' - 'validation_rows') || jsonb_build_object(
			'rounds', best_round, 'epochs', best_round * fraction,
			'validation_rows', holdout->'rows',
			'holdout', (SELECT jsonb_object_agg(t.key, jsonb_strip_nulls(jsonb_build_object(
							'auc', t.value->'auc', 'logloss', t.value->'logloss', 'rmse', t.value->'rmse',
							'mae', t.value->'mae', 'rows', t.value->'count')))
						  FROM jsonb_each(holdout->'tasks') t)))
	 WHERE m.name = $1 AND m.version = stored;
	RETURN stored;
END
$fn$;
COMMENT ON FUNCTION mtl_fit_parallel(text, text, jsonb) IS
'train in data-parallel rounds (parallel query workers, Citus shards) on the rows of query and store the model of the best round as the next version of name; config as mtl_fit plus round_fraction, max_rounds and cache_rows';

-- mtl_recommend takes the user's features (a history, tags...) in place of the stored ones
DROP FUNCTION mtl_recommend(bytea, bigint, int, text, bigint[], jsonb);
DROP FUNCTION mtl_recommend(text, bigint, int, text, bigint[], jsonb);
CREATE FUNCTION mtl_recommend(model bytea, user_id bigint, k int, objective text DEFAULT NULL,
							  exclude bigint[] DEFAULT NULL, context jsonb DEFAULT NULL,
							  user_features jsonb DEFAULT NULL)
RETURNS TABLE (item_id bigint, score float8, scores float8[])
AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 20;

COMMENT ON FUNCTION mtl_recommend(bytea, bigint, int, text, bigint[], jsonb, jsonb) IS
'the k best items of every item the model knows for one user (NULL or unseen: anonymous), by objective: a product of task names, numbers and numeric item features such as ''ctr*cvr*price'' (default: the first task); exclude leaves item ids out; context (scenario...) as in mtl_predict; user_features (a history, tags...) replace the user''s stored features; scores holds every task''s output';

CREATE FUNCTION mtl_recommend(name text, user_id bigint, k int, objective text DEFAULT NULL,
							  exclude bigint[] DEFAULT NULL, context jsonb DEFAULT NULL,
							  user_features jsonb DEFAULT NULL)
RETURNS TABLE (item_id bigint, score float8, scores float8[])
AS 'MODULE_PATHNAME', 'mtl_recommend_named' LANGUAGE C STABLE PARALLEL SAFE ROWS 20;
COMMENT ON FUNCTION mtl_recommend(text, bigint, int, text, bigint[], jsonb, jsonb) IS
'the k best items for one user with the deployed version of a named model';

-- Privileges. PUBLIC holds no privilege on the registry: a model's bytes
-- hold every training id with the features stored for it, and the registry
-- keeps each training query. Two roles, in the style of PostgreSQL's
-- predefined roles, are granted to users by the DBA:
--   mtl_scorer   scores by name (mtl_predict, mtl_recommend, the refresh
--                trigger) and nothing else; it never reads model bytes,
--                configs or queries (the lookup runs as the registry's owner
--                inside the C functions, see src/pg/registry.c);
--   mtl_trainer  trains into the registry (mtl_fit, mtl_registry_add),
--                deploys, rolls back, reads models, versions and queries,
--                and scores (it is a member of mtl_scorer).
-- Roles belong to the cluster: they are made once and outlive the extension.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'mtl_scorer') THEN
		CREATE ROLE mtl_scorer NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'mtl_trainer') THEN
		CREATE ROLE mtl_trainer NOLOGIN;
	END IF;
	IF NOT pg_catalog.pg_has_role('mtl_trainer', 'mtl_scorer', 'MEMBER') THEN
		GRANT mtl_scorer TO mtl_trainer;
	END IF;
END
$roles$;

REVOKE ALL ON mtl_models, mtl_deployments, mtl_versions FROM PUBLIC;
REVOKE ALL ON SEQUENCE mtl_models_id_seq, mtl_deployments_id_seq FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
	mtl_predict(text, bigint, bigint),
	mtl_predict(text, bigint, bigint, jsonb, jsonb),
	mtl_predict(text, bigint, bigint, jsonb, jsonb, jsonb),
	mtl_recommend(text, bigint, int, text, bigint[], jsonb, jsonb),
	mtl_refresh_trigger(),
	mtl_fit(text, text, jsonb),
	mtl_registry_add(text, bytea, jsonb, text, float8),
	mtl_registry_lock(text),
	mtl_deploy(text, int),
	mtl_rollback(text),
	mtl_deployed_version(text),
	mtl_model(text, int),
	mtl_fit_parallel(text, text, jsonb)
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
	mtl_predict(text, bigint, bigint),
	mtl_predict(text, bigint, bigint, jsonb, jsonb),
	mtl_predict(text, bigint, bigint, jsonb, jsonb, jsonb),
	mtl_recommend(text, bigint, int, text, bigint[], jsonb, jsonb),
	mtl_refresh_trigger()
TO mtl_scorer;

GRANT SELECT, INSERT, UPDATE ON mtl_models, mtl_deployments TO mtl_trainer;
GRANT SELECT ON mtl_versions TO mtl_trainer;
GRANT USAGE ON SEQUENCE mtl_models_id_seq, mtl_deployments_id_seq TO mtl_trainer;
GRANT EXECUTE ON FUNCTION
	mtl_fit(text, text, jsonb),
	mtl_registry_add(text, bytea, jsonb, text, float8),
	mtl_registry_lock(text),
	mtl_deploy(text, int),
	mtl_rollback(text),
	mtl_deployed_version(text),
	mtl_model(text, int),
	mtl_fit_parallel(text, text, jsonb)
TO mtl_trainer;

-- mtl_evaluate with options: the ranking cut-offs, the calibration bins
CREATE FUNCTION mtl_evaluate_step(internal, bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb, jsonb)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE mtl_evaluate(model bytea, user_id bigint, item_id bigint, labels float8[],
							  user_features jsonb, item_features jsonb, context jsonb, options jsonb) (
	SFUNC = mtl_evaluate_step,
	STYPE = internal,
	FINALFUNC = mtl_evaluate_final,
	FINALFUNC_MODIFY = READ_ONLY
);
COMMENT ON AGGREGATE mtl_evaluate(bytea, bigint, bigint, float8[], jsonb, jsonb, jsonb, jsonb) IS
'mtl_evaluate with options (the first row''s): {"k": 10 or [5, 10]} the cut-offs of NDCG@k and recall@k, {"calibration_bins": true} the reliability bins of each binary task';
COMMENT ON AGGREGATE mtl_evaluate(bytea, bigint, bigint, float8[]) IS
'score rows with a model and measure every task: binary AUC, group AUC by user, logloss, accuracy and F1 at 0.5, NDCG@10, recall@10 and MRR per user, calibration (mean predicted, observed rate, expected calibration error over 10 bins); regression RMSE and MAE; counts; a task-weighted fused score';

-- The same model, smaller: parameters in half precision, or embedding rows in int8.
CREATE FUNCTION mtl_compress(model bytea, method text)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mtl_compress(bytea, text) IS
'the model with its parameters stored as ''fp16'' (every parameter in half precision), ''int8'' (embedding rows in int8 with a scale per row, dense layers in half precision) or ''none'' (float32); every function that takes model bytes reads it';

-- Each id's vector as scoring pools it, for similarity search (pgvector).
CREATE FUNCTION mtl_embeddings(model bytea, side text)
RETURNS TABLE (id bigint, embedding float4[])
AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION mtl_embeddings(bytea, text) IS
'each known user''s or item''s (side ''user'' or ''item'') vector as scoring pools it: its id''s embedding plus its stored features'' embeddings (those the cross sums), one per input copy side by side; for similar items or users with pgvector';

-- Training with a weight per row (the sample weight: each row's loss counts that many times).
-- Only the forms whose argument count no other mtl_train has: with a 7-argument
-- one, mtl_train(u, i, labels, NULL, NULL, context, config) would be ambiguous.
CREATE FUNCTION mtl_train_weighted_step(internal, bigint, bigint, float8[], float8, jsonb)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mtl_train_weighted_step(internal, bigint, bigint, float8[], float8, jsonb, jsonb, jsonb, jsonb)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE mtl_train(user_id bigint, item_id bigint, labels float8[], weight float8, config jsonb) (
	SFUNC = mtl_train_weighted_step,
	STYPE = internal,
	FINALFUNC = mtl_train_final,
	FINALFUNC_MODIFY = READ_ONLY,
	COMBINEFUNC = mtl_train_combine,
	SERIALFUNC = mtl_train_serialize,
	DESERIALFUNC = mtl_train_deserialize,
	PARALLEL = SAFE
);
CREATE AGGREGATE mtl_train(user_id bigint, item_id bigint, labels float8[], weight float8,
						   user_features jsonb, item_features jsonb, context jsonb, config jsonb) (
	SFUNC = mtl_train_weighted_step,
	STYPE = internal,
	FINALFUNC = mtl_train_final,
	FINALFUNC_MODIFY = READ_ONLY,
	COMBINEFUNC = mtl_train_combine,
	SERIALFUNC = mtl_train_serialize,
	DESERIALFUNC = mtl_train_deserialize,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE mtl_train(bigint, bigint, float8[], float8, jsonb) IS
'mtl_train with each row''s weight (finite, at least 0): its loss counts that many times, as if the row were repeated';
COMMENT ON AGGREGATE mtl_train(bigint, bigint, float8[], float8, jsonb, jsonb, jsonb, jsonb) IS
'mtl_train with each row''s weight, user/item feature objects and a context object';
COMMENT ON FUNCTION mtl_train_weighted_step(internal, bigint, bigint, float8[], float8, jsonb) IS 'transition function of mtl_train with weights';
COMMENT ON FUNCTION mtl_train_weighted_step(internal, bigint, bigint, float8[], float8, jsonb, jsonb, jsonb, jsonb) IS 'transition function of mtl_train with weights, features and context';

-- Why a model scored a row: integrated gradients against the anonymous row.
CREATE FUNCTION mtl_explain(model bytea, user_id bigint, item_id bigint)
RETURNS jsonb AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION mtl_explain(model bytea, user_id bigint, item_id bigint,
							user_features jsonb, item_features jsonb)
RETURNS jsonb AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION mtl_explain(model bytea, user_id bigint, item_id bigint,
							user_features jsonb, item_features jsonb, context jsonb)
RETURNS jsonb AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION mtl_explain(bytea, bigint, bigint) IS
'why the model scored (user, item): per task, its logit and the anonymous row''s (no ids, no features, no context), each input''s share of their difference by integrated gradients (ids, features, context; they sum to it within the reported error), and the task''s gate weights over the experts';
COMMENT ON FUNCTION mtl_explain(bytea, bigint, bigint, jsonb, jsonb) IS
'mtl_explain with feature objects, as mtl_predict takes them';
COMMENT ON FUNCTION mtl_explain(bytea, bigint, bigint, jsonb, jsonb, jsonb) IS
'mtl_explain with feature objects and the row''s context, as mtl_predict takes them';

CREATE FUNCTION mtl_explain(name text, user_id bigint, item_id bigint)
RETURNS jsonb AS 'MODULE_PATHNAME', 'mtl_explain_named' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION mtl_explain(name text, user_id bigint, item_id bigint,
							user_features jsonb, item_features jsonb)
RETURNS jsonb AS 'MODULE_PATHNAME', 'mtl_explain_named' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION mtl_explain(name text, user_id bigint, item_id bigint,
							user_features jsonb, item_features jsonb, context jsonb)
RETURNS jsonb AS 'MODULE_PATHNAME', 'mtl_explain_named' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION mtl_explain(text, bigint, bigint) IS
'mtl_explain with the deployed version of a named model';
COMMENT ON FUNCTION mtl_explain(text, bigint, bigint, jsonb, jsonb) IS
'mtl_explain with feature objects, with the deployed version of a named model';
COMMENT ON FUNCTION mtl_explain(text, bigint, bigint, jsonb, jsonb, jsonb) IS
'mtl_explain with feature objects and context, with the deployed version of a named model';
-- Explanations of a named model show how its stored features weigh: for analysts, not every scorer.
REVOKE EXECUTE ON FUNCTION
	mtl_explain(text, bigint, bigint),
	mtl_explain(text, bigint, bigint, jsonb, jsonb),
	mtl_explain(text, bigint, bigint, jsonb, jsonb, jsonb)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	mtl_explain(text, bigint, bigint),
	mtl_explain(text, bigint, bigint, jsonb, jsonb),
	mtl_explain(text, bigint, bigint, jsonb, jsonb, jsonb)
TO mtl_trainer;

CREATE FUNCTION mtl_explain_global_step(internal, bytea, bigint, bigint)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mtl_explain_global_step(internal, bytea, bigint, bigint, jsonb, jsonb)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mtl_explain_global_step(internal, bytea, bigint, bigint, jsonb, jsonb, jsonb)
RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION mtl_explain_global_final(internal)
RETURNS jsonb AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE mtl_explain_global(model bytea, user_id bigint, item_id bigint) (
	SFUNC = mtl_explain_global_step,
	STYPE = internal,
	FINALFUNC = mtl_explain_global_final,
	FINALFUNC_MODIFY = READ_ONLY
);
CREATE AGGREGATE mtl_explain_global(model bytea, user_id bigint, item_id bigint,
									user_features jsonb, item_features jsonb) (
	SFUNC = mtl_explain_global_step,
	STYPE = internal,
	FINALFUNC = mtl_explain_global_final,
	FINALFUNC_MODIFY = READ_ONLY
);
CREATE AGGREGATE mtl_explain_global(model bytea, user_id bigint, item_id bigint,
									user_features jsonb, item_features jsonb, context jsonb) (
	SFUNC = mtl_explain_global_step,
	STYPE = internal,
	FINALFUNC = mtl_explain_global_final,
	FINALFUNC_MODIFY = READ_ONLY
);
COMMENT ON AGGREGATE mtl_explain_global(bytea, bigint, bigint) IS
'global importance over the aggregated rows: per task, each input''s mean absolute and mean attribution (as mtl_explain gives them), largest first';
COMMENT ON AGGREGATE mtl_explain_global(bytea, bigint, bigint, jsonb, jsonb) IS
'mtl_explain_global with the user and item feature objects of each row';
COMMENT ON AGGREGATE mtl_explain_global(bytea, bigint, bigint, jsonb, jsonb, jsonb) IS
'mtl_explain_global with the feature objects and the context object of each row';
COMMENT ON FUNCTION mtl_explain_global_step(internal, bytea, bigint, bigint) IS 'transition function of mtl_explain_global';
COMMENT ON FUNCTION mtl_explain_global_step(internal, bytea, bigint, bigint, jsonb, jsonb) IS 'transition function of mtl_explain_global with features';
COMMENT ON FUNCTION mtl_explain_global_step(internal, bytea, bigint, bigint, jsonb, jsonb, jsonb) IS 'transition function of mtl_explain_global with features and context';
COMMENT ON FUNCTION mtl_explain_global_final(internal) IS 'final function of mtl_explain_global';

-- Cross-validation and tuning: splits by user, so no user's rows are on both sides.

CREATE FUNCTION mtl_user_fold(user_id bigint, item_id bigint, folds int)
RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT ((CASE WHEN user_id IS NULL THEN pg_catalog.hashint8extended(coalesce(item_id, 0), 1)
				  ELSE pg_catalog.hashint8extended(user_id, 0) END % folds) + folds) % folds
$$;
COMMENT ON FUNCTION mtl_user_fold(bigint, bigint, int) IS
'the part (0 to folds - 1) of a row in mtl_cross_validate and mtl_tune: a hash of the user id, so a user''s rows stay together (rows without a user: of the item id)';

-- The rows of a training query in a temporary table rows_table (fold, c1, c2, ...); returns its column count.
CREATE FUNCTION mtl_split_rows(query text, folds int, rows_table text)
RETURNS int LANGUAGE plpgsql AS $fn$
DECLARE
	cols int;
BEGIN
	query := regexp_replace(query, '[;[:space:]]+$', '');
	cols := @extschema@.mtl_query_columns(query);
	EXECUTE format('CREATE TEMPORARY TABLE %I AS SELECT @extschema@.mtl_user_fold(q.c1::bigint, q.c2::bigint, %s) AS fold, q.* FROM (%s) AS q(%s)',
				   rows_table, folds, query,
				   CASE cols WHEN 3 THEN 'c1, c2, c3' WHEN 5 THEN 'c1, c2, c3, c4, c5' ELSE 'c1, c2, c3, c4, c5, c6' END);
	RETURN cols;
END
$fn$;
COMMENT ON FUNCTION mtl_split_rows(text, int, text) IS
'the rows of a training query (run as the caller) in a temporary table with each row''s mtl_user_fold; returns the query''s column count';

-- mtl_train over the rows of rows_table that where selects, and mtl_evaluate over the others.
CREATE FUNCTION mtl_train_and_measure(rows_table text, cols int, train_where text, config jsonb,
									  OUT model bytea, OUT metrics jsonb, OUT train_rows bigint, OUT test_rows bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
	args text := 'c1::bigint, c2::bigint, c3' || CASE WHEN cols >= 5 THEN ', c4, c5' ELSE '' END
				 || CASE WHEN cols = 6 THEN ', c6' ELSE '' END;
	eval_args text := 'c1::bigint, c2::bigint, c3' || CASE WHEN cols >= 5 THEN ', c4, c5' ELSE ', NULL, NULL' END
					  || CASE WHEN cols = 6 THEN ', c6' ELSE ', NULL' END;
BEGIN
	EXECUTE format('SELECT @extschema@.mtl_train(%s, $1), count(*) FROM pg_temp.%I WHERE %s', args, rows_table, train_where)
		INTO model, train_rows USING config;
	IF model IS NULL THEN
		RAISE EXCEPTION 'no training rows: every row is in the held-out part'
			USING ERRCODE = 'no_data_found', HINT = 'Use fewer folds or a smaller held-out share, or more users.';
	END IF;
	EXECUTE format('SELECT @extschema@.mtl_evaluate($1, %s), count(*) FROM pg_temp.%I WHERE NOT (%s)', eval_args, rows_table, train_where)
		INTO metrics, test_rows USING model;
END
$fn$;
COMMENT ON FUNCTION mtl_train_and_measure(text, int, text, jsonb) IS
'mtl_train on a split''s training rows and mtl_evaluate on its held-out rows (for mtl_cross_validate and mtl_tune)';

-- Each metric of each task (and fused): the mean over the folds that define it.
CREATE FUNCTION mtl_mean_metrics(folds jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object(
		'tasks', coalesce((SELECT jsonb_object_agg(task, metrics) FROM (
			SELECT t.key AS task, jsonb_object_agg(m.key, m.mean) AS metrics
			FROM (SELECT DISTINCT t.key FROM jsonb_array_elements(folds) f, jsonb_each(f->'metrics'->'tasks') t) t,
			LATERAL (SELECT x.key, avg((x.value #>> '{}')::float8) AS mean
					 FROM jsonb_array_elements(folds) f, jsonb_each(f->'metrics'->'tasks'->t.key) x
					 WHERE jsonb_typeof(x.value) = 'number'
					 GROUP BY x.key) m
			GROUP BY t.key) per_task), '{}'),
		'fused', (SELECT avg((f->'metrics'->>'fused')::float8) FROM jsonb_array_elements(folds) f))
$$;
COMMENT ON FUNCTION mtl_mean_metrics(jsonb) IS
'the mean of each task''s metrics over the folds of mtl_cross_validate';

CREATE FUNCTION mtl_cross_validate(query text, config jsonb, folds int DEFAULT 5)
RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
	progress boolean := coalesce((config->>'verbose')::boolean, true);
	train_config jsonb := config - 'verbose';
	rows_table text := 'mtl_cv_rows_' || pg_backend_pid() || '_' || (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
	cols int;
	r record;
	results jsonb := '[]';
	t0 timestamptz;
BEGIN
	IF query IS NULL OR config IS NULL OR folds IS NULL THEN
		RAISE EXCEPTION 'query, config and folds must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF folds NOT BETWEEN 2 AND 100 THEN
		RAISE EXCEPTION 'folds must be from 2 to 100' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	t0 := clock_timestamp();
	cols := @extschema@.mtl_split_rows(query, folds, rows_table);
	FOR k IN 0 .. folds - 1 LOOP
		t0 := clock_timestamp();
		r := @extschema@.mtl_train_and_measure(rows_table, cols, format('fold <> %s', k), train_config);
		results := results || jsonb_build_array(jsonb_build_object('fold', k + 1, 'train_rows', r.train_rows,
			'test_rows', r.test_rows, 'metrics', r.metrics));
		IF progress THEN
			RAISE INFO 'mtl_cross_validate: fold %/%: % training rows, % held out, fused %, % s', k + 1, folds,
				r.train_rows, r.test_rows, round((r.metrics->>'fused')::numeric, 4),
				round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1);
		END IF;
	END LOOP;
	EXECUTE format('DROP TABLE pg_temp.%I', rows_table);
	RETURN jsonb_build_object('folds', results, 'mean', @extschema@.mtl_mean_metrics(results));
END
$fn$;
COMMENT ON FUNCTION mtl_cross_validate(text, jsonb, int) IS
'k-fold cross-validation of a training query (run once, as the caller) and config: folds by a hash of the user id, so no user is on both sides; each fold''s mtl_evaluate metrics and their mean';

-- Every trial of every mtl_tune: its config, metrics and score.
CREATE TABLE mtl_trials (
	id bigserial PRIMARY KEY,
	name text NOT NULL,
	run_started_at timestamptz NOT NULL,
	trial int NOT NULL,
	config jsonb NOT NULL,
	metrics jsonb,
	metric text NOT NULL,
	score float8,
	train_seconds float8,
	version int,
	created_by name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE mtl_trials IS
'every trial of mtl_tune: the config it trained with, its held-out mtl_evaluate metrics and score, and the registry version it became (the best trial only)';
SELECT pg_catalog.pg_extension_config_dump('mtl_trials', '');
SELECT pg_catalog.pg_extension_config_dump('mtl_trials_id_seq', '');

-- A number in [0, 1) from a trial, a key's position and a seed: the same draws every run, no session state touched.
CREATE FUNCTION mtl_tune_draw(trial int, key_position int, seed bigint)
RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT ((pg_catalog.hashint8extended(trial::bigint * 1000003 + key_position, seed) >> 11) & ((1::bigint << 52) - 1))::float8
		   / (1::bigint << 52)::float8
$$;

-- Trial t's values of the searched keys: grid (the t-th combination) or random draws.
CREATE FUNCTION mtl_tune_trial_config(search jsonb, trial int, grid boolean, seed bigint)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
	out jsonb := '{}';
	rest int := trial - 1;
	position int := 0;
	kv record;
	n int;
	u float8;
	lo float8;
	hi float8;
	v float8;
BEGIN
	FOR kv IN SELECT key, value FROM jsonb_each(search) ORDER BY key LOOP
		position := position + 1;
		IF jsonb_typeof(kv.value) = 'array' THEN
			n := jsonb_array_length(kv.value);
			IF grid THEN
				out := out || jsonb_build_object(kv.key, kv.value -> (rest % n));
				rest := rest / n;
			ELSE
				out := out || jsonb_build_object(kv.key,
					kv.value -> least(floor(@extschema@.mtl_tune_draw(trial, position, seed) * n)::int, n - 1));
			END IF;
		ELSE
			u := @extschema@.mtl_tune_draw(trial, position, seed);
			lo := (kv.value->>'min')::float8;
			hi := (kv.value->>'max')::float8;
			IF coalesce((kv.value->>'log')::boolean, false) THEN
				v := exp(ln(lo) + u * (ln(hi) - ln(lo)));
			ELSE
				v := lo + u * (hi - lo);
			END IF;
			IF coalesce((kv.value->>'integer')::boolean, false) THEN
				out := out || jsonb_build_object(kv.key, least(floor(v)::bigint, floor(hi)::bigint));
			ELSE
				out := out || jsonb_build_object(kv.key, v);
			END IF;
		END IF;
	END LOOP;
	RETURN out;
END
$fn$;

-- Check a search object; returns its grid's size, or NULL when a key has a range (random search only).
CREATE FUNCTION mtl_tune_grid_size(search jsonb)
RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
	kv record;
	size bigint := 1;
	ranged boolean := false;
BEGIN
	IF search IS NULL OR jsonb_typeof(search) <> 'object' OR search = '{}' THEN
		RAISE EXCEPTION 'search must be an object of config keys to try, such as {"learning_rate": [0.001, 0.003], "embedding_dim": [8, 16]}'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR kv IN SELECT key, value FROM jsonb_each(search) LOOP
		IF jsonb_typeof(kv.value) = 'array' AND jsonb_array_length(kv.value) > 0 THEN
			size := least(size * jsonb_array_length(kv.value), 1000000000);
		ELSIF jsonb_typeof(kv.value) = 'object' AND jsonb_typeof(kv.value->'min') = 'number'
			  AND jsonb_typeof(kv.value->'max') = 'number'
			  AND (kv.value->>'min')::float8 <= (kv.value->>'max')::float8
			  AND (kv.value - 'min' - 'max' - 'log' - 'integer') = '{}'
			  AND coalesce(jsonb_typeof(kv.value->'log'), 'boolean') = 'boolean'
			  AND coalesce(jsonb_typeof(kv.value->'integer'), 'boolean') = 'boolean'
			  AND NOT (coalesce((kv.value->>'log')::boolean, false) AND (kv.value->>'min')::float8 <= 0) THEN
			ranged := true;
		ELSE
			RAISE EXCEPTION 'search key "%" must list values ([...]) or give a range ({"min": a, "max": b[, "log": true][, "integer": true]}, min <= max, min > 0 with log)', kv.key
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	RETURN CASE WHEN ranged THEN NULL ELSE size END;
END
$fn$;

CREATE FUNCTION mtl_tune(name text, query text, base_config jsonb, search jsonb, trials int DEFAULT NULL,
						 metric text DEFAULT 'fused', holdout float8 DEFAULT 0.2)
RETURNS int LANGUAGE plpgsql AS $fn$
DECLARE
	progress boolean := coalesce((base_config->>'verbose')::boolean, true);
	base jsonb := base_config - 'verbose';
	seed bigint := coalesce((base_config->>'seed')::bigint, 42);
	grid_size bigint;
	grid boolean;
	n_trials int;
	lower_is_better boolean := metric ~ '\.(logloss|rmse|mae|ece)$';
	rows_table text := 'mtl_tune_rows_' || pg_backend_pid() || '_' || (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
	started timestamptz := now();
	cols int;
	trial_config jsonb;
	r record;
	score float8;
	best_score float8;
	best_model bytea;
	best_config jsonb;
	best_trial int;
	best_seconds float8;
	t0 timestamptz;
	seconds float8;
	stored int;
	trial_id bigint;
	best_id bigint;
BEGIN
	IF name IS NULL OR query IS NULL OR base_config IS NULL OR search IS NULL OR metric IS NULL OR holdout IS NULL THEN
		RAISE EXCEPTION 'name, query, base_config, search, metric and holdout must not be NULL'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF name = '' THEN
		RAISE EXCEPTION 'model name must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT (holdout > 0 AND holdout < 1) THEN
		RAISE EXCEPTION 'holdout must be between 0 and 1 (the share of users held out)' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF metric !~ '^(fused|[^.]+\.(auc|gauc|logloss|accuracy|f1|ndcg@10|recall@10|mrr|ece|rmse|mae))$' THEN
		RAISE EXCEPTION 'metric must be "fused" or "task.metric" (auc, gauc, logloss, accuracy, f1, ndcg@10, recall@10, mrr, ece, rmse or mae), such as "ctr.auc"'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	grid_size := @extschema@.mtl_tune_grid_size(search);
	IF trials IS NOT NULL AND trials NOT BETWEEN 1 AND 10000 THEN
		RAISE EXCEPTION 'trials must be from 1 to 10000' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF trials IS NULL AND grid_size IS NULL THEN
		RAISE EXCEPTION 'a search with a range needs a number of trials (random search)' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF trials IS NULL AND grid_size > 10000 THEN
		RAISE EXCEPTION 'the grid has % combinations: give a number of trials to draw at random', grid_size
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- every combination when the grid fits the trials, else draws at random
	grid := grid_size IS NOT NULL AND (trials IS NULL OR trials >= grid_size);
	n_trials := CASE WHEN grid THEN grid_size ELSE trials END;
	cols := @extschema@.mtl_split_rows(query, 1000, rows_table);
	FOR t IN 1 .. n_trials LOOP
		trial_config := base || @extschema@.mtl_tune_trial_config(search, t, grid, seed);
		t0 := clock_timestamp();
		r := @extschema@.mtl_train_and_measure(rows_table, cols, format('fold >= %s', floor(holdout * 1000)::int),
											   trial_config);
		seconds := extract(epoch FROM clock_timestamp() - t0);
		score := CASE WHEN metric = 'fused' THEN (r.metrics->>'fused')::float8
					  ELSE (r.metrics->'tasks'->split_part(metric, '.', 1)->>split_part(metric, '.', 2))::float8 END;
		IF score IS NULL AND t = 1 AND metric <> 'fused' AND NOT (r.metrics->'tasks' ? split_part(metric, '.', 1)) THEN
			RAISE EXCEPTION 'the model has no task "%"', split_part(metric, '.', 1)
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = format('Its tasks: %s.', (SELECT string_agg(k, ', ') FROM jsonb_object_keys(r.metrics->'tasks') k));
		END IF;
		INSERT INTO @extschema@.mtl_trials (name, run_started_at, trial, config, metrics, metric, score, train_seconds)
		VALUES (mtl_tune.name, started, t, trial_config, r.metrics, mtl_tune.metric, score, seconds)
		RETURNING id INTO trial_id;
		IF score IS NOT NULL AND (best_score IS NULL OR (lower_is_better AND score < best_score)
								  OR (NOT lower_is_better AND score > best_score)) THEN
			best_score := score;
			best_model := r.model;
			best_config := trial_config;
			best_trial := t;
			best_id := trial_id;
			best_seconds := seconds;
		END IF;
		IF progress THEN
			RAISE INFO 'mtl_tune: trial %/%: % = % (best % of trial %), % s, %', t, n_trials, metric,
				round(score::numeric, 4), round(best_score::numeric, 4), best_trial, round(seconds::numeric, 1),
				@extschema@.mtl_tune_trial_config(search, t, grid, seed);
		END IF;
	END LOOP;
	EXECUTE format('DROP TABLE pg_temp.%I', rows_table);
	IF best_model IS NULL THEN
		RAISE EXCEPTION 'no trial gave a % on the held-out users', metric USING ERRCODE = 'no_data_found',
			HINT = 'Hold out more users, or choose a metric every trial defines.';
	END IF;
	stored := @extschema@.mtl_registry_add(name, best_model, best_config, query, best_seconds);
	UPDATE @extschema@.mtl_trials SET version = stored WHERE id = best_id;
	RETURN stored;
END
$fn$;
COMMENT ON FUNCTION mtl_tune(text, text, jsonb, jsonb, int, text, float8) IS
'search config keys (grid or random) for the best held-out metric of a training query (run once, as the caller): each trial trains on the users outside a held-out share and is scored there; stores the best trial''s model as the next version of name and every trial in mtl_trials; returns the version';

REVOKE ALL ON mtl_trials FROM PUBLIC;
REVOKE ALL ON SEQUENCE mtl_trials_id_seq FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION mtl_tune(text, text, jsonb, jsonb, int, text, float8) FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON mtl_trials TO mtl_trainer;
GRANT USAGE ON SEQUENCE mtl_trials_id_seq TO mtl_trainer;
GRANT EXECUTE ON FUNCTION mtl_tune(text, text, jsonb, jsonb, int, text, float8) TO mtl_trainer;
