/*
 * The predictor's split first layer (cached side vectors + product slot)
 * gives the same scores as the plain forward pass over the assembled input.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "synthetic.h"
#include "../../src/core/fit.h"
#include "../../src/core/fpmode.h"
#include "../../src/core/mem.h"
#include "../../src/core/predict.h"
#include "../../src/core/recommend.h"

/*
 * Scores of one row by assembling X and running the full forward pass over a
 * batch of the row twice, so through sgemm, not the one-row kernels.
 */
static void
PlainScores(const MtlTrained *m, MtlWork *work, const int32_t *slots, const float *nums,
			double *out)
{
	int			S = m->model.layout.n_slots;
	int			n_num = m->model.layout.n_cols;
	int32_t		slots2[2 * 64];
	float		nums2[2 * 64];

	memcpy(slots2, slots, sizeof(int32_t) * S);
	memcpy(slots2 + S, slots, sizeof(int32_t) * S);
	memcpy(nums2, nums, sizeof(float) * n_num);
	memcpy(nums2 + n_num, nums, sizeof(float) * n_num);
	mtl_model_assemble(&m->model, work, m->model.params, slots2, nums2, 2);
	mtl_model_forward(&m->model, work, m->model.params, 2);
	for (int t = 0; t < m->model.spec.n_tasks; t++)
		out[t] = mtl_task_output(&m->model.spec.tasks[t], mtl_work_logit(work, t)[1]);
}

/* The cross slot the following checks train with, and whether items have tags. */
static MtlInteraction interaction = MTL_INTERACTION_IDS;
static int	with_tags = 0;
static MtlSequencePooling pooling = MTL_POOL_DIN;

static MtlRowStore *
Rows(int scenario, uint64_t seed, double **truth)
{
	if (with_tags)
		return synthetic_rows_tags(3000, seed, truth, scenario);
	return scenario ? synthetic_rows_scenario(3000, seed, truth) : synthetic_rows(3000, seed, truth);
}

/* Move row r's tags and history around: other known values, an object's weights, none. */
static void
VaryTags(const MtlTrained *m, int32_t *slots, float *nums, int64_t r)
{
	const MtlLayout *L = &m->model.layout;

	for (int f = 0; f < m->model.shape.n_cat; f++)
	{
		int32_t    *s = slots + L->cat_slot[f];
		float	   *w = nums + L->cat_wcol[f];
		int32_t		row0 = (int32_t) L->cat_row0[f];

		if (L->cat_wcol[f] < 0 || r % 3 == 0)
			continue;
		if (r % 3 == 1 && m->model.shape.cat_seq != NULL && m->model.shape.cat_seq[f])
		{
			/* another history: two items, the second empty slot's weight 0 */
			int64_t		n_items = m->model.shape.n_items;

			s[0] = (int32_t) (L->item_row0 + r % n_items);
			s[1] = (int32_t) (L->item_row0 + (r / 3) % n_items);
			s[2] = -1;
			w[0] = w[1] = 0.5f;
			w[2] = 0.0f;
		}
		else if (r % 3 == 1)
		{
			s[0] = row0 + 1 + (int32_t) (r % (m->model.shape.cat_rows[f] - 1));
			s[1] = row0 + 1 + (int32_t) ((r / 3) % (m->model.shape.cat_rows[f] - 1));
			s[2] = -1;
			w[0] = 0.7f;
			w[1] = -0.3f;
			w[2] = 0.0f;
		}
		else
		{
			s[0] = row0;
			w[0] = 1.0f;
			for (int k = 1; k < L->cat_slots[f]; k++)
			{
				s[k] = -1;
				w[k] = 0.0f;
			}
		}
	}
}

static void
CheckModel(MtlModelType type, int scenario)
{
	MtlSpec		spec;
	MtlTrained	m;
	double	   *truth,
				needed,
				worst = 0.0;
	MtlRowStore *rows = Rows(scenario, 11, &truth);
	MtlPredictor *p;
	MtlWork    *work;
	int64_t		n_users,
				n_items;

	synthetic_spec(&spec, type);
	spec.interaction = interaction;
	spec.sequence_pooling = pooling;
	spec.epochs = 2;
	if (scenario)
		strcpy(spec.scenario, "scenario");
	/* widths that take each one-row kernel: blocked (16, 32, 64) and plain */
	spec.expert_units[0] = 64;
	spec.bottom_units[0] = 64;
	spec.n_tower_layers = 2;
	spec.tower_units[0] = 32;
	spec.tower_units[1] = 12;
	mtl_fit(&spec, rows, NULL, 0, &needed, &m);
	p = mtl_predictor_create(&m);
	work = mtl_work_create(&m.model, 2);
	n_users = m.schema.ids[MTL_SIDE_USER].n;
	n_items = m.schema.ids[MTL_SIDE_ITEM].n;
	/* twice over the same ids: the second pass reads the side caches */
	for (int pass = 0; pass < 2; pass++)
		for (int64_t r = 0; r < 500; r++)
		{
			/* known ids, plus unknown (-1) ones every few rows */
			int64_t		user = r % 7 == 0 ? -1 : (r * 13) % n_users;
			int64_t		item = r % 5 == 0 ? -1 : (r * 29) % n_items;
			double		fast[MTL_MAX_TASKS],
						plain[MTL_MAX_TASKS];

			mtl_predictor_row_from_ids(p, user, item);
			if (r % 11 == 0)	/* other features for a known item: another cache entry */
				p->nums[0] += 0.5f;
			if (r % 13 == 0)	/* another category */
			{
				int32_t    *s = p->slots + m.model.layout.cat_slot[0];

				*s = *s == m.model.layout.cat_row0[0] ? *s + 1 : (int32_t) m.model.layout.cat_row0[0];
			}
			if (scenario)		/* context: scenarios 1-3 and unseen (0) */
			{
				int			f = m.model.shape.scenario_cat;

				p->slots[m.model.layout.cat_slot[f]] = (int32_t) (m.model.layout.cat_row0[f] + r % 4);
			}
			if (r % 4 == 0)
				VaryTags(&m, p->slots, p->nums, r);
			PlainScores(&m, work, p->slots, p->nums, plain);
			mtl_predictor_run(p, fast);
			for (int t = 0; t < spec.n_tasks; t++)
				worst = fmax(worst, fabs(fast[t] - plain[t]) / fmax(1.0, fabs(plain[t])));
		}
	CHECK(worst < 1e-5, "%s%s%s/%s: predictor equals the plain forward pass (worst diff %g)",
		  mtl_model_type_name(type), scenario ? " with scenarios" : "",
		  with_tags ? " with tags" : "", mtl_interaction_name(interaction), worst);
	printf("  %s%s%s/%s: predictor vs plain forward, worst relative diff %g\n",
		   mtl_model_type_name(type), scenario ? " with scenarios" : "",
		   with_tags ? " with tags" : "", mtl_interaction_name(interaction), worst);
	mtl_work_free(work, &m.model);
	mtl_predictor_free(p);
	mtl_trained_free(&m);
	mtl_rows_free(rows);
	mtl_free(truth);
}

/* Catalog-wide scoring equals scoring each (user, item) with the predictor. */
static void
CheckRecommender(MtlModelType type)
{
	MtlSpec		spec;
	MtlTrained	m;
	double	   *truth,
				needed,
				worst = 0.0;
	MtlRowStore *rows = Rows(0, 12, &truth);
	MtlRecommender *r;
	MtlPredictor *p;
	double	   *all;

	synthetic_spec(&spec, type);
	spec.interaction = interaction;
	spec.sequence_pooling = pooling;
	spec.epochs = 2;
	mtl_fit(&spec, rows, NULL, 0, &needed, &m);
	r = mtl_recommender_create(&m);
	p = mtl_predictor_create(&m);
	all = mtl_alloc(sizeof(double) * r->n_items * spec.n_tasks);
	for (int64_t user = -1; user < 40; user += 13)
	{
		mtl_recommender_score(r, user, 0, 0, all);
		for (int64_t i = 0; i < r->n_items; i++)
		{
			double		one[MTL_MAX_TASKS];

			mtl_predictor_row_from_ids(p, user, i);
			mtl_predictor_run(p, one);
			for (int t = 0; t < spec.n_tasks; t++)
				worst = fmax(worst, fabs(all[i * spec.n_tasks + t] - one[t]) / fmax(1.0, fabs(one[t])));
		}
	}
	CHECK(r->n_items > 0 && worst < 1e-5, "%s/%s: catalog scores equal per-row scores (worst %g)",
		  mtl_model_type_name(type), mtl_interaction_name(interaction), worst);
	printf("  %s/%s: recommender vs predictor over %lld items, worst relative diff %g\n",
		   mtl_model_type_name(type), mtl_interaction_name(interaction), (long long) r->n_items, worst);
	mtl_free(all);
	mtl_predictor_free(p);
	mtl_recommender_free(r);
	mtl_trained_free(&m);
	mtl_rows_free(rows);
	mtl_free(truth);
}

/* With a scenario in the context, the catalog scores equal per-row scores in that scenario. */
static void
CheckRecommenderScenario(void)
{
	MtlSpec		spec;
	MtlTrained	m;
	double	   *truth,
				needed,
				worst = 0.0,
				spread = 0.0;
	MtlRowStore *rows = Rows(1, 13, &truth);
	MtlRecommender *r;
	MtlPredictor *p;
	double	   *all;
	int			scen;

	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.interaction = interaction;
	spec.sequence_pooling = pooling;
	spec.epochs = 2;
	strcpy(spec.scenario, "scenario");
	mtl_fit(&spec, rows, NULL, 0, &needed, &m);
	scen = m.model.shape.scenario_cat;
	r = mtl_recommender_create(&m);
	p = mtl_predictor_create(&m);
	all = mtl_alloc(sizeof(double) * r->n_items * spec.n_tasks);
	for (int s = 0; s < (int) m.model.shape.cat_rows[scen]; s++)
		for (int64_t user = -1; user < 40; user += 20)
		{
			int32_t		slot = (int32_t) m.model.layout.cat_row0[scen] + s;

			r->predictor->slots[m.model.layout.cat_slot[scen]] = slot;
			mtl_recommender_score(r, user, 0, 1, all);
			for (int64_t i = 0; i < r->n_items; i++)
			{
				double		one[MTL_MAX_TASKS],
							shared[MTL_MAX_TASKS];

				mtl_predictor_row_from_ids(p, user, i);
				mtl_predictor_run(p, shared);
				p->slots[m.model.layout.cat_slot[scen]] = slot;
				mtl_predictor_run(p, one);
				spread = fmax(spread, fabs(one[0] - shared[0]));
				for (int t = 0; t < spec.n_tasks; t++)
					worst = fmax(worst, fabs(all[i * spec.n_tasks + t] - one[t]) / fmax(1.0, fabs(one[t])));
			}
		}
	CHECK(worst < 1e-5 && spread > 1e-4,
		  "scenario context: catalog scores equal per-row scores in each scenario (worst %g; scenarios move scores by up to %g)",
		  worst, spread);
	mtl_free(all);
	mtl_predictor_free(p);
	mtl_recommender_free(r);
	mtl_trained_free(&m);
	mtl_rows_free(rows);
	mtl_free(truth);
}

/* Every scoring path for the cross slots from first on (interaction is left at ids). */
static void
CheckCrosses(MtlInteraction first)
{
	for (interaction = first; interaction <= MTL_INTERACTION_LAST; interaction++)
	{
		CheckModel(MTL_MODEL_MMOE, 1);
		CheckModel(MTL_MODEL_SINGLE_TASK, 0);
		CheckRecommender(MTL_MODEL_MMOE);
		CheckRecommender(MTL_MODEL_SINGLE_TASK);
		CheckRecommenderScenario();
	}
	interaction = MTL_INTERACTION_IDS;
}

void
test_predict(void)
{
	CheckRecommenderScenario();
	CheckModel(MTL_MODEL_SHARED_BOTTOM, 0);
	CheckModel(MTL_MODEL_MMOE, 0);
	CheckModel(MTL_MODEL_PLE, 0);
	CheckModel(MTL_MODEL_SINGLE_TASK, 0);
	CheckModel(MTL_MODEL_ESMM, 0);
	CheckModel(MTL_MODEL_MMOE, 1);
	CheckModel(MTL_MODEL_PLE, 1);
	CheckRecommender(MTL_MODEL_MMOE);
	CheckRecommender(MTL_MODEL_PLE);
	CheckRecommender(MTL_MODEL_SINGLE_TASK);
	/* as inside PostgreSQL: trained and scored with denormals flushed */
	{
		MtlFpMode	mode;

		mtl_fp_flush_begin(&mode);
		CheckModel(MTL_MODEL_MMOE, 1);
		CheckModel(MTL_MODEL_PLE, 0);
		CheckRecommender(MTL_MODEL_MMOE);
		mtl_fp_flush_end(&mode);
	}
	/* the pooled and fm cross slots, from per-side pools when scoring */
	CheckCrosses(MTL_INTERACTION_POOLED);
	/* a bag field (item tags): weighted sums on every scoring path */
	with_tags = 1;
	CheckCrosses(MTL_INTERACTION_IDS);
	/* and a user history pooled by attention (per row) or its mean (per user) */
	synthetic_history = 1;
	CheckCrosses(MTL_INTERACTION_IDS);
	pooling = MTL_POOL_MEAN;
	CheckModel(MTL_MODEL_MMOE, 1);
	CheckRecommender(MTL_MODEL_MMOE);
	pooling = MTL_POOL_DIN;
	synthetic_history = 0;
	with_tags = 0;
	interaction = MTL_INTERACTION_IDS;
}
