#include "synthetic.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../src/core/mem.h"
#include "../../src/core/rng.h"

#define N_USERS 200
#define N_ITEMS 100
#define DIM 4

int			synthetic_item_lo = 0,
			synthetic_item_hi = N_ITEMS;
int			synthetic_history = 0;

/* Item i's tags: g(i % 5) and h(i % 4), and rare(i) for every ninth item. */
static void
AddTags(MtlRowStore *store, int field, int i)
{
	char		text[16];

	snprintf(text, sizeof(text), "g%d", i % 5);
	mtl_rows_add_entry(store, field, mtl_bag_value(mtl_category_hash(text, strlen(text), 0),
												   MTL_BAG_MEAN_BITS));
	snprintf(text, sizeof(text), "h%d", i % 4);
	mtl_rows_add_entry(store, field, mtl_bag_value(mtl_category_hash(text, strlen(text), 0),
												   MTL_BAG_MEAN_BITS));
	if (i % 9 == 0)
	{
		snprintf(text, sizeof(text), "rare%d", i);
		mtl_rows_add_entry(store, field, mtl_bag_value(mtl_category_hash(text, strlen(text), 0),
													   MTL_BAG_MEAN_BITS));
	}
}

/*
 * with_scenario: each row also has a context field "scenario" (home, search,
 * ads) that scales the affinity's effect and shifts the click rate.
 * with_tags: items have a list of tags (a bag field), and users of group
 * u % 5 like tag g(u % 5).
 */
static MtlRowStore *
Rows(int n_rows, uint64_t seed, double **truth, int with_scenario, int with_tags)
{
	static float user_vec[N_USERS][DIM],
				item_vec[N_ITEMS][DIM];
	MtlRowStore *store = mtl_rows_create(2);
	MtlRng		rng;
	int			segment = mtl_rows_field(store, MTL_SIDE_USER, MTL_KIND_CAT, "segment", 7);
	int			category = mtl_rows_field(store, MTL_SIDE_ITEM, MTL_KIND_CAT, "category", 8);
	int			price = mtl_rows_field(store, MTL_SIDE_ITEM, MTL_KIND_NUM, "price", 5);
	int			scenario = with_scenario ?
		mtl_rows_field(store, MTL_SIDE_CONTEXT, MTL_KIND_CAT, "scenario", 8) : -1;
	int			tags = with_tags == 1 ? mtl_rows_field(store, MTL_SIDE_ITEM, MTL_KIND_BAG, "tags", 4) : -1;
	int			recent = synthetic_history ?
		mtl_rows_field(store, MTL_SIDE_USER, MTL_KIND_SEQ, "recent", 6) : -1;
	static const char *const scenarios[3] = {"home", "search", "ads"};
	static const double scale[3] = {0.8, 1.6, 0.2},
				shift[3] = {0.0, 0.6, -0.8};

	mtl_rng_seed(&rng, 99);
	for (int u = 0; u < N_USERS; u++)
		for (int d = 0; d < DIM; d++)
			user_vec[u][d] = mtl_rng_normal(&rng);
	for (int i = 0; i < N_ITEMS; i++)
		for (int d = 0; d < DIM; d++)
			item_vec[i][d] = mtl_rng_normal(&rng);
	mtl_rng_seed(&rng, seed);
	*truth = mtl_alloc(sizeof(double) * n_rows);
	for (int r = 0; r < n_rows; r++)
	{
		int			u = (int) mtl_rng_below(&rng, N_USERS);
		int			i = synthetic_item_lo +
			(int) mtl_rng_below(&rng, (uint64_t) (synthetic_item_hi - synthetic_item_lo));
		double		affinity = 0;
		int			sc = with_scenario ? (int) mtl_rng_below(&rng, 3) : 0;
		double		p;
		float		labels[2];
		char		text[16];

		for (int d = 0; d < DIM; d++)
			affinity += user_vec[u][d] * item_vec[i][d];
		/* segment u % 3 likes category i % 3; price i / 20 dampens clicks */
		p = 1.0 / (1.0 + exp(-(scale[sc] * affinity + shift[sc] +
							   (u % 3 == i % 3 ? 1.0 : -0.5) - 0.3 * (i % 7) +
							   (with_tags ? (u % 5 == i % 5 ? 1.2 : -0.3) : 0.0))));
		(*truth)[r] = p;
		labels[0] = mtl_rng_uniform(&rng) < p ? 1.0f : 0.0f;
		labels[1] = labels[0] > 0 ? (float) (3.0 + affinity * 0.5 + 0.3 * mtl_rng_normal(&rng)) : NAN;
		mtl_rows_add(store, 1000 + u, 5000 + i, MTL_HAS_USER | MTL_HAS_ITEM, labels);
		snprintf(text, sizeof(text), "s%d", u % 3);
		mtl_rows_add_entry(store, segment, mtl_category_hash(text, strlen(text), 0));
		snprintf(text, sizeof(text), "c%d", i % 3);
		mtl_rows_add_entry(store, category, mtl_category_hash(text, strlen(text), 0));
		mtl_rows_add_entry(store, price, mtl_number_bits(10.0 * (i % 7) + 5));
		if (with_scenario)
			mtl_rows_add_entry(store, scenario,
							   mtl_category_hash(scenarios[sc], strlen(scenarios[sc]), 0));
		if (with_tags == 1)
			AddTags(store, tags, i);
		/* a history of 1 to 4 items, one unknown to the model every fifth user */
		for (int k = 0; synthetic_history && k <= u % 4; k++)
			mtl_rows_add_entry(store, recent, (uint64_t) (u % 5 == 0 && k == 0 ? 999999 :
														  5000 + (u * 7 + k * 13) % N_ITEMS));
	}
	return store;
}

MtlRowStore *
synthetic_rows(int n_rows, uint64_t seed, double **truth)
{
	return Rows(n_rows, seed, truth, 0, 0);
}

MtlRowStore *
synthetic_rows_tags(int n_rows, uint64_t seed, double **truth, int with_scenario)
{
	return Rows(n_rows, seed, truth, with_scenario, 1);
}

MtlRowStore *
synthetic_rows_untagged(int n_rows, uint64_t seed, double **truth)
{
	return Rows(n_rows, seed, truth, 0, 2);
}

MtlRowStore *
synthetic_rows_scenario(int n_rows, uint64_t seed, double **truth)
{
	return Rows(n_rows, seed, truth, 1, 0);
}

void
synthetic_spec(MtlSpec *s, MtlModelType type)
{
	memset(s, 0, sizeof(*s));
	s->n_tasks = 2;
	strcpy(s->tasks[0].name, "ctr");
	s->tasks[0].type = MTL_TASK_BINARY;
	s->tasks[0].weight = 1;
	strcpy(s->tasks[1].name, "rating");
	s->tasks[1].type = MTL_TASK_REGRESSION;
	s->tasks[1].weight = 1;
	for (int t = 0; t < 2; t++)
	{
		s->tasks[t].pos_weight = 1;
		s->tasks[t].negative_rate = 1;
		s->tasks[t].given = -1;
	}
	s->model = type;
	s->n_levels = 2;
	s->shared_experts = 2;
	s->task_experts = 1;
	s->lr_decay = 1;
	s->gradnorm_alpha = 1.5f;
	s->dwa_temperature = 2;
	s->embedding_dim = 8;
	s->n_experts = 4;
	s->n_expert_layers = 1;
	s->expert_units[0] = 32;
	s->n_bottom_layers = 1;
	s->bottom_units[0] = 64;
	s->n_tower_layers = 1;
	s->tower_units[0] = 16;
	s->epochs = 8;
	s->batch_size = 256;
	s->learning_rate = 0.005f;
	s->l2 = 1e-6f;
	s->embedding_l2 = 1e-6f;
	s->seed = 42;
	s->bag_size = 4;
	s->sequence_length = 4;
	s->sequence_pooling = MTL_POOL_DIN;
	s->attention_units = 8;
}
