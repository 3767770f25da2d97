/*
 * The config jsonb of mtl_train: every key checked, with defaults for the
 * rest. Errors name the key and what it accepts.
 */
#include "mtl_pg.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "../core/threads.h"

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
	s->embedding_l2 = 0.2f;		/* per epoch; tests/bench/sparse.sh: sparse ids gain the most */
	s->dropout = 0.0f;
	s->loss_weighting = MTL_WEIGHTING_FIXED;
	s->interaction = MTL_INTERACTION_POOLED;
	s->bag_size = 16;			/* a product's tags, a title's words */
	s->text_buckets = 65536;
	strcpy(s->text_config, "english");
	s->sequence_length = 50;
	s->sequence_pooling = MTL_POOL_DIN;
	s->attention_units = 16;
	s->log_skewed = 1;			/* money amounts and counts: a few huge values */
	s->gradnorm_alpha = 1.5f;
	s->dwa_temperature = 2.0f;
	s->seed = 42;
	s->id_dropout = 0.1f;
	s->validation_fraction = 0.1f;
	s->patience = 2;
	s->validate_every = 2000000;	/* a 5M-row shop overfits within its first epoch */
	s->threads = 1;				/* one core per backend, as PostgreSQL itself, unless asked */
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
	else if (strcmp(key, "negative_rate") == 0)
		task->negative_rate = (float) RangeOrError("tasks.negative_rate", v, 0, 1, true);
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
				 errhint("Valid task keys are: name, type, weight, pos_weight, given, negative_rate.")));
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
	task->negative_rate = 1.0f;
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
InteractionKey(ConfigState *state, const JsonbValue *v)
{
	for (int i = 0; i <= MTL_INTERACTION_LAST; i++)
		if (StringEquals(v, mtl_interaction_name((MtlInteraction) i)))
		{
			state->spec->interaction = (MtlInteraction) i;
			return;
		}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("config key \"interaction\" must be one of \"ids\", \"pooled\", \"fm\"")));
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
TasksKey(ConfigState *state, const JsonbValue *v)
{
	ParseTasks(state, v);
}

static void
ModelKey(ConfigState *state, const JsonbValue *v)
{
	ParseModel(state->spec, v);
}

static void
ScenarioKey(ConfigState *state, const JsonbValue *v)
{
	ParseScenario(state->spec, v);
}

/* "text": ["title", ...], the feature keys whose strings are texts. */
static void
TextKey(ConfigState *state, const JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	MtlSpec    *spec = state->spec;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"text\" must be an array of feature keys")));
	spec->n_text = 0;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (e.type != jbvString || e.val.string.len < 1 || e.val.string.len >= MTL_NAME_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("config key \"text\" must list feature keys of 1 to %d characters",
							MTL_NAME_LEN - 1)));
		if (spec->n_text == MTL_MAX_TEXT)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("config key \"text\" may list at most %d keys", MTL_MAX_TEXT)));
		memcpy(spec->text_fields[spec->n_text], e.val.string.val, e.val.string.len);
		spec->text_fields[spec->n_text++][e.val.string.len] = '\0';
	}
}

/* "sequences": {"recent_items": "item", ...}, the feature keys whose lists are item ids. */
static void
SequencesKey(ConfigState *state, const JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	k,
				e;
	JsonbIteratorToken tok;
	MtlSpec    *spec = state->spec;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"sequences\" must be an object such as {\"recent_items\": \"item\"}")));
	spec->n_seq = 0;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		JsonbIteratorNext(&it, &e, true);
		if (k.val.string.len < 1 || k.val.string.len >= MTL_NAME_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("config key \"sequences\" must name feature keys of 1 to %d characters",
							MTL_NAME_LEN - 1)));
		if (!StringEquals(&e, "item"))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sequence \"%.*s\" must hold \"item\" ids", k.val.string.len, k.val.string.val),
					 errhint("A sequence's values are item ids: they share the items' embeddings.")));
		if (spec->n_seq == MTL_MAX_TEXT)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("config key \"sequences\" may name at most %d keys", MTL_MAX_TEXT)));
		memcpy(spec->seq_fields[spec->n_seq], k.val.string.val, k.val.string.len);
		spec->seq_fields[spec->n_seq++][k.val.string.len] = '\0';
	}
}

static void
SequencePoolingKey(ConfigState *state, const JsonbValue *v)
{
	if (StringEquals(v, "din"))
		state->spec->sequence_pooling = MTL_POOL_DIN;
	else if (StringEquals(v, "mean"))
		state->spec->sequence_pooling = MTL_POOL_MEAN;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"sequence_pooling\" must be \"din\" or \"mean\"")));
}

/* "text_config": a text search configuration that exists. */
static void
TextConfigKey(ConfigState *state, const JsonbValue *v)
{
	if (v->type != jbvString || v->val.string.len < 1 || v->val.string.len >= MTL_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"text_config\" must name a text search configuration")));
	memcpy(state->spec->text_config, v->val.string.val, v->val.string.len);
	state->spec->text_config[v->val.string.len] = '\0';
	MtlTextConfigOid(state->spec->text_config);
}

static void
WeightingKey(ConfigState *state, const JsonbValue *v)
{
	ParseWeighting(state->spec, v);
}

/*
 * Every config key of mtl_train, declared once: how its value is read into
 * MtlSpec, and whether it shapes the model (then mtl_update refuses it) or
 * only steers training (then mtl_update may change it). Defaults are in
 * SetDefaults; the README's "Config keys" lists both.
 */
typedef enum ValueKind
{
	V_INT,						/* int field, integer in [min, max] */
	V_U64,						/* uint64 field, integer in [min, max] */
	V_FLOAT,					/* float field, number in [min, max] (or (min, max]) */
	V_DOUBLE,					/* double field, likewise */
	V_BOOL,						/* int field, true or false */
	V_UNITS,					/* int array of widths and its layer count */
	V_CUSTOM					/* its own function */
} ValueKind;

typedef struct ConfigKey
{
	const char *name;
	bool		shapes_model;
	ValueKind	kind;
	size_t		at;				/* offsetof the field in MtlSpec */
	size_t		count_at;		/* V_UNITS: offsetof the layer count */
	double		min,
				max;
	bool		min_open;		/* V_FLOAT, V_DOUBLE: min itself excluded */
	void		(*parse) (ConfigState *state, const JsonbValue *v);	/* V_CUSTOM */
} ConfigKey;

#define SPEC(field) offsetof(MtlSpec, field)
#define CUSTOM(name, shapes, fn) {name, shapes, V_CUSTOM, 0, 0, 0, 0, false, fn}
#define INT(name, shapes, field, lo, hi) {name, shapes, V_INT, SPEC(field), 0, lo, hi, false, NULL}
#define REAL(kind, name, shapes, field, lo, hi, open) {name, shapes, kind, SPEC(field), 0, lo, hi, open, NULL}
#define UNITS(name, field, count) {name, true, V_UNITS, SPEC(field), SPEC(count), 0, 0, false, NULL}
#define BOOL(name, field) {name, false, V_BOOL, SPEC(field), 0, 0, 0, false, NULL}
#define SHAPE_BOOL(name, field) {name, true, V_BOOL, SPEC(field), 0, 0, 0, false, NULL}

static const ConfigKey config_keys[] = {
	/* the model's shape */
	CUSTOM("tasks", true, TasksKey),
	CUSTOM("model", true, ModelKey),
	INT("embedding_dim", true, embedding_dim, 1, 256),
	INT("experts", true, n_experts, 1, MTL_MAX_EXPERTS),
	INT("levels", true, n_levels, 1, MTL_MAX_LEVELS),
	INT("shared_experts", true, shared_experts, 0, MTL_MAX_EXPERTS),
	INT("task_experts", true, task_experts, 0, MTL_MAX_EXPERTS),
	UNITS("expert_units", expert_units, n_expert_layers),
	UNITS("bottom_units", bottom_units, n_bottom_layers),
	UNITS("tower_units", tower_units, n_tower_layers),
	CUSTOM("scenario", true, ScenarioKey),
	CUSTOM("interaction", true, InteractionKey),
	CUSTOM("loss_weighting", true, WeightingKey),
	INT("bag_size", true, bag_size, 1, MTL_MAX_BAG),
	CUSTOM("text", true, TextKey),
	INT("text_buckets", true, text_buckets, 1, 1 << 24),
	CUSTOM("text_config", true, TextConfigKey),
	CUSTOM("sequences", true, SequencesKey),
	INT("sequence_length", true, sequence_length, 1, MTL_MAX_BAG),
	CUSTOM("sequence_pooling", true, SequencePoolingKey),
	INT("attention_units", true, attention_units, 1, MTL_MAX_ATTENTION),
	SHAPE_BOOL("log_skewed", log_skewed),
	/* training */
	INT("epochs", false, epochs, 1, MTL_MAX_EPOCHS),
	INT("batch_size", false, batch_size, 1, 65536),
	REAL(V_FLOAT, "learning_rate", false, learning_rate, 0, 10, true),
	REAL(V_FLOAT, "lr_decay", false, lr_decay, 0, 1, true),
	REAL(V_FLOAT, "clip_norm", false, clip_norm, 0, 1e6, false),
	REAL(V_FLOAT, "l2", false, l2, 0, 10, false),
	REAL(V_FLOAT, "embedding_l2", false, embedding_l2, 0, 10, false),
	REAL(V_FLOAT, "dropout", false, dropout, 0, 0.9, false),
	REAL(V_FLOAT, "id_dropout", false, id_dropout, 0, 0.99, false),
	REAL(V_FLOAT, "gradnorm_alpha", false, gradnorm_alpha, 0, 10, false),
	REAL(V_FLOAT, "dwa_temperature", false, dwa_temperature, 0, 100, true),
	REAL(V_FLOAT, "validation_fraction", false, validation_fraction, 0, 0.5, false),
	INT("patience", false, patience, 0, MTL_MAX_EPOCHS),
	INT("validate_every", false, validate_every, 0, INT32_MAX),
	{"seed", false, V_U64, SPEC(seed), 0, 0, INT32_MAX, false, NULL},
	INT("threads", false, threads, 1, MTL_MAX_THREADS),
	BOOL("verbose", verbose),
	BOOL("record_seconds", record_seconds),
	BOOL("sample_weight", sample_weight),
	REAL(V_DOUBLE, "max_memory_mb", false, max_memory_mb, 0, 1e9, true),
	REAL(V_DOUBLE, "rows_memory_mb", false, rows_memory_mb, 0, 1e9, false),
};

static const ConfigKey *
FindKey(const char *name)
{
	for (int i = 0; i < (int) lengthof(config_keys); i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

/* The keys, all or only those mtl_update may change, as "a, b, c". */
static char *
KeyList(bool training_only)
{
	StringInfoData out;

	initStringInfo(&out);
	for (int i = 0; i < (int) lengthof(config_keys); i++)
		if (!training_only || !config_keys[i].shapes_model)
			appendStringInfo(&out, "%s%s", out.len > 0 ? ", " : "", config_keys[i].name);
	return out.data;
}

static void
ParseKey(ConfigState *state, const char *key, const JsonbValue *v)
{
	const ConfigKey *k = FindKey(key);
	char	   *field;

	if (k == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown config key \"%s\"", key),
				 errhint("Valid keys are: %s.", KeyList(false))));
	field = (char *) state->spec + k->at;
	switch (k->kind)
	{
		case V_INT:
			*(int *) field = IntOrError(key, v, (int) k->min, (int) k->max);
			break;
		case V_U64:
			*(uint64 *) field = (uint64) IntOrError(key, v, (int) k->min, (int) k->max);
			break;
		case V_FLOAT:
			*(float *) field = (float) RangeOrError(key, v, k->min, k->max, k->min_open);
			break;
		case V_DOUBLE:
			*(double *) field = RangeOrError(key, v, k->min, k->max, k->min_open);
			break;
		case V_BOOL:
			*(int *) field = BoolOrError(key, v);
			break;
		case V_UNITS:
			UnitsOrError(key, v, (int *) ((char *) state->spec + k->count_at), (int *) field);
			break;
		case V_CUSTOM:
			k->parse(state, v);
			break;
	}
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
/* Negative down-sampling: of one binary task at most, which no "given" conditions. */
static void
CheckNegativeRates(const MtlSpec *spec)
{
	int			sampled = -1;

	for (int t = 0; t < spec->n_tasks; t++)
	{
		const MtlTask *task = &spec->tasks[t];

		if (task->negative_rate >= 1.0f)
			continue;
		if (task->type != MTL_TASK_BINARY || task->given >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("task \"%s\" has a negative_rate: only a binary task without \"given\" can be down-sampled",
							task->name)));
		if (sampled >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tasks \"%s\" and \"%s\" both have a negative_rate: down-sample one task at most",
							spec->tasks[sampled].name, task->name)));
		sampled = t;
	}
}

static void
CheckCombination(const MtlSpec *spec)
{
	int			per_level = spec->n_tasks * spec->task_experts + spec->shared_experts;

	CheckNegativeRates(spec);

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
	const ConfigKey *k = FindKey(key);

	if (strcmp(key, "add_tasks") == 0)
		ParseTasks(state, v);
	else if (strcmp(key, "freeze") == 0)
		state->freeze_shared = ParseFreeze(v);
	else if (k != NULL && !k->shapes_model)
		ParseKey(state, key, v);
	else if (k != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"%s\" is fixed by the model and cannot be changed by mtl_update", key),
				 errhint("mtl_update accepts: add_tasks, freeze, %s.", KeyList(true))));
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown config key \"%s\"", key),
				 errhint("mtl_update accepts: add_tasks, freeze, %s.", KeyList(true))));
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
	spec->sample_weight = defaults.sample_weight;
	state->spec = spec;
	WalkConfig(config, state, "{\"learning_rate\": 0.001, \"freeze\": \"shared\"}", ParseUpdateKey);
	*freeze_shared = state->freeze_shared;
	ResolveGiven(state);
	CheckCombination(spec);
	for (int t = old->n_tasks; t < spec->n_tasks; t++)
		if (spec->tasks[t].negative_rate < 1.0f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("added task \"%s\" cannot have a negative_rate: the model was trained on every negative row of it",
							spec->tasks[t].name)));
	pfree(state);
}
