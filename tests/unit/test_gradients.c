/*
 * Finite-difference checks of every layer, loss and whole model: the
 * analytic gradient of a scalar L must match (L(x+h) - L(x-h)) / 2h.
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "../../src/core/layers.h"
#include "../../src/core/loss.h"
#include "../../src/core/mem.h"
#include "../../src/core/model.h"
#include "../../src/core/rng.h"
#include "../../src/core/train.h"

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
			up = kind ? mtl_squared_error(d, zi, 1, &yi, 1, 1, 1) : mtl_bce_logits(d, zi, 1, &yi, 1, 1, 1);
			zi[0] = z[i] - 1e-2f;
			down = kind ? mtl_squared_error(d, zi, 1, &yi, 1, 1, 1) : mtl_bce_logits(d, zi, 1, &yi, 1, 1, 1);
			zi[0] = z[i];
			(void) (kind ? mtl_squared_error(g, zi, 1, &yi, 1, 1, 1) : mtl_bce_logits(g, zi, 1, &yi, 1, 1, 1));
			worst = fmax(worst, RelErr((up - down) / 2e-2, g[0]));
		}
	CHECK(worst < 1e-3, "loss gradient relative error %g", worst);
}

/* A small model with every kind of input, used by the whole-model check. */
static void
SmallModel(MtlModel *model, MtlModelType type, int expert_layers)
{
	static int64_t cat_rows[2] = {4, 3};
	MtlSpec    *s = &model->spec;

	memset(model, 0, sizeof(*model));
	s->n_tasks = 2;
	strcpy(s->tasks[0].name, "ctr");
	s->tasks[0].type = MTL_TASK_BINARY;
	s->tasks[0].weight = 1.0f;
	strcpy(s->tasks[1].name, "rating");
	s->tasks[1].type = MTL_TASK_REGRESSION;
	s->tasks[1].weight = 0.5f;
	s->model = type;
	s->embedding_dim = 3;
	s->n_experts = 3;
	s->n_expert_layers = expert_layers;
	s->expert_units[0] = 5;
	s->expert_units[1] = 4;
	s->n_bottom_layers = expert_layers;
	s->bottom_units[0] = 6;
	s->bottom_units[1] = 4;
	s->n_tower_layers = 1;
	s->tower_units[0] = 3;
	s->seed = 7;
	model->shape.n_users = 4;
	model->shape.n_items = 3;
	model->shape.n_cat = 2;
	model->shape.n_num = 2;
	model->shape.cat_rows = cat_rows;
	CHECK(mtl_layout_build(&model->layout, s, &model->shape) == NULL, "layout builds");
	mtl_model_init(model);
	/*
	 * Biases start at zero, which puts a dead unit's pre-activation exactly on
	 * the ReLU kink; perturb every dense parameter so the check sees none.
	 */
	for (size_t i = model->layout.n_params - model->layout.n_dense; i < model->layout.n_params; i++)
		model->params[i] += 0.2f * mtl_rng_normal(&rng);
}

static void
TestModelGradient(MtlModelType type, int expert_layers)
{
	MtlModel	model;
	MtlWork    *work;
	int32_t		slots[4 * 4] = {0, 4, 7, 11, -1, 5, 8, 12, 3, -1, 10, 11, 1, 6, 7, 13};
	float		nums[4 * 2] = {0.5f, -1, 0, 0, 2, 0.3f, -0.7f, 1};
	float		labels[4 * 2] = {1, 0.4f, 0, NAN, NAN, -1.2f, 1, 2};
	float	   *grads;
	double		worst = 0,
				center;
	int			kinks = 0;
	size_t		n;

	SmallModel(&model, type, expert_layers);
	n = model.layout.n_params;
	work = mtl_work_create(&model, 4);
	grads = mtl_alloc(sizeof(float) * n);
	mtl_batch_loss(&model, work, model.params, grads, slots, nums, labels, 4);
	center = mtl_batch_loss(&model, work, model.params, NULL, slots, nums, labels, 4);
	for (size_t i = 0; i < n; i++)
	{
		float		keep = model.params[i];
		double		up,
					down;

		model.params[i] = keep + 1e-3f;
		up = mtl_batch_loss(&model, work, model.params, NULL, slots, nums, labels, 4);
		model.params[i] = keep - 1e-3f;
		down = mtl_batch_loss(&model, work, model.params, NULL, slots, nums, labels, 4);
		model.params[i] = keep;

		/*
		 * A step that crosses a ReLU kink makes the one-sided slopes disagree;
		 * such a parameter says nothing about the code, so skip it (and count).
		 */
		if (RelErr((up - center) / 1e-3, (center - down) / 1e-3) > 0.05)
		{
			kinks++;
			continue;
		}
		worst = fmax(worst, RelErr((up - down) / 2e-3, grads[i]));
	}
	printf("  %s/%d: worst %g, %d kinks of %zu\n", mtl_model_type_name(type), expert_layers, worst, kinks, n);
	CHECK(worst < 2e-2 && (size_t) kinks < n / 20,
		  "%s (%d expert layers) gradient relative error %g over %zu params, %d at kinks",
		  mtl_model_type_name(type), expert_layers, worst, n, kinks);
	mtl_work_free(work, &model);
	mtl_free(grads);
	mtl_free(model.params);
	mtl_layout_free(&model.layout);
}

void
test_gradients(void)
{
	mtl_rng_seed(&rng, 1);
	TestDense();
	TestRelu();
	TestSoftmax();
	TestEmbedding();
	TestLosses();
	TestModelGradient(MTL_MODEL_SHARED_BOTTOM, 1);
	TestModelGradient(MTL_MODEL_SHARED_BOTTOM, 2);
	TestModelGradient(MTL_MODEL_MMOE, 1);
	TestModelGradient(MTL_MODEL_MMOE, 2);
}
