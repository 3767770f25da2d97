/*
 * Data-parallel rounds: the counting store gives the schema the full store
 * gives; rows split into validation and round slices that every share
 * agrees on; the merge (every change, dense or embedding row, averaged by
 * the rows each share trained) on a hand-computed case; a round learns,
 * reproduces, and an empty round changes nothing; damaged or truncated
 * round states are refused.
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "synthetic.h"
#include "../../src/core/dataset.h"
#include "../../src/core/fit.h"
#include "../../src/core/mem.h"
#include "../../src/core/predict.h"
#include "../../src/core/rng.h"
#include "../../src/core/round.h"

void		test_round(void);

/* The rows of store into a counting store: same fields, ids, sets, labels. */
static MtlRowStore *
Counted(const MtlRowStore *store, int64_t from, int64_t to, MtlLabelStats *labels,
		const MtlSpec *spec)
{
	MtlRowStore *c = mtl_rows_create_counting(store->n_tasks);

	for (int f = 0; f < store->n_fields; f++)
		mtl_rows_field(c, store->fields[f].side, store->fields[f].kind, store->fields[f].name,
					   strlen(store->fields[f].name));
	for (int64_t r = from; r < to; r++)
	{
		const MtlRowRef *ref = mtl_rows_ref(store, r);
		uint8_t		flags = (ref->user ? MTL_HAS_USER : 0) | (ref->item ? MTL_HAS_ITEM : 0);

		mtl_rows_add(c, ref->user ? mtl_rows_user_id(store, ref) : 0,
					 ref->item ? mtl_rows_item_id(store, ref) : 0, flags, mtl_rows_labels(store, r));
		for (int side = 0; side < MTL_N_SIDES; side++)
		{
			uint32_t	set = ref->set[side];

			if (set == 0)
				continue;
			for (int64_t e = store->set_end[set - 1]; e < store->set_end[set]; e++)
				mtl_rows_add_entry(c, (int) store->entry_field[e], store->entry_value[e]);
		}
		mtl_label_stats_add(labels, spec, mtl_rows_labels(store, r));
	}
	mtl_rows_seal(c);
	return c;
}

static int
SameSchema(const MtlSchema *a, const MtlSchema *b)
{
	if (a->n_fields != b->n_fields || a->n_cat != b->n_cat || a->n_num != b->n_num)
		return 0;
	for (int f = 0; f < a->n_fields; f++)
	{
		const MtlFeature *x = &a->fields[f],
				   *y = &b->fields[f];

		if (strcmp(x->name, y->name) != 0 || x->n_values != y->n_values ||
			fabs(x->mean - y->mean) > 1e-9 * (1 + fabs(x->mean)) ||
			fabs(x->std - y->std) > 1e-9 * (1 + fabs(x->std)) ||
			(x->n_values && memcmp(x->values, y->values, sizeof(uint64_t) * x->n_values) != 0))
			return 0;
	}
	for (int side = 0; side < 2; side++)
	{
		const MtlIdTable *x = &a->ids[side],
				   *y = &b->ids[side];

		if (x->n != y->n || memcmp(x->ids, y->ids, sizeof(int64_t) * x->n) != 0 ||
			memcmp(x->cat, y->cat, sizeof(int32_t) * x->n * x->n_slot_cols) != 0 ||
			memcmp(x->num, y->num, sizeof(float) * x->n * x->n_num_cols) != 0)
			return 0;
	}
	return 1;
}

/* The first pass: a counting store (whole, or two halves merged after a round trip) gives mtl_fit's schema. */
static void
TestCounting(const MtlRowStore *store, const MtlSpec *spec, MtlTrained *start)
{
	MtlLabelStats whole = {0},
				half_a = {0},
				half_b = {0};
	MtlRowStore *c = Counted(store, 0, store->n_rows, &whole, spec);
	MtlRowStore *a = Counted(store, 0, store->n_rows / 3, &half_a, spec);
	MtlRowStore *b = Counted(store, store->n_rows / 3, store->n_rows, &half_b, spec);
	MtlSchema	full;
	MtlTrained	merged;
	MtlWriter	w = {0};
	MtlReader	r;
	MtlRowStore *b_back;
	double		needed;

	mtl_schema_build(&full, store, spec);
	CHECK(mtl_fit_init(spec, c, &whole, 0, &needed, start) == NULL, "the first pass builds a model");
	CHECK(SameSchema(&full, &start->schema), "a counting store gives the schema of all rows");
	CHECK(c->n_chunks == 0 && c->n_rows == store->n_rows, "a counting store keeps no rows");
	mtl_rows_write(&w, b);
	r = (MtlReader) {w.data, w.len, 0, NULL};
	b_back = mtl_rows_read(&r);
	CHECK(b_back != NULL && b_back->no_rows && b_back->n_rows == b->n_rows, "a counting state round-trips");
	CHECK(mtl_rows_merge(a, b_back) == NULL, "counting states merge");
	mtl_label_stats_merge(&half_a, &half_b);
	CHECK(mtl_fit_init(spec, a, &half_a, 0, &needed, &merged) == NULL &&
		  SameSchema(&full, &merged.schema), "merged halves give the schema of all rows");
	CHECK(merged.model.spec.tasks[1].target_mean == start->model.spec.tasks[1].target_mean &&
		  merged.model.layout.n_params == start->model.layout.n_params &&
		  memcmp(merged.model.params, start->model.params, sizeof(float) * start->model.layout.n_params) == 0,
		  "merged halves give the same initial model");
	mtl_free(w.data);
	mtl_rows_free(b_back);
	mtl_rows_free(a);
	mtl_rows_free(b);
	mtl_rows_free(c);
	mtl_schema_free(&full);
	mtl_trained_free(&merged);
}

/* Validation and slices: every row in exactly one slice per cycle of rounds. */
static void
TestParts(void)
{
	MtlSpec		spec = {0};
	MtlRoundOptions opt = {.round = 1, .learning_rate = 0.01f, .row_fraction = 0.25};
	int64_t		n = 40000,
				val = 0,
				bad = 0;

	spec.seed = 11;
	spec.validation_fraction = 0.1f;
	for (int64_t k = 0; k < n; k++)
	{
		int			trained = 0,
					held = 0;

		for (int round = 1; round <= 4; round++)
		{
			int			part;

			opt.round = round;
			part = mtl_round_part(&spec, &opt, 1, k, 1, k * 7 + 1);
			trained += part == MTL_ROUND_TRAIN;
			held += part == MTL_ROUND_VALIDATION;
		}
		opt.round = 5;
		bad += (held != 0 && held != 4) || (held == 0 && trained != 1) ||
			(mtl_round_part(&spec, &opt, 1, k, 1, k * 7 + 1) !=
			 (opt.round = 1, mtl_round_part(&spec, &opt, 1, k, 1, k * 7 + 1)));
		val += held == 4;
	}
	CHECK(bad == 0, "each row trains in one round of four, or is always held out (%lld bad)", (long long) bad);
	CHECK(fabs((double) val / n - 0.1) < 0.01, "a tenth is held out: %.4f", (double) val / n);
	opt.row_fraction = 0;
	CHECK(mtl_round_part(&spec, &opt, 1, 3, 1, 4) != MTL_ROUND_TRAIN, "row_fraction 0 trains nothing");
}

/* A hand-made share: E 2, one copy, 3 embedding rows, 2 dense parameters. */
static void
WriteShare(MtlWriter *w, const float *params, const float *counts, int64_t rows)
{
	MtlRoundSum s = {0};

	s.start_key = 42;
	s.round = 3;
	s.E = 2;
	s.copies = 1;
	s.emb_rows = 3;
	s.n_params = 8;
	s.has_dense = rows > 0;
	s.params = (float *) params;
	s.counts = (float *) counts;
	s.stats.rows = rows;
	s.stats.loss = 0.5 * rows;
	s.stats.shares = 1;
	memset(w, 0, sizeof(*w));
	mtl_round_sum_write(w, &s);
}

static MtlRoundSum *
ReadBack(const MtlWriter *w)
{
	MtlReader	r = {w->data, w->len, 0, NULL};

	return mtl_round_sum_read(&r, 1);
}

static void
TestMerge(void)
{
	float		pa[8] = {1, 1, 2, 2, 0, 0, 10, 20};
	float		ca[3] = {1, 2, 0};
	float		pb[8] = {5, 5, 0, 0, 0, 0, 40, 50};
	float		cb[3] = {3, 0, 0};
	MtlWriter	wa,
				wb;
	MtlRoundSum *a,
			   *b;

	WriteShare(&wa, pa, ca, 100);
	WriteShare(&wb, pb, cb, 300);
	a = ReadBack(&wa);
	b = ReadBack(&wb);
	CHECK(a != NULL && b != NULL, "hand-made shares read back");
	if (a == NULL || b == NULL)
	{
		mtl_round_sum_free(a);
		mtl_round_sum_free(b);
		mtl_free(wa.data);
		mtl_free(wb.data);
		return;
	}
	CHECK(mtl_round_sum_merge(a, b) == NULL, "shares of one round merge");
	/*
	 * by rows, 100 and 300: row 0 (100 * 1 + 300 * 5) / 400 = 4; row 1, only
	 * a's: 100 * 2 / 400 = 0.5; dense (100 * 10 + 300 * 40) / 400 = 32.5
	 */
	CHECK(fabsf(a->params[0] - 4.0f) < 1e-6 && fabsf(a->params[1] - 4.0f) < 1e-6,
		  "a row two shares used: their changes averaged by rows (%g)", a->params[0]);
	CHECK(fabsf(a->params[2] - 0.5f) < 1e-6 && fabsf(a->params[3] - 0.5f) < 1e-6,
		  "a row one share used: its change weighs that share's rows against all (%g)", a->params[2]);
	CHECK(a->params[4] == 0.0f && a->params[5] == 0.0f, "a row no share used does not change");
	CHECK(a->counts[0] == 4 && a->counts[1] == 2 && a->counts[2] == 0, "counts add up");
	CHECK(fabsf(a->params[6] - 32.5f) < 1e-5 && fabsf(a->params[7] - 42.5f) < 1e-5,
		  "dense parameters: averaged by rows (%g, %g)", a->params[6], a->params[7]);
	CHECK(a->stats.rows == 400 && fabs(a->stats.loss - 200) < 1e-9 && a->stats.shares == 2,
		  "rows, losses and shares add up");
	b->round = 4;
	CHECK(mtl_round_sum_merge(a, b) != NULL && mtl_round_sum_merge(a, b)->code == MTL_E_MISMATCH,
		  "shares of different rounds do not merge: a mismatch");
	b->round = 3;
	b->start_key = 7;
	CHECK(mtl_round_sum_merge(a, b) != NULL, "shares of different start models do not merge");
	mtl_round_sum_free(a);
	mtl_round_sum_free(b);
	mtl_free(wa.data);
	mtl_free(wb.data);
}

/* Feed the rows of store to a share of round opt from start. */
static MtlRound *
RunShare(const MtlTrained *start, const MtlRowStore *store, const MtlRoundOptions *opt)
{
	MtlRound   *round = mtl_round_create(start, 99, opt);
	const MtlSpec *spec = &start->model.spec;

	for (int64_t k = 0; k < store->n_rows; k++)
	{
		const MtlRowRef *ref = mtl_rows_ref(store, k);
		int64_t		user = mtl_rows_user_id(store, ref),
					item = mtl_rows_item_id(store, ref);
		int			part = mtl_round_part(spec, opt, 1, user, 1, item);
		int32_t    *slots;
		float	   *nums,
				   *labels;

		if (part == MTL_ROUND_SKIP)
			continue;
		mtl_round_row(round, part, &slots, &nums, &labels);
		mtl_schema_row_from_ids(&start->schema, &start->model.layout,
								mtl_schema_find_id(&start->schema, MTL_SIDE_USER, user),
								mtl_schema_find_id(&start->schema, MTL_SIDE_ITEM, item), slots, nums);
		memcpy(labels, mtl_rows_labels(store, k), sizeof(float) * spec->n_tasks);
		mtl_round_commit(round, part);
	}
	mtl_round_flush(round);
	return round;
}

/* The model after one round of a single share, as bytes. */
static size_t
OneRound(const MtlTrained *start, const MtlRowStore *store, const MtlRoundOptions *opt,
		 uint8_t **bytes, MtlRoundStats *stats)
{
	MtlRound   *round = RunShare(start, store, opt);
	MtlWriter	w = {0};
	MtlRoundSum *sum;
	const MtlError *why;
	size_t		len;

	mtl_round_write(&w, round);
	sum = ReadBack(&w);
	*stats = round->stats;
	len = sum ? mtl_round_apply(start, 99, sum, bytes, &why) : 0;
	mtl_round_sum_free(sum);
	mtl_round_free(round);
	mtl_free(w.data);
	return len;
}

static void
TestLearns(const MtlTrained *start, const MtlRowStore *store)
{
	MtlRoundOptions opt = {.round = 1, .learning_rate = 0.01f, .row_fraction = 1.0};
	MtlRoundOptions measure = {.round = 2, .learning_rate = 0.01f, .row_fraction = 0.0};
	MtlRoundStats first,
				again,
				after,
				none;
	uint8_t    *a,
			   *b,
			   *c;
	size_t		la = OneRound(start, store, &opt, &a, &first);
	size_t		lb = OneRound(start, store, &opt, &b, &again);
	MtlTrained	trained;
	size_t		lc;

	CHECK(la > 0 && la == lb && memcmp(a, b, la) == 0, "the same rows in the same order give the same model");
	CHECK(mtl_decode(a, la, &trained, 1) == NULL, "a round's result decodes");
	OneRound(&trained, store, &measure, &c, &after);
	CHECK(first.val_rows > 0 && after.val_rows == first.val_rows &&
		  after.val_loss / after.val_rows < first.val_loss / first.val_rows - 0.01,
		  "a round lowers the held-out loss: %.4f -> %.4f", first.val_loss / first.val_rows,
		  after.val_loss / after.val_rows);
	mtl_free(c);
	lc = OneRound(start, store, &measure, &c, &none);
	{
		MtlTrained	same;

		CHECK(none.rows == 0 && mtl_decode(c, lc, &same, 1) == NULL &&
			  memcmp(same.model.params, start->model.params,
					 sizeof(float) * start->model.layout.n_params) == 0,
			  "a round that trains nothing leaves the parameters as they were");
		mtl_trained_free(&same);
	}
	mtl_trained_free(&trained);
	mtl_free(a);
	mtl_free(b);
	mtl_free(c);
}

/* Every truncation and every single-byte change of a share is refused. */
/* Metrics of task t over the held-out rows of store, scored one by one by the predictor. */
static void
PredictorMetrics(const MtlTrained *start, const MtlRowStore *store, int t, MtlTaskMetrics *m)
{
	const MtlSpec *spec = &start->model.spec;
	MtlRoundOptions opt = {.round = 1, .row_fraction = 0.0};
	MtlPredictor *p = mtl_predictor_create(start);
	double	   *score = mtl_alloc(sizeof(double) * (store->n_rows + 1));
	double	   *label = mtl_alloc(sizeof(double) * (store->n_rows + 1));
	int64_t    *user = mtl_alloc(sizeof(int64_t) * (store->n_rows + 1));
	uint8_t    *has_user = mtl_alloc(store->n_rows + 1);
	double		out[MTL_MAX_TASKS];
	int64_t		n = 0;

	for (int64_t k = 0; k < store->n_rows; k++)
	{
		const MtlRowRef *ref = mtl_rows_ref(store, k);
		int64_t		u = mtl_rows_user_id(store, ref),
					i = mtl_rows_item_id(store, ref);
		float		y = mtl_rows_labels(store, k)[t];

		if (mtl_round_part(spec, &opt, 1, u, 1, i) != MTL_ROUND_VALIDATION || isnan(y))
			continue;
		mtl_predictor_row_from_ids(p, mtl_schema_find_id(&start->schema, MTL_SIDE_USER, u),
								   mtl_schema_find_id(&start->schema, MTL_SIDE_ITEM, i));
		mtl_predictor_run(p, out);
		score[n] = out[t];
		label[n] = y;
		user[n] = 0;
		has_user[n] = 0;
		n++;
	}
	memset(m, 0, sizeof(*m));
	if (spec->tasks[t].type == MTL_TASK_BINARY)
		mtl_binary_metrics(score, label, user, has_user, n, NULL, m);
	else
		mtl_regression_metrics(score, label, n, m);
	mtl_predictor_free(p);
	mtl_free(score);
	mtl_free(label);
	mtl_free(user);
	mtl_free(has_user);
}

/*
 * A round that keeps held-out scores gives the metrics of its start model on
 * the held-out rows, as scoring them one by one does; two shares' scores
 * add up; a share without them does not merge with one with them.
 */
static void
TestHeldOutMetrics(const MtlTrained *start, const MtlRowStore *store)
{
	MtlRoundOptions opt = {.round = 2, .learning_rate = 0.01f, .row_fraction = 0.0, .metrics = 1};
	MtlRoundOptions plain = {.round = 2, .learning_rate = 0.01f, .row_fraction = 0.0};
	MtlRound   *a = RunShare(start, store, &opt),
			   *b = RunShare(start, store, &opt),
			   *c = RunShare(start, store, &plain);
	MtlWriter	wa = {0},
				wb = {0},
				wc = {0};
	MtlRoundSum *sa,
			   *sb,
			   *sc;

	mtl_round_write(&wa, a);
	mtl_round_write(&wb, b);
	mtl_round_write(&wc, c);
	sa = ReadBack(&wa);
	sb = ReadBack(&wb);
	sc = ReadBack(&wc);
	CHECK(sa != NULL && sb != NULL && sc != NULL, "round states with held-out scores read back");
	if (sa != NULL && sb != NULL && sc != NULL)
	{
		MtlTaskMetrics got,
					want;
		int64_t		kept0 = 0;

		for (int t = 0; t < start->model.spec.n_tasks; t++)
		{
			CHECK(mtl_round_metrics(sa, t, &got), "task %d: a round with metrics keeps its scores", t);
			kept0 = t == 0 ? got.count : kept0;
			PredictorMetrics(start, store, t, &want);
			CHECK(got.count == want.count && got.count > 100,
				  "task %d: every labelled held-out row is kept (%lld, scored one by one %lld)", t,
				  (long long) got.count, (long long) want.count);
			if (start->model.spec.tasks[t].type == MTL_TASK_BINARY)
				CHECK(fabs(got.auc - want.auc) < 1e-4 && fabs(got.logloss - want.logloss) < 1e-4,
					  "task %d: AUC %.6f and logloss %.6f as scored one by one (%.6f, %.6f)", t,
					  got.auc, got.logloss, want.auc, want.logloss);
			else
				CHECK(fabs(got.rmse - want.rmse) < 1e-4 * (1 + want.rmse) &&
					  fabs(got.mae - want.mae) < 1e-4 * (1 + want.mae),
					  "task %d: RMSE %.6f and MAE %.6f as scored one by one (%.6f, %.6f)", t,
					  got.rmse, got.mae, want.rmse, want.mae);
		}
		CHECK(!mtl_round_metrics(sc, 0, &got), "a round without the option keeps no scores");
		CHECK(mtl_round_sum_merge(sa, sb) == NULL && mtl_round_metrics(sa, 0, &got) &&
			  got.count == 2 * kept0, "two shares' held-out scores add up");
		CHECK(mtl_round_sum_merge(sa, sc) != NULL, "a share without scores does not merge with one with them");
	}
	mtl_round_sum_free(sa);
	mtl_round_sum_free(sb);
	mtl_round_sum_free(sc);
	mtl_round_free(a);
	mtl_round_free(b);
	mtl_round_free(c);
	mtl_free(wa.data);
	mtl_free(wb.data);
	mtl_free(wc.data);
}

/*
 * A round's row: with every side's features given, the row's own sets and
 * nothing of the ids' stored features (read the quick way, without the id
 * tables); with a side missing, that side's stored features. Both as the
 * general way builds it: the ids' stored features, then the sets over them.
 */
static void
TestExpandWithIds(const MtlTrained *start, const MtlRowStore *store)
{
	const MtlLayout *L = &start->model.layout;
	MtlDataset	data;
	int32_t    *slots[2];
	float	   *nums[2];
	int			same = 1,
				full = 0,
				partial = 0;

	mtl_dataset_build(&data, &start->schema, L, store);
	for (int k = 0; k < 2; k++)
	{
		slots[k] = mtl_alloc(sizeof(int32_t) * L->n_slots);
		nums[k] = mtl_alloc(sizeof(float) * (L->n_cols + 1));
	}
	for (int64_t r = 0; r < store->n_rows && r < 2000; r++)
	{
		MtlRowRef	ref = *mtl_rows_ref(store, r);
		int32_t		item;

		/* every third row as if it came without its user's features */
		if (r % 3 == 0)
			ref.set[MTL_SIDE_USER] = 0;
		item = data.item_row[ref.item];
		mtl_dataset_expand_with_ids(&data, &start->schema, L, &ref, slots[0], nums[0]);
		mtl_schema_row_from_ids(&start->schema, L, data.user_row[ref.user],
								item < 0 ? -1 : item - L->item_row0, slots[1], nums[1]);
		mtl_dataset_expand_sides(&data, &ref, slots[1], nums[1]);
		same &= memcmp(slots[0], slots[1], sizeof(int32_t) * L->n_slots) == 0 &&
			memcmp(nums[0], nums[1], sizeof(float) * L->n_cols) == 0;
		for (int side = 0, quick = 1; side < MTL_N_SIDES; side++)
		{
			quick &= ref.set[side] != 0 || data.side_n_cat[side] + data.side_n_num[side] == 0;
			full += side == MTL_N_SIDES - 1 && quick;
		}
		partial += ref.set[MTL_SIDE_USER] == 0;
	}
	CHECK(same && full > 100 && partial > 100,
		  "a round's row: the quick way for %d rows with every side's features, the ids' for %d without the user's, as the general way", full, partial);
	for (int k = 0; k < 2; k++)
	{
		mtl_free(slots[k]);
		mtl_free(nums[k]);
	}
	mtl_dataset_free(&data);
}

static void
TestDamage(const MtlTrained *start, const MtlRowStore *store)
{
	/* held-out scores kept: the longest form of a state */
	MtlRoundOptions opt = {.round = 1, .learning_rate = 0.01f, .row_fraction = 0.5, .metrics = 1};
	MtlRound   *round = RunShare(start, store, &opt);
	MtlWriter	w = {0};
	int			truncated = 1,
				damaged = 1;

	mtl_round_write(&w, round);
	for (size_t len = 0; len < w.len; len += 1 + len / 8)
	{
		MtlReader	r = {w.data, len, 0, NULL};
		MtlRoundSum *s = mtl_round_sum_read(&r, 1);

		truncated &= s == NULL && r.failed != NULL;
		mtl_round_sum_free(s);
	}
	for (size_t at = 0; at < w.len; at += 1 + at / 16)
	{
		MtlReader	r = {w.data, w.len, 0, NULL};
		MtlRoundSum *s;

		w.data[at] ^= 0x5A;
		s = mtl_round_sum_read(&r, 1);
		damaged &= s == NULL && r.failed != NULL;
		mtl_round_sum_free(s);
		w.data[at] ^= 0x5A;
	}
	CHECK(truncated, "every truncated round state is refused");
	CHECK(damaged, "every damaged round state is refused");
	mtl_round_free(round);
	mtl_free(w.data);
}

void
test_round(void)
{
	double	   *truth;
	MtlRowStore *store = synthetic_rows(6000, 21, &truth);
	MtlSpec		spec;
	MtlTrained	start;

	mtl_rows_seal(store);
	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.validation_fraction = 0.2f;
	spec.batch_size = 64;
	TestCounting(store, &spec, &start);
	TestParts();
	TestMerge();
	TestLearns(&start, store);
	TestHeldOutMetrics(&start, store);
	TestExpandWithIds(&start, store);
	TestDamage(&start, store);
	mtl_trained_free(&start);
	mtl_rows_free(store);
	mtl_free(truth);
}
