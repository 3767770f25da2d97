#include "grouped.h"

#include <cblas.h>
#include <string.h>

#include "layers.h"
#include "mem.h"

/* 4: a field's value products cost at most a quarter of the batch's GEMM share */
int			mtl_grouped_ratio = 4;

/* A field whose block is one embedding row the batch gathered (no bag, no history). */
static int
Groupable(const MtlModel *model, int f, int B)
{
	const MtlLayout *L = &model->layout;

	return L->n_copies == 1 && L->cat_wcol[f] < 0 && !L->cat_din[f] &&
		model->shape.cat_rows[f] * mtl_grouped_ratio <= B;
}

void
mtl_grouped_enable(const MtlModel *model, MtlWork *w)
{
	int			n_cat = model->shape.n_cat;
	int64_t		values = 0,
				widest = 0;

	w->group_field = mtl_alloc(sizeof(int) * (n_cat + 1));
	w->group_off = mtl_alloc(sizeof(int64_t) * (n_cat + 1));
	w->group_on = mtl_alloc(n_cat + 1);
	for (int f = 0; f < n_cat; f++)
	{
		w->group_off[f] = Groupable(model, f, w->max_batch) ? values : -1;
		if (w->group_off[f] >= 0)
		{
			values += model->shape.cat_rows[f];
			widest = model->shape.cat_rows[f] > widest ? model->shape.cat_rows[f] : widest;
		}
	}
	w->group_enabled = values > 0;
	if (!w->group_enabled)
		return;
	w->group_row = mtl_alloc(sizeof(int32_t) * w->max_batch * (n_cat + 1));
	w->group_q = mtl_alloc(sizeof(float) * values * model->layout.P);
	w->group_dt = mtl_alloc(sizeof(float) * values * model->layout.E);
	w->group_count = mtl_alloc(sizeof(int32_t) * values);
	w->group_start = mtl_alloc(sizeof(int32_t) * (widest + 1));
	w->group_order = mtl_alloc(sizeof(int32_t) * w->max_batch);
	w->group_rows = mtl_alloc(sizeof(float *) * w->max_batch);
}

void
mtl_grouped_free(MtlWork *w)
{
	mtl_free(w->group_field);
	mtl_free(w->group_off);
	mtl_free(w->group_on);
	mtl_free(w->group_row);
	mtl_free(w->group_q);
	mtl_free(w->group_dt);
	mtl_free(w->group_count);
	mtl_free(w->group_start);
	mtl_free(w->group_order);
	mtl_free(w->group_rows);
}

void
mtl_grouped_plan(const MtlModel *model, MtlWork *w, const int32_t *slots, int B)
{
	const MtlLayout *L = &model->layout;

	w->group_B = 0;
	w->n_groups = 0;
	if (!w->group_enabled)
		return;
	memset(w->group_on, 0, model->shape.n_cat);
	for (int f = 0; f < model->shape.n_cat; f++)
	{
		int			g = w->n_groups;
		int			ok = w->group_off[f] >= 0 && Groupable(model, f, B);

		for (int r = 0; r < B && ok; r++)
		{
			int64_t		v = (int64_t) slots[(size_t) r * L->n_slots + L->cat_slot[f]] - L->cat_row0[f];

			/* a value outside the field's rows: this field takes the GEMM */
			ok = v >= 0 && v < model->shape.cat_rows[f];
			w->group_row[(size_t) r * model->shape.n_cat + g] = (int32_t) v;
		}
		if (ok)
			w->group_field[w->n_groups++] = f;
		w->group_on[f] = ok;
	}
	w->group_B = w->n_groups > 0 ? B : 0;
}

int
mtl_grouped_active(const MtlWork *w, int B)
{
	return w->group_B == B && w->n_groups > 0;
}

int
mtl_grouped_no_dx(const MtlModel *model, const MtlWork *w, int f, int B)
{
	return model->layout.A == 0 && mtl_grouped_active(w, B) && w->group_on[f];
}

/* First input column of categorical field f (see mtl_model_assemble). */
static int
FieldColumn(const MtlLayout *L, int f)
{
	return 3 * L->E + f * L->E;
}

/* out[B x P] (+)= X[:, k0:k1] @ W_in[k0:k1] for the columns between grouped fields. */
static void
OtherColumnsForward(const MtlModel *model, MtlWork *w, const float *W, int B)
{
	const MtlLayout *L = &model->layout;
	int			k = 0;

	for (int g = 0; g <= w->n_groups; g++)
	{
		int			end = g < w->n_groups ? FieldColumn(L, w->group_field[g]) : L->D;

		if (end > k)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, L->P, end - k, 1.0f,
						w->X + k, L->Xw, W + (size_t) k * L->P, L->P, 1.0f, w->proj[0], L->P);
		k = end + L->E;
	}
}

/* Group g's product (or, in the backward pass, dproj sum) for a row's values v. */
static inline float *
ValueProduct(const MtlWork *w, int g, const int32_t *v, int P)
{
	return w->group_q + (w->group_off[w->group_field[g]] + v[g]) * P;
}

void
mtl_grouped_forward(const MtlModel *model, MtlWork *w, const float *params, int B)
{
	const MtlLayout *L = &model->layout;
	const float *W = params + L->W_in;
	int			P = L->P;
	int			n_cat = model->shape.n_cat;

	for (int r = 0; r < B; r++)
		memcpy(w->proj[0] + (size_t) r * P, params + L->b_in, sizeof(float) * P);
	OtherColumnsForward(model, w, W, B);
	for (int g = 0; g < w->n_groups; g++)
	{
		int			f = w->group_field[g];
		float	   *q = w->group_q + w->group_off[f] * P;

		/* every value's product: its embedding row times the field's rows of W_in */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) model->shape.cat_rows[f], P,
					L->E, 1.0f, params + (size_t) L->cat_row0[f] * L->E, L->E,
					W + (size_t) FieldColumn(L, f) * P, P, 0.0f, q, P);
	}
	/* row by row, so that each row of proj stays in cache while its fields add in */
	for (int r = 0; r < B; r++)
	{
		float	   *y = w->proj[0] + (size_t) r * P;
		const int32_t *v = w->group_row + (size_t) r * n_cat;
		int			g = 0;

		for (; g + 4 <= w->n_groups; g += 4)
			mtl_add4(y, ValueProduct(w, g, v, P), ValueProduct(w, g + 1, v, P),
					 ValueProduct(w, g + 2, v, P), ValueProduct(w, g + 3, v, P), P);
		for (; g < w->n_groups; g++)
			mtl_add(y, ValueProduct(w, g, v, P), P);
	}
}

/* The columns between grouped fields: their W_in gradient and dX. */
static void
OtherColumnsBackward(const MtlModel *model, MtlWork *w, const float *W, float *dW, int B)
{
	const MtlLayout *L = &model->layout;
	int			k = 0;

	for (int g = 0; g <= w->n_groups; g++)
	{
		int			end = g < w->n_groups ? FieldColumn(L, w->group_field[g]) : L->D;

		if (end > k)
		{
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, end - k, L->P, B, 1.0f,
						w->X + k, L->Xw, w->dproj[0], L->P, 1.0f, dW + (size_t) k * L->P, L->P);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, end - k, L->P, 1.0f,
						w->dproj[0], L->P, W + (size_t) k * L->P, L->P, 0.0f, w->dX + k, L->Xw);
		}
		if (g < w->n_groups && !mtl_grouped_no_dx(model, w, w->group_field[g], B))
			for (int r = 0; r < B; r++)
				memset(w->dX + (size_t) r * L->Xw + end, 0, sizeof(float) * L->E);
		k = end + L->E;
	}
}

/*
 * dproj summed by value for every group (into group_q, free after the
 * forward pass): the batch's rows ordered by the field's value (a counting
 * sort), then each value's rows summed in registers and stored once, rather
 * than each row added into its value's sum in turn.
 */
static void
SumByValue(const MtlModel *model, MtlWork *w, int B)
{
	int			P = model->layout.P;
	int			n_cat = model->shape.n_cat;
	int32_t    *start = w->group_start;

	for (int g = 0; g < w->n_groups; g++)
	{
		int			f = w->group_field[g];
		int			V = (int) model->shape.cat_rows[f];
		float	   *sum = w->group_q + w->group_off[f] * P;
		int32_t    *count = w->group_count + w->group_off[f];

		memset(count, 0, sizeof(int32_t) * V);
		for (int r = 0; r < B; r++)
			count[w->group_row[(size_t) r * n_cat + g]]++;
		start[0] = 0;
		for (int v = 0; v < V; v++)
			start[v + 1] = start[v] + count[v];
		for (int r = 0; r < B; r++)
			w->group_order[start[w->group_row[(size_t) r * n_cat + g]]++] = r;
		/* start[v] is now value v's end */
		for (int v = 0, first = 0; v < V; first = start[v++])
		{
			if (count[v] == 0)
			{
				memset(sum + (size_t) v * P, 0, sizeof(float) * P);
				continue;
			}
			for (int j = 0; j < count[v]; j++)
				w->group_rows[j] = w->dproj[0] + (size_t) w->group_order[first + j] * P;
			mtl_sum_rows(sum + (size_t) v * P, w->group_rows[0], NULL, NULL, 0,
						 w->group_rows + 1, count[v] - 1, P);
		}
	}
}

/* Field f's W_in gradient and its rows' gradients from dproj summed by value. */
static void
FieldBackward(const MtlModel *model, MtlWork *w, const float *params, float *grads, int g)
{
	const MtlLayout *L = &model->layout;
	int			f = w->group_field[g];
	int			P = L->P;
	int			E = L->E;
	int			V = (int) model->shape.cat_rows[f];
	int			col = FieldColumn(L, f);
	float	   *sum = w->group_q + w->group_off[f] * P;
	float	   *dt = w->group_dt + w->group_off[f] * E;
	int32_t    *count = w->group_count + w->group_off[f];
	const float *table = params + (size_t) L->cat_row0[f] * E;
	float	   *dtable = grads + (size_t) L->cat_row0[f] * E;

	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, E, P, V, 1.0f, table, E, sum, P, 1.0f,
				grads + L->W_in + (size_t) col * P, P);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, V, E, P, 1.0f, sum, P,
				params + L->W_in + (size_t) col * P, P, 0.0f, dt, E);
	for (int v = 0; v < V; v++)
		if (count[v] > 0)
			mtl_add(dtable + (size_t) v * E, dt + (size_t) v * E, E);
}

void
mtl_grouped_backward(const MtlModel *model, MtlWork *w, const float *params, float *grads, int B)
{
	const MtlLayout *L = &model->layout;
	float	   *db = grads + L->b_in;

	for (int r = 0; r < B; r++)
		mtl_add(db, w->dproj[0] + (size_t) r * L->P, L->P);
	OtherColumnsBackward(model, w, params + L->W_in, grads + L->W_in, B);
	SumByValue(model, w, B);
	for (int g = 0; g < w->n_groups; g++)
		FieldBackward(model, w, params, grads, g);
}
