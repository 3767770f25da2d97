#include "fit.h"

#include <string.h>

#include "dataset.h"
#include "format.h"
#include "mem.h"
#include "threads.h"

double
mtl_fit_memory_bytes(const MtlSpec *spec, const MtlRowStore *store,
					 const MtlSchema *schema, const MtlLayout *layout)
{
	/* rows stay as collected; in memory, training keeps their order (8 bytes a row) */
	int			streamed = store->n_spilled > 0 || store->n_chunks > MTL_SHUFFLE_ALL_CHUNKS;
	double		rows = streamed ? 0.0 : (double) store->n_rows;
	double		per_row = 8.0;
	/* params, grads, Adam's m and v, and the best epoch's copy when validating */
	double		params = 4.0 * (spec->validation_fraction > 0 ? 5.0 : 4.0) * layout->n_params;
	double		batch = 4.0 * spec->batch_size * 2.0 * layout->Xw;
	/* threads > 1: each helper's gradient buffer and batch buffers for half a batch */
	int			helpers = spec->threads > MTL_MAX_THREADS ? MTL_MAX_THREADS - 1 : spec->threads - 1;

	/* activations, their gradients and dropout masks of each level */
	for (int k = 0; k < layout->n_levels; k++)
	{
		const MtlLevel *lv = &layout->levels[k];

		batch += 4.0 * spec->batch_size *
			(2.0 * lv->P + 5.0 * lv->n_experts * layout->H + 4.0 * (spec->n_tasks + 1) * layout->H);
	}
	if (streamed)				/* the chunks being visited, and their order */
		batch += (double) mtl_rows_chunk_bytes(store) * MTL_STREAM_CHUNKS * 1.5;
	if (helpers > 0)
	{
		params += 4.0 * helpers * layout->n_params;
		batch *= 1.0 + 0.5 * helpers;
	}
	return rows * per_row + mtl_dataset_bytes(schema, store) + params + batch +
		8.0 * layout->emb_rows * layout->n_copies;
}

/* The schema of the collected rows and the model's shape and layout (no parameters yet). */
static const MtlError *
BuildModel(const MtlSpec *spec, MtlRowStore *store, MtlTrained *out)
{
	MtlModel   *model = &out->model;
	const MtlError *why;

	mtl_rows_seal(store);
	memset(out, 0, sizeof(*out));
	if (store->n_tasks != mtl_label_columns(spec))
		MTL_FAIL(MTL_E_SHAPE, "the rows have labels for another number of tasks");
	model->spec = *spec;
	mtl_schema_build(&out->schema, store, spec);
	why = mtl_schema_shape(&out->schema, spec->scenario, spec->sequence_pooling, &model->shape);
	if (why == NULL)
		why = mtl_layout_build(&model->layout, &model->spec, &model->shape);
	if (why != NULL)
		mtl_trained_free(out);
	return why;
}

const MtlError *
mtl_fit(const MtlSpec *spec, MtlRowStore *store, const MtlTrainCallbacks *cb,
		double memory_limit, double *needed, MtlTrained *out)
{
	MtlModel   *model = &out->model;
	MtlDataset	data;
	double		start = mtl_now_seconds();
	const MtlError *why = BuildModel(spec, store, out);
	double		encode_start;

	if (why != NULL)
		return why;
	*needed = mtl_fit_memory_bytes(spec, store, &out->schema, &model->layout);
	if (memory_limit > 0 && *needed > memory_limit)
	{
		mtl_trained_free(out);
		MTL_FAIL(MTL_E_MEMORY, "more memory than the limit");
	}

	encode_start = mtl_now_seconds();
	mtl_dataset_build(&data, &out->schema, &model->layout, store);
	out->summary.phase_seconds[MTL_PHASE_VOCABULARY] = encode_start - start;
	out->summary.phase_seconds[MTL_PHASE_ENCODE_ROWS] = mtl_now_seconds() - encode_start;
	mtl_train(model, &data, cb, &out->summary);
	mtl_dataset_free(&data);
	out->summary.seconds = mtl_now_seconds() - start;
	return NULL;
}

const MtlError *
mtl_fit_init(const MtlSpec *spec, MtlRowStore *store, const MtlLabelStats *labels,
			 double memory_limit, double *needed, MtlTrained *out)
{
	MtlModel   *model = &out->model;
	double		start = mtl_now_seconds();
	const MtlError *why = BuildModel(spec, store, out);

	if (why != NULL)
		return why;
	/* a round holds params, the start's copy, grads, m and v, and the merge's counts */
	*needed = 4.0 * 5.0 * model->layout.n_params + 8.0 * model->layout.emb_rows;
	if (memory_limit > 0 && *needed > memory_limit)
	{
		mtl_trained_free(out);
		MTL_FAIL(MTL_E_MEMORY, "more memory than the limit");
	}
	mtl_model_init(model);
	mtl_label_stats_apply(model, labels, 0);
	out->summary.rows = store->n_rows;
	out->summary.phase_seconds[MTL_PHASE_VOCABULARY] = mtl_now_seconds() - start;
	out->summary.seconds = mtl_now_seconds() - start;
	return NULL;
}
