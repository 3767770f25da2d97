/*
 * The row store: feature sets and ids interned once, a merge that keeps every
 * row, and the parallel partial state: a round trip, and damaged or truncated
 * bytes refused (never a reference out of range).
 */
#include <string.h>

#include "check.h"
#include "synthetic.h"
#include "../../src/core/mem.h"
#include "../../src/core/rows.h"

void		test_rows(void);

static MtlRowStore *
Serialised(MtlRowStore *store, MtlWriter *w)
{
	MtlReader	r;

	memset(w, 0, sizeof(*w));
	mtl_rows_write(w, store);
	r = (MtlReader) {w->data, w->len, 0, NULL};
	return mtl_rows_read(&r);
}

/* Every row's references in range and matching its set's side. */
static int
RefsValid(const MtlRowStore *s)
{
	for (int64_t r = 0; r < s->n_rows; r++)
	{
		const MtlRowRef *ref = mtl_rows_ref(s, r);

		if (ref->user > s->ids[0].n || ref->item > s->ids[1].n)
			return 0;
		for (int side = 0; side < MTL_N_SIDES; side++)
			if (ref->set[side] > s->n_sets ||
				(ref->set[side] && s->set_side[ref->set[side]] != side))
				return 0;
	}
	return 1;
}

static void
TestRoundTrip(MtlRowStore *store)
{
	MtlWriter	w;
	MtlRowStore *back = Serialised(store, &w);
	int			same = back != NULL && back->n_rows == store->n_rows &&
		back->n_sets == store->n_sets && back->n_fields == store->n_fields;

	for (int64_t r = 0; same && r < store->n_rows; r++)
		same = memcmp(mtl_rows_ref(back, r), mtl_rows_ref(store, r), sizeof(MtlRowRef)) == 0 &&
			memcmp(mtl_rows_labels(back, r), mtl_rows_labels(store, r),
				   sizeof(float) * store->n_tasks) == 0;
	CHECK(same, "a partial state reads back as the same rows, sets and fields");
	mtl_rows_free(back);
	mtl_free(w.data);
}

static void
TestDamage(MtlRowStore *store)
{
	MtlWriter	w;
	MtlRowStore *back = Serialised(store, &w);
	int			truncated_refused = 1,
				damaged_valid = 1;

	mtl_rows_free(back);
	for (size_t len = 0; len < w.len; len += 1 + len / 8)
	{
		MtlReader	r = {w.data, len, 0, NULL};
		MtlRowStore *s = mtl_rows_read(&r);

		truncated_refused &= s == NULL && r.failed != NULL;
		mtl_rows_free(s);
	}
	for (size_t at = 0; at < w.len; at += 1 + at / 16)
	{
		uint8_t		saved = w.data[at];
		MtlReader	r = {w.data, w.len, 0, NULL};
		MtlRowStore *s;

		w.data[at] ^= 0xA5;
		s = mtl_rows_read(&r);
		if (s != NULL)
			damaged_valid &= RefsValid(s);
		mtl_rows_free(s);
		w.data[at] = saved;
	}
	CHECK(truncated_refused, "every truncated partial state is refused");
	CHECK(damaged_valid, "a damaged partial state is refused or holds only valid references");
	mtl_free(w.data);
}

void
test_rows(void)
{
	double	   *truth_a,
			   *truth_b;
	MtlRowStore *a = synthetic_rows_scenario(3000, 3, &truth_a);
	MtlRowStore *b = synthetic_rows_scenario(2000, 4, &truth_b);
	int64_t		rows_a,
				users_a;

	mtl_rows_seal(a);
	mtl_rows_seal(b);
	rows_a = a->n_rows;
	users_a = a->ids[0].n;
	CHECK(a->n_sets < a->n_rows, "features are interned: %lld sets for %lld rows",
		  (long long) a->n_sets, (long long) a->n_rows);
	TestRoundTrip(a);
	TestDamage(a);
	CHECK(mtl_rows_merge(a, b) == NULL && a->n_rows == rows_a + b->n_rows && RefsValid(a) &&
		  a->ids[0].n >= users_a,
		  "a merge keeps every row: %lld", (long long) a->n_rows);
	mtl_rows_free(a);
	mtl_rows_free(b);
	mtl_free(truth_a);
	mtl_free(truth_b);
}
