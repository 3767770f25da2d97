/*
 * The mtl_train aggregate.
 *
 * The transition function collects rows into compact arrays (see rows.h);
 * the final function builds vocabularies and trains. Under parallel query,
 * each worker collects (and parses the jsonb of) its share of the rows; the
 * combine function concatenates the workers' rows, and the leader trains one
 * model on all of them, so a parallel plan gives the same kind of model as a
 * serial one (row order, and so the model bits, may differ).
 */
#include "mtl_pg.h"

#include <math.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "access/xact.h"
#include "utils/memutils.h"

#include "../core/sampling.h"
#include "../core/fit.h"
#include "../core/update.h"

PG_FUNCTION_INFO_V1(mtl_train_step);
PG_FUNCTION_INFO_V1(mtl_train_weighted_step);
PG_FUNCTION_INFO_V1(mtl_train_combine);
PG_FUNCTION_INFO_V1(mtl_train_serialize);
PG_FUNCTION_INFO_V1(mtl_train_deserialize);
PG_FUNCTION_INFO_V1(mtl_train_final);

static MemoryContext
AggContextOrError(FunctionCallInfo fcinfo)
{
	MemoryContext context;

	if (!AggCheckCallContext(fcinfo, &context))
		elog(ERROR, "mtl_train support function called in non-aggregate context");
	return context;
}

static double
MemoryLimitBytes(const MtlSpec *spec)
{
	return spec->max_memory_mb * 1024.0 * 1024.0;
}

static void
CheckRowMemory(const TrainState *state)
{
	double		used = (double) mtl_rows_bytes(state->rows);

	if (used > MemoryLimitBytes(&state->spec))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("training rows need more than max_memory_mb (%g MB)", state->spec.max_memory_mb),
				 errdetail("%lld rows are collected so far, using %.0f MB.",
						   (long long) state->rows->n_rows, used / 1048576.0),
				 errhint("Raise config key max_memory_mb, or train on a sample of the rows.")));
}

/* An empty row store whose rows beyond rows_memory_mb spill to a temporary file. */
MtlRowStore *
MtlTrainRowStore(const MtlSpec *spec, MemoryContext context)
{
	MemoryContext old = MemoryContextSwitchTo(context);
	MtlRowStore *rows = mtl_rows_create(mtl_label_columns(spec));
	double		budget = spec->rows_memory_mb * 1048576.0;

	/* 0: every full chunk spills (a budget of 0 bytes would mean no limit) */
	MtlRowsSpillToTempFile(rows, budget >= 1.0 ? (size_t) budget : 1, context);
	MemoryContextSwitchTo(old);
	return rows;
}

/*
 * A training state for config; weight_arg: the rows' weights come as an
 * argument of their own (mtl_train's weighted form), which the labels then
 * carry after the tasks' as sample_weight does.
 */
TrainState *
MtlTrainCreate(MemoryContext context, Jsonb *config, bool weight_arg)
{
	MemoryContext old = MemoryContextSwitchTo(context);
	TrainState *state = palloc0(sizeof(TrainState));

	MtlParseConfig(config, &state->spec);
	if (weight_arg && state->spec.sample_weight)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"sample_weight\" puts the weight in the labels, but mtl_train was also given a weight argument"),
				 errhint("Pass each row's weight one way: the weight argument, or the last label with \"sample_weight\": true.")));
	state->spec.sample_weight |= weight_arg;
	state->rows = MtlTrainRowStore(&state->spec, context);
	MemoryContextSwitchTo(old);
	return state;
}

static void
CheckLabelsGiven(const bool *nulls)
{
	if (nulls[2])
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("labels must not be NULL"),
				 errhint("Use an array of NULLs for a row whose labels are all missing.")));
}

/* Add one row whose labels (and weight) are read: its ids and features. */
static void
AddRowLabels(TrainState *state, const Datum *values, const bool *nulls, int n_values,
			 const float *labels, MemoryContext context)
{
	uint8		flags = 0;
	MemoryContext old;

	if (!mtl_sampling_keeps(&state->spec, state->offered++, nulls[0] ? 0 : DatumGetInt64(values[0]),
							nulls[1] ? 0 : DatumGetInt64(values[1]), labels))
		return;
	flags |= nulls[0] ? 0 : MTL_HAS_USER;
	flags |= nulls[1] ? 0 : MTL_HAS_ITEM;

	old = MemoryContextSwitchTo(context);
	mtl_rows_add(state->rows, nulls[0] ? 0 : DatumGetInt64(values[0]),
				 nulls[1] ? 0 : DatumGetInt64(values[1]), flags, labels);
	MemoryContextSwitchTo(old);
	for (int side = 0; side < 3 && 3 + side < n_values; side++)
		if (!nulls[3 + side])
			MtlAddFeatures(state->rows, DatumGetJsonbP(values[3 + side]),
						   side == 0 ? MTL_SIDE_USER : side == 1 ? MTL_SIDE_ITEM : MTL_SIDE_CONTEXT,
						   &state->spec, context);
	if ((state->rows->n_rows & 4095) == 0)
		CheckRowMemory(state);
}

/*
 * Add one row: values/nulls hold user_id, item_id (int8), labels (float8[])
 * and, when n_values >= 5, the user and item features (jsonb) and, when 6, the
 * context (jsonb).
 */
void
MtlTrainAddRow(TrainState *state, const Datum *values, const bool *nulls, int n_values,
			   MemoryContext context)
{
	float		labels[MTL_MAX_LABELS];

	CheckLabelsGiven(nulls);
	MtlReadLabels(DatumGetArrayTypeP(values[2]), &state->spec, labels);
	AddRowLabels(state, values, nulls, n_values, labels, context);
}

/* The same with the row's weight given apart from its labels (weight_null: NULL). */
static void
AddWeightedRow(TrainState *state, const Datum *values, const bool *nulls, int n_values,
			   bool weight_null, double weight, MemoryContext context)
{
	double		y[MTL_MAX_LABELS];
	float		labels[MTL_MAX_LABELS];
	int			n;

	CheckLabelsGiven(nulls);
	n = MtlLabelValues(DatumGetArrayTypeP(values[2]), y);
	if (n != state->spec.n_tasks)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("expected %d labels (one per task), not %d", state->spec.n_tasks, n)));
	y[n] = weight_null ? NAN : isnan(weight) ? INFINITY : weight;
	MtlCheckLabels(y, n + 1, &state->spec, labels);
	AddRowLabels(state, values, nulls, n_values, labels, context);
}

/* The state of a group, created from its first row's config. */
static TrainState *
StateForRow(FunctionCallInfo fcinfo, MemoryContext context, bool weight_arg)
{
	int			config_arg = PG_NARGS() - 1;

	if (!PG_ARGISNULL(0))
		return (TrainState *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(config_arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("config must not be NULL")));
	return MtlTrainCreate(context, PG_GETARG_JSONB_P(config_arg), weight_arg);
}

/*
 * mtl_train_step(state, user_id, item_id, labels, config),
 * mtl_train_step(state, user_id, item_id, labels, user_features, item_features, config) and
 * mtl_train_step(state, user_id, item_id, labels, user_features, item_features, context, config)
 */
Datum
mtl_train_step(PG_FUNCTION_ARGS)
{
	MemoryContext context = AggContextOrError(fcinfo);
	TrainState *state = StateForRow(fcinfo, context, false);
	int			config_arg = PG_NARGS() - 1;
	Datum		values[6];
	bool		nulls[6];

	for (int i = 0; i < config_arg - 1; i++)
	{
		nulls[i] = PG_ARGISNULL(i + 1);
		values[i] = nulls[i] ? (Datum) 0 : PG_GETARG_DATUM(i + 1);
	}
	MtlTrainAddRow(state, values, nulls, config_arg - 1, context);
	PG_RETURN_POINTER(state);
}

/*
 * mtl_train_weighted_step(state, user_id, item_id, labels, weight [, user_features,
 * item_features [, context]], config): the same with each row's weight.
 */
Datum
mtl_train_weighted_step(PG_FUNCTION_ARGS)
{
	MemoryContext context = AggContextOrError(fcinfo);
	TrainState *state = StateForRow(fcinfo, context, true);
	int			config_arg = PG_NARGS() - 1;
	Datum		values[6];
	bool		nulls[6];
	int			n = 0;

	for (int i = 1; i < config_arg; i++)
	{
		if (i == 4)				/* the weight */
			continue;
		nulls[n] = PG_ARGISNULL(i);
		values[n] = nulls[n] ? (Datum) 0 : PG_GETARG_DATUM(i);
		n++;
	}
	AddWeightedRow(state, values, nulls, n, PG_ARGISNULL(4),
				   PG_ARGISNULL(4) ? 0.0 : PG_GETARG_FLOAT8(4), context);
	PG_RETURN_POINTER(state);
}

/* Concatenate the rows of two partial states. */
Datum
mtl_train_combine(PG_FUNCTION_ARGS)
{
	MemoryContext context = AggContextOrError(fcinfo);
	TrainState *a = PG_ARGISNULL(0) ? NULL : (TrainState *) PG_GETARG_POINTER(0);
	TrainState *b = PG_ARGISNULL(1) ? NULL : (TrainState *) PG_GETARG_POINTER(1);
	MemoryContext old;
	const MtlError *why;

	if (b == NULL)
		PG_RETURN_POINTER(a);
	old = MemoryContextSwitchTo(context);
	if (a == NULL)
	{
		a = palloc0(sizeof(TrainState));
		a->spec = b->spec;
		a->rows = MtlTrainRowStore(&b->spec, context);
	}
	why = mtl_rows_merge(a->rows, b->rows);
	/* b's rows are a's now: free them rather than hold every row twice */
	mtl_rows_free(b->rows);
	b->rows = mtl_rows_create(mtl_label_columns(&b->spec));
	MemoryContextSwitchTo(old);
	if (why != NULL)
		MtlReportError(why, "cannot combine the collected rows");
	CheckRowMemory(a);
	PG_RETURN_POINTER(a);
}

Datum
mtl_train_serialize(PG_FUNCTION_ARGS)
{
	TrainState *state = (TrainState *) PG_GETARG_POINTER(0);
	MtlWriter	w = {0};
	bytea	   *out;

	AggContextOrError(fcinfo);
	mtl_put_bytes(&w, &state->spec, sizeof(MtlSpec));
	mtl_rows_write(&w, state->rows);
	MtlRowsSpillClose(state->rows);
	out = MtlToBytea(w.data, w.len, "partial training state",
					 "Train on fewer rows, or disable parallel query for training.");
	mtl_free(w.data);
	PG_RETURN_BYTEA_P(out);
}

Datum
mtl_train_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	MtlReader	r = {(const uint8 *) VARDATA_ANY(in), VARSIZE_ANY_EXHDR(in), 0, NULL};
	TrainState *state;

	AggContextOrError(fcinfo);
	state = palloc0(sizeof(TrainState));
	if (mtl_reader_has(&r, sizeof(MtlSpec)))
	{
		memcpy(&state->spec, r.data, sizeof(MtlSpec));
		r.pos += sizeof(MtlSpec);
	}
	state->rows = mtl_rows_read(&r);
	if (r.failed)
		elog(ERROR, "invalid mtl_train partial state: %s", r.failed);
	PG_RETURN_POINTER(state);
}

static void
InterruptCallback(void *arg)
{
	CHECK_FOR_INTERRUPTS();
}

static void
EpochCallback(void *arg, const MtlEpochReport *e)
{
	const MtlSpec *spec = arg;
	double		rate = e->train_seconds > 0 ? e->rows / e->train_seconds : 0;

	if (!spec->verbose)
		return;
	if (isnan(e->val_loss))
		ereport(INFO,
				(errmsg("mtl_train: epoch %d/%d, loss %.6f, %.3f s, %.0f rows/s",
						e->epoch, spec->epochs, e->loss, e->train_seconds, rate)));
	else
		ereport(INFO,
				(errmsg("mtl_train: epoch %d/%d, loss %.6f, validation loss %.6f, %.3f s + %.3f s validation, %.0f rows/s",
						e->epoch, spec->epochs, e->loss, e->val_loss, e->train_seconds,
						e->val_seconds, rate)));
}

static void
CheckCallback(void *arg, int epoch, int64_t rows, double val_loss, int best)
{
	const MtlSpec *spec = arg;

	if (spec->verbose)
		ereport(INFO,
				(errmsg("mtl_train: epoch %d after %lld rows, validation loss %.6f%s",
						epoch, (long long) rows, val_loss, best ? " (lowest so far)" : "")));
}

/* The verbose summary of where the time went, and what the rows took. */
static void
ReportPhases(const MtlSpec *spec, const MtlTrainSummary *sum, const MtlRowStore *rows)
{
	StringInfoData s;

	if (!spec->verbose)
		return;
	initStringInfo(&s);
	for (int p = 0; p < MTL_N_PHASES; p++)
		appendStringInfo(&s, "%s%s %.3f s", p ? ", " : "", mtl_phase_names[p], sum->phase_seconds[p]);
	ereport(INFO,
			(errmsg("mtl_train: %s", s.data),
			 errdetail("%lld rows, %lld feature sets, %lld users, %lld items; %.1f MB in memory, %.1f MB in temporary files.",
					   (long long) rows->n_rows, (long long) rows->n_sets,
					   (long long) rows->ids[0].n, (long long) rows->ids[1].n,
					   mtl_rows_bytes(rows) / 1048576.0, MtlRowsSpilledBytes(rows) / 1048576.0)));
	pfree(s.data);
}

/*
 * The model's bytes; with record_seconds they hold the phase times, encoding's
 * own included (measured on a first encoding).
 */
static size_t
EncodeModel(MtlTrained *trained, uint8 **bytes)
{
	double		start = mtl_now_seconds();
	size_t		len = mtl_encode(trained, bytes);

	trained->summary.phase_seconds[MTL_PHASE_ENCODE_MODEL] = mtl_now_seconds() - start;
	if (trained->model.spec.record_seconds)
	{
		mtl_free(*bytes);
		len = mtl_encode(trained, bytes);
	}
	return len;
}

static void
ReportFitError(const MtlError *why, double needed, const MtlSpec *spec)
{
	if (why->code == MTL_E_NO_SCENARIO)
		ereport(ERROR,
				(errcode(MtlErrorSqlState(why)),
				 errmsg("config key \"scenario\" names \"%s\", but no row's context has that key as a string",
						spec->scenario),
				 errhint("Pass the scenario in the context argument, e.g. '{\"%s\": \"search\"}'.",
						 spec->scenario)));
	if (why->code == MTL_E_MEMORY)
		ereport(ERROR,
				(errcode(MtlErrorSqlState(why)),
				 errmsg("training needs %.0f MB, more than max_memory_mb (%g MB)",
						needed / 1048576.0, spec->max_memory_mb),
				 errhint("Raise config key max_memory_mb, lower embedding_dim, or train on a sample.")));
	MtlReportError(why, "cannot build the model");
}

/*
 * Train on the collected rows and return the encoded model: a new one, or,
 * when continued is given, that model trained further on the rows (mtl_update).
 */
bytea *
MtlTrainFinish(TrainState *state, const MtlTrained *continued, bool freeze_shared)
{
	MemoryContext work,
				old;
	MtlTrained	trained;
	MtlTrainCallbacks cb;
	/* the statement so far: scanning, joining and parsing the rows */
	double		collected = (GetCurrentTimestamp() - GetCurrentStatementStartTimestamp()) / 1e6;
	const MtlError *why;
	double		needed = 0;
	uint8	   *bytes;
	size_t		len;
	bytea	   *out;

	cb.interrupt = InterruptCallback;
	cb.epoch_done = EpochCallback;
	cb.check_done = CheckCallback;
	cb.arg = &state->spec;

	/* everything training allocates goes away with this context */
	work = AllocSetContextCreate(CurrentMemoryContext, "mtl training", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	MtlComputeBegin(1);	/* OpenBLAS on one thread: our own threads split the batch */
	if (continued == NULL)
		why = mtl_fit(&state->spec, state->rows, &cb, MemoryLimitBytes(&state->spec), &needed, &trained);
	else
		why = mtl_update_fit(continued, &state->spec, state->rows, freeze_shared, &cb,
							 MemoryLimitBytes(&state->spec), &needed, &trained);
	MtlComputeEnd();
	if (why != NULL)
		ReportFitError(why, needed, &state->spec);
	trained.summary.phase_seconds[MTL_PHASE_COLLECT] = collected;
	len = EncodeModel(&trained, &bytes);
	ReportPhases(&state->spec, &trained.summary, state->rows);
	MemoryContextSwitchTo(old);
	out = MtlToBytea(bytes, len, "model", "Lower embedding_dim or the number of distinct ids.");
	MemoryContextDelete(work);
	return out;
}

Datum
mtl_train_final(PG_FUNCTION_ARGS)
{
	TrainState *state;
	bytea	   *model;

	AggContextOrError(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (TrainState *) PG_GETARG_POINTER(0);
	if (state->rows->n_rows == 0)
		PG_RETURN_NULL();
	model = MtlTrainFinish(state, NULL, false);
	/* a plain aggregate is done with its rows; a window one may take more */
	if (AggCheckCallContext(fcinfo, NULL) == AGG_CONTEXT_AGGREGATE)
		MtlRowsSpillClose(state->rows);
	PG_RETURN_BYTEA_P(model);
}
