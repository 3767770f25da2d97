#include "embeddings.h"

#include "schema.h"

int
mtl_embedding_width(const MtlModel *model)
{
	return model->layout.n_copies * model->layout.E;
}

void
mtl_side_embedding(const MtlTrained *trained, int side, int64_t pos, int32_t *slots, float *nums,
				   float *scratch, float *out)
{
	const MtlModel *m = &trained->model;
	const MtlLayout *L = &m->layout;

	mtl_schema_row_from_ids(&trained->schema, L, side == MTL_SIDE_USER ? pos : -1,
							side == MTL_SIDE_ITEM ? pos : -1, slots, nums);
	for (int c = 0; c < L->n_copies; c++)
		mtl_model_pool_slots(m, m->params, c, slots, nums, side, out + (size_t) c * L->E, scratch);
}
