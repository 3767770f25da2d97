/*
 * mtl_update: the updated model starts as the old one (every old parameter
 * copied to its new place, for every architecture, with grown vocabularies,
 * new scenarios and added tasks), and freezing keeps all but the towers.
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "synthetic.h"
#include "../../src/core/fit.h"
#include "../../src/core/mem.h"
#include "../../src/core/predict.h"
#include "../../src/core/update.h"

/* New rows: a third of them with user and item ids the old model never saw. */
static MtlRowStore *
NewRows(int scenario, int n_tasks)
{
	double	   *truth;
	MtlRowStore *rows = scenario ? synthetic_rows_scenario(1500, 99, &truth)
		: synthetic_rows(1500, 99, &truth);
	MtlRowStore *out = mtl_rows_create(n_tasks);

	for (int f = 0; f < rows->n_fields; f++)
		mtl_rows_field(out, rows->fields[f].side, rows->fields[f].kind, rows->fields[f].name,
					   strlen(rows->fields[f].name));
	for (int64_t r = 0; r < rows->n_rows; r++)
	{
		const MtlRowRef *ref = mtl_rows_ref(rows, r);
		float		labels[MTL_MAX_TASKS];

		for (int t = 0; t < n_tasks; t++)
			labels[t] = t < rows->n_tasks ? mtl_rows_labels(rows, r)[t] : (float) (r % 2);
		mtl_rows_add(out, mtl_rows_user_id(rows, ref) + (r % 3 == 0 ? 100000 : 0),
					 mtl_rows_item_id(rows, ref) + (r % 3 == 1 ? 100000 : 0),
					 (ref->user ? MTL_HAS_USER : 0) | (ref->item ? MTL_HAS_ITEM : 0), labels);
		for (int side = 0; side < MTL_N_SIDES; side++)
			for (int64_t e = rows->set_end[ref->set[side] ? ref->set[side] - 1 : 0];
				 ref->set[side] && e < rows->set_end[ref->set[side]]; e++)
				mtl_rows_add_entry(out, rows->entry_field[e], rows->entry_value[e]);
	}
	mtl_rows_seal(out);
	mtl_rows_free(rows);
	mtl_free(truth);
	return out;
}

/* The updated model before any training: layout, init and copy only. */
static void
StartUpdate(const MtlTrained *old, const MtlSpec *spec, MtlRowStore *store, MtlTrained *out)
{
	mtl_update_rows(&old->schema, store);
	memset(out, 0, sizeof(*out));
	out->model.spec = *spec;
	mtl_schema_extend(&out->schema, &old->schema, store);
	mtl_schema_shape(&out->schema, spec->scenario, spec->sequence_pooling, &out->model.shape);
	mtl_layout_build(&out->model.layout, &out->model.spec, &out->model.shape);
	mtl_model_init(&out->model);
	mtl_update_copy_params(old, out);
}

/* Largest difference of the old tasks' outputs for old users and items, in every scenario. */
static double
WorstDifference(const MtlTrained *a, const MtlTrained *b, int *grew)
{
	MtlPredictor *pa = mtl_predictor_create(a);
	MtlPredictor *pb = mtl_predictor_create(b);
	const MtlIdTable *users = &a->schema.ids[MTL_SIDE_USER];
	const MtlIdTable *items = &a->schema.ids[MTL_SIDE_ITEM];
	int			scen = a->model.shape.scenario_cat;
	int			n_scen = scen >= 0 ? (int) a->model.shape.cat_rows[scen] : 1;
	double		worst = 0.0;

	*grew = b->schema.ids[MTL_SIDE_USER].n > users->n && b->schema.ids[MTL_SIDE_ITEM].n > items->n;
	for (int64_t u = 0; u < users->n; u += 7)
		for (int64_t i = 0; i < items->n; i += 11)
			for (int s = 0; s < n_scen; s++)
			{
				double		oa[MTL_MAX_TASKS],
							ob[MTL_MAX_TASKS];

				mtl_predictor_row_from_ids(pa, u, i);
				mtl_predictor_row_from_ids(pb, mtl_schema_find_id(&b->schema, MTL_SIDE_USER, users->ids[u]),
										   mtl_schema_find_id(&b->schema, MTL_SIDE_ITEM, items->ids[i]));
				if (scen >= 0)
				{
					int			f = a->schema.cat_field[scen];

					pa->slots[2 + scen] = (int32_t) a->model.layout.cat_row0[scen] + s;
					pb->slots[2 + scen] = (int32_t) b->model.layout.cat_row0[scen] +
						(s == 0 ? 0 : mtl_schema_cat_index(&b->schema, f, a->schema.fields[f].values[s - 1]));
				}
				mtl_predictor_run(pa, oa);
				mtl_predictor_run(pb, ob);
				for (int t = 0; t < a->model.spec.n_tasks; t++)
					worst = fmax(worst, fabs(oa[t] - ob[t]));
			}
	mtl_predictor_free(pa);
	mtl_predictor_free(pb);
	return worst;
}

static void
CheckStartsAsOld(MtlModelType type, int scenario, int add_task)
{
	MtlSpec		spec;
	MtlTrained	old,
				updated;
	double	   *truth,
				needed,
				worst;
	int			grew;
	MtlRowStore *rows = scenario ? synthetic_rows_scenario(2000, 5, &truth) : synthetic_rows(2000, 5, &truth);
	MtlRowStore *fresh;

	synthetic_spec(&spec, type);
	spec.epochs = 2;
	if (scenario)
		strcpy(spec.scenario, "scenario");
	mtl_fit(&spec, rows, NULL, 0, &needed, &old);
	spec = old.model.spec;
	if (add_task)
	{
		MtlTask    *task = &spec.tasks[spec.n_tasks++];

		memset(task, 0, sizeof(*task));
		strcpy(task->name, "added");
		task->type = MTL_TASK_BINARY;
		task->weight = task->pos_weight = task->target_std = 1.0f;
		task->given = -1;
	}
	fresh = NewRows(scenario, spec.n_tasks);
	StartUpdate(&old, &spec, fresh, &updated);
	worst = WorstDifference(&old, &updated, &grew);
	CHECK(worst < 2e-6 && grew, "%s%s%s: updated model starts as the old one (worst %.2g), vocabularies grew",
		  mtl_model_type_name(type), scenario ? " + scenario" : "", add_task ? " + added task" : "", worst);
	mtl_trained_free(&updated);
	mtl_rows_free(fresh);
	mtl_trained_free(&old);
	mtl_rows_free(rows);
	mtl_free(truth);
}

/* With freeze_shared only the towers move. */
static void
CheckFreeze(void)
{
	MtlSpec		spec;
	MtlTrained	old,
				start,
				updated;
	double	   *truth,
				needed;
	MtlRowStore *rows = synthetic_rows(2000, 5, &truth);
	MtlRowStore *fresh;
	size_t		tower0;
	int			frozen_same,
				towers_moved = 0;

	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.epochs = 2;
	mtl_fit(&spec, rows, NULL, 0, &needed, &old);
	spec = old.model.spec;
	spec.epochs = 1;
	fresh = NewRows(0, spec.n_tasks);
	StartUpdate(&old, &spec, fresh, &start);
	mtl_update_fit(&old, &spec, fresh, 1, NULL, 0, &needed, &updated);
	tower0 = updated.model.layout.tower0;
	frozen_same = updated.model.layout.n_params == start.model.layout.n_params &&
		memcmp(updated.model.params, start.model.params, sizeof(float) * tower0) == 0;
	for (size_t i = tower0; i < updated.model.layout.n_params; i++)
		towers_moved |= updated.model.params[i] != start.model.params[i];
	CHECK(frozen_same && towers_moved, "freeze_shared: embeddings, experts and gates unchanged, towers trained");
	mtl_trained_free(&updated);
	mtl_trained_free(&start);
	mtl_rows_free(fresh);
	mtl_trained_free(&old);
	mtl_rows_free(rows);
	mtl_free(truth);
}

void
test_update(void)
{
	CheckStartsAsOld(MTL_MODEL_MMOE, 0, 0);
	CheckStartsAsOld(MTL_MODEL_MMOE, 1, 0);
	CheckStartsAsOld(MTL_MODEL_MMOE, 1, 1);
	CheckStartsAsOld(MTL_MODEL_SHARED_BOTTOM, 0, 1);
	CheckStartsAsOld(MTL_MODEL_ESMM, 0, 1);
	CheckStartsAsOld(MTL_MODEL_SINGLE_TASK, 0, 0);
	CheckStartsAsOld(MTL_MODEL_PLE, 1, 0);
	CheckFreeze();
}
