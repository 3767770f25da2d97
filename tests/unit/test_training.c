/* Training learns the synthetic shop, and a fixed seed reproduces the model. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "synthetic.h"
#include "../../src/core/dataset.h"
#include "../../src/core/fit.h"
#include "../../src/core/mem.h"
#include "../../src/core/evaluate.h"
#include "../../src/core/metrics.h"
#include "../../src/core/predict.h"
#include "../../src/core/rng.h"

double
HeldOutAuc(const MtlTrained *m, double *oracle_auc)
{
	double	   *truth;
	int			n = 4000;
	MtlRowStore *test = synthetic_rows(n, 777, &truth);
	double	   *score = mtl_alloc(sizeof(double) * n);
	double	   *label = mtl_alloc(sizeof(double) * n);
	MtlPredictor *p = mtl_predictor_create(m);
	double		auc;

	for (int r = 0; r < n; r++)
	{
		double		out[2];

		const MtlRowRef *ref = mtl_rows_ref(test, r);

		mtl_schema_row_from_ids(&m->schema, &m->model.layout,
								mtl_schema_find_id(&m->schema, MTL_SIDE_USER, mtl_rows_user_id(test, ref)),
								mtl_schema_find_id(&m->schema, MTL_SIDE_ITEM, mtl_rows_item_id(test, ref)),
								p->slots, p->nums);
		mtl_predictor_run(p, out);
		score[r] = out[0];
		label[r] = mtl_rows_labels(test, r)[0];
	}
	auc = mtl_auc(score, label, n);
	*oracle_auc = mtl_auc(truth, label, n);
	mtl_predictor_free(p);
	mtl_free(score);
	mtl_free(label);
	mtl_free(truth);
	mtl_rows_free(test);
	return auc;
}

/*
 * Rows of users 0..499 and items [item_lo, item_hi): user u likes the items
 * tagged g(u % 5) (each item has g(i % 5) and a tag h(i % 7) that says
 * nothing), and nothing else moves the clicks. With tags (as a list) or
 * without them.
 */
static MtlRowStore *
TaggedRows(int n, int item_lo, int item_hi, uint64_t seed, int with_tags)
{
	MtlRowStore *store = mtl_rows_create(2);
	int			tags = with_tags ? mtl_rows_field(store, MTL_SIDE_ITEM, MTL_KIND_BAG, "tags", 4) : -1;
	MtlRng		rng;

	mtl_rng_seed(&rng, seed);
	for (int r = 0; r < n; r++)
	{
		int			u = (int) mtl_rng_below(&rng, 500);
		int			i = item_lo + (int) mtl_rng_below(&rng, (uint64_t) (item_hi - item_lo));
		double		p = u % 5 == i % 5 ? 0.6 : 0.15;
		float		labels[2] = {mtl_rng_uniform(&rng) < p ? 1.0f : 0.0f, NAN};
		char		text[16];

		mtl_rows_add(store, u, 10000 + i, MTL_HAS_USER | MTL_HAS_ITEM, labels);
		if (!with_tags)
			continue;
		snprintf(text, sizeof(text), "g%d", i % 5);
		mtl_rows_add_entry(store, tags, mtl_bag_value(mtl_category_hash(text, strlen(text), 0),
													  MTL_BAG_MEAN_BITS));
		snprintf(text, sizeof(text), "h%d", i % 7);
		mtl_rows_add_entry(store, tags, mtl_bag_value(mtl_category_hash(text, strlen(text), 0),
													  MTL_BAG_MEAN_BITS));
	}
	mtl_rows_seal(store);
	return store;
}

/*
 * Held-out AUC of m on test's rows with the ids of `side` (user or item)
 * unknown to it: that side's features are passed, as mtl_predict's would be
 * (the test store numbers its fields as the training stores do).
 */
static double
ColdAuc(const MtlTrained *m, const MtlRowStore *test, int side)
{
	const MtlSchema *schema = &m->schema;
	int64_t		n = test->n_rows;
	double	   *score = mtl_alloc(sizeof(double) * n);
	double	   *label = mtl_alloc(sizeof(double) * n);
	MtlPredictor *p = mtl_predictor_create(m);
	double		auc;

	for (int64_t r = 0; r < n; r++)
	{
		const MtlRowRef *ref = mtl_rows_ref(test, r);
		uint32_t	set = ref->set[side];
		double		out[2];

		mtl_schema_row_from_ids(schema, &m->model.layout,
								side == MTL_SIDE_USER ? -1 :
								mtl_schema_find_id(schema, MTL_SIDE_USER, mtl_rows_user_id(test, ref)),
								side == MTL_SIDE_ITEM ? -1 :
								mtl_schema_find_id(schema, MTL_SIDE_ITEM, mtl_rows_item_id(test, ref)),
								p->slots, p->nums);
		mtl_schema_clear_side(schema, &m->model.layout, side, p->slots, p->nums);
		for (int64_t e = set ? test->set_end[set - 1] : 0; set && e < test->set_end[set]; e++)
			if ((int) test->entry_field[e] < schema->n_fields)
				mtl_schema_set_feature(schema, &m->model.layout, test->entry_field[e],
									   test->entry_value[e], p->slots, p->nums);
		mtl_schema_finish_side(schema, &m->model.layout, side, p->slots, p->nums);
		mtl_predictor_run(p, out);
		score[r] = out[0];
		label[r] = mtl_rows_labels(test, r)[0];
	}
	auc = mtl_auc(score, label, n);
	mtl_predictor_free(p);
	mtl_free(score);
	mtl_free(label);
	return auc;
}

/*
 * A bag field learns and generalises: on items it never saw, a model given
 * their tags ranks a user's clicks well; without tags it cannot.
 */
static void
TestTagsLearn(void)
{
	MtlSpec		spec;
	MtlTrained	with,
				without;
	double		needed,
				auc_with,
				auc_without;
	MtlRowStore *tagged = TaggedRows(40000, 0, 300, 5, 1),
			   *untagged = TaggedRows(40000, 0, 300, 5, 0),
			   *test = TaggedRows(8000, 300, 400, 777, 1);

	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.interaction = MTL_INTERACTION_POOLED;	/* the default: tags meet the user in the cross */
	spec.id_dropout = 0.1f;		/* the default */
	mtl_fit(&spec, tagged, NULL, 0, &needed, &with);
	mtl_fit(&spec, untagged, NULL, 0, &needed, &without);
	auc_with = ColdAuc(&with, test, MTL_SIDE_ITEM);
	auc_without = ColdAuc(&without, test, MTL_SIDE_ITEM);
	/* the true probabilities (0.6 and 0.15, one item in five liked) rank at about 0.70 */
	CHECK(auc_with > 0.67 && auc_without < 0.55,
		  "tags rank unseen items: AUC %.4f with tags, %.4f without", auc_with, auc_without);
	printf("  tags: cold-item ctr AUC %.4f with, %.4f without (true probabilities: about 0.70)\n",
		   auc_with, auc_without);
	mtl_trained_free(&with);
	mtl_trained_free(&without);
	mtl_rows_free(tagged);
	mtl_rows_free(untagged);
	mtl_rows_free(test);
}

/*
 * A user's history: HISTORY items of distinct groups (item i is in group
 * i % GROUPS, an item feature), drawn from a hash of the user; the user
 * clicks an item of a group in the history with probability 0.6, others
 * with 0.1. Rows of users [user_lo, user_hi), the history as a sequence
 * field or none.
 */
#define HISTORY 10
#define GROUPS 40
#define ITEMS 400

static MtlRowStore *
HistoryRows(int n, int user_lo, int user_hi, uint64_t seed, int with_history)
{
	MtlRowStore *store = mtl_rows_create(2);
	int			group = mtl_rows_field(store, MTL_SIDE_ITEM, MTL_KIND_CAT, "group", 5);
	int			recent = with_history ?
		mtl_rows_field(store, MTL_SIDE_USER, MTL_KIND_SEQ, "recent", 6) : -1;
	MtlRng		rng;

	mtl_rng_seed(&rng, seed);
	for (int r = 0; r < n; r++)
	{
		int			u = user_lo + (int) mtl_rng_below(&rng, (uint64_t) (user_hi - user_lo));
		int			i = (int) mtl_rng_below(&rng, ITEMS);
		int			hist[HISTORY],
					liked = 0;
		float		labels[2] = {0, NAN};
		MtlRng		user_rng;

		int			groups[GROUPS];

		/* distinct groups at random (a partial shuffle seeded by the user) */
		mtl_rng_seed(&user_rng, 1000003 + (uint64_t) u);
		for (int g = 0; g < GROUPS; g++)
			groups[g] = g;
		for (int k = 0; k < HISTORY; k++)
		{
			int			j = k + (int) mtl_rng_below(&user_rng, (uint64_t) (GROUPS - k));
			int			g = groups[j];

			groups[j] = groups[k];
			groups[k] = g;
			hist[k] = g + GROUPS * (int) mtl_rng_below(&user_rng, ITEMS / GROUPS);
			liked |= g == i % GROUPS;
		}
		labels[0] = mtl_rng_uniform(&rng) < (liked ? 0.6 : 0.1) ? 1.0f : 0.0f;
		mtl_rows_add(store, u, 10000 + i, MTL_HAS_USER | MTL_HAS_ITEM, labels);
		{
			char		text[16];

			snprintf(text, sizeof(text), "g%d", i % GROUPS);
			mtl_rows_add_entry(store, group, mtl_category_hash(text, strlen(text), 0));
		}
		for (int k = 0; with_history && k < HISTORY; k++)
			mtl_rows_add_entry(store, recent, (uint64_t) (10000 + hist[k]));
	}
	mtl_rows_seal(store);
	return store;
}

/*
 * A history generalises to users never seen, and attention (DIN) finds the
 * one history item that matches the candidate better than the history's mean.
 */
static void
TestHistoryLearns(void)
{
	MtlSpec		spec;
	MtlTrained	din,
				mean,
				none;
	double		needed,
				auc_din,
				auc_mean,
				auc_none;
	MtlRowStore *rows = HistoryRows(60000, 0, 4000, 5, 1),
			   *bare = HistoryRows(60000, 0, 4000, 5, 0),
			   *test = HistoryRows(8000, 4000, 5000, 777, 1);

	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.interaction = MTL_INTERACTION_POOLED;
	spec.id_dropout = 0.1f;
	spec.sequence_length = HISTORY;
	spec.attention_units = 16;
	spec.sequence_pooling = MTL_POOL_DIN;
	mtl_fit(&spec, rows, NULL, 0, &needed, &din);
	spec.sequence_pooling = MTL_POOL_MEAN;
	mtl_fit(&spec, rows, NULL, 0, &needed, &mean);
	mtl_fit(&spec, bare, NULL, 0, &needed, &none);
	auc_din = ColdAuc(&din, test, MTL_SIDE_USER);
	auc_mean = ColdAuc(&mean, test, MTL_SIDE_USER);
	auc_none = ColdAuc(&none, test, MTL_SIDE_USER);
	printf("  history: cold-user ctr AUC %.4f din, %.4f mean, %.4f none\n", auc_din, auc_mean, auc_none);
	CHECK(auc_mean > auc_none + 0.05 && auc_din > auc_mean + 0.05,
		  "a history lifts cold users' AUC, attention more than the mean: %.4f din, %.4f mean, %.4f none",
		  auc_din, auc_mean, auc_none);
	mtl_trained_free(&din);
	mtl_trained_free(&mean);
	mtl_trained_free(&none);
	mtl_rows_free(rows);
	mtl_rows_free(bare);
	mtl_rows_free(test);
}

static void
TestLearns(MtlModelType type)
{
	MtlSpec		spec;
	MtlTrained	m;
	double	   *truth,
				needed,
				oracle;
	MtlRowStore *rows = synthetic_rows(30000, 5, &truth);
	double		auc;

	synthetic_spec(&spec, type);
	mtl_fit(&spec, rows, NULL, 0, &needed, &m);
	auc = HeldOutAuc(&m, &oracle);
	CHECK(m.summary.epoch_loss[m.summary.epochs - 1] < m.summary.epoch_loss[0],
		  "loss falls: %g -> %g", m.summary.epoch_loss[0], m.summary.epoch_loss[m.summary.epochs - 1]);
	CHECK(auc > oracle - 0.05, "%s held-out AUC %.4f vs oracle %.4f",
		  mtl_model_type_name(type), auc, oracle);
	printf("  %s: held-out ctr AUC %.4f, oracle %.4f\n", mtl_model_type_name(type), auc, oracle);
	mtl_trained_free(&m);
	mtl_rows_free(rows);
	mtl_free(truth);
}

static void
TestReproducible(void)
{
	MtlSpec		spec;
	MtlTrained	a,
				b;
	double	   *truth,
				needed;
	MtlRowStore *rows = synthetic_rows(3000, 8, &truth);
	uint8_t    *ba,
			   *bb;
	size_t		na,
				nb;

	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.epochs = 3;
	spec.id_dropout = 0.1f;
	mtl_fit(&spec, rows, NULL, 0, &needed, &a);
	mtl_fit(&spec, rows, NULL, 0, &needed, &b);
	na = mtl_encode(&a, &ba);
	nb = mtl_encode(&b, &bb);
	CHECK(na == nb && memcmp(ba, bb, na) == 0, "same data and seed give the same bytes");
	mtl_trained_free(&b);
	spec.seed = 43;
	mtl_fit(&spec, rows, NULL, 0, &needed, &b);
	CHECK(memcmp(a.model.params + a.model.layout.W_in, b.model.params + b.model.layout.W_in,
				 sizeof(float) * 16) != 0, "another seed gives another model");
	mtl_trained_free(&a);
	mtl_trained_free(&b);
	mtl_free(ba);
	mtl_free(bb);
	mtl_rows_free(rows);
	mtl_free(truth);
}

/*
 * Early stopping keeps the best epoch: its validation loss is the lowest,
 * and the kept parameters are exactly those of a run stopped at that epoch.
 */
static void
TestEarlyStopping(void)
{
	MtlSpec		spec;
	MtlTrained	a,
				b;
	double	   *truth,
				needed,
				lowest = INFINITY;
	MtlRowStore *rows = synthetic_rows(3000, 9, &truth);
	int			best;

	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.epochs = 60;
	spec.learning_rate = 0.02f;	/* overfits fast */
	spec.validation_fraction = 0.2f;
	spec.patience = 2;
	mtl_fit(&spec, rows, NULL, 0, &needed, &a);
	best = a.summary.best_epoch;
	CHECK(a.summary.validation_rows == 600 && a.summary.rows == 2400,
		  "20%% of 3000 rows held out: %lld", (long long) a.summary.validation_rows);
	CHECK(a.summary.epochs < 60 && a.summary.epochs == best + 2,
		  "stopped two epochs after the best: ran %d, best %d", a.summary.epochs, best);
	for (int e = 0; e < a.summary.epochs; e++)
		lowest = fmin(lowest, a.summary.validation_loss[e]);
	CHECK(best >= 1 && a.summary.validation_loss[best - 1] == lowest,
		  "the best epoch has the lowest validation loss");
	spec.epochs = best;
	spec.patience = 0;
	mtl_fit(&spec, rows, NULL, 0, &needed, &b);
	CHECK(memcmp(a.model.params, b.model.params, sizeof(float) * a.model.layout.n_params) == 0,
		  "the kept parameters are the best epoch's");
	printf("  early stopping: best epoch %d of %d run\n", best, a.summary.epochs);
	mtl_trained_free(&a);
	mtl_trained_free(&b);
	mtl_rows_free(rows);
	mtl_free(truth);
}

/*
 * Checks inside an epoch (validate_every): none happen when an epoch is
 * shorter, so the model is the same bytes as with checks at epoch ends only;
 * with a check every 300 rows, a model that overfits fast stops sooner.
 */
static void
TestValidateEvery(void)
{
	MtlSpec		spec;
	MtlTrained	a,
				b,
				c;
	double	   *truth,
				needed;
	MtlRowStore *rows = synthetic_rows(3000, 9, &truth);

	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.epochs = 60;
	spec.learning_rate = 0.02f;
	spec.validation_fraction = 0.2f;
	spec.patience = 2;
	spec.validate_every = 0;
	mtl_fit(&spec, rows, NULL, 0, &needed, &a);
	spec.validate_every = 2400;
	mtl_fit(&spec, rows, NULL, 0, &needed, &b);
	CHECK(a.summary.epochs == b.summary.epochs &&
		  memcmp(a.model.params, b.model.params, sizeof(float) * a.model.layout.n_params) == 0,
		  "no check inside a 2400-row epoch: the same model as checks at epoch ends");
	spec.validate_every = 300;
	mtl_fit(&spec, rows, NULL, 0, &needed, &c);
	CHECK(c.summary.epochs < a.summary.epochs && c.summary.best_epoch >= 1 &&
		  c.summary.best_epoch <= c.summary.epochs,
		  "checks every 300 rows stop sooner: %d epochs (best in %d) against %d",
		  c.summary.epochs, c.summary.best_epoch, a.summary.epochs);
	CHECK(c.summary.gate_rows > 0 && c.summary.holdout[0].rows == c.summary.validation_rows,
		  "a stop inside an epoch still measures gates (%lld rows) and held-out rows (%lld of %lld)",
		  (long long) c.summary.gate_rows, (long long) c.summary.holdout[0].rows,
		  (long long) c.summary.validation_rows);
	for (int e = 0; e < c.summary.epochs; e++)
		CHECK(isfinite(c.summary.validation_loss[e]) && isfinite(c.summary.epoch_loss[e]),
			  "epoch %d's losses are measured", e + 1);
	printf("  validate_every 300: %d epochs, best in epoch %d; at epoch ends only: %d epochs, best %d\n",
		   c.summary.epochs, c.summary.best_epoch, a.summary.epochs, a.summary.best_epoch);
	mtl_trained_free(&a);
	mtl_trained_free(&b);
	mtl_trained_free(&c);
	mtl_rows_free(rows);
	mtl_free(truth);
}

/*
 * The held-out metrics a model carries equal the metrics of its held-out
 * rows (the tail of training's seeded shuffle) scored afresh by the predictor.
 */
static void
TestHoldoutMetrics(void)
{
	MtlSpec		spec;
	MtlTrained	m;
	double	   *truth,
				needed;
	int			n = 6000;
	MtlRowStore *rows = synthetic_rows(n, 21, &truth);
	const MtlLayout *L;
	MtlDataset	data;
	float		labels[2];
	int64_t    *order = mtl_alloc(sizeof(int64_t) * n);
	int64_t		n_val;
	MtlRng		rng;
	MtlPredictor *p;

	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.epochs = 3;
	spec.validation_fraction = 0.2f;
	mtl_fit(&spec, rows, NULL, 0, &needed, &m);
	L = &m.model.layout;
	mtl_dataset_build(&data, &m.schema, L, rows);
	for (int64_t i = 0; i < n; i++)
		order[i] = i;
	mtl_rng_seed(&rng, spec.seed ^ 0x5DEECE66DULL);
	mtl_rng_shuffle(&rng, order, n);
	n_val = (int64_t) (n * (double) spec.validation_fraction);
	CHECK(m.summary.validation_rows == n_val, "held-out rows %lld", (long long) n_val);
	p = mtl_predictor_create(&m);
	for (int t = 0; t < 2; t++)
	{
		double	   *score = mtl_alloc(sizeof(double) * n_val);
		double	   *label = mtl_alloc(sizeof(double) * n_val);
		uint8_t    *anon = mtl_alloc(n_val);
		int64_t		k = 0;
		MtlTaskMetrics expect;
		const MtlHoldout *h = &m.summary.holdout[t];

		memset(anon, 0, n_val);
		for (int64_t i = n - n_val; i < n; i++)
		{
			int64_t		r = order[i];
			double		out[2];

			if (isnan(mtl_rows_labels(rows, r)[t]))
				continue;
			mtl_dataset_expand(&data, mtl_rows_ref(rows, r), mtl_rows_labels(rows, r), p->slots,
							   p->nums, labels);
			mtl_predictor_run(p, out);
			score[k] = out[t];
			label[k++] = mtl_rows_labels(rows, r)[t];
		}
		if (m.model.spec.tasks[t].type == MTL_TASK_REGRESSION)
		{
			mtl_regression_metrics(score, label, k, &expect);
			CHECK(h->rows == k && fabs(h->rmse - expect.rmse) < 1e-4 &&
				  fabs(h->mae - expect.mae) < 1e-4 && isnan(h->auc),
				  "held-out %s: %lld rows, rmse %.5f (fresh %.5f), mae %.5f (fresh %.5f)",
				  m.model.spec.tasks[t].name, (long long) h->rows, h->rmse, expect.rmse,
				  h->mae, expect.mae);
		}
		else
		{
			mtl_binary_metrics(score, label, NULL, anon, k, NULL, &expect);
			CHECK(h->rows == k && fabs(h->auc - expect.auc) < 1e-5 &&
				  fabs(h->logloss - expect.logloss) < 1e-5 && isnan(h->rmse),
				  "held-out %s: %lld rows, auc %.7f (fresh %.7f), logloss %.7f (fresh %.7f)",
				  m.model.spec.tasks[t].name, (long long) h->rows, h->auc, expect.auc,
				  h->logloss, expect.logloss);
		}
		mtl_free(score);
		mtl_free(label);
		mtl_free(anon);
	}
	mtl_predictor_free(p);
	mtl_dataset_free(&data);
	mtl_free(order);
	mtl_trained_free(&m);
	mtl_rows_free(rows);
	mtl_free(truth);
}

/* Mean norm of the user id embeddings of a model trained with embedding_l2. */
static double
UserNorm(MtlRowStore *rows, float embedding_l2, size_t dense_max)
{
	MtlSpec		spec;
	MtlTrained	m;
	double		needed,
				sum = 0.0;
	int64_t		n;

	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.epochs = 4;
	spec.batch_size = 8;		/* many steps between two uses of a user */
	spec.embedding_l2 = embedding_l2;
	mtl_dense_step_max_embeddings = dense_max;
	mtl_fit(&spec, rows, NULL, 0, &needed, &m);
	mtl_dense_step_max_embeddings = 262144;
	n = m.model.shape.n_users;
	for (int64_t u = 0; u < n; u++)
	{
		double		sq = 0.0;

		for (int i = 0; i < m.model.layout.E; i++)
			sq += (double) m.model.params[u * m.model.layout.E + i] * m.model.params[u * m.model.layout.E + i];
		sum += sqrt(sq);
	}
	mtl_trained_free(&m);
	return sum / (double) n;
}

/*
 * embedding_l2 shrinks the id embeddings alike whether every row steps each
 * batch (dense) or only the rows a batch used (lazy, where a row takes the
 * penalty of the steps it missed when next used).
 */
static void
TestEmbeddingPenalty(void)
{
	double	   *truth;
	MtlRowStore *rows = synthetic_rows(3000, 21, &truth);
	double		dense_none = UserNorm(rows, 0.0f, 262144),
				dense = UserNorm(rows, 1.0f, 262144),
				lazy = UserNorm(rows, 1.0f, 0);

	printf("  user embedding norm: no penalty %.4f, penalty dense %.4f, lazy %.4f\n",
		   dense_none, dense, lazy);
	CHECK(dense < 0.8 * dense_none, "the penalty shrinks the user embeddings (%.4f against %.4f)",
		  dense, dense_none);
	CHECK(lazy > 0.75 * dense && lazy < 1.33 * dense,
		  "lazy steps shrink them about as much as dense ones (%.4f against %.4f)", lazy, dense);
	mtl_rows_free(rows);
	mtl_free(truth);
}

void
test_training(void)
{
	TestLearns(MTL_MODEL_SHARED_BOTTOM);
	TestLearns(MTL_MODEL_MMOE);
	/* the lazy step of large catalogs learns too */
	mtl_dense_step_max_embeddings = 0;
	TestLearns(MTL_MODEL_MMOE);
	mtl_dense_step_max_embeddings = 262144;
	TestReproducible();
	TestEarlyStopping();
	TestValidateEvery();
	TestEmbeddingPenalty();
	TestHoldoutMetrics();
	TestTagsLearn();
	TestHistoryLearns();
}
