/*
 * mtl_evaluate: score rows with a model and measure every task at once.
 *
 * The state keeps, per task, the score, label and user of each row labelled
 * for it (25 bytes per labelled row and task, at most
 * mtl.evaluate_max_memory_mb in all); the final function computes
 * the metrics in the core (evaluate.c).
 */
#include "mtl_pg.h"

#include <math.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/json.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "round_rows.h"
#include "../core/evaluate.h"

typedef struct TaskRows
{
	int64		n;
	int64		cap;
	double	   *score;
	double	   *label;
	int64	   *user;
	uint8	   *has_user;
} TaskRows;

typedef struct EvalState
{
	MtlModelKey key;			/* the model every row must use */
	MtlEvalOptions options;		/* the first row's */
	bool		calibration_bins;
	int			n_tasks;
	MtlTask		tasks[MTL_MAX_TASKS];
	int64		rows;
	double		bytes;			/* held by the task arrays */
	TaskRows	task[MTL_MAX_TASKS];
} EvalState;

PG_FUNCTION_INFO_V1(mtl_evaluate_step);
PG_FUNCTION_INFO_V1(mtl_evaluate_final);

#define MTL_EVAL_MAX_CUTOFF 100000

static void
OptionsError(const char *message)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("mtl_evaluate options: %s", message),
			 errhint("Options are {\"k\": 10} or {\"k\": [5, 10]} (at most %d cut-offs, each 1 to %d) and {\"calibration_bins\": true}.",
					 MTL_EVAL_MAX_K, MTL_EVAL_MAX_CUTOFF)));
}

/* One cut-off k of the options. */
static void
AddCutoff(MtlEvalOptions *opt, const JsonbValue *v)
{
	double		k;

	if (v->type != jbvNumeric)
		OptionsError("\"k\" must be a whole number or a list of them");
	k = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	if (!(k == floor(k) && k >= 1 && k <= MTL_EVAL_MAX_CUTOFF))
		OptionsError("each \"k\" must be a whole number from 1 to 100000");
	if (opt->n_k == MTL_EVAL_MAX_K)
		OptionsError("too many cut-offs in \"k\"");
	opt->k[opt->n_k++] = (int) k;
}

/* {"k": n or [n, ...], "calibration_bins": bool}; NULL: the defaults. */
static void
ReadOptions(Jsonb *options, MtlEvalOptions *opt, bool *bins)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			depth = 0;
	bool		in_k = false;

	mtl_eval_options_default(opt);
	*bins = false;
	if (options == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(options))
		OptionsError("they must be a JSON object");
	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
			depth++;
		else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
			depth--;
		else if (tok == WJB_KEY && depth == 1)
		{
			char	   *key = pnstrdup(v.val.string.val, v.val.string.len);

			if (strcmp(key, "k") == 0)
			{
				opt->n_k = 0;
				in_k = true;
			}
			else if (strcmp(key, "calibration_bins") == 0)
			{
				in_k = false;
				tok = JsonbIteratorNext(&it, &v, true);
				if (v.type != jbvBool)
					OptionsError("\"calibration_bins\" must be true or false");
				*bins = v.val.boolean;
			}
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown mtl_evaluate option \"%s\"", key),
						 errhint("The options are \"k\" and \"calibration_bins\".")));
		}
		else if ((tok == WJB_VALUE && depth == 1) || (tok == WJB_ELEM && depth == 2))
		{
			if (!in_k || v.type == jbvBinary)
				OptionsError("\"k\" must be a whole number or a list of them");
			AddCutoff(opt, &v);
		}
		else if (tok == WJB_KEY || depth > 2)	/* an object or a list inside "k" */
			OptionsError("\"k\" must be a whole number or a list of them");
	}
	if (opt->n_k == 0)
		OptionsError("\"k\" lists no cut-off");
}

static EvalState *
StartState(MemoryContext context, ModelCache *cache, Jsonb *options)
{
	EvalState  *state = MemoryContextAllocZero(context, sizeof(EvalState));
	const MtlSpec *spec = &MtlCacheModel(cache)->model.spec;

	ReadOptions(options, &state->options, &state->calibration_bins);
	state->key = *MtlCacheKey(cache);
	state->n_tasks = spec->n_tasks;
	memcpy(state->tasks, spec->tasks, sizeof(MtlTask) * spec->n_tasks);
	return state;
}

#define ROW_BYTES (2 * sizeof(double) + sizeof(int64) + 1)

/* Growing a task's arrays to cap rows must stay within mtl.evaluate_max_memory_mb. */
static void
CheckMemory(EvalState *state, const TaskRows *rows, int64 cap)
{
	double		after = state->bytes + (double) (cap - rows->cap) * ROW_BYTES;

	if (after > mtl_evaluate_max_memory_mb * 1048576.0)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("mtl_evaluate needs more than mtl.evaluate_max_memory_mb (%d MB) for its rows",
						mtl_evaluate_max_memory_mb),
				 errdetail("%lld rows are scored so far.", (long long) state->rows),
				 errhint("Raise mtl.evaluate_max_memory_mb, or evaluate a sample of the rows.")));
	state->bytes = after;
}

static void
Append(MemoryContext context, EvalState *state, TaskRows *rows, double score, double label,
	   bool has_user, int64 user)
{
	if (rows->n == rows->cap)
	{
		int64		cap = rows->cap ? rows->cap * 2 : 1024;
		MemoryContext old;

		CheckMemory(state, rows, cap);
		old = MemoryContextSwitchTo(context);

		if (rows->cap == 0)
		{
			rows->score = palloc_extended(sizeof(double) * cap, MCXT_ALLOC_HUGE);
			rows->label = palloc_extended(sizeof(double) * cap, MCXT_ALLOC_HUGE);
			rows->user = palloc_extended(sizeof(int64) * cap, MCXT_ALLOC_HUGE);
			rows->has_user = palloc_extended(cap, MCXT_ALLOC_HUGE);
		}
		else
		{
			rows->score = repalloc_huge(rows->score, sizeof(double) * cap);
			rows->label = repalloc_huge(rows->label, sizeof(double) * cap);
			rows->user = repalloc_huge(rows->user, sizeof(int64) * cap);
			rows->has_user = repalloc_huge(rows->has_user, cap);
		}
		MemoryContextSwitchTo(old);
		rows->cap = cap;
	}
	rows->score[rows->n] = score;
	rows->label[rows->n] = label;
	rows->user[rows->n] = user;
	rows->has_user[rows->n] = has_user;
	rows->n++;
}

/* The state of a group: started from the first row's model; later rows must bring the same one. */
static EvalState *
StateForModel(MemoryContext context, EvalState *state, ModelCache *cache, Jsonb *options)
{
	if (state == NULL)
		return StartState(context, cache, options);
	MtlCheckSameModel(&state->key, cache, "mtl_evaluate", "Evaluate");
	return state;
}

/*
 * mtl_evaluate_step(state, model, user_id, item_id, labels [, user_features,
 * item_features [, context [, options]]]).
 * Rows with a NULL model or NULL labels are skipped; a NULL label element
 * leaves the row out of that task only.
 */
Datum
mtl_evaluate_step(PG_FUNCTION_ARGS)
{
	MemoryContext context;
	EvalState  *state = PG_ARGISNULL(0) ? NULL : (EvalState *) PG_GETARG_POINTER(0);
	ModelCache *cache;
	const double *scores;
	float		labels[MTL_MAX_LABELS];
	bool		has_user;

	if (!AggCheckCallContext(fcinfo, &context))
		elog(ERROR, "mtl_evaluate_step called in non-aggregate context");
	if (PG_ARGISNULL(1) || PG_ARGISNULL(4))
		PG_RETURN_POINTER(state);
	cache = MtlModelForCall(fcinfo, 1);
	state = StateForModel(context, state, cache,
						  PG_NARGS() >= 9 && !PG_ARGISNULL(8) ? PG_GETARG_JSONB_P(8) : NULL);
	MtlReadLabels(PG_GETARG_ARRAYTYPE_P(4), &MtlCacheModel(cache)->model.spec, labels);
	scores = MtlScoreRow(cache, fcinfo, 2, PG_NARGS() >= 7 ? 5 : -1, PG_NARGS() >= 8 ? 7 : -1);
	has_user = !PG_ARGISNULL(2);
	for (int t = 0; t < state->n_tasks; t++)
		if (!isnan(labels[t]))
			Append(context, state, &state->task[t], scores[t], labels[t], has_user,
				   has_user ? PG_GETARG_INT64(2) : 0);
	state->rows++;
	PG_RETURN_POINTER(state);
}

/*
 * mtl_evaluate_chunk_step(state, model, chunk of rows): the held-out rows of
 * a chunk made by mtl_round_rows (those training in rounds with this
 * model's seed and validation_fraction never trains on), scored as
 * mtl_predict scores a row with its features.
 */
PG_FUNCTION_INFO_V1(mtl_evaluate_chunk_step);
Datum
mtl_evaluate_chunk_step(PG_FUNCTION_ARGS)
{
	MemoryContext context;
	EvalState  *state = PG_ARGISNULL(0) ? NULL : (EvalState *) PG_GETARG_POINTER(0);
	ModelCache *cache;
	const MtlTrained *m;
	MtlRowStore *store;
	MtlDataset	data;

	if (!AggCheckCallContext(fcinfo, &context))
		elog(ERROR, "mtl_evaluate_chunk_step called in non-aggregate context");
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(state);
	cache = MtlModelForCall(fcinfo, 1);
	state = StateForModel(context, state, cache, NULL);
	m = MtlCacheModel(cache);
	store = MtlReadChunkFor(PG_GETARG_BYTEA_PP(2), m, &data);
	for (int64 c = 0; c < store->n_chunks; c++)
	{
		const uint8 *rows;
		int			n = mtl_rows_chunk(store, c, NULL, &rows);

		CHECK_FOR_INTERRUPTS();
		for (int k = 0; k < n; k++)
		{
			const MtlRowRef *ref = mtl_chunk_ref(store, rows, k);
			const float *labels = mtl_chunk_labels(store, rows, k);
			int64		user_id = ref->user ? mtl_rows_user_id(store, ref) : 0;
			const double *scores;

			if (MtlChunkRowPosition(&m->model.spec, store, ref) >= m->model.spec.validation_fraction)
				continue;
			scores = MtlScoreChunkRow(cache, &data, ref);
			for (int t = 0; t < state->n_tasks; t++)
				if (!isnan(labels[t]))
					Append(context, state, &state->task[t], scores[t], labels[t], ref->user != 0, user_id);
			state->rows++;
		}
	}
	mtl_dataset_free(&data);
	mtl_rows_free(store);
	PG_RETURN_POINTER(state);
}

static void
AppendNumber(StringInfo s, const char *key, double value)
{
	if (isnan(value) || isinf(value))
		appendStringInfo(s, ", \"%s\": null", key);
	else
		appendStringInfo(s, ", \"%s\": %.17g", key, value);
}

static void
AppendRanking(StringInfo s, const MtlEvalOptions *opt, const MtlTaskMetrics *m)
{
	for (int c = 0; c < opt->n_k; c++)
	{
		char		key[32];

		snprintf(key, sizeof(key), "ndcg@%d", opt->k[c]);
		AppendNumber(s, key, m->ndcg[c]);
		snprintf(key, sizeof(key), "recall@%d", opt->k[c]);
		AppendNumber(s, key, m->recall[c]);
	}
	AppendNumber(s, "mrr", m->mrr);
	appendStringInfo(s, ", \"ranking_users\": %lld", (long long) m->ranking_users);
}

/* The reliability bins: [lower, upper), rows, mean predicted, observed rate. */
static void
AppendBins(StringInfo s, const MtlTaskMetrics *m)
{
	appendStringInfoString(s, ", \"calibration_bins\": [");
	for (int b = 0; b < MTL_CALIBRATION_BINS; b++)
	{
		appendStringInfo(s, "%s{\"lower\": %g, \"upper\": %g, \"count\": %lld", b ? ", " : "",
						 (double) b / MTL_CALIBRATION_BINS, (double) (b + 1) / MTL_CALIBRATION_BINS,
						 (long long) m->bins[b].count);
		AppendNumber(s, "mean_predicted", m->bins[b].mean_predicted);
		AppendNumber(s, "observed", m->bins[b].observed);
		appendStringInfoChar(s, '}');
	}
	appendStringInfoChar(s, ']');
}

static void
AppendTask(StringInfo s, const MtlTask *task, const MtlTaskMetrics *m, const MtlEvalOptions *opt,
		   bool bins, bool first)
{
	if (!first)
		appendStringInfoString(s, ", ");
	escape_json(s, task->name);
	appendStringInfo(s, ": {\"type\": \"%s\", \"count\": %lld", mtl_task_type_name(task->type),
					 (long long) m->count);
	if (task->type == MTL_TASK_BINARY)
	{
		AppendNumber(s, "auc", m->auc);
		AppendNumber(s, "gauc", m->gauc);
		appendStringInfo(s, ", \"gauc_users\": %lld", (long long) m->gauc_users);
		AppendNumber(s, "logloss", m->logloss);
		AppendNumber(s, "accuracy", m->accuracy);
		AppendNumber(s, "f1", m->f1);
		AppendRanking(s, opt, m);
		AppendNumber(s, "mean_predicted", m->mean_predicted);
		AppendNumber(s, "observed", m->observed);
		AppendNumber(s, "ece", m->ece);
		if (bins)
			AppendBins(s, m);
	}
	else
	{
		AppendNumber(s, "rmse", m->rmse);
		AppendNumber(s, "mae", m->mae);
	}
	appendStringInfoChar(s, '}');
}

/* NULL when no row was aggregated. */
Datum
mtl_evaluate_final(PG_FUNCTION_ARGS)
{
	EvalState  *state = PG_ARGISNULL(0) ? NULL : (EvalState *) PG_GETARG_POINTER(0);
	MtlTaskMetrics metrics[MTL_MAX_TASKS];
	StringInfoData s;

	if (state == NULL)
		PG_RETURN_NULL();
	for (int t = 0; t < state->n_tasks; t++)
	{
		TaskRows   *rows = &state->task[t];

		CHECK_FOR_INTERRUPTS();
		if (state->tasks[t].type == MTL_TASK_BINARY)
			mtl_binary_metrics(rows->score, rows->label, rows->user, rows->has_user, rows->n,
							   &state->options,
							   &metrics[t]);
		else
			mtl_regression_metrics(rows->score, rows->label, rows->n, &metrics[t]);
	}
	initStringInfo(&s);
	appendStringInfo(&s, "{\"rows\": %lld, \"tasks\": {", (long long) state->rows);
	for (int t = 0; t < state->n_tasks; t++)
		AppendTask(&s, &state->tasks[t], &metrics[t], &state->options, state->calibration_bins,
				   t == 0);
	appendStringInfoChar(&s, '}');
	AppendNumber(&s, "fused", mtl_fused_score(metrics, state->tasks, state->n_tasks));
	appendStringInfoChar(&s, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}
