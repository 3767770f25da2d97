/* mtl_info: what a model is, as jsonb. */
#include "mtl_pg.h"

#include <math.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

PG_FUNCTION_INFO_V1(mtl_info);

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

	appendStringInfo(s, ", \"model\": \"%s\", \"embedding_dim\": %d",
					 mtl_model_type_name(spec->model), spec->embedding_dim);
	if (spec->model == MTL_MODEL_MMOE)
	{
		appendStringInfo(s, ", \"experts\": %d", spec->n_experts);
		AppendUnits(s, "expert_units", spec->n_expert_layers, spec->expert_units);
	}
	else
		AppendUnits(s, "bottom_units", spec->n_bottom_layers, spec->bottom_units);
	AppendUnits(s, "tower_units", spec->n_tower_layers, spec->tower_units);
	appendStringInfo(s, ", \"input_width\": %d, \"parameters\": %zu, \"embedding_parameters\": %zu",
					 model->layout.D, model->layout.n_params,
					 model->layout.n_params - model->layout.n_dense);
}

static void
AppendFeatures(StringInfo s, const MtlSchema *schema)
{
	appendStringInfo(s, ", \"users\": %lld, \"items\": %lld, \"features\": [",
					 (long long) schema->ids[MTL_SIDE_USER].n, (long long) schema->ids[MTL_SIDE_ITEM].n);
	for (int f = 0; f < schema->n_fields; f++)
	{
		const MtlFeature *feat = &schema->fields[f];

		appendStringInfo(s, "%s{\"name\": ", f ? ", " : "");
		escape_json(s, feat->name);
		appendStringInfo(s, ", \"side\": \"%s\"", feat->side == MTL_SIDE_USER ? "user" : "item");
		if (feat->kind == MTL_KIND_CAT)
			appendStringInfo(s, ", \"kind\": \"categorical\", \"values\": %lld",
							 (long long) feat->n_values);
		else
			appendStringInfo(s, ", \"kind\": \"numeric\", \"mean\": %.9g, \"std\": %.9g",
							 feat->mean, feat->std);
		appendStringInfoChar(s, '}');
	}
	appendStringInfoChar(s, ']');
}

static void
AppendTraining(StringInfo s, const MtlTrained *m)
{
	const MtlSpec *spec = &m->model.spec;
	const MtlTrainSummary *sum = &m->summary;

	appendStringInfo(s, ", \"training\": {\"rows\": %lld, \"epochs\": %d, \"seconds\": ",
					 (long long) sum->rows, sum->epochs);
	if (isnan(sum->seconds))
		appendStringInfoString(s, "null");
	else
		appendStringInfo(s, "%.3f", sum->seconds);
	appendStringInfoString(s, ", \"loss\": [");
	for (int e = 0; e < sum->epochs; e++)
		appendStringInfo(s, "%s%.6g", e ? ", " : "", sum->epoch_loss[e]);
	appendStringInfo(s, "], \"validation_rows\": %lld", (long long) sum->validation_rows);
	if (sum->validation_rows > 0)
	{
		appendStringInfoString(s, ", \"validation_loss\": [");
		for (int e = 0; e < sum->epochs; e++)
			appendStringInfo(s, "%s%.6g", e ? ", " : "", sum->validation_loss[e]);
		appendStringInfo(s, "], \"best_epoch\": %d", sum->best_epoch);
	}
	appendStringInfo(s, ", \"batch_size\": %d, \"learning_rate\": %.6g, \"l2\": %.6g, "
					 "\"id_dropout\": %.6g, \"validation_fraction\": %.6g, \"patience\": %d, "
					 "\"seed\": %llu}",
					 spec->batch_size, spec->learning_rate, spec->l2, spec->id_dropout,
					 spec->validation_fraction, spec->patience,
					 (unsigned long long) spec->seed);
}

Datum
mtl_info(PG_FUNCTION_ARGS)
{
	bytea	   *model = PG_GETARG_BYTEA_PP(0);
	MtlTrained	m;
	StringInfoData s;

	MtlDecodeOrError((const uint8 *) VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model), &m);
	initStringInfo(&s);
	appendStringInfo(&s, "{\"format_version\": %d, \"bytes\": %zu, ",
					 MTL_FORMAT_VERSION, (size_t) VARSIZE_ANY_EXHDR(model));
	AppendTasks(&s, &m.model.spec);
	AppendArchitecture(&s, &m.model);
	AppendFeatures(&s, &m.schema);
	AppendTraining(&s, &m);
	appendStringInfoChar(&s, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}
