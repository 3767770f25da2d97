/*
 * The config jsonb of mtl_train: every key checked, with defaults for the
 * rest. Errors name the key and what it accepts.
 */
#include "mtl_pg.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#define VALID_KEYS "tasks, model, embedding_dim, experts, levels, shared_experts, task_experts, " \
	"expert_units, bottom_units, tower_units, scenario, epochs, batch_size, learning_rate, " \
	"lr_decay, clip_norm, l2, dropout, id_dropout, loss_weighting, gradnorm_alpha, " \
	"dwa_temperature, validation_fraction, patience, seed, threads, " \
	"verbose, record_seconds, max_memory_mb, rows_memory_mb"

/* A task's "given" names a task that may come later: resolved after parsing. */
typedef struct ConfigState
{
	MtlSpec    *spec;
	char		given[MTL_MAX_TASKS][MTL_NAME_LEN];
	bool		freeze_shared;	/* mtl_update's "freeze" */
} ConfigState;

/* Defaults: see README "Config keys". */
static void
SetDefaults(MtlSpec *s)
{
	memset(s, 0, sizeof(*s));
	s->model = MTL_MODEL_MMOE;
	s->embedding_dim = 8;
	s->n_experts = 4;
	s->n_levels = 2;
	s->shared_experts = 2;
	s->task_experts = 1;
	s->n_expert_layers = 1;
	s->expert_units[0] = 64;
	s->n_bottom_layers = 1;
	s->bottom_units[0] = 128;
	s->n_tower_layers = 1;
	s->tower_units[0] = 32;
	s->epochs = 30;				/* at most: early stopping usually ends sooner */
	s->batch_size = 512;
	s->learning_rate = 0.003f;
	s->lr_decay = 1.0f;
	s->clip_norm = 0.0f;
	s->l2 = 1e-6f;
	s->dropout = 0.0f;
	s->loss_weighting = MTL_WEIGHTING_FIXED;
	s->gradnorm_alpha = 1.5f;
	s->dwa_temperature = 2.0f;
	s->seed = 42;
	s->id_dropout = 0.1f;
	s->validation_fraction = 0.1f;
	s->patience = 2;
	s->threads = 1;				/* small per-batch products: a second thread costs more than it gains */
	s->verbose = 0;
	s->max_memory_mb = 4096;
	s->rows_memory_mb = 1024;
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
ParseTaskKey(MtlTask *task, char *given, const char *key, const JsonbValue *v, bool *has_type)
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
	else if (strcmp(key, "pos_weight") == 0)
		task->pos_weight = (float) RangeOrError("tasks.pos_weight", v, 0, 1e6, true);
	else if (strcmp(key, "given") == 0)
	{
		if (v->type != jbvString || v->val.string.len < 1 || v->val.string.len >= MTL_NAME_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("task \"given\" must name another task")));
		memcpy(given, v->val.string.val, v->val.string.len);
		given[v->val.string.len] = '\0';
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown task key \"%s\"", key),
				 errhint("Valid task keys are: name, type, weight, pos_weight, given.")));
}

static void
ParseTask(ConfigState *state, const JsonbValue *v)
{
	MtlSpec    *spec = state->spec;
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
	task->pos_weight = 1.0f;
	task->given = -1;
	task->target_std = 1.0f;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		JsonbIteratorNext(&it, &val, true);
		ParseTaskKey(task, state->given[spec->n_tasks], key, &val, &has_type);
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
ParseTasks(ConfigState *state, const JsonbValue *v)
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
			ParseTask(state, &elem);
}

static void
ParseModel(MtlSpec *spec, const JsonbValue *v)
{
	for (int m = 0; m <= MTL_MODEL_LAST; m++)
		if (StringEquals(v, mtl_model_type_name((MtlModelType) m)))
		{
			spec->model = (MtlModelType) m;
			return;
		}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("config key \"model\" must be one of \"mmoe\", \"ple\", \"shared_bottom\", "
					"\"single_task\", \"esmm\"")));
}

static void
ParseWeighting(MtlSpec *spec, const JsonbValue *v)
{
	static const char *const names[] = {"fixed", "uncertainty", "gradnorm", "dwa"};

	for (int w = 0; w <= MTL_WEIGHTING_LAST; w++)
		if (StringEquals(v, names[w]))
		{
			spec->loss_weighting = (MtlLossWeighting) w;
			return;
		}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("config key \"loss_weighting\" must be one of \"fixed\", \"uncertainty\", "
					"\"gradnorm\", \"dwa\"")));
}

static void
ParseScenario(MtlSpec *spec, const JsonbValue *v)
{
	if (v->type != jbvString || v->val.string.len < 1 || v->val.string.len >= MTL_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"scenario\" must name a context key (1 to %d characters)",
						MTL_NAME_LEN - 1)));
	memcpy(spec->scenario, v->val.string.val, v->val.string.len);
	spec->scenario[v->val.string.len] = '\0';
}

static void
ParseKey(ConfigState *state, const char *key, const JsonbValue *v)
{
	MtlSpec    *s = state->spec;

	if (strcmp(key, "tasks") == 0)
		ParseTasks(state, v);
	else if (strcmp(key, "model") == 0)
		ParseModel(s, v);
	else if (strcmp(key, "levels") == 0)
		s->n_levels = IntOrError(key, v, 1, MTL_MAX_LEVELS);
	else if (strcmp(key, "shared_experts") == 0)
		s->shared_experts = IntOrError(key, v, 0, MTL_MAX_EXPERTS);
	else if (strcmp(key, "task_experts") == 0)
		s->task_experts = IntOrError(key, v, 0, MTL_MAX_EXPERTS);
	else if (strcmp(key, "scenario") == 0)
		ParseScenario(s, v);
	else if (strcmp(key, "lr_decay") == 0)
		s->lr_decay = (float) RangeOrError(key, v, 0, 1, true);
	else if (strcmp(key, "clip_norm") == 0)
		s->clip_norm = (float) RangeOrError(key, v, 0, 1e6, false);
	else if (strcmp(key, "dropout") == 0)
		s->dropout = (float) RangeOrError(key, v, 0, 0.9, false);
	else if (strcmp(key, "loss_weighting") == 0)
		ParseWeighting(s, v);
	else if (strcmp(key, "gradnorm_alpha") == 0)
		s->gradnorm_alpha = (float) RangeOrError(key, v, 0, 10, false);
	else if (strcmp(key, "dwa_temperature") == 0)
		s->dwa_temperature = (float) RangeOrError(key, v, 0, 100, true);
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
	else if (strcmp(key, "rows_memory_mb") == 0)
		s->rows_memory_mb = RangeOrError(key, v, 0, 1e9, false);
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

/* Resolve each "given" to a task number; both binary, no cycles. */
static void
ResolveGiven(ConfigState *state)
{
	MtlSpec    *spec = state->spec;

	for (int t = 0; t < spec->n_tasks; t++)
	{
		MtlTask    *task = &spec->tasks[t];

		if (state->given[t][0] == '\0')
			continue;
		for (int p = 0; p < spec->n_tasks; p++)
			if (p != t && strcmp(spec->tasks[p].name, state->given[t]) == 0)
				task->given = p;
		if (task->given < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("task \"%s\" is given \"%s\", which is not another task",
							task->name, state->given[t])));
		if (task->type != MTL_TASK_BINARY || spec->tasks[task->given].type != MTL_TASK_BINARY)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("task \"%s\" is given \"%s\": both must be binary tasks",
							task->name, state->given[t])));
	}
	for (int t = 0; t < spec->n_tasks; t++)
	{
		int			at = t;

		for (int steps = 0; spec->tasks[at].given >= 0; steps++)
		{
			if (steps >= spec->n_tasks)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the tasks' \"given\" keys form a cycle through \"%s\"",
								spec->tasks[t].name)));
			at = spec->tasks[at].given;
		}
	}
}

/* Settings that are valid alone but not together. */
static void
CheckCombination(const MtlSpec *spec)
{
	int			per_level = spec->n_tasks * spec->task_experts + spec->shared_experts;

	if (spec->model == MTL_MODEL_PLE && (per_level < 1 || per_level > MTL_MAX_EXPERTS))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ple needs between 1 and %d experts per level, not %d (tasks x task_experts + shared_experts)",
						MTL_MAX_EXPERTS, per_level)));
	if (spec->loss_weighting == MTL_WEIGHTING_GRADNORM &&
		(spec->model == MTL_MODEL_SINGLE_TASK || spec->model == MTL_MODEL_ESMM ||
		 (spec->model == MTL_MODEL_PLE && spec->shared_experts == 0)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("loss_weighting \"gradnorm\" needs a shared layer, which model \"%s\" has not",
						mtl_model_type_name(spec->model)),
				 errhint("Use shared_bottom, mmoe, or ple with shared_experts > 0.")));
}

/* Call each(state, key, value) for every key of the config object. */
static void
WalkConfig(Jsonb *config, ConfigState *state, const char *example,
		   void (*each) (ConfigState *state, const char *key, const JsonbValue *v))
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(config) || JB_ROOT_IS_SCALAR(config))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config must be a jsonb object"),
				 errhint("For example '%s'.", example)));
	it = JsonbIteratorInit(&config->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		JsonbIteratorNext(&it, &v, true);
		each(state, key, &v);
		pfree(key);
	}
}

void
MtlParseConfig(Jsonb *config, MtlSpec *spec)
{
	ConfigState *state = palloc0(sizeof(ConfigState));

	SetDefaults(spec);
	state->spec = spec;
	WalkConfig(config, state, "{\"tasks\": [{\"name\": \"ctr\", \"type\": \"binary\"}]}", ParseKey);
	if (spec->n_tasks == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"tasks\" is required and must list at least one task"),
				 errhint("For example '{\"tasks\": [{\"name\": \"ctr\", \"type\": \"binary\"}]}'.")));
	ResolveGiven(state);
	CheckCombination(spec);
	pfree(state);
}

#define UPDATE_KEYS "add_tasks, freeze, epochs, batch_size, learning_rate, lr_decay, clip_norm, " \
	"l2, dropout, id_dropout, gradnorm_alpha, dwa_temperature, validation_fraction, patience, " \
	"seed, threads, verbose, record_seconds, max_memory_mb, rows_memory_mb"

/* Whether key is one mtl_update may change (the training settings). */
static bool
UpdateKey(const char *key)
{
	static const char *const keys[] = {
		"epochs", "batch_size", "learning_rate", "lr_decay", "clip_norm", "l2", "dropout",
		"id_dropout", "gradnorm_alpha", "dwa_temperature", "validation_fraction", "patience",
		"seed", "threads", "verbose", "record_seconds", "max_memory_mb", "rows_memory_mb"
	};

	for (int i = 0; i < (int) lengthof(keys); i++)
		if (strcmp(key, keys[i]) == 0)
			return true;
	return false;
}

/* Whether key is an mtl_train key that shapes the model (mtl_update cannot change it). */
static bool
ArchitectureKey(const char *key)
{
	static const char *const keys[] = {
		"tasks", "model", "embedding_dim", "experts", "levels", "shared_experts", "task_experts",
		"expert_units", "bottom_units", "tower_units", "scenario", "loss_weighting"
	};

	for (int i = 0; i < (int) lengthof(keys); i++)
		if (strcmp(key, keys[i]) == 0)
			return true;
	return false;
}

static bool
ParseFreeze(const JsonbValue *v)
{
	if (StringEquals(v, "none"))
		return false;
	if (StringEquals(v, "shared"))
		return true;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("config key \"freeze\" must be \"none\" or \"shared\" (train the towers only)")));
}

/*
 * The config of mtl_update: the model's own settings, except the training
 * keys given, and any tasks in add_tasks appended after the model's.
 */
static void
ParseUpdateKey(ConfigState *state, const char *key, const JsonbValue *v)
{
	if (strcmp(key, "add_tasks") == 0)
		ParseTasks(state, v);
	else if (strcmp(key, "freeze") == 0)
		state->freeze_shared = ParseFreeze(v);
	else if (UpdateKey(key))
		ParseKey(state, key, v);
	else if (ArchitectureKey(key))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"%s\" is fixed by the model and cannot be changed by mtl_update", key),
				 errhint("mtl_update accepts: " UPDATE_KEYS ".")));
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown config key \"%s\"", key),
				 errhint("mtl_update accepts: " UPDATE_KEYS ".")));
}

void
MtlParseUpdateConfig(Jsonb *config, const MtlSpec *old, MtlSpec *spec, bool *freeze_shared)
{
	ConfigState *state = palloc0(sizeof(ConfigState));
	MtlSpec		defaults;

	SetDefaults(&defaults);
	*spec = *old;
	/* run-time settings a model does not store */
	spec->threads = defaults.threads;
	spec->verbose = defaults.verbose;
	spec->record_seconds = defaults.record_seconds;
	spec->max_memory_mb = defaults.max_memory_mb;
	spec->rows_memory_mb = defaults.rows_memory_mb;
	state->spec = spec;
	WalkConfig(config, state, "{\"learning_rate\": 0.001, \"freeze\": \"shared\"}", ParseUpdateKey);
	*freeze_shared = state->freeze_shared;
	ResolveGiven(state);
	CheckCombination(spec);
	pfree(state);
}
