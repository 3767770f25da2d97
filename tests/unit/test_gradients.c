/*
 * Finite-difference checks of every layer, loss and whole model: the
 * analytic gradient of a scalar L must match (L(x+h) - L(x-h)) / 2h.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "../../src/core/fpmode.h"
#include "../../src/core/grouped.h"
#include "../../src/core/layers.h"
#include "../../src/core/loss.h"
#include "../../src/core/mem.h"
#include "../../src/core/model.h"
#include "../../src/core/rng.h"
#include "../../src/core/rows.h"
#include "../../src/core/train.h"
#include "../../src/core/split.h"

static MtlRng rng;

static void
Fill(float *v, int n, float scale)
{
	for (int i = 0; i < n; i++)
		v[i] = scale * mtl_rng_normal(&rng);
}

static double
Dot(const float *a, const float *b, int n)
{
	double		s = 0;

	for (int i = 0; i < n; i++)
		s += (double) a[i] * b[i];
	return s;
}

/* Relative error with a floor so that tiny gradients compare absolutely. */
static double
RelErr(double a, double b)
{
	return fabs(a - b) / fmax(1e-2, fabs(a) + fabs(b));
}

#define B 5
#define NI 7
#define NO 4

/* L = sum(R * dense(x)) */
static double
DenseLoss(const float *x, const float *W, const float *b, const float *R)
{
	float		out[B * NO];

	mtl_dense_forward(out, NO, x, NI, W, b, B, NI, NO);
	return Dot(out, R, B * NO);
}

static void
TestDense(void)
{
	float		x[B * NI],
				W[NI * NO],
				b[NO],
				R[B * NO];
	float		dx[B * NI],
				dW[NI * NO] = {0},
				db[NO] = {0};
	float	   *vars[3] = {x, W, b};
	float	   *grads[3] = {dx, dW, db};
	int			sizes[3] = {B * NI, NI * NO, NO};
	double		worst = 0;

	Fill(x, B * NI, 1);
	Fill(W, NI * NO, 1);
	Fill(b, NO, 1);
	Fill(R, B * NO, 1);
	mtl_dense_backward(dx, NI, dW, db, R, NO, x, NI, W, B, NI, NO);
	for (int v = 0; v < 3; v++)
		for (int i = 0; i < sizes[v]; i++)
		{
			float		keep = vars[v][i];
			double		up,
						down;

			vars[v][i] = keep + 1e-2f;
			up = DenseLoss(x, W, b, R);
			vars[v][i] = keep - 1e-2f;
			down = DenseLoss(x, W, b, R);
			vars[v][i] = keep;
			worst = fmax(worst, RelErr((up - down) / 2e-2, grads[v][i]));
		}
	CHECK(worst < 1e-3, "dense gradient relative error %g", worst);
}

static void
TestRelu(void)
{
	float		x[B * NI],
				y[B * NI],
				R[B * NI],
				dx[B * NI];
	double		worst = 0;

	Fill(x, B * NI, 1);
	Fill(R, B * NI, 1);
	memcpy(y, x, sizeof(x));
	mtl_relu_forward(y, NI, B, NI);
	memcpy(dx, R, sizeof(R));
	mtl_relu_backward(dx, NI, y, NI, B, NI);
	for (int i = 0; i < B * NI; i++)
	{
		float		h = 1e-3f;
		float		up = x[i] + h > 0 ? x[i] + h : 0;
		float		down = x[i] - h > 0 ? x[i] - h : 0;

		if (fabsf(x[i]) < 2 * h)
			continue;			/* the kink */
		worst = fmax(worst, RelErr(R[i] * (up - down) / (2 * h), dx[i]));
	}
	CHECK(worst < 1e-3, "relu gradient relative error %g", worst);
}

static double
SoftmaxLoss(const float *z, const float *R)
{
	float		g[B * NO];

	mtl_softmax_forward(g, z, NO, B, NO);
	return Dot(g, R, B * NO);
}

static void
TestSoftmax(void)
{
	float		z[B * NO],
				R[B * NO],
				g[B * NO],
				dz[B * NO];
	double		worst = 0,
				row_sum = 0;

	Fill(z, B * NO, 2);
	Fill(R, B * NO, 1);
	mtl_softmax_forward(g, z, NO, B, NO);
	for (int i = 0; i < NO; i++)
		row_sum += g[i];
	CHECK(fabs(row_sum - 1) < 1e-6, "softmax row sums to %g", row_sum);
	mtl_softmax_backward(dz, NO, g, R, B, NO);
	for (int i = 0; i < B * NO; i++)
	{
		float		keep = z[i];
		double		up,
					down;

		z[i] = keep + 1e-2f;
		up = SoftmaxLoss(z, R);
		z[i] = keep - 1e-2f;
		down = SoftmaxLoss(z, R);
		z[i] = keep;
		worst = fmax(worst, RelErr((up - down) / 2e-2, dz[i]));
	}
	CHECK(worst < 1e-3, "softmax gradient relative error %g", worst);
}

static void
TestEmbedding(void)
{
	float		table[6 * 3],
				dtable[6 * 3] = {0},
				out[4 * 3],
				R[4 * 3];
	int32_t		index[4] = {2, -1, 2, 5};

	Fill(table, 18, 1);
	Fill(R, 12, 1);
	mtl_embedding_forward(out, 3, table, index, 1, 4, 3);
	CHECK(out[3] == 0 && out[4] == 0 && out[5] == 0, "index -1 gives zeros");
	CHECK(out[0] == table[6] && out[9] == table[15], "lookup copies the row");
	mtl_embedding_backward(dtable, R, 3, index, 1, 4, 3);
	/* L = sum(R * out) is linear in the table: d/dtable[2] = R row 0 + R row 2 */
	CHECK(fabsf(dtable[6] - (R[0] + R[6])) < 1e-6, "repeated row accumulates");
	CHECK(dtable[0] == 0 && fabsf(dtable[15] - R[9]) < 1e-6, "untouched rows stay zero");
}

static void
TestLosses(void)
{
	float		z[6] = {-30, -1, 0, 0.5f, 3, 40};
	float		y[6] = {0, 1, NAN, 1, 0, 1};
	float		dz[6];
	double		worst = 0;
	double		total = mtl_bce_logits(dz, z, 1, y, 1, 6, 1.0f);

	CHECK(isfinite(total), "bce is finite at large logits");
	CHECK(dz[2] == 0, "missing label has no gradient");
	CHECK(fabs(mtl_bce_logits(dz, (float[]){0}, 1, (float[]){1}, 1, 1, 1) - log(2)) < 1e-6,
		  "bce(0, 1) = log 2");
	for (int kind = 0; kind < 2; kind++)
		for (int i = 0; i < 6; i++)
		{
			float		zi[1],
						d[1],
						g[1];
			float		yi = kind ? 0.7f * i - 1 : y[i];
			double		up,
						down;

			if (isnan(yi))
				continue;
			zi[0] = z[i] + 1e-2f;
			up = kind ? mtl_squared_error(d, zi, 1, &yi, 1, NULL, 1, 1) : mtl_bce_logits(d, zi, 1, &yi, 1, 1, 1);
			zi[0] = z[i] - 1e-2f;
			down = kind ? mtl_squared_error(d, zi, 1, &yi, 1, NULL, 1, 1) : mtl_bce_logits(d, zi, 1, &yi, 1, 1, 1);
			zi[0] = z[i];
			(void) (kind ? mtl_squared_error(g, zi, 1, &yi, 1, NULL, 1, 1) : mtl_bce_logits(g, zi, 1, &yi, 1, 1, 1));
			worst = fmax(worst, RelErr((up - down) / 2e-2, g[0]));
		}
	CHECK(worst < 1e-3, "loss gradient relative error %g", worst);
}

/* What a whole-model gradient check turns on beyond the architecture. */
typedef struct Variant
{
	MtlModelType type;
	int			expert_layers;
	int			levels;
	int			scenario;		/* STAR towers on categorical field 1 */
	int			conditional;	/* task 1 given task 0, pos_weight 2 */
	float		dropout;
	MtlLossWeighting weighting;
	MtlInteraction interaction;
	int			bag;			/* an item bag field of 3 slots (weights, empty slots) */
	int			din;			/* instead, a user history of 3 items pooled by DIN */
	int			weighted;		/* rows weigh 0.5, 2, 0 and 1.5 (sample_weight) */
} Variant;

/* A small model with every kind of input, used by the whole-model check. */
static void
SmallModel(MtlModel *model, const Variant *v)
{
	static int64_t cat_rows[3] = {4, 3, 5};
	/* field 1 is the item's, or the context's scenario; field 2 the item's bag */
	static uint8_t cat_side[2][3] = {{MTL_SIDE_USER, MTL_SIDE_ITEM, MTL_SIDE_ITEM},
	{MTL_SIDE_USER, MTL_SIDE_CONTEXT, MTL_SIDE_ITEM}};
	static int	cat_width[3] = {0, 0, 3};
	static int	din_width[2][3] = {{0, 0, 6}, {0, 0, 3}};
	static int64_t din_rows[3] = {4, 3, 1};
	static uint8_t din_side[2][3] = {{MTL_SIDE_USER, MTL_SIDE_ITEM, MTL_SIDE_USER},
	{MTL_SIDE_USER, MTL_SIDE_CONTEXT, MTL_SIDE_USER}};
	static uint8_t cat_seq[3] = {0, 0, MTL_POOL_DIN};
	MtlSpec    *s = &model->spec;
	const char *names[3] = {"ctr", "cvr", "rating"};

	memset(model, 0, sizeof(*model));
	s->n_tasks = 3;
	for (int t = 0; t < 3; t++)
	{
		strcpy(s->tasks[t].name, names[t]);
		s->tasks[t].type = t < 2 ? MTL_TASK_BINARY : MTL_TASK_REGRESSION;
		s->tasks[t].weight = t < 2 ? 1.0f : 0.5f;
		s->tasks[t].pos_weight = 1.0f;
		s->tasks[t].negative_rate = 1.0f;
		s->tasks[t].given = -1;
	}
	if (v->conditional)
	{
		s->tasks[1].given = 0;
		s->tasks[1].pos_weight = 2.0f;
	}
	s->model = v->type;
	s->embedding_dim = 3;
	s->n_experts = 3;
	s->n_levels = v->levels;
	s->shared_experts = 2;
	s->task_experts = 1;
	s->n_expert_layers = v->expert_layers;
	s->expert_units[0] = 5;
	s->expert_units[1] = 4;
	s->n_bottom_layers = v->expert_layers;
	s->bottom_units[0] = 6;
	s->bottom_units[1] = 4;
	s->n_tower_layers = 1;
	s->tower_units[0] = 3;
	s->dropout = v->dropout;
	s->loss_weighting = v->weighting;
	s->interaction = v->interaction;
	s->sample_weight = v->weighted;
	s->seed = 7;
	model->shape.n_users = 4;
	model->shape.n_items = 3;
	model->shape.n_cat = v->bag || v->din ? 3 : 2;
	model->shape.n_num = 2;
	model->shape.cat_width = v->din ? din_width[v->scenario ? 1 : 0] : v->bag ? cat_width : NULL;
	model->shape.cat_rows = v->din ? din_rows : cat_rows;
	model->shape.cat_side = v->din ? din_side[v->scenario ? 1 : 0] : cat_side[v->scenario ? 1 : 0];
	model->shape.cat_seq = v->din ? cat_seq : NULL;
	s->attention_units = 3;
	s->sequence_length = 3;
	model->shape.scenario_cat = v->scenario ? 1 : -1;
	CHECK(mtl_layout_build(&model->layout, s, &model->shape) == NULL, "layout builds");
	mtl_model_init(model);
	/*
	 * Biases start at zero, which puts a dead unit's pre-activation exactly on
	 * the ReLU kink; perturb every dense parameter so the check sees none.
	 * Keep single_task's zero blocks zero: they are not parameters it learns.
	 */
	for (size_t i = model->layout.n_params - model->layout.n_dense; i < model->layout.n_params; i++)
		if (model->params[i] != 0.0f || i >= model->layout.b_in)
			model->params[i] += 0.2f * mtl_rng_normal(&rng);
}

/* rows: scenarios 0, 1, 0, 2 (unsorted on purpose); task 1 labels missing or inconsistent */
static int32_t gslots[4 * 4] = {0, 4, 7, 11, -1, 5, 8, 12, 3, -1, 10, 11, 1, 6, 7, 13};
static float gnums[4 * 2] = {0.5f, -1, 0, 0, 2, 0.3f, -0.7f, 1};
static float glabels[4 * 3] = {1, 1, 0.4f, 0, NAN, NAN, 1, 0, -1.2f, 0, 1, 2};
/* the same with each row's weight after its labels */
static float wlabels[4 * 4] = {1, 1, 0.4f, 0.5f, 0, NAN, NAN, 2, 1, 0, -1.2f, 0, 0, 1, 2, 1.5f};

/*
 * With the bag (rows 14-18): a list of two (weights 1/2), a missing bag (its
 * row 0, weight 1), an object's weights with a negative one, a single value.
 */
static int32_t bslots[4 * 7] = {0, 4, 7, 11, 15, 16, -1, -1, 5, 8, 12, 14, -1, -1,
3, -1, 10, 11, 17, 18, 16, 1, 6, 7, 13, 18, -1, -1};
static float bnums[4 * 5] = {0.5f, -1, 0.5f, 0.5f, 0, 0, 0, 1, 0, 0,
2, 0.3f, 1, -0.5f, 2, -0.7f, 1, 1, 0, 0};

/*
 * With the history (items 4-6, missing row 14): two items, none, three with
 * an unknown candidate, one that is the candidate itself. With an item
 * categorical field (1), a history item is a group of its row and its
 * value's (items 4, 5, 6 have values 11, 12, 13; item 6's is missing in one).
 */
static int32_t dslots[2][4 * 10] = {
	{0, 4, 7, 11, 5, 12, 6, 13, -1, -1, -1, 5, 8, 12, 14, -1, -1, -1, -1, -1,
	3, -1, 10, 11, 4, 11, 5, 12, 6, -1, 1, 6, 7, 13, 6, 13, -1, -1, -1, -1},
	{0, 4, 7, 11, 5, 6, -1, -1, 5, 8, 12, 14, -1, -1,
	3, -1, 10, 11, 4, 5, 6, 1, 6, 7, 13, 6, -1, -1}};

/* the numbers, then the history's weights (read by mean pooling only) */
static float dnums[4 * 8] = {0.5f, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
2, 0.3f, 0, 0, 0, 0, 0, 0, -0.7f, 1, 0, 0, 0, 0, 0, 0};

static double
Loss(MtlModel *model, MtlWork *work, float *grads)
{
	int			bag = model->shape.cat_width != NULL;
	int			din = model->shape.cat_seq != NULL;

	return mtl_batch_loss(model, work, model->params, grads,
						  din ? dslots[model->layout.seq_group == 1] : bag ? bslots : gslots,
						  din ? dnums : bag ? bnums : gnums,
						  model->spec.sample_weight ? wlabels : glabels, 4, NULL);
}

/* Loss through a split of the batch over threads parts (split.h) */
static double
SplitLoss(MtlModel *model, MtlSplit *split, float *grads)
{
	int			bag = model->shape.cat_width != NULL;
	int			din = model->shape.cat_seq != NULL;

	return mtl_split_batch_loss(split, model->params, grads,
								din ? dslots[model->layout.seq_group == 1] : bag ? bslots : gslots,
								din ? dnums : bag ? bnums : gnums,
								model->spec.sample_weight ? wlabels : glabels, 4, NULL);
}

/*
 * The 4-row batch split in parts of 1 to 2 rows over 2 to 4 threads gives
 * the whole batch's loss and gradient up to the order of additions, and
 * leaves the parts' buffers zero (a second call gives the same again).
 */
static void
TestSplitMatchesWhole(MtlModel *model, MtlWork *work, const char *name)
{
	size_t		n = model->layout.n_params;
	float	   *g1 = mtl_alloc(sizeof(float) * n);
	float	   *g2 = mtl_alloc(sizeof(float) * n);
	int			keep = mtl_split_min_rows;
	double		l1 = Loss(model, work, g1);

	mtl_split_min_rows = 1;
	for (int threads = 2; threads <= 4; threads++)
	{
		MtlSplit   *split = mtl_split_create(model, work, 4, threads);
		double		worst = 0,
					l2 = 0;

		/* 4 threads: as 2 and 3, with the embedding rows summed one by one */
		mtl_split_rows_always = threads == 4;

		for (int call = 0; call < 2; call++)
		{
			memset(g2, 0, sizeof(float) * n);
			l2 = SplitLoss(model, split, g2);
			for (size_t i = 0; i < n; i++)
				worst = fmax(worst, fabs(g1[i] - g2[i]) / fmax(1e-3, fabs(g1[i]) + fabs(g2[i])));
		}
		CHECK(fabs(l1 - l2) < 1e-5 * fmax(1, fabs(l1)) && worst < 1e-3,
			  "%s split over %d threads: loss %g vs %g, worst gradient difference %g", name,
			  threads, l1, l2, worst);
		CHECK(fabs(SplitLoss(model, split, NULL) - l1) < 1e-5 * fmax(1, fabs(l1)),
			  "%s split forward only over %d threads", name, threads);
		mtl_split_free(split);
	}
	mtl_split_min_rows = keep;
	mtl_split_rows_always = 0;
	mtl_free(g1);
	mtl_free(g2);
}

static const char *
VariantName(const Variant *v, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%d layers/%d levels%s%s%s%s/%s%s%s%s", mtl_model_type_name(v->type),
			 v->expert_layers, v->levels, v->scenario ? "/scenario" : "",
			 v->conditional ? "/given" : "", v->dropout > 0 ? "/dropout" : "",
			 v->weighting == MTL_WEIGHTING_UNCERTAINTY ? "/uncertainty" : "",
			 mtl_interaction_name(v->interaction), v->bag ? "/bag" : "", v->din ? "/din" : "",
			 v->weighted ? "/weighted rows" : "");
	return buf;
}

/* the first layer by value (grouped.h) for every field it can take */
static int	grouped_first_layer;

/*
 * The first layer by value gives the GEMM's loss and gradients up to the
 * order of additions, and it ran (the fields of the 4-row batch grouped).
 */
static void
TestGroupedMatchesGemm(MtlModel *model)
{
	size_t		n = model->layout.n_params;
	MtlWork    *plain = mtl_work_create(model, 4);
	MtlWork    *grouped = mtl_work_create(model, 4);
	float	   *g1 = mtl_alloc(sizeof(float) * n);
	float	   *g2 = mtl_alloc(sizeof(float) * n);
	double		l1,
				l2,
				worst = 0;

	mtl_grouped_enable(model, grouped);
	l1 = Loss(model, plain, g1);
	l2 = Loss(model, grouped, g2);
	for (size_t i = 0; i < n; i++)
		worst = fmax(worst, fabs(g1[i] - g2[i]) / fmax(1e-3, fabs(g1[i]) + fabs(g2[i])));
	CHECK(grouped->n_groups > 0 && fabs(l1 - l2) < 1e-5 * fmax(1, fabs(l1)) && worst < 1e-4,
		  "first layer by value: %d fields grouped, loss %g vs %g, worst gradient difference %g",
		  grouped->n_groups, l1, l2, worst);
	mtl_work_free(plain, model);
	mtl_work_free(grouped, model);
	mtl_free(g1);
	mtl_free(g2);
}

static void
TestModelGradient(Variant v)
{
	MtlModel	model;
	MtlWork    *work;
	float	   *grads;
	double		worst = 0,
				center;
	int			kinks = 0;
	size_t		n;
	char		name[128];

	SmallModel(&model, &v);
	n = model.layout.n_params;
	work = mtl_work_create(&model, 4);
	if (grouped_first_layer)
	{
		TestGroupedMatchesGemm(&model);
		mtl_grouped_enable(&model, work);
	}
	grads = mtl_alloc(sizeof(float) * n);
	/* dropout: draw the masks once and keep them for every evaluation */
	work->dropout_mode = v.dropout > 0 ? MTL_DROPOUT_DRAW : MTL_DROPOUT_OFF;
	Loss(&model, work, grads);
	work->dropout_mode = v.dropout > 0 ? MTL_DROPOUT_REUSE : MTL_DROPOUT_OFF;
	center = Loss(&model, work, NULL);
	for (size_t i = 0; i < n; i++)
	{
		float		keep = model.params[i];
		double		up,
					down;

		model.params[i] = keep + 1e-3f;
		up = Loss(&model, work, NULL);
		model.params[i] = keep - 1e-3f;
		down = Loss(&model, work, NULL);
		model.params[i] = keep;

		/*
		 * A step that crosses a ReLU kink makes the one-sided slopes disagree;
		 * such a parameter says nothing about the code, so skip it (and count).
		 */
		if (RelErr((up - center) / 1e-3, (center - down) / 1e-3) > 0.02)
		{
			kinks++;
			continue;
		}
		if (RelErr((up - down) / 2e-3, grads[i]) > worst)
		{
			worst = RelErr((up - down) / 2e-3, grads[i]);
			if (getenv("MTL_GRAD_DEBUG"))
				printf("    param %zu: numeric %g analytic %g (one-sided %g %g)\n", i,
					   (up - down) / 2e-3, grads[i], (up - center) / 1e-3, (center - down) / 1e-3);
		}
	}
	VariantName(&v, name, sizeof(name));
	printf("  %s: worst %g, %d kinks of %zu\n", name, worst, kinks, n);
	if (v.dropout == 0)
		TestSplitMatchesWhole(&model, work, name);
	CHECK(worst < 2e-2 && (size_t) kinks < n / 10,
		  "%s gradient relative error %g over %zu params, %d at kinks", name, worst, n, kinks);
	mtl_work_free(work, &model);
	mtl_free(grads);
	mtl_free(model.params);
	mtl_layout_free(&model.layout);
}

/*
 * Weighted losses: each row's loss and gradient are its weight times the
 * unweighted ones (weights ldy apart, after the labels as training lays
 * them out), and a row of weight 0 contributes nothing.
 */
static void
TestWeightedLosses(void)
{
	/* rows of [label, weight] */
	float		z[4] = {-1.5f, 0.2f, 2.0f, 0.7f};
	float		rows[4 * 2] = {1, 0.5f, 0, 2, 1, 0, 0, 3};
	float		yr[4 * 2] = {0.3f, 0.5f, -1, 2, 2.5f, 0, 1, 3};
	const float *zc[1] = {z};
	const float *yc[1] = {rows};
	float		dz[4] = {0},
				dw[4] = {0},
				d1[1];
	float	   *dzc[1] = {dw};
	int64_t		labelled = 0;
	double		expect = 0.0,
				worst = 0.0,
				loss;

	for (int r = 0; r < 4; r++)
	{
		const float *zr1[1] = {&z[r]};
		const float *yr1[1] = {&rows[2 * r]};
		float	   *dr1[1] = {d1};
		int64_t		one = 0;

		d1[0] = 0.0f;
		expect += rows[2 * r + 1] * mtl_bce_chain(dr1, zr1, 1, yr1, 2, NULL, 1, 1, 1.0f, 1.0f, &one);
		dz[r] = rows[2 * r + 1] * d1[0];
	}
	loss = mtl_bce_chain(dzc, zc, 1, yc, 2, rows + 1, 1, 4, 1.0f, 1.0f, &labelled);
	for (int r = 0; r < 4; r++)
		worst = fmax(worst, fabs(dw[r] - dz[r]));
	CHECK(fabs(loss - expect) < 1e-9 && worst < 1e-7 && dw[2] == 0.0f,
		  "weighted cross-entropy is the weights times each row's (loss %g vs %g, gradient off by %g)",
		  loss, expect, worst);
	expect = 0.0;
	for (int r = 0; r < 4; r++)
		expect += yr[2 * r + 1] * ((double) z[r] - yr[2 * r]) * ((double) z[r] - yr[2 * r]);
	loss = mtl_squared_error(dw, z, 1, yr, 2, yr + 1, 4, 1.0f);
	worst = 0.0;
	for (int r = 0; r < 4; r++)
		worst = fmax(worst, fabs(dw[r] - yr[2 * r + 1] * 2.0f * (z[r] - yr[2 * r])));
	CHECK(fabs(loss - expect) < 1e-6 && worst < 1e-6 && dw[2] == 0.0f,
		  "weighted squared error is the weights times each row's (loss %g vs %g, gradient off by %g)",
		  loss, expect, worst);
}

/* The chain loss of one row by hand: q = p0 * p1, joint label 1, pos_weight 2. */
static void
TestChainLoss(void)
{
	float		z0[1] = {0.3f},
				z1[1] = {-0.8f},
				y0[1] = {1},
				y1[1] = {1},
				d0[1] = {0},
				d1[1] = {0};
	float	   *dz[2] = {d1, d0};
	const float *z[2] = {z1, z0};
	const float *y[2] = {y1, y0};
	int64_t		labelled = 0;
	double		q = mtl_sigmoid(0.3f) * mtl_sigmoid(-0.8f);
	double		loss = mtl_bce_chain(dz, z, 1, y, 1, NULL, 2, 1, 1.0f, 2.0f, &labelled);

	CHECK(fabs(loss - (-2.0 * log(q))) < 1e-6 && labelled == 1,
		  "chain loss %g, expected %g", loss, -2.0 * log(q));
	/* d/dz1 of -2 log(p0 p1) = -2 (1 - p1) */
	CHECK(fabs(d1[0] - (-2.0 * (1 - mtl_sigmoid(-0.8f)))) < 1e-6, "chain gradient %g", d1[0]);
	y1[0] = NAN;
	y0[0] = 0;
	labelled = 0;
	d0[0] = d1[0] = 0;
	loss = mtl_bce_chain(dz, z, 1, y, 1, NULL, 2, 1, 1.0f, 2.0f, &labelled);
	CHECK(labelled == 1 && fabs(loss - (-log(1 - q))) < 1e-6,
		  "a missing label under a 0 parent is a 0 joint label (loss %g)", loss);
	y0[0] = NAN;
	labelled = 0;
	(void) mtl_bce_chain(dz, z, 1, y, 1, NULL, 2, 1, 1.0f, 2.0f, &labelled);
	CHECK(labelled == 0, "missing under a missing parent is skipped");
}

/*
 * GradNorm measures the last shared layer: each task's norm equals the norm,
 * over exactly the blocks mtl_model_last_shared_layer names, of the gradient
 * of that task's weighted loss alone; and those blocks are the experts' last
 * layer (2 layers) or their columns of W_in (1 layer), not the embeddings.
 */
static void
TestGradNormLayer(MtlModelType type, int expert_layers, int levels)
{
	Variant		v = {type, expert_layers, levels, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 0, 0};
	MtlModel	model;
	MtlWork    *work;
	MtlParamBlock blocks[MTL_MAX_EXPERTS];
	MtlLossOptions opt = {0};
	double		norm[MTL_MAX_TASKS];
	float	   *grads;
	int			n_blocks;
	double		worst = 0.0,
				first_layer_gap = 0.0;
	char		name[128];

	SmallModel(&model, &v);
	VariantName(&v, name, sizeof(name));
	work = mtl_work_create(&model, 4);
	grads = mtl_alloc(sizeof(float) * model.layout.n_params);
	n_blocks = mtl_model_last_shared_layer(&model, blocks, MTL_MAX_EXPERTS);
	CHECK(n_blocks > 0, "%s has a shared layer", name);
	for (int b = 0; b < n_blocks; b++)
	{
		const MtlLevel *lv = &model.layout.levels[model.layout.n_levels - 1];
		int			is_last = 0;

		for (int e = 0; e < lv->n_experts; e++)
			is_last |= expert_layers > 1 ? blocks[b].offset == lv->expert_W[e][expert_layers - 1]
				: (levels == 1 ? blocks[b].offset == model.layout.W_in + lv->col[e]
				   : blocks[b].offset == lv->in_W[model.spec.n_tasks] + lv->col[e] - lv->own_col0[model.spec.n_tasks]);
		CHECK(is_last && blocks[b].offset >= model.layout.n_params - model.layout.n_dense,
			  "%s: block %d is a last shared layer, not an embedding", name, b);
	}
	opt.shared_norm = norm;
	mtl_batch_loss(&model, work, model.params, grads, gslots, gnums, glabels, 4, &opt);
	for (int t = 0; t < model.spec.n_tasks; t++)
	{
		float		weights[MTL_MAX_TASKS];
		double		sum = 0.0;

		for (int u = 0; u < model.spec.n_tasks; u++)
		{
			weights[u] = model.spec.tasks[u].weight;
			model.spec.tasks[u].weight = u == t ? weights[u] : 0.0f;
		}
		memset(grads, 0, sizeof(float) * model.layout.n_params);
		Loss(&model, work, grads);
		for (int b = 0; b < n_blocks; b++)
			for (int r = 0; r < blocks[b].rows; r++)
				for (int c = 0; c < blocks[b].cols; c++)
				{
					double		g = grads[blocks[b].offset + (size_t) r * blocks[b].ld + c];

					sum += g * g;
				}
		worst = fmax(worst, RelErr(sqrt(sum), norm[t]));
		if (expert_layers > 1)
		{
			double		first = 0.0;

			for (size_t i = model.layout.W_in; i < model.layout.b_in; i++)
				first += (double) grads[i] * grads[i];
			first_layer_gap = fmax(first_layer_gap, RelErr(sqrt(first), norm[t]));
		}
		for (int u = 0; u < model.spec.n_tasks; u++)
			model.spec.tasks[u].weight = weights[u];
	}
	printf("  gradnorm layer %s: worst %g\n", name, worst);
	CHECK(worst < 1e-4, "%s: GradNorm's norm differs from the last shared layer's by %g", name, worst);
	if (expert_layers > 1)
		CHECK(first_layer_gap > 0.05, "%s: the first layer's norm would differ", name);
	mtl_work_free(work, &model);
	mtl_free(grads);
	mtl_free(model.params);
	mtl_layout_free(&model.layout);
}

void
test_gradients(void)
{
	static const Variant variants[] = {
		{MTL_MODEL_SHARED_BOTTOM, 1, 1, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 0, 0},
		{MTL_MODEL_SHARED_BOTTOM, 2, 1, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 0, 0},
		{MTL_MODEL_MMOE, 1, 1, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 0, 0},
		{MTL_MODEL_MMOE, 2, 1, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 0, 0},
		{MTL_MODEL_PLE, 1, 1, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 0, 0},
		{MTL_MODEL_PLE, 2, 2, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 0, 0},
		{MTL_MODEL_PLE, 1, 3, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 0, 0},
		{MTL_MODEL_SINGLE_TASK, 1, 1, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 0, 0},
		{MTL_MODEL_SINGLE_TASK, 2, 1, 0, 1, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 0, 0},
		{MTL_MODEL_ESMM, 1, 1, 0, 1, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 0, 0},
		{MTL_MODEL_MMOE, 1, 1, 1, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 0, 0},
		{MTL_MODEL_PLE, 2, 2, 1, 1, 0.3f, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 0, 0},
		{MTL_MODEL_MMOE, 2, 1, 0, 1, 0.3f, MTL_WEIGHTING_UNCERTAINTY, MTL_INTERACTION_IDS, 0, 0, 0},
		{MTL_MODEL_ESMM, 2, 1, 1, 1, 0, MTL_WEIGHTING_UNCERTAINTY, MTL_INTERACTION_IDS, 0, 0, 0},
		/* the cross slot: pooled sides, and fm over every field (with a context field) */
		{MTL_MODEL_MMOE, 1, 1, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_POOLED, 0, 0, 0},
		{MTL_MODEL_MMOE, 2, 1, 1, 1, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_POOLED, 0, 0, 0},
		{MTL_MODEL_MMOE, 1, 1, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_FM, 0, 0, 0},
		{MTL_MODEL_PLE, 2, 2, 1, 1, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_FM, 0, 0, 0},
		{MTL_MODEL_SINGLE_TASK, 1, 1, 1, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_FM, 0, 0, 0},
		{MTL_MODEL_SHARED_BOTTOM, 1, 1, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_POOLED, 0, 0, 0},
		/* a bag field: weighted sums into the input and into each cross */
		{MTL_MODEL_MMOE, 1, 1, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 1, 0, 0},
		{MTL_MODEL_MMOE, 2, 1, 1, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_POOLED, 1, 0, 0},
		{MTL_MODEL_PLE, 2, 2, 1, 1, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_FM, 1, 0, 0},
		{MTL_MODEL_SINGLE_TASK, 1, 1, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_POOLED, 1, 0, 0},
		/* a history pooled by target attention: into the history rows, the candidate, W1..b2 */
		{MTL_MODEL_MMOE, 1, 1, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 1, 0},
		{MTL_MODEL_MMOE, 2, 1, 1, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_POOLED, 0, 1, 0},
		{MTL_MODEL_PLE, 2, 2, 1, 1, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_FM, 0, 1, 0},
		{MTL_MODEL_SINGLE_TASK, 1, 1, 0, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_POOLED, 0, 1, 0},
		/* sample weights: each row's loss and gradient times its weight (one weighs 0) */
		{MTL_MODEL_MMOE, 2, 1, 1, 1, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_POOLED, 0, 0, 1},
		{MTL_MODEL_ESMM, 1, 1, 0, 1, 0, MTL_WEIGHTING_UNCERTAINTY, MTL_INTERACTION_FM, 1, 0, 1},
		{MTL_MODEL_PLE, 2, 2, 1, 0, 0, MTL_WEIGHTING_FIXED, MTL_INTERACTION_IDS, 0, 1, 1},
	};

	mtl_rng_seed(&rng, 1);
	TestDense();
	TestRelu();
	TestSoftmax();
	TestEmbedding();
	TestLosses();
	TestChainLoss();
	TestWeightedLosses();
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
		TestModelGradient(variants[i]);
	/* the first layer by value: every field of the small models groups in a 4-row batch */
	{
		int			keep = mtl_grouped_ratio;

		mtl_grouped_ratio = 1;
		grouped_first_layer = 1;
		for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
			if (variants[i].type != MTL_MODEL_SINGLE_TASK)
				TestModelGradient(variants[i]);
		grouped_first_layer = 0;
		mtl_grouped_ratio = keep;
	}
	TestGradNormLayer(MTL_MODEL_MMOE, 2, 1);
	TestGradNormLayer(MTL_MODEL_MMOE, 1, 1);
	TestGradNormLayer(MTL_MODEL_SHARED_BOTTOM, 2, 1);
	TestGradNormLayer(MTL_MODEL_PLE, 1, 2);
	TestGradNormLayer(MTL_MODEL_PLE, 2, 2);
	/* the gradients hold with denormals flushed, as the server trains */
	{
		MtlFpMode	mode;

		/* the same models as above: only the floating-point mode differs */
		mtl_rng_seed(&rng, 1);
		mtl_fp_flush_begin(&mode);
		for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
			TestModelGradient(variants[i]);
		mtl_fp_flush_end(&mode);
	}
}
