#include "fit.h"

#include <string.h>

#include "mem.h"

double
mtl_fit_memory_bytes(const MtlSpec *spec, const MtlRowStore *store,
					 const MtlSchema *schema, const MtlLayout *layout)
{
	double		rows = (double) store->n_rows;
	double		per_row = 4.0 * (layout->n_slots + schema->n_num + spec->n_tasks) + 8.0;
	/* params, grads, Adam's m and v, and the best epoch's copy when validating */
	double		params = 4.0 * (spec->validation_fraction > 0 ? 5.0 : 4.0) * layout->n_params;
	double		batch = 4.0 * spec->batch_size * 2.0 * layout->Xw;

	/* activations, their gradients and dropout masks of each level */
	for (int k = 0; k < layout->n_levels; k++)
	{
		const MtlLevel *lv = &layout->levels[k];

		batch += 4.0 * spec->batch_size *
			(2.0 * lv->P + 5.0 * lv->n_experts * layout->H + 4.0 * (spec->n_tasks + 1) * layout->H);
	}
	return rows * per_row + params + batch + 8.0 * layout->emb_rows * layout->n_copies;
}

const char *
mtl_fit(const MtlSpec *spec, const MtlRowStore *store, const MtlTrainCallbacks *cb,
		double memory_limit, double *needed, MtlTrained *out)
{
	MtlModel   *model = &out->model;
	MtlDataset	data;
	const char *why;
	int64_t		n = store->n_rows;
	int			T = spec->n_tasks;

	double		start = mtl_now_seconds();
	double		encode_start;

	memset(out, 0, sizeof(*out));
	model->spec = *spec;
	mtl_schema_build(&out->schema, store);
	why = mtl_schema_shape(&out->schema, spec->scenario, &model->shape);
	if (why != NULL)
		return why;
	why = mtl_layout_build(&model->layout, &model->spec, &model->shape);
	if (why != NULL)
		return why;
	*needed = mtl_fit_memory_bytes(spec, store, &out->schema, &model->layout);
	if (memory_limit > 0 && *needed > memory_limit)
		return "memory";

	encode_start = mtl_now_seconds();
	data.n_rows = n;
	data.slots = mtl_alloc(sizeof(int32_t) * n * model->layout.n_slots + 1);
	data.nums = mtl_alloc(sizeof(float) * n * out->schema.n_num + 1);
	data.labels = mtl_alloc(sizeof(float) * n * T + 1);
	mtl_schema_encode_rows(&out->schema, &model->layout, store, data.slots, data.nums);
	memcpy(data.labels, store->labels, sizeof(float) * n * T);
	out->summary.phase_seconds[MTL_PHASE_VOCABULARY] = encode_start - start;
	out->summary.phase_seconds[MTL_PHASE_ENCODE_ROWS] = mtl_now_seconds() - encode_start;
	mtl_train(model, &data, cb, &out->summary);
	out->summary.seconds = mtl_now_seconds() - start;
	mtl_free(data.slots);
	mtl_free(data.nums);
	mtl_free(data.labels);
	return NULL;
}
