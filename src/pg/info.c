/* mtl_info: what a model is, as jsonb. */
#include "mtl_pg.h"

#include <math.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

PG_FUNCTION_INFO_V1(mtl_info);

/* A number, or null when it is not finite (JSON has no NaN). */
static void
AppendNumber(StringInfo s, double v)
{
	if (isfinite(v))
		appendStringInfo(s, "%.6g", v);
	else
		appendStringInfoString(s, "null");
}

static void
AppendNumbers(StringInfo s, const char *key, const double *v, int n)
{
	appendStringInfo(s, ", \"%s\": [", key);
	for (int i = 0; i < n; i++)
	{
		if (i)
			appendStringInfoString(s, ", ");
		AppendNumber(s, v[i]);
	}
	appendStringInfoChar(s, ']');
}

static void
AppendUnits(StringInfo s, const char *key, int n, const int *units)
{
	appendStringInfo(s, ", \"%s\": [", key);
	for (int l = 0; l < n; l++)
		appendStringInfo(s, "%s%d", l ? ", " : "", units[l]);
	appendStringInfoChar(s, ']');
}

static void
AppendTasks(StringInfo s, const MtlSpec *spec)
{
	appendStringInfoString(s, "\"tasks\": [");
	for (int t = 0; t < spec->n_tasks; t++)
	{
		const MtlTask *task = &spec->tasks[t];

		appendStringInfo(s, "%s{\"name\": ", t ? ", " : "");
		escape_json(s, task->name);
		appendStringInfo(s, ", \"type\": \"%s\", \"weight\": %.6g",
						 mtl_task_type_name(task->type), task->weight);
		if (task->type == MTL_TASK_BINARY)
			appendStringInfo(s, ", \"pos_weight\": %.6g", task->pos_weight);
		if (task->negative_rate < 1.0f)
			appendStringInfo(s, ", \"negative_rate\": %.6g", task->negative_rate);
		if (task->given >= 0)
		{
			appendStringInfoString(s, ", \"given\": ");
			escape_json(s, spec->tasks[task->given].name);
		}
		if (task->type == MTL_TASK_REGRESSION)
			appendStringInfo(s, ", \"target_mean\": %.9g, \"target_std\": %.9g",
							 task->target_mean, task->target_std);
		appendStringInfoChar(s, '}');
	}
	appendStringInfoChar(s, ']');
}

static void
AppendArchitecture(StringInfo s, const MtlModel *model)
{
	const MtlSpec *spec = &model->spec;

	appendStringInfo(s, ", \"model\": \"%s\", \"embedding_dim\": %d, \"interaction\": \"%s\"",
					 mtl_model_type_name(spec->model), spec->embedding_dim,
					 mtl_interaction_name(spec->interaction));
	if (spec->model == MTL_MODEL_MMOE)
		appendStringInfo(s, ", \"experts\": %d", spec->n_experts);
	if (spec->model == MTL_MODEL_PLE)
		appendStringInfo(s, ", \"levels\": %d, \"shared_experts\": %d, \"task_experts\": %d",
						 spec->n_levels, spec->shared_experts, spec->task_experts);
	if (spec->model == MTL_MODEL_MMOE || spec->model == MTL_MODEL_PLE)
		AppendUnits(s, "expert_units", spec->n_expert_layers, spec->expert_units);
	else
		AppendUnits(s, "bottom_units", spec->n_bottom_layers, spec->bottom_units);
	AppendUnits(s, "tower_units", spec->n_tower_layers, spec->tower_units);
	if (spec->scenario[0] != '\0')
	{
		appendStringInfoString(s, ", \"scenario\": ");
		escape_json(s, spec->scenario);
		appendStringInfo(s, ", \"scenarios\": %d", model->layout.n_scenarios);
	}
	appendStringInfo(s, ", \"input_width\": %d, \"parameters\": %zu, \"embedding_parameters\": %zu",
					 model->layout.D, model->layout.n_params,
					 model->layout.n_params - model->layout.n_dense);
}

static void
AppendFeatures(StringInfo s, const MtlTrained *m)
{
	const MtlSchema *schema = &m->schema;

	appendStringInfo(s, ", \"users\": %lld, \"items\": %lld, \"features\": [",
					 (long long) schema->ids[MTL_SIDE_USER].n, (long long) schema->ids[MTL_SIDE_ITEM].n);
	for (int f = 0; f < schema->n_fields; f++)
	{
		const MtlFeature *feat = &schema->fields[f];

		appendStringInfo(s, "%s{\"name\": ", f ? ", " : "");
		escape_json(s, feat->name);
		appendStringInfo(s, ", \"side\": \"%s\"", feat->side == MTL_SIDE_USER ? "user" :
						 feat->side == MTL_SIDE_ITEM ? "item" : "context");
		if (feat->kind == MTL_KIND_CAT)
			appendStringInfo(s, ", \"kind\": \"categorical\", \"values\": %lld",
							 (long long) feat->n_values);
		else if (feat->kind == MTL_KIND_SEQ)
			appendStringInfo(s, ", \"kind\": \"sequence\", \"of\": \"item\", \"pooling\": \"%s\", \"sequence_length\": %d",
							 m->model.spec.sequence_pooling == MTL_POOL_DIN ? "din" : "mean", feat->width);
		else if (feat->kind == MTL_KIND_BAG)
			appendStringInfo(s, ", \"kind\": \"%s\", \"values\": %lld, \"bag_size\": %d",
							 MtlIsTextField(&m->model.spec, feat->name, (int) strlen(feat->name)) ?
							 "text" : "list", (long long) feat->n_values, feat->width);
		else
			appendStringInfo(s, ", \"kind\": \"numeric\", \"transform\": \"%s\", \"mean\": %.9g, \"std\": %.9g",
							 feat->transform == MTL_NUM_LOG ? "log1p" : "none", feat->mean, feat->std);
		appendStringInfoChar(s, '}');
	}
	appendStringInfoChar(s, ']');
}

static const char *const weighting_names[] = {"fixed", "uncertainty", "gradnorm", "dwa"};

static void
AppendTaskLosses(StringInfo s, const MtlTrained *m)
{
	const MtlSpec *spec = &m->model.spec;
	const MtlTrainSummary *sum = &m->summary;

	appendStringInfoString(s, ", \"task_loss\": {");
	for (int t = 0; t < spec->n_tasks; t++)
	{
		double		v[MTL_MAX_EPOCHS];

		for (int e = 0; e < sum->epochs; e++)
			v[e] = sum->task_loss[e][t];
		if (t)
			appendStringInfoString(s, ", ");
		escape_json(s, spec->tasks[t].name);
		appendStringInfoString(s, ": [");
		for (int e = 0; e < sum->epochs; e++)
		{
			if (e)
				appendStringInfoString(s, ", ");
			AppendNumber(s, v[e]);
		}
		appendStringInfoChar(s, ']');
	}
	appendStringInfo(s, "}, \"loss_weighting\": \"%s\", \"loss_weights\": {",
					 weighting_names[spec->loss_weighting]);
	for (int t = 0; t < spec->n_tasks; t++)
	{
		if (t)
			appendStringInfoString(s, ", ");
		escape_json(s, spec->tasks[t].name);
		appendStringInfoString(s, ": ");
		AppendNumber(s, sum->loss_weight[t]);
	}
	appendStringInfoChar(s, '}');
}

/* Each task's metrics on the held-out rows: "holdout": {"ctr": {"rows": n, "auc": ..}}. */
static void
AppendHoldout(StringInfo s, const MtlTrained *m)
{
	const MtlSpec *spec = &m->model.spec;

	if (m->summary.validation_rows == 0)
		return;
	appendStringInfoString(s, ", \"holdout\": {");
	for (int t = 0; t < spec->n_tasks; t++)
	{
		const MtlHoldout *h = &m->summary.holdout[t];
		bool		regression = spec->tasks[t].type == MTL_TASK_REGRESSION;

		if (t > 0)
			appendStringInfoString(s, ", ");
		escape_json(s, spec->tasks[t].name);
		appendStringInfo(s, ": {\"rows\": %lld, \"%s\": ", (long long) h->rows,
						 regression ? "rmse" : "auc");
		AppendNumber(s, regression ? h->rmse : h->auc);
		appendStringInfo(s, ", \"%s\": ", regression ? "mae" : "logloss");
		AppendNumber(s, regression ? h->mae : h->logloss);
		appendStringInfoChar(s, '}');
	}
	appendStringInfoChar(s, '}');
}

/* Seconds per phase when the model recorded them (record_seconds), else null. */
static void
AppendPhases(StringInfo s, const MtlTrainSummary *sum)
{
	appendStringInfoString(s, ", \"phase_seconds\": ");
	if (isnan(sum->phase_seconds[MTL_PHASE_EPOCHS]))
	{
		appendStringInfoString(s, "null");
		return;
	}
	appendStringInfoChar(s, '{');
	for (int p = 0; p < MTL_N_PHASES; p++)
	{
		appendStringInfo(s, "%s\"%s\": ", p ? ", " : "", mtl_phase_names[p]);
		AppendNumber(s, sum->phase_seconds[p]);
	}
	appendStringInfoChar(s, '}');
}

static void
AppendTraining(StringInfo s, const MtlTrained *m)
{
	const MtlSpec *spec = &m->model.spec;
	const MtlTrainSummary *sum = &m->summary;

	appendStringInfo(s, ", \"training\": {\"rows\": %lld, \"epochs\": %d, \"seconds\": ",
					 (long long) sum->rows, sum->epochs);
	AppendNumber(s, sum->seconds);
	AppendPhases(s, sum);
	AppendNumbers(s, "loss", sum->epoch_loss, sum->epochs);
	appendStringInfo(s, ", \"validation_rows\": %lld", (long long) sum->validation_rows);
	if (sum->validation_rows > 0)
	{
		AppendNumbers(s, "validation_loss", sum->validation_loss, sum->epochs);
		appendStringInfo(s, ", \"best_epoch\": %d", sum->best_epoch);
	}
	AppendTaskLosses(s, m);
	AppendHoldout(s, m);
	appendStringInfo(s, ", \"batch_size\": %d, \"learning_rate\": %.6g, \"lr_decay\": %.6g, "
					 "\"clip_norm\": %.6g, \"l2\": %.6g, \"embedding_l2\": %.6g, \"dropout\": %.6g, "
					 "\"id_dropout\": %.6g, \"validation_fraction\": %.6g, \"patience\": %d, "
					 "\"validate_every\": %d, \"seed\": %llu}",
					 spec->batch_size, spec->learning_rate, spec->lr_decay, spec->clip_norm,
					 spec->l2, spec->embedding_l2, spec->dropout, spec->id_dropout,
					 spec->validation_fraction, spec->patience, spec->validate_every,
					 (unsigned long long) spec->seed);
}

/* An expert's name: its owner's (a task's name, or "shared") and its number there. */
static void
AppendExpertName(StringInfo s, const MtlModel *model, const MtlLevel *lv, int e)
{
	int			owner = lv->owner[e];
	int			number = 1;
	StringInfoData name;

	for (int i = 0; i < e; i++)
		number += lv->owner[i] == owner;
	initStringInfo(&name);
	appendStringInfo(&name, "%s.%d",
					 owner < model->spec.n_tasks ? model->spec.tasks[owner].name : "shared", number);
	escape_json(s, name.data);
	pfree(name.data);
}

/*
 * Gate utilisation: for every gated output of every level, the mean weight
 * its gate put on each expert over the rows measured after training.
 */
static void
AppendGates(StringInfo s, const MtlTrained *m)
{
	const MtlModel *model = &m->model;
	const MtlLayout *L = &model->layout;
	bool		first = true;

	appendStringInfo(s, ", \"gates\": {\"rows\": %lld, \"outputs\": [",
					 (long long) m->summary.gate_rows);
	for (int k = 0; k < L->n_levels; k++)
		for (int o = 0; o <= model->spec.n_tasks; o++)
		{
			const MtlLevel *lv = &L->levels[k];

			if (lv->gate_col[o] < 0)
				continue;
			appendStringInfo(s, "%s{\"level\": %d, \"output\": ", first ? "" : ", ", k + 1);
			escape_json(s, o < model->spec.n_tasks ? model->spec.tasks[o].name : "shared");
			appendStringInfoString(s, ", \"experts\": {");
			for (int j = 0; j < lv->gate_n[o]; j++)
			{
				if (j)
					appendStringInfoString(s, ", ");
				AppendExpertName(s, model, lv, lv->gate_expert[o][j]);
				appendStringInfoString(s, ": ");
				AppendNumber(s, m->summary.gate_use[k][o][j]);
			}
			appendStringInfoString(s, "}}");
			first = false;
		}
	appendStringInfoString(s, "]}");
}

Datum
mtl_info(PG_FUNCTION_ARGS)
{
	bytea	   *model = PG_GETARG_BYTEA_PP(0);
	MtlTrained	m;
	StringInfoData s;

	MtlDecodeOrError((const uint8 *) VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model), &m);
	initStringInfo(&s);
	appendStringInfo(&s, "{\"format_version\": %d, \"bytes\": %zu, \"compression\": \"%s\", ",
					 MTL_FORMAT_VERSION, (size_t) VARSIZE_ANY_EXHDR(model),
					 mtl_compression_name(m.compression));
	AppendTasks(&s, &m.model.spec);
	AppendArchitecture(&s, &m.model);
	AppendFeatures(&s, &m);
	AppendTraining(&s, &m);
	AppendGates(&s, &m);
	appendStringInfoChar(&s, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}
