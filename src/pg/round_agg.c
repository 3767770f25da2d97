/*
 * Data-parallel training in rounds (see src/core/round.h): two aggregates
 * whose bytea states Citus pushes down to its shards and a parallel query
 * computes in its workers, and the functions that turn their results into
 * models.
 *
 *   mtl_round_init(user_id, item_id, labels [, user_features, item_features
 *     [, context]], config) -> bytea model: the first pass. Each share keeps
 *     the distinct ids, feature values with their row counts and label
 *     statistics (no rows); the combine unions them; the final function
 *     builds vocabularies and statistics and initialises the parameters.
 *   mtl_train_round(model, user_id, item_id, labels [, ...], options) ->
 *     bytea round state: each share continues model on its rows; the combine
 *     averages shares; the result is the merged share.
 *   mtl_round_apply(model, round state) -> bytea model.
 *   mtl_round_info(round state) -> jsonb.
 */
#include "mtl_pg.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "expanded_state.h"
#include "round_rows.h"
#include "../core/fit.h"
#include "../core/round.h"

PG_FUNCTION_INFO_V1(mtl_round_init_step);
PG_FUNCTION_INFO_V1(mtl_round_init_chunk_step);
PG_FUNCTION_INFO_V1(mtl_round_init_combine);
PG_FUNCTION_INFO_V1(mtl_round_init_final);
PG_FUNCTION_INFO_V1(mtl_train_round_step);
PG_FUNCTION_INFO_V1(mtl_train_round_combine);
PG_FUNCTION_INFO_V1(mtl_train_round_final);
PG_FUNCTION_INFO_V1(mtl_round_apply_model);
PG_FUNCTION_INFO_V1(mtl_round_info);
PG_FUNCTION_INFO_V1(mtl_round_takes);
PG_FUNCTION_INFO_V1(mtl_train_round_chunk_step);

#define INIT_MAGIC 0x494C544DU	/* "MTLI" */
#define INIT_FORMAT 1

static MemoryContext
AggContext(FunctionCallInfo fcinfo, const char *name)
{
	MemoryContext context;

	if (!AggCheckCallContext(fcinfo, &context))
		elog(ERROR, "%s called in non-aggregate context", name);
	return context;
}

static void
ReportBadState(const char *what, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid %s state: %s", what, why),
			 errhint("The state is made by the aggregate on each node; pass its values unmodified.")));
}

/* ---------------------------------------------------------------- init -- */

typedef struct InitState
{
	MtlExpandedState base;		/* first */
	char	   *config;			/* the config's text: each node parses it again */
	TrainState train;			/* spec and a counting row store */
	MtlLabelStats labels;
} InitState;

static void
InitWrite(MtlExpandedState *base, MtlWriter *w)
{
	InitState  *s = (InitState *) base;

	mtl_put_u32(w, INIT_MAGIC);
	mtl_put_u32(w, INIT_FORMAT);
	mtl_put_str(w, s->config);
	for (int t = 0; t < s->train.spec.n_tasks; t++)
	{
		mtl_put_u64(w, (uint64) s->labels.count[t]);
		mtl_put_f64(w, s->labels.sum[t]);
		mtl_put_f64(w, s->labels.sum2[t]);
	}
	mtl_rows_write(w, s->train.rows);
	mtl_put_u32(w, mtl_crc32c(0, w->data, w->len));
}

static InitState *
InitCreate(MemoryContext parent, const char *config_text, Jsonb *config)
{
	InitState  *s = (InitState *) MtlExpandedStateCreate(parent, sizeof(InitState), InitWrite);
	MemoryContext old = MemoryContextSwitchTo(s->base.hdr.eoh_context);

	s->config = pstrdup(config_text);
	MtlParseConfig(config, &s->train.spec);
	if (s->train.spec.sample_weight)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("training in rounds does not take sample weights"),
				 errhint("Train weighted rows with mtl_train or mtl_fit.")));
	s->train.rows = mtl_rows_create_counting(s->train.spec.n_tasks);
	MemoryContextSwitchTo(old);
	return s;
}

/* A flat init state (from a shard or a worker) as an in-memory one under parent. */
static InitState *
InitRead(MemoryContext parent, bytea *flat)
{
	const uint8 *data = (const uint8 *) VARDATA_ANY(flat);
	size_t		len = VARSIZE_ANY_EXHDR(flat);
	MtlReader	r = {data, len, 0, NULL};
	InitState  *s;
	MemoryContext old;
	char	   *config;
	Jsonb	   *parsed;

	if (len < 12 || mtl_crc32c(0, data, len - 4) !=
		(uint32) (data[len - 4] | (data[len - 3] << 8) | (data[len - 2] << 16) | ((uint32) data[len - 1] << 24)))
		ReportBadState("mtl_round_init", "checksum mismatch (damaged or truncated)");
	r.len = len - 4;
	if (mtl_get_u32(&r) != INIT_MAGIC || mtl_get_u32(&r) != INIT_FORMAT)
		ReportBadState("mtl_round_init", "not an mtl_round_init state");
	config = mtl_get_str(&r, 1024 * 1024);
	if (config == NULL)
		ReportBadState("mtl_round_init", r.failed);
	parsed = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(config)));
	s = InitCreate(parent, config, parsed);
	old = MemoryContextSwitchTo(s->base.hdr.eoh_context);
	for (int t = 0; t < s->train.spec.n_tasks; t++)
	{
		s->labels.count[t] = (int64) mtl_get_u64(&r);
		s->labels.sum[t] = mtl_get_f64(&r);
		s->labels.sum2[t] = mtl_get_f64(&r);
		if (!r.failed && (s->labels.count[t] < 0 || !isfinite(s->labels.sum[t]) ||
						  !isfinite(s->labels.sum2[t])))
			mtl_reader_fail(&r, "invalid label statistics");
	}
	mtl_rows_free(s->train.rows);
	s->train.rows = r.failed ? NULL : mtl_rows_read(&r);
	if (!r.failed && (s->train.rows->n_tasks != s->train.spec.n_tasks || !s->train.rows->no_rows))
		mtl_reader_fail(&r, "rows do not match the config");
	if (!r.failed && r.pos != r.len)
		mtl_reader_fail(&r, "trailing bytes");
	MemoryContextSwitchTo(old);
	if (r.failed)
		ReportBadState("mtl_round_init", r.failed);
	return s;
}

/* mtl_round_init_step(state, user_id, item_id, labels [, uf, if [, ctx]], config) */
Datum
mtl_round_init_step(PG_FUNCTION_ARGS)
{
	MemoryContext context = AggContext(fcinfo, "mtl_round_init_step");
	int			config_arg = PG_NARGS() - 1;
	InitState  *s = PG_ARGISNULL(0) ? NULL :
		(InitState *) MtlExpandedStateOf(PG_GETARG_DATUM(0), InitWrite);
	Datum		values[6];
	bool		nulls[6];
	float		labels[MTL_MAX_LABELS];

	if (!PG_ARGISNULL(0) && s == NULL)
		elog(ERROR, "mtl_round_init_step: unexpected state");
	if (s == NULL)
	{
		Jsonb	   *config;

		if (PG_ARGISNULL(config_arg))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("config must not be NULL")));
		config = PG_GETARG_JSONB_P(config_arg);
		s = InitCreate(context, JsonbToCString(NULL, &config->root, VARSIZE(config)), config);
	}
	for (int i = 0; i < config_arg - 1; i++)
	{
		nulls[i] = PG_ARGISNULL(i + 1);
		values[i] = nulls[i] ? (Datum) 0 : PG_GETARG_DATUM(i + 1);
	}
	MtlTrainAddRow(&s->train, values, nulls, config_arg - 1, s->base.hdr.eoh_context);
	MtlReadLabels(DatumGetArrayTypeP(values[2]), &s->train.spec, labels);
	mtl_label_stats_add(&s->labels, &s->train.spec, labels);
	MtlExpandedStateChanged(&s->base);
	PG_RETURN_DATUM(MtlExpandedStateDatum(&s->base));
}

/* mtl_round_init_chunk_step(state, chunk, config): the rows of a chunk (mtl_round_rows) */
Datum
mtl_round_init_chunk_step(PG_FUNCTION_ARGS)
{
	MemoryContext context = AggContext(fcinfo, "mtl_round_init_step");
	InitState  *s = PG_ARGISNULL(0) ? NULL :
		(InitState *) MtlExpandedStateOf(PG_GETARG_DATUM(0), InitWrite);
	MtlRowStore *chunk;
	MemoryContext old;
	const MtlError *why;

	if (!PG_ARGISNULL(0) && s == NULL)
		elog(ERROR, "mtl_round_init_chunk_step: unexpected state");
	if (s == NULL)
	{
		Jsonb	   *config;

		if (PG_ARGISNULL(2))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("config must not be NULL")));
		config = PG_GETARG_JSONB_P(2);
		s = InitCreate(context, JsonbToCString(NULL, &config->root, VARSIZE(config)), config);
	}
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("chunk of rows must not be NULL")));
	CHECK_FOR_INTERRUPTS();
	chunk = MtlReadChunk(PG_GETARG_BYTEA_PP(1), s->train.spec.n_tasks);
	for (int64 c = 0; c < chunk->n_chunks; c++)
	{
		const uint8 *rows;
		int			n = mtl_rows_chunk(chunk, c, NULL, &rows);

		for (int k = 0; k < n; k++)
			mtl_label_stats_add(&s->labels, &s->train.spec, mtl_chunk_labels(chunk, rows, k));
	}
	old = MemoryContextSwitchTo(s->base.hdr.eoh_context);
	why = mtl_rows_merge(s->train.rows, chunk);
	MemoryContextSwitchTo(old);
	mtl_rows_free(chunk);
	if (why != NULL)
		MtlReportError(why, "cannot add the chunk of rows");
	MtlExpandedStateChanged(&s->base);
	PG_RETURN_DATUM(MtlExpandedStateDatum(&s->base));
}

/* The in-memory init state of argument i: ours, or read from its bytes. */
static InitState *
InitArg(FunctionCallInfo fcinfo, int i, MemoryContext context)
{
	InitState  *s = (InitState *) MtlExpandedStateOf(PG_GETARG_DATUM(i), InitWrite);

	return s != NULL ? s : InitRead(context, PG_GETARG_BYTEA_PP(i));
}

/* Union of two shares' ids, values and counts (strict: both are non-NULL). */
Datum
mtl_round_init_combine(PG_FUNCTION_ARGS)
{
	MemoryContext context = AggContext(fcinfo, "mtl_round_init_combine");
	InitState  *a = InitArg(fcinfo, 0, context);
	InitState  *b = InitArg(fcinfo, 1, context);
	MemoryContext old;
	const MtlError *why;

	if (strcmp(a->config, b->config) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("mtl_round_init states to combine were made with different configs")));
	old = MemoryContextSwitchTo(a->base.hdr.eoh_context);
	why = mtl_rows_merge(a->train.rows, b->train.rows);
	mtl_label_stats_merge(&a->labels, &b->labels);
	MemoryContextSwitchTo(old);
	if (why != NULL)
		MtlReportError(why, "cannot combine mtl_round_init states");
	MtlExpandedStateChanged(&a->base);
	PG_RETURN_DATUM(MtlExpandedStateDatum(&a->base));
}

/* The starting model: vocabularies, statistics, initial parameters. */
Datum
mtl_round_init_final(PG_FUNCTION_ARGS)
{
	MemoryContext context = AggContext(fcinfo, "mtl_round_init_final");
	InitState  *s;
	MtlTrained	trained;
	MemoryContext work,
				old;
	double		needed = 0;
	const MtlError *why;
	uint8	   *bytes;
	size_t		len;
	bytea	   *out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = InitArg(fcinfo, 0, context);
	if (s->train.rows->n_rows == 0)
		PG_RETURN_NULL();
	work = AllocSetContextCreate(CurrentMemoryContext, "mtl round init", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	why = mtl_fit_init(&s->train.spec, s->train.rows, &s->labels,
					   s->train.spec.max_memory_mb * 1048576.0, &needed, &trained);
	if (why != NULL && why->code == MTL_E_MEMORY)
		ereport(ERROR,
				(errcode(MtlErrorSqlState(why)),
				 errmsg("training rounds need %.0f MB, more than max_memory_mb (%g MB)",
						needed / 1048576.0, s->train.spec.max_memory_mb)));
	if (why != NULL)
		MtlReportError(why, "cannot build the model");
	len = mtl_encode(&trained, &bytes);
	MemoryContextSwitchTo(old);
	out = MtlToBytea(bytes, len, "model", NULL);
	MemoryContextDelete(work);
	PG_RETURN_BYTEA_P(out);
}

/* --------------------------------------------------------------- round -- */

typedef struct RoundState
{
	MtlExpandedState base;		/* first */
	/* training a share */
	Pointer		model_ptr;		/* the model argument as first seen */
	MtlTrained	start;
	MtlRound   *round;
	int32		hints[3][MTL_MAX_FIELDS];
	/* or, after a combine, the merged shares */
	MtlRoundSum *sum;
} RoundState;

static void
RoundWrite(MtlExpandedState *base, MtlWriter *w)
{
	RoundState *s = (RoundState *) base;

	if (s->round != NULL)
	{
		MtlComputeBegin(1);
		mtl_round_flush(s->round);
		MtlComputeEnd();
		mtl_round_write(w, s->round);
	}
	else
		mtl_round_sum_write(w, s->sum);
}

static uint64
ModelKey(bytea *model)
{
	MtlModelKey key;

	if (!mtl_model_key((const uint8 *) VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model), &key))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED), errmsg("invalid mtl model: too short")));
	return key.content_hash ^ ((uint64) key.crc << 32) ^ key.len;
}

static float
OptionNumber(JsonbValue *v, const char *key)
{
	double		x;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("round option \"%s\" must be a number", key)));
	x = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	return (float) x;
}

/* Options of a round: round (required), learning_rate, row_fraction, batch_size, validate, train_rows. */
static void
ParseRoundOptions(Jsonb *options, const MtlSpec *spec, MtlRoundOptions *opt)
{
	JsonbIterator *it = JsonbIteratorInit(&options->root);
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("round options must be a JSON object")));
	opt->round = 0;
	opt->learning_rate = spec->learning_rate;
	opt->row_fraction = 1.0;
	opt->batch_size = 0;
	opt->skip_validation = 0;
	opt->train_rows = 0;
	opt->metrics = 0;
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;
		float		x;

		if (tok != WJB_KEY)
			continue;
		JsonbIteratorNext(&it, &v, true);
		key = pnstrdup(k.val.string.val, k.val.string.len);
		if (strcmp(key, "validate") == 0 && v.type == jbvBool)
		{
			opt->skip_validation = !v.val.boolean;
			continue;
		}
		if (strcmp(key, "metrics") == 0)
		{
			if (v.type != jbvBool)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("round option \"metrics\" must be true or false")));
			opt->metrics = v.val.boolean;
			continue;
		}
		x = OptionNumber(&v, key);
		if (strcmp(key, "round") == 0 && x >= 1 && x <= MTL_MAX_EPOCHS && x == floorf(x))
			opt->round = (int) x;
		else if (strcmp(key, "learning_rate") == 0 && x > 0 && isfinite(x))
			opt->learning_rate = x;
		else if (strcmp(key, "row_fraction") == 0 && x >= 0 && x <= 1)
			opt->row_fraction = x;
		else if (strcmp(key, "batch_size") == 0 && x >= 1 && x <= 65536 && x == floorf(x))
			opt->batch_size = (int) x;
		else if (strcmp(key, "validate") == 0 && (x == 0 || x == 1))
			opt->skip_validation = x == 0;
		else if (strcmp(key, "train_rows") == 0 && x >= 0 && isfinite(x))
			opt->train_rows = x;
		else if (strcmp(key, "round") == 0 || strcmp(key, "learning_rate") == 0 ||
				 strcmp(key, "row_fraction") == 0 || strcmp(key, "batch_size") == 0 ||
				 strcmp(key, "validate") == 0 || strcmp(key, "train_rows") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("round option \"%s\" is out of range", key),
					 errdetail("round: an integer from 1 to %d; learning_rate: above 0; row_fraction: from 0 to 1; batch_size: an integer from 1 to 65536; validate: 0 or 1; train_rows: at least 0.",
							   MTL_MAX_EPOCHS)));
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown round option \"%s\"", key),
					 errhint("The options are round, learning_rate, row_fraction, batch_size, validate, train_rows and metrics.")));
	}
	if (opt->round == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("round options must give \"round\"")));
}

static RoundState *
RoundCreate(MemoryContext parent, bytea *model, Jsonb *options)
{
	RoundState *s = (RoundState *) MtlExpandedStateCreate(parent, sizeof(RoundState), RoundWrite);
	MemoryContext old = MemoryContextSwitchTo(s->base.hdr.eoh_context);
	MtlRoundOptions opt;

	MtlDecodeOrError((const uint8 *) VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model), &s->start);
	ParseRoundOptions(options, &s->start.model.spec, &opt);
	s->round = mtl_round_create(&s->start, ModelKey(model), &opt);
	for (int side = 0; side < 3; side++)
		for (int i = 0; i < MTL_MAX_FIELDS; i++)
			s->hints[side][i] = -1;
	MemoryContextSwitchTo(old);
	return s;
}

/* The model argument of a later row must be the one the state started from. */
static void
CheckSameModel(RoundState *s, FunctionCallInfo fcinfo)
{
	Pointer		p = PG_GETARG_POINTER(1);

	if (p == s->model_ptr)
		return;
	if (ModelKey(PG_GETARG_BYTEA_PP(1)) != s->round->start_key)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mtl_train_round takes one model for all rows of a round")));
	s->model_ptr = p;
}

/*
 * Encode the row of this call (user_id at argument user_arg, then item_id,
 * labels and n_data - 3 feature objects) against model m.
 */
static void
EncodeRow(const MtlTrained *m, FunctionCallInfo fcinfo, int user_arg, int n_data,
		  int32 (*hints)[MTL_MAX_FIELDS], int32 *slots, float *nums, float *labels)
{
	int64		user_pos = -1,
				item_pos = -1;

	if (PG_ARGISNULL(user_arg + 2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("labels must not be NULL"),
				 errhint("Use an array of NULLs for a row whose labels are all missing.")));
	MtlReadLabels(PG_GETARG_ARRAYTYPE_P(user_arg + 2), &m->model.spec, labels);
	if (!PG_ARGISNULL(user_arg))
		user_pos = mtl_schema_find_id(&m->schema, MTL_SIDE_USER, PG_GETARG_INT64(user_arg));
	if (!PG_ARGISNULL(user_arg + 1))
		item_pos = mtl_schema_find_id(&m->schema, MTL_SIDE_ITEM, PG_GETARG_INT64(user_arg + 1));
	mtl_schema_row_from_ids(&m->schema, &m->model.layout, user_pos, item_pos, slots, nums);
	for (int side = 0; side < 3 && 3 + side < n_data; side++)
		if (!PG_ARGISNULL(user_arg + 3 + side))
			MtlSetRowFeatures(m, PG_GETARG_JSONB_P(user_arg + 3 + side),
							  side == 0 ? MTL_SIDE_USER : side == 1 ? MTL_SIDE_ITEM : MTL_SIDE_CONTEXT,
							  slots, nums, hints ? hints[side] : NULL);
}

/* The waiting row of part is complete: it may fill a window that then trains. */
static void
CommitRow(RoundState *s, int part)
{
	MtlComputeBegin(1);
	mtl_round_commit(s->round, part);
	MtlComputeEnd();
	MtlExpandedStateChanged(&s->base);
}

static double
RowPosition(const MtlSpec *spec, FunctionCallInfo fcinfo, int user_arg)
{
	return mtl_round_position(spec, !PG_ARGISNULL(user_arg),
							  PG_ARGISNULL(user_arg) ? 0 : PG_GETARG_INT64(user_arg),
							  !PG_ARGISNULL(user_arg + 1),
							  PG_ARGISNULL(user_arg + 1) ? 0 : PG_GETARG_INT64(user_arg + 1));
}

/* The state of a transition call: created from the model and options on the first row. */
static RoundState *
RoundStateForRow(FunctionCallInfo fcinfo, int options_arg)
{
	MemoryContext context = AggContext(fcinfo, "mtl_train_round");
	RoundState *s = PG_ARGISNULL(0) ? NULL :
		(RoundState *) MtlExpandedStateOf(PG_GETARG_DATUM(0), RoundWrite);

	CHECK_FOR_INTERRUPTS();
	if (!PG_ARGISNULL(0) && (s == NULL || s->round == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mtl_train_round cannot continue a combined state"),
				 errhint("Call it as a plain aggregate, not as a window function.")));
	/* after the first row the model may be NULL: see mtl_round_model */
	if ((s == NULL && PG_ARGISNULL(1)) || PG_ARGISNULL(options_arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model and options of mtl_train_round must not be NULL"),
				 errhint("Only the rows after a round's first may pass a NULL model.")));
	if (s == NULL)
	{
		s = RoundCreate(context, PG_GETARG_BYTEA_PP(1), PG_GETARG_JSONB_P(options_arg));
		s->model_ptr = PG_GETARG_POINTER(1);
	}
	else if (!PG_ARGISNULL(1))
		CheckSameModel(s, fcinfo);
	return s;
}

/*
 * mtl_round_model(model) -> bytea: model at the first call of each scan (of
 * each process), NULL at every later one. Citus hands an aggregate's
 * arguments to the shards as one ROW(...) per row, which copies a constant
 * model into every row; through this function only the first row carries it,
 * and mtl_train_round keeps it in its state.
 */
PG_FUNCTION_INFO_V1(mtl_round_model);
Datum
mtl_round_model(PG_FUNCTION_ARGS)
{
	if (fcinfo->flinfo->fn_extra != NULL || PG_ARGISNULL(0))
		PG_RETURN_NULL();
	/* any non-NULL pointer; fn_extra lives as long as the call site's plan state */
	fcinfo->flinfo->fn_extra = fcinfo->flinfo;
	PG_RETURN_DATUM(PG_GETARG_DATUM(0));
}

/*
 * mtl_train_round_step(state, model, user_id, item_id, labels [, uf, if [, ctx]], options)
 */
Datum
mtl_train_round_step(PG_FUNCTION_ARGS)
{
	int			options_arg = PG_NARGS() - 1;
	RoundState *s = RoundStateForRow(fcinfo, options_arg);
	int			part = mtl_round_part_at(&s->start.model.spec, &s->round->opt,
										 RowPosition(&s->start.model.spec, fcinfo, 2));

	if (part != MTL_ROUND_SKIP)
	{
		MemoryContext old = MemoryContextSwitchTo(s->base.hdr.eoh_context);
		int32	   *slots;
		float	   *nums,
				   *labels;

		mtl_round_row(s->round, part, &slots, &nums, &labels);
		EncodeRow(&s->start, fcinfo, 2, options_arg - 2, s->hints, slots, nums, labels);
		CommitRow(s, part);
		MemoryContextSwitchTo(old);
	}
	PG_RETURN_DATUM(MtlExpandedStateDatum(&s->base));
}

/* Train (or measure) every row of the chunk that this round takes. */
static void
RoundChunk(RoundState *s, bytea *chunk)
{
	const MtlTrained *m = &s->start;
	MtlDataset	data;
	MtlRowStore *store = MtlReadChunkFor(chunk, m, &data);

	MtlComputeBegin(1);
	for (int64 c = 0; c < store->n_chunks; c++)
	{
		const uint8 *rows;
		int			n = mtl_rows_chunk(store, c, NULL, &rows);

		CHECK_FOR_INTERRUPTS();
		for (int k = 0; k < n; k++)
		{
			const MtlRowRef *ref = mtl_chunk_ref(store, rows, k);
			int			part = mtl_round_part_at(&m->model.spec, &s->round->opt,
												 MtlChunkRowPosition(&m->model.spec, store, ref));
			int32	   *slots;
			float	   *nums,
					   *labels;

			if (part == MTL_ROUND_SKIP)
				continue;
			mtl_round_row(s->round, part, &slots, &nums, &labels);
			/* its ids' stored features, the feature sets it gives in their place */
			mtl_dataset_expand_with_ids(&data, &m->schema, &m->model.layout, ref, slots, nums);
			memcpy(labels, mtl_chunk_labels(store, rows, k), sizeof(float) * m->model.spec.n_tasks);
			mtl_round_commit(s->round, part);
		}
	}
	MtlComputeEnd();
	mtl_dataset_free(&data);
	mtl_rows_free(store);
}

/* mtl_train_round_chunk_step(state, model, chunk of rows, options) */
Datum
mtl_train_round_chunk_step(PG_FUNCTION_ARGS)
{
	RoundState *s = RoundStateForRow(fcinfo, 3);
	MemoryContext old;

	if (PG_ARGISNULL(2))
		PG_RETURN_DATUM(MtlExpandedStateDatum(&s->base));
	old = MemoryContextSwitchTo(s->base.hdr.eoh_context);
	RoundChunk(s, PG_GETARG_BYTEA_PP(2));
	MemoryContextSwitchTo(old);
	MtlExpandedStateChanged(&s->base);
	PG_RETURN_DATUM(MtlExpandedStateDatum(&s->base));
}

static MtlRoundSum *
ReadSumOrError(bytea *flat)
{
	MtlReader	r = {(const uint8 *) VARDATA_ANY(flat), VARSIZE_ANY_EXHDR(flat), 0, NULL};
	MtlRoundSum *sum = mtl_round_sum_read(&r, 1);

	if (sum == NULL)
		ReportBadState("mtl_train_round", r.failed);
	return sum;
}

/* The merge of argument i's shares, in an in-memory state under context. */
static RoundState *
SumArg(FunctionCallInfo fcinfo, int i, MemoryContext context)
{
	RoundState *s = (RoundState *) MtlExpandedStateOf(PG_GETARG_DATUM(i), RoundWrite);
	MemoryContext old;

	if (s != NULL && s->sum != NULL)
		return s;
	if (s == NULL)
		s = (RoundState *) MtlExpandedStateCreate(context, sizeof(RoundState), RoundWrite);
	old = MemoryContextSwitchTo(s->base.hdr.eoh_context);
	/* a share still training becomes its flat form (training what waits), then a sum */
	s->sum = ReadSumOrError(PG_GETARG_BYTEA_PP(i));
	if (s->round != NULL)
	{
		mtl_round_free(s->round);
		s->round = NULL;
	}
	MemoryContextSwitchTo(old);
	MtlExpandedStateChanged(&s->base);
	return s;
}

/* Average two shares (strict: both are non-NULL). */
Datum
mtl_train_round_combine(PG_FUNCTION_ARGS)
{
	MemoryContext context = AggContext(fcinfo, "mtl_train_round_combine");
	RoundState *a = SumArg(fcinfo, 0, context);
	bytea	   *b_flat = PG_GETARG_BYTEA_PP(1);
	MemoryContext old = MemoryContextSwitchTo(a->base.hdr.eoh_context);
	MtlRoundSum *b = ReadSumOrError(b_flat);
	const MtlError *why = mtl_round_sum_merge(a->sum, b);

	mtl_round_sum_free(b);
	MemoryContextSwitchTo(old);
	if (why != NULL)
		MtlReportError(why, "cannot combine round states");
	MtlExpandedStateChanged(&a->base);
	PG_RETURN_DATUM(MtlExpandedStateDatum(&a->base));
}

/* The round's result: the merged share as bytes (rows still waiting are trained first). */
Datum
mtl_train_round_final(PG_FUNCTION_ARGS)
{
	AggContext(fcinfo, "mtl_train_round_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(PG_GETARG_BYTEA_P_COPY(0));
}

/* mtl_round_apply(model, round state) -> the model after the round */
Datum
mtl_round_apply_model(PG_FUNCTION_ARGS)
{
	bytea	   *model = PG_GETARG_BYTEA_PP(0);
	MtlRoundSum *sum = ReadSumOrError(PG_GETARG_BYTEA_PP(1));
	MtlTrained	start;
	uint8	   *bytes;
	const MtlError *why;
	size_t		len;

	MtlDecodeOrError((const uint8 *) VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model), &start);
	len = mtl_round_apply(&start, ModelKey(model), sum, &bytes, &why);
	if (why != NULL)
		ereport(ERROR,
				(errcode(MtlErrorSqlState(why)),
				 errmsg("cannot apply the round: %s", why->detail),
				 errhint("Apply a round's result to the model the round was trained from.")));
	PG_RETURN_BYTEA_P(MtlToBytea(bytes, len, "model", NULL));
}

static void
AppendMetric(StringInfo s, const char *key, double value)
{
	if (isfinite(value))
		appendStringInfo(s, "\"%s\": %.17g, ", key, value);
	else
		appendStringInfo(s, "\"%s\": null, ", key);
}

/*
 * "holdout": per task (in task order) the metrics of the held-out rows the
 * round measured its start model on, as mtl_evaluate gives them: auc and
 * logloss, or rmse and mae, and count; when the round kept their scores.
 */
static void
AppendHoldout(StringInfo s, const MtlRoundSum *sum)
{
	if (sum->scores.n_tasks == 0)
		return;
	appendStringInfoString(s, ", \"holdout\": [");
	for (int t = 0; t < sum->scores.n_tasks; t++)
	{
		MtlTaskMetrics m;

		mtl_round_metrics(sum, t, &m);
		appendStringInfoString(s, t > 0 ? ", {" : "{");
		if (sum->scores.type[t] == MTL_TASK_BINARY)
		{
			AppendMetric(s, "auc", m.auc);
			AppendMetric(s, "logloss", m.logloss);
		}
		else
		{
			AppendMetric(s, "rmse", m.rmse);
			AppendMetric(s, "mae", m.mae);
		}
		appendStringInfo(s, "\"count\": " INT64_FORMAT "}", m.count);
	}
	appendStringInfoChar(s, ']');
}

/* mtl_round_info(round state) -> jsonb */
Datum
mtl_round_info(PG_FUNCTION_ARGS)
{
	bytea	   *flat = PG_GETARG_BYTEA_PP(0);
	MtlRoundSum *sum = ReadSumOrError(flat);
	StringInfoData s;
	int64		touched = 0;

	for (int64 k = 0; k < sum->emb_rows; k++)
		touched += sum->counts[k] > 0;
	initStringInfo(&s);
	appendStringInfo(&s, "{\"round\": %d, \"rows\": " INT64_FORMAT ", \"validation_rows\": " INT64_FORMAT
					 ", \"shares\": " INT64_FORMAT ", \"embedding_rows_updated\": " INT64_FORMAT
					 ", \"bytes\": %zu",
					 sum->round, sum->stats.rows, sum->stats.val_rows, sum->stats.shares, touched,
					 (size_t) VARSIZE_ANY_EXHDR(flat));
	if (sum->stats.rows > 0)
		appendStringInfo(&s, ", \"loss\": %.9g", sum->stats.loss / sum->stats.rows);
	if (sum->stats.val_rows > 0)
		appendStringInfo(&s, ", \"validation_loss\": %.9g", sum->stats.val_loss / sum->stats.val_rows);
	AppendHoldout(&s, sum);
	appendStringInfoChar(&s, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}

/* What mtl_round_takes keeps per call site: the model's split of rows. */
typedef struct TakesCache
{
	Pointer		model_ptr;
	Pointer		options_ptr;
	MtlSpec		spec;
	MtlRoundOptions opt;
} TakesCache;

/*
 * mtl_round_takes(model, options, user_id, item_id) -> bool: whether
 * mtl_train_round with these arguments uses the row (to train or to
 * measure). A filter the driver puts on the training query, so that rows a
 * round skips are not joined and turned into jsonb at all.
 */
Datum
mtl_round_takes(PG_FUNCTION_ARGS)
{
	TakesCache *c = fcinfo->flinfo->fn_extra;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model and options of mtl_round_takes must not be NULL")));
	if (c == NULL)
		c = fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(TakesCache));
	if (c->model_ptr != PG_GETARG_POINTER(0) || c->options_ptr != PG_GETARG_POINTER(1))
	{
		bytea	   *model = PG_GETARG_BYTEA_PP(0);
		MemoryContext work = AllocSetContextCreate(CurrentMemoryContext, "mtl round takes",
												   ALLOCSET_DEFAULT_SIZES);
		MemoryContext old = MemoryContextSwitchTo(work);
		MtlTrained	trained;

		MtlDecodeOrError((const uint8 *) VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model), &trained);
		c->spec = trained.model.spec;
		ParseRoundOptions(PG_GETARG_JSONB_P(1), &c->spec, &c->opt);
		MemoryContextSwitchTo(old);
		MemoryContextDelete(work);
		c->model_ptr = PG_GETARG_POINTER(0);
		c->options_ptr = PG_GETARG_POINTER(1);
	}
	PG_RETURN_BOOL(mtl_round_part(&c->spec, &c->opt, !PG_ARGISNULL(2),
								  PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2), !PG_ARGISNULL(3),
								  PG_ARGISNULL(3) ? 0 : PG_GETARG_INT64(3)) != MTL_ROUND_SKIP);
}
