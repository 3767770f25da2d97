/* Side vectors for similarity search: the pools scoring crosses. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "synthetic.h"
#include "../../src/core/embeddings.h"
#include "../../src/core/fit.h"
#include "../../src/core/mem.h"
#include "../../src/core/predict.h"

/*
 * With the pooled cross, scoring's cross slot of a known user and item is
 * the product of their vectors, element by element.
 */
void
test_embeddings(void)
{
	MtlSpec		spec;
	MtlTrained	m;
	double	   *truth,
				needed;
	MtlRowStore *rows = synthetic_rows_tags(3000, 5, &truth, 0);
	MtlPredictor *p;
	float	   *u,
			   *v,
			   *scratch;
	int32_t    *slots;
	float	   *nums;
	double		worst = 0.0;
	int			width;

	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.interaction = MTL_INTERACTION_POOLED;
	spec.epochs = 1;
	CHECK(mtl_fit(&spec, rows, NULL, 0, &needed, &m) == NULL, "fit works");
	width = mtl_embedding_width(&m.model);
	CHECK(width == m.model.layout.E, "one copy: E floats per vector (%d)", width);
	u = mtl_alloc(sizeof(float) * width);
	v = mtl_alloc(sizeof(float) * width);
	scratch = mtl_alloc(sizeof(float) * m.model.layout.E);
	slots = mtl_alloc(sizeof(int32_t) * m.model.layout.n_slots);
	nums = mtl_alloc(sizeof(float) * (m.model.layout.n_cols + 1));
	p = mtl_predictor_create(&m);
	for (int64_t k = 0; k < 50; k++)
	{
		int64_t		user = k % m.schema.ids[MTL_SIDE_USER].n,
					item = (k * 7) % m.schema.ids[MTL_SIDE_ITEM].n;

		mtl_side_embedding(&m, MTL_SIDE_USER, user, slots, nums, scratch, u);
		mtl_side_embedding(&m, MTL_SIDE_ITEM, item, slots, nums, scratch, v);
		mtl_predictor_row_from_ids(p, user, item);
		mtl_predictor_cross(p, 0, NULL);
		for (int i = 0; i < width; i++)
			worst = fmax(worst, fabs(u[i] * v[i] - p->cross[i]));
	}
	printf("  embeddings: user vector * item vector against the cross slot, worst %g\n", worst);
	CHECK(worst < 1e-6, "user vector * item vector = scoring's cross slot: worst %g", worst);
	mtl_predictor_free(p);
	mtl_free(u);
	mtl_free(v);
	mtl_free(scratch);
	mtl_free(slots);
	mtl_free(nums);
	mtl_trained_free(&m);
	mtl_rows_free(rows);
	mtl_free(truth);
}
