/*
 * mtl_explain: each input's contribution to each task's logit for one row,
 * by integrated gradients (src/core/explain.c), with the row's gates; and
 * mtl_explain_global, the aggregate of their sizes over a query's rows.
 */
#include "mtl_pg.h"

#include <math.h>

#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"

#include "model_cache.h"
#include "../core/explain.h"

/* room for a side and a field's name */
#define MTL_INPUT_NAME_LEN 1024

PG_FUNCTION_INFO_V1(mtl_explain);
PG_FUNCTION_INFO_V1(mtl_explain_named);
PG_FUNCTION_INFO_V1(mtl_explain_global_step);
PG_FUNCTION_INFO_V1(mtl_explain_global_final);

/*
 * Explain the row of arguments user_arg.. (features and context as in
 * mtl_predict) into out; out->attribution is allocated in the current context.
 */
static MtlExplainer *
ExplainRow(ModelCache *cache, FunctionCallInfo fcinfo, int user_arg, MtlExplanation *out)
{
	MtlExplainer *e = MtlCacheExplainer(cache);
	int			n = PG_NARGS() - user_arg;

	out->attribution = palloc(sizeof(double) * e->trained->model.spec.n_tasks * e->n_inputs);
	MtlBuildRow(cache, fcinfo, user_arg, n >= 4 ? user_arg + 2 : -1, n >= 5 ? user_arg + 4 : -1);
	MtlComputeBegin(0);
	mtl_explain_row(e, cache->predictor->slots, cache->predictor->nums, out);
	MtlComputeEnd();
	return e;
}

static void
AppendNumber(StringInfo s, const char *key, double value)
{
	appendStringInfoString(s, ", ");
	escape_json(s, key);
	if (isfinite(value))
		appendStringInfo(s, ": %.9g", value);
	else
		appendStringInfoString(s, ": null");
}

/* {"user_id": a, "item.category": b, ...}: every input, in the model's order. */
static void
AppendInputs(StringInfo s, const MtlTrained *t, int n_inputs, const double *values)
{
	char		name[MTL_INPUT_NAME_LEN];

	appendStringInfoChar(s, '{');
	for (int i = 0; i < n_inputs; i++)
	{
		mtl_explain_input_name(t, i, name, sizeof(name));
		if (i > 0)
			appendStringInfoString(s, ", ");
		escape_json(s, name);
		appendStringInfo(s, ": %.9g", values[i]);
	}
	appendStringInfoChar(s, '}');
}

/* Expert e of level k as "<owner>_<n>": its task's name or "shared", and its number there. */
static void
AppendExpertName(StringInfo s, const MtlModel *m, int k, int e)
{
	const MtlLevel *lv = &m->layout.levels[k];
	int			owner = lv->owner[e],
				n = 0;
	char		name[MTL_NAME_LEN + 16];

	for (int j = 0; j < e; j++)
		n += lv->owner[j] == owner;
	snprintf(name, sizeof(name), "%s_%d",
			 owner == m->spec.n_tasks ? "shared" : m->spec.tasks[owner].name, n);
	escape_json(s, name);
}

/* Task t's gates: [{"level": k, "experts": [...], "weights": [...]}] for levels it mixes several at. */
static void
AppendGates(StringInfo s, const MtlModel *m, const MtlExplanation *x, int t)
{
	bool		first = true;

	appendStringInfoString(s, ", \"gates\": [");
	for (int k = 0; k < x->n_levels; k++)
	{
		const MtlLevel *lv = &m->layout.levels[k];
		int			n = x->gate_n[k][t];

		if (n < 2)
			continue;
		appendStringInfo(s, "%s{\"level\": %d, \"experts\": [", first ? "" : ", ", k);
		for (int j = 0; j < n; j++)
		{
			if (j > 0)
				appendStringInfoString(s, ", ");
			AppendExpertName(s, m, k, lv->gate_expert[t][j]);
		}
		appendStringInfoString(s, "], \"weights\": [");
		for (int j = 0; j < n; j++)
			appendStringInfo(s, "%s%.6g", j ? ", " : "", x->gate[k][t][j]);
		appendStringInfoString(s, "]}");
		first = false;
	}
	appendStringInfoChar(s, ']');
}

static Datum
ExplanationJson(const MtlExplainer *e, const MtlExplanation *x)
{
	const MtlModel *m = &e->trained->model;
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "{\"steps\": %d, \"tasks\": {", x->steps);
	for (int t = 0; t < m->spec.n_tasks; t++)
	{
		const MtlTask *task = &m->spec.tasks[t];

		if (t > 0)
			appendStringInfoString(&s, ", ");
		escape_json(&s, task->name);
		appendStringInfo(&s, ": {\"logit\": %.9g", x->logit[t]);
		AppendNumber(&s, "baseline_logit", x->baseline_logit[t]);
		AppendNumber(&s, "score", mtl_task_output(task, (float) x->logit[t]));
		AppendNumber(&s, "baseline_score", mtl_task_output(task, (float) x->baseline_logit[t]));
		AppendNumber(&s, "error", x->error[t]);
		appendStringInfoString(&s, ", \"attributions\": ");
		AppendInputs(&s, e->trained, e->n_inputs, x->attribution + (size_t) t * e->n_inputs);
		AppendGates(&s, m, x, t);
		appendStringInfoChar(&s, '}');
	}
	appendStringInfoString(&s, "}}");
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data));
}

/*
 * mtl_explain(model, user_id, item_id [, user_features, item_features [, context]])
 * returns jsonb: per task, the logits of the row and of the anonymous row,
 * each input's attribution, the midpoint sum's error, and the gates.
 */
Datum
mtl_explain(PG_FUNCTION_ARGS)
{
	ModelCache *cache;
	MtlExplainer *e;
	MtlExplanation x;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	cache = MtlModelForCall(fcinfo, 0);
	e = ExplainRow(cache, fcinfo, 1, &x);
	PG_RETURN_DATUM(ExplanationJson(e, &x));
}

/* mtl_explain(name, ...): the same with the deployed version of a named model. */
Datum
mtl_explain_named(PG_FUNCTION_ARGS)
{
	ModelCache *cache;
	MtlExplainer *e;
	MtlExplanation x;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	cache = MtlRegistryModel(fcinfo, PG_GETARG_TEXT_PP(0));
	e = ExplainRow(cache, fcinfo, 1, &x);
	PG_RETURN_DATUM(ExplanationJson(e, &x));
}

/* mtl_explain_global: per task and input, the sum of |attribution| and of attribution. */
typedef struct GlobalState
{
	MtlModelKey key;			/* the model every row must use */
	int			n_tasks;
	int			n_inputs;
	int64		rows;
	double	   *sum_abs;		/* [n_tasks x n_inputs] */
	double	   *sum;
	char	  **names;			/* [n_inputs] */
	char		task_names[MTL_MAX_TASKS][MTL_NAME_LEN];
} GlobalState;

static GlobalState *
StartGlobal(MemoryContext context, ModelCache *cache, const MtlExplainer *e)
{
	GlobalState *g = MemoryContextAllocZero(context, sizeof(GlobalState));
	const MtlTrained *t = MtlCacheModel(cache);
	char		name[MTL_INPUT_NAME_LEN];

	g->key = *MtlCacheKey(cache);
	g->n_tasks = t->model.spec.n_tasks;
	g->n_inputs = e->n_inputs;
	g->sum_abs = MemoryContextAllocZero(context, sizeof(double) * g->n_tasks * g->n_inputs);
	g->sum = MemoryContextAllocZero(context, sizeof(double) * g->n_tasks * g->n_inputs);
	g->names = MemoryContextAlloc(context, sizeof(char *) * g->n_inputs);
	for (int i = 0; i < g->n_inputs; i++)
	{
		mtl_explain_input_name(t, i, name, sizeof(name));
		g->names[i] = MemoryContextStrdup(context, name);
	}
	for (int k = 0; k < g->n_tasks; k++)
		strlcpy(g->task_names[k], t->model.spec.tasks[k].name, MTL_NAME_LEN);
	return g;
}

/*
 * mtl_explain_global_step(state, model, user_id, item_id [, user_features,
 * item_features [, context]]); rows with a NULL model are skipped.
 */
Datum
mtl_explain_global_step(PG_FUNCTION_ARGS)
{
	MemoryContext context;
	GlobalState *g = PG_ARGISNULL(0) ? NULL : (GlobalState *) PG_GETARG_POINTER(0);
	ModelCache *cache;
	MtlExplainer *e;
	MtlExplanation x;

	if (!AggCheckCallContext(fcinfo, &context))
		elog(ERROR, "mtl_explain_global_step called in non-aggregate context");
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(g);
	cache = MtlModelForCall(fcinfo, 1);
	if (g != NULL)
		MtlCheckSameModel(&g->key, cache, "mtl_explain_global", "Explain");
	e = ExplainRow(cache, fcinfo, 2, &x);
	if (g == NULL)
		g = StartGlobal(context, cache, e);
	for (int i = 0; i < g->n_tasks * g->n_inputs; i++)
	{
		g->sum_abs[i] += fabs(x.attribution[i]);
		g->sum[i] += x.attribution[i];
	}
	g->rows++;
	pfree(x.attribution);
	PG_RETURN_POINTER(g);
}

/* Inputs of task t by mean |attribution|, largest first. */
static void
AppendRanked(StringInfo s, const GlobalState *g, int t)
{
	const double *a = g->sum_abs + (size_t) t * g->n_inputs;
	int		   *order = palloc(sizeof(int) * g->n_inputs);

	for (int i = 0; i < g->n_inputs; i++)
	{
		int			j = i;

		/* insertion sort: a model has tens of inputs */
		while (j > 0 && a[order[j - 1]] < a[i])
		{
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	appendStringInfoChar(s, '[');
	for (int r = 0; r < g->n_inputs; r++)
	{
		int			i = order[r];

		appendStringInfoString(s, r ? ", {\"input\": " : "{\"input\": ");
		escape_json(s, g->names[i]);
		AppendNumber(s, "mean_abs", a[i] / g->rows);
		AppendNumber(s, "mean", g->sum[(size_t) t * g->n_inputs + i] / g->rows);
		appendStringInfoChar(s, '}');
	}
	appendStringInfoChar(s, ']');
	pfree(order);
}

/* {"rows": n, "tasks": {"ctr": [{"input", "mean_abs", "mean"}, ...], ...}}; NULL without rows. */
Datum
mtl_explain_global_final(PG_FUNCTION_ARGS)
{
	GlobalState *g = PG_ARGISNULL(0) ? NULL : (GlobalState *) PG_GETARG_POINTER(0);
	StringInfoData s;

	if (g == NULL)
		PG_RETURN_NULL();
	initStringInfo(&s);
	appendStringInfo(&s, "{\"rows\": %lld, \"tasks\": {", (long long) g->rows);
	for (int t = 0; t < g->n_tasks; t++)
	{
		if (t > 0)
			appendStringInfoString(&s, ", ");
		escape_json(&s, g->task_names[t]);
		appendStringInfoString(&s, ": ");
		AppendRanked(&s, g, t);
	}
	appendStringInfoString(&s, "}}");
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}
