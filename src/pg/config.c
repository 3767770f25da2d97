/*
 * The config jsonb of mtl_train: every key checked, with defaults for the
 * rest. Errors name the key and what it accepts.
 */
#include "mtl_pg.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#define VALID_KEYS "tasks, model, embedding_dim, experts, expert_units, bottom_units, " \
	"tower_units, epochs, batch_size, learning_rate, l2, seed, id_dropout, " \
	"validation_fraction, patience, threads, " \
	"verbose, record_seconds, max_memory_mb"

/* Defaults: see README "Config keys". */
static void
SetDefaults(MtlSpec *s)
{
	memset(s, 0, sizeof(*s));
	s->model = MTL_MODEL_MMOE;
	s->embedding_dim = 8;
	s->n_experts = 4;
	s->n_expert_layers = 1;
	s->expert_units[0] = 64;
	s->n_bottom_layers = 1;
	s->bottom_units[0] = 128;
	s->n_tower_layers = 1;
	s->tower_units[0] = 32;
	s->epochs = 30;				/* at most: early stopping usually ends sooner */
	s->batch_size = 512;
	s->learning_rate = 0.003f;
	s->l2 = 1e-6f;
	s->seed = 42;
	s->id_dropout = 0.1f;
	s->validation_fraction = 0.1f;
	s->patience = 2;
	s->threads = 1;				/* small per-batch products: a second thread costs more than it gains */
	s->verbose = 0;
	s->max_memory_mb = 4096;
}

static const char *
ValueKindName(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		default:
			return "another type";
	}
}

static double
NumberOrError(const char *key, const JsonbValue *v, const char *expected)
{
	double		d;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"%s\" must be %s, not %s", key, expected, ValueKindName(v))));
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	if (!isfinite(d))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"%s\" must be %s", key, expected)));
	return d;
}

static int
IntOrError(const char *key, const JsonbValue *v, int min, int max)
{
	char		expected[128];
	double		d;

	snprintf(expected, sizeof(expected), "an integer between %d and %d", min, max);
	d = NumberOrError(key, v, expected);
	if (d != floor(d) || d < min || d > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"%s\" must be %s, not %g", key, expected, d)));
	return (int) d;
}

static double
RangeOrError(const char *key, const JsonbValue *v, double min, double max, bool min_open)
{
	char		expected[128];
	double		d;

	snprintf(expected, sizeof(expected), "a number %s %g and at most %g",
			 min_open ? "greater than" : "at least", min, max);
	d = NumberOrError(key, v, expected);
	if (d > max || d < min || (min_open && d == min))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"%s\" must be %s, not %g", key, expected, d)));
	return d;
}

/* Layer widths: an integer or a non-empty array of up to MTL_MAX_LAYERS integers. */
static void
UnitsOrError(const char *key, const JsonbValue *v, int *count, int *units)
{
	JsonbIterator *it;
	JsonbValue	elem;
	JsonbIteratorToken tok;
	int			n = 0;

	if (v->type == jbvNumeric)
	{
		units[0] = IntOrError(key, v, 1, 4096);
		*count = 1;
		return;
	}
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"%s\" must be an array of layer widths, not %s",
						key, ValueKindName(v))));
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (n >= MTL_MAX_LAYERS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("config key \"%s\" has more than %d layers", key, MTL_MAX_LAYERS)));
		units[n++] = IntOrError(key, &elem, 1, 4096);
	}
	if (n == 0 && strcmp(key, "tower_units") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"%s\" must have at least one layer", key)));
	*count = n;
}

static bool
BoolOrError(const char *key, const JsonbValue *v)
{
	if (v->type != jbvBool)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"%s\" must be true or false, not %s", key, ValueKindName(v))));
	return v->val.boolean;
}

static bool
StringEquals(const JsonbValue *v, const char *s)
{
	return v->type == jbvString && v->val.string.len == (int) strlen(s) &&
		memcmp(v->val.string.val, s, v->val.string.len) == 0;
}

static void
ParseTaskKey(MtlTask *task, const char *key, const JsonbValue *v, bool *has_type)
{
	if (strcmp(key, "name") == 0)
	{
		if (v->type != jbvString || v->val.string.len < 1 || v->val.string.len >= MTL_NAME_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("task \"name\" must be a string of 1 to %d characters", MTL_NAME_LEN - 1)));
		memcpy(task->name, v->val.string.val, v->val.string.len);
		task->name[v->val.string.len] = '\0';
	}
	else if (strcmp(key, "type") == 0)
	{
		if (StringEquals(v, "binary"))
			task->type = MTL_TASK_BINARY;
		else if (StringEquals(v, "regression"))
			task->type = MTL_TASK_REGRESSION;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("task \"type\" must be \"binary\" or \"regression\"")));
		*has_type = true;
	}
	else if (strcmp(key, "weight") == 0)
		task->weight = (float) RangeOrError("tasks.weight", v, 0, 1e6, false);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown task key \"%s\"", key),
				 errhint("Valid task keys are: name, type, weight.")));
}

static void
ParseTask(MtlSpec *spec, const JsonbValue *v)
{
	MtlTask    *task = &spec->tasks[spec->n_tasks];
	JsonbIterator *it;
	JsonbValue	k,
				val;
	JsonbIteratorToken tok;
	bool		has_type = false;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("each task must be an object such as {\"name\": \"ctr\", \"type\": \"binary\"}")));
	if (spec->n_tasks >= MTL_MAX_TASKS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"tasks\" has more than %d tasks", MTL_MAX_TASKS)));
	task->weight = 1.0f;
	task->target_std = 1.0f;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		JsonbIteratorNext(&it, &val, true);
		ParseTaskKey(task, key, &val, &has_type);
	}
	if (task->name[0] == '\0' || !has_type)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("each task needs a \"name\" and a \"type\"")));
	for (int t = 0; t < spec->n_tasks; t++)
		if (strcmp(spec->tasks[t].name, task->name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("task name \"%s\" appears twice", task->name)));
	spec->n_tasks++;
}

static void
ParseTasks(MtlSpec *spec, const JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	elem;
	JsonbIteratorToken tok;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"tasks\" must be an array of tasks, not %s", ValueKindName(v))));
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
		if (tok == WJB_ELEM)
			ParseTask(spec, &elem);
}

static void
ParseModel(MtlSpec *spec, const JsonbValue *v)
{
	if (StringEquals(v, "mmoe"))
		spec->model = MTL_MODEL_MMOE;
	else if (StringEquals(v, "shared_bottom"))
		spec->model = MTL_MODEL_SHARED_BOTTOM;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"model\" must be one of \"mmoe\", \"shared_bottom\"")));
}

static void
ParseKey(MtlSpec *s, const char *key, const JsonbValue *v)
{
	if (strcmp(key, "tasks") == 0)
		ParseTasks(s, v);
	else if (strcmp(key, "model") == 0)
		ParseModel(s, v);
	else if (strcmp(key, "embedding_dim") == 0)
		s->embedding_dim = IntOrError(key, v, 1, 256);
	else if (strcmp(key, "experts") == 0)
		s->n_experts = IntOrError(key, v, 1, MTL_MAX_EXPERTS);
	else if (strcmp(key, "expert_units") == 0)
		UnitsOrError(key, v, &s->n_expert_layers, s->expert_units);
	else if (strcmp(key, "bottom_units") == 0)
		UnitsOrError(key, v, &s->n_bottom_layers, s->bottom_units);
	else if (strcmp(key, "tower_units") == 0)
		UnitsOrError(key, v, &s->n_tower_layers, s->tower_units);
	else if (strcmp(key, "epochs") == 0)
		s->epochs = IntOrError(key, v, 1, MTL_MAX_EPOCHS);
	else if (strcmp(key, "batch_size") == 0)
		s->batch_size = IntOrError(key, v, 1, 65536);
	else if (strcmp(key, "learning_rate") == 0)
		s->learning_rate = (float) RangeOrError(key, v, 0, 10, true);
	else if (strcmp(key, "l2") == 0)
		s->l2 = (float) RangeOrError(key, v, 0, 10, false);
	else if (strcmp(key, "seed") == 0)
		s->seed = (uint64) IntOrError(key, v, 0, INT32_MAX);
	else if (strcmp(key, "id_dropout") == 0)
		s->id_dropout = (float) RangeOrError(key, v, 0, 0.99, false);
	else if (strcmp(key, "validation_fraction") == 0)
		s->validation_fraction = (float) RangeOrError(key, v, 0, 0.5, false);
	else if (strcmp(key, "patience") == 0)
		s->patience = IntOrError(key, v, 0, MTL_MAX_EPOCHS);
	else if (strcmp(key, "threads") == 0)
		s->threads = IntOrError(key, v, 0, 64);
	else if (strcmp(key, "max_memory_mb") == 0)
		s->max_memory_mb = RangeOrError(key, v, 0, 1e9, true);
	else if (strcmp(key, "verbose") == 0)
		s->verbose = BoolOrError(key, v);
	else if (strcmp(key, "record_seconds") == 0)
		s->record_seconds = BoolOrError(key, v);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown config key \"%s\"", key),
				 errhint("Valid keys are: " VALID_KEYS ".")));
}

void
MtlParseConfig(Jsonb *config, MtlSpec *spec)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	SetDefaults(spec);
	if (!JB_ROOT_IS_OBJECT(config) || JB_ROOT_IS_SCALAR(config))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config must be a jsonb object"),
				 errhint("For example '{\"tasks\": [{\"name\": \"ctr\", \"type\": \"binary\"}]}'.")));
	it = JsonbIteratorInit(&config->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		JsonbIteratorNext(&it, &v, true);
		ParseKey(spec, key, &v);
		pfree(key);
	}
	if (spec->n_tasks == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"tasks\" is required and must list at least one task"),
				 errhint("For example '{\"tasks\": [{\"name\": \"ctr\", \"type\": \"binary\"}]}'.")));
}
