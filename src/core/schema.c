#include "schema.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "rng.h"

static int
CompareU64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a,
				y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

static int
CompareI64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return x < y ? -1 : x > y;
}

/* Sort and deduplicate in place; returns the distinct count. */
static int64_t
SortUnique(void *values, int64_t n, int (*cmp) (const void *, const void *))
{
	uint64_t   *v = values;
	int64_t		k = 0;

	if (n == 0)
		return 0;
	qsort(v, n, 8, cmp);
	for (int64_t i = 1; i < n; i++)
		if (v[i] != v[k])
			v[++k] = v[i];
	return k + 1;
}

void
mtl_schema_assign_columns(MtlSchema *schema)
{
	int			side_slots[MTL_N_SIDES] = {0},
				side_cols[MTL_N_SIDES] = {0};

	schema->n_cat = schema->n_num = schema->n_slot_cols = schema->n_item_cats = 0;
	mtl_free(schema->item_cat_field);
	schema->item_cat_field = mtl_alloc(sizeof(int) * (schema->n_fields + 1));
	for (int f = 0; f < schema->n_fields; f++)
		if (schema->fields[f].side == MTL_SIDE_ITEM && schema->fields[f].kind == MTL_KIND_CAT)
			schema->item_cat_field[schema->n_item_cats++] = f;
	for (int f = 0; f < schema->n_fields; f++)
	{
		MtlFeature *feat = &schema->fields[f];

		if (feat->kind == MTL_KIND_NUM)
		{
			feat->width = 1;
			feat->index = feat->col = schema->n_num;
			schema->num_field[schema->n_num++] = f;
			feat->side_col = side_cols[feat->side]++;
			continue;
		}
		if (feat->kind == MTL_KIND_CAT)
			feat->width = 1;
		feat->index = schema->n_cat;
		schema->cat_field[schema->n_cat++] = f;
		feat->slot = schema->n_slot_cols;
		schema->n_slot_cols += feat->width;
		feat->side_slot = side_slots[feat->side];
		side_slots[feat->side] += feat->width;
	}
	/* bag and sequence weights follow the numbers, which the model input reads as one block */
	schema->n_num_cols = schema->n_num;
	for (int f = 0; f < schema->n_fields; f++)
	{
		MtlFeature *feat = &schema->fields[f];

		if (!mtl_kind_is_multi(feat->kind))
			continue;
		feat->col = schema->n_num_cols;
		schema->n_num_cols += feat->width;
		feat->side_col = side_cols[feat->side];
		side_cols[feat->side] += feat->width;
	}
	for (int side = 0; side < 2; side++)
	{
		schema->ids[side].n_slot_cols = side_slots[side];
		schema->ids[side].n_num_cols = side_cols[side];
	}
}

static void
BuildFields(MtlSchema *schema, const MtlRowStore *store, int bag_width, int seq_width)
{
	schema->n_fields = store->n_fields;
	schema->fields = mtl_alloc(sizeof(MtlFeature) * (store->n_fields + 1));
	schema->cat_field = mtl_alloc(sizeof(int) * (store->n_fields + 1));
	schema->num_field = mtl_alloc(sizeof(int) * (store->n_fields + 1));
	for (int f = 0; f < store->n_fields; f++)
	{
		MtlFeature *feat = &schema->fields[f];
		const MtlFieldDef *def = &store->fields[f];

		feat->side = def->side;
		feat->kind = def->kind;
		feat->name = mtl_strdup(def->name);
		feat->width = def->kind == MTL_KIND_BAG ? bag_width : 1;
	}
	mtl_schema_assign_columns(schema);
	/* a history item is a group of its id and its categorical values */
	for (int f = 0; f < store->n_fields; f++)
		if (schema->fields[f].kind == MTL_KIND_SEQ)
			schema->fields[f].width = seq_width * (1 + schema->n_item_cats);
	mtl_schema_assign_columns(schema);
}

/* A field's vocabulary key of an entry's value. */
static uint64_t
EntryKey(int kind, uint64_t value)
{
	return kind == MTL_KIND_BAG ? mtl_bag_key(value) : value;
}

/*
 * The distinct (field, value) pairs of the categorical entries, found with an
 * open-addressing hash set: a field has few distinct values but as many
 * entries as rows, so sorting the entries themselves would be the slow part.
 */
typedef struct PairSet
{
	size_t		cap;			/* a power of two */
	size_t		n;
	uint64_t   *values;
	int32_t    *fields;			/* -1: empty */
} PairSet;

static size_t
PairSlot(const PairSet *set, int32_t field, uint64_t value)
{
	uint64_t	h = (value ^ ((uint64_t) field * 0x9E3779B97F4A7C15ULL)) * 0xFF51AFD7ED558CCDULL;
	size_t		i = (size_t) (h >> 17) & (set->cap - 1);

	while (set->fields[i] >= 0 && (set->fields[i] != field || set->values[i] != value))
		i = (i + 1) & (set->cap - 1);
	return i;
}

static void
PairSetInit(PairSet *set, size_t cap)
{
	set->cap = cap;
	set->n = 0;
	set->values = mtl_alloc(sizeof(uint64_t) * cap);
	set->fields = mtl_alloc(sizeof(int32_t) * cap);
	for (size_t i = 0; i < cap; i++)
		set->fields[i] = -1;
}

static void
PairSetAdd(PairSet *set, int32_t field, uint64_t value)
{
	size_t		i = PairSlot(set, field, value);

	if (set->fields[i] >= 0)
		return;
	set->fields[i] = field;
	set->values[i] = value;
	if (++set->n * 2 > set->cap)
	{
		PairSet		bigger;

		PairSetInit(&bigger, set->cap * 2);
		for (size_t k = 0; k < set->cap; k++)
			if (set->fields[k] >= 0)
			{
				size_t		j = PairSlot(&bigger, set->fields[k], set->values[k]);

				bigger.fields[j] = set->fields[k];
				bigger.values[j] = set->values[k];
				bigger.n++;
			}
		mtl_free(set->values);
		mtl_free(set->fields);
		*set = bigger;
	}
}

/* Vocabulary of each categorical field (sorted distinct hashes). */
static void
BuildVocabularies(MtlSchema *schema, const MtlRowStore *store)
{
	int64_t    *count = mtl_alloc(sizeof(int64_t) * (schema->n_fields + 1));
	PairSet		set;

	PairSetInit(&set, 1024);
	for (int64_t e = 0; e < store->n_entries; e++)
	{
		int			kind = schema->fields[store->entry_field[e]].kind;

		if (kind == MTL_KIND_CAT || kind == MTL_KIND_BAG)
			PairSetAdd(&set, store->entry_field[e], EntryKey(kind, store->entry_value[e]));
	}
	for (size_t i = 0; i < set.cap; i++)
		if (set.fields[i] >= 0)
			count[set.fields[i]]++;
	for (int f = 0; f < schema->n_fields; f++)
		if (schema->fields[f].kind != MTL_KIND_NUM)
			schema->fields[f].values = mtl_alloc(sizeof(uint64_t) * (count[f] + 1));
	for (size_t i = 0; i < set.cap; i++)
		if (set.fields[i] >= 0)
		{
			MtlFeature *feat = &schema->fields[set.fields[i]];

			feat->values[feat->n_values++] = set.values[i];
		}
	for (int f = 0; f < schema->n_fields; f++)
		if (schema->fields[f].kind != MTL_KIND_NUM)
			schema->fields[f].n_values = SortUnique(schema->fields[f].values,
													schema->fields[f].n_values, CompareU64);
	mtl_free(set.values);
	mtl_free(set.fields);
	mtl_free(count);
}

static double
NumTransform(int transform, double v)
{
	return transform == MTL_NUM_LOG ? copysign(log1p(fabs(v)), v) : v;
}

/*
 * Per numeric field: count, the sums of (v - c), (v - c)^2 and (v - c)^3 of
 * its transformed values v about a center c, and its smallest raw value.
 */
typedef struct NumMoments
{
	double	   *count,
			   *m1,
			   *m2,
			   *m3,
			   *min;
} NumMoments;

/* The moments about center, each set weighing its rows. */
static void
NumericMoments(const MtlSchema *schema, const MtlRowStore *store, const double *center,
			   NumMoments *out)
{
	for (int f = 0; f < schema->n_fields; f++)
	{
		out->count[f] = out->m1[f] = out->m2[f] = out->m3[f] = 0.0;
		out->min[f] = INFINITY;
	}
	for (int64_t set = 1; set <= store->n_sets; set++)
		for (int64_t e = store->set_end[set - 1]; e < store->set_end[set]; e++)
		{
			int			f = store->entry_field[e];
			const MtlFeature *feat = &schema->fields[f];
			double		w = (double) store->set_rows[set];
			double		v,
						d;

			if (feat->kind != MTL_KIND_NUM || w <= 0)
				continue;
			v = mtl_bits_number(store->entry_value[e]);
			out->min[f] = fmin(out->min[f], v);
			d = NumTransform(feat->transform, v) - center[f];
			out->count[f] += w;
			out->m1[f] += w * d;
			out->m2[f] += w * d * d;
			out->m3[f] += w * d * d * d;
		}
}

/*
 * Mean and std of the transformed values, and the skewness of each field in
 * skew. Values near DBL_MAX overflow the sums: the stats stay finite (the
 * model file rejects others), and such a field is then about constant.
 */
static void
SetMeanStd(MtlSchema *schema, const MtlRowStore *store, NumMoments *mo, double *skew)
{
	double	   *center = mtl_alloc(sizeof(double) * (schema->n_fields + 1));

	NumericMoments(schema, store, center, mo);
	for (int f = 0; f < schema->n_fields; f++)
	{
		center[f] = mo->count[f] > 0 ? mo->m1[f] / mo->count[f] : 0.0;
		if (!isfinite(center[f]))
			center[f] = 0.0;
	}
	/* about the mean: no cancellation in the variance of large values */
	NumericMoments(schema, store, center, mo);
	for (int f = 0; f < schema->n_fields; f++)
	{
		MtlFeature *feat = &schema->fields[f];
		double		var = mo->count[f] > 0 ? mo->m2[f] / mo->count[f] : 0.0;

		if (feat->kind != MTL_KIND_NUM)
			continue;
		feat->mean = center[f];
		feat->std = !isfinite(var) ? DBL_MAX : var > 1e-12 ? sqrt(var) : 1.0;
		skew[f] = isfinite(var) && var > 1e-12 ? mo->m3[f] / mo->count[f] / (var * feat->std) : 0.0;
	}
	mtl_free(center);
}

/*
 * Mean and std of each numeric field; with log_skewed, a field whose values
 * are never negative and whose skewness passes MTL_SKEW_FOR_LOG is logged.
 */
static void
BuildNumericStats(MtlSchema *schema, const MtlRowStore *store, bool log_skewed)
{
	size_t		bytes = sizeof(double) * (schema->n_fields + 1);
	NumMoments	mo = {mtl_alloc(bytes), mtl_alloc(bytes), mtl_alloc(bytes), mtl_alloc(bytes),
	mtl_alloc(bytes)};
	double	   *skew = mtl_alloc(bytes);
	bool		any_log = false;

	SetMeanStd(schema, store, &mo, skew);
	for (int f = 0; f < schema->n_fields && log_skewed; f++)
		if (schema->fields[f].kind == MTL_KIND_NUM && mo.min[f] >= 0.0 &&
			skew[f] > MTL_SKEW_FOR_LOG)
		{
			schema->fields[f].transform = MTL_NUM_LOG;
			any_log = true;
		}
	if (any_log)
		SetMeanStd(schema, store, &mo, skew);
	mtl_free(mo.count);
	mtl_free(mo.m1);
	mtl_free(mo.m2);
	mtl_free(mo.m3);
	mtl_free(mo.min);
	mtl_free(skew);
}

/* The side's distinct ids, sorted. */
static void
BuildIdTable(MtlIdTable *table, const MtlRowStore *store, int side)
{
	const MtlIdIntern *ids = &store->ids[side];

	table->ids = mtl_alloc(sizeof(int64_t) * (ids->n + 1));
	if (ids->n > 0)				/* ids->ids is NULL when no row had an id */
		memcpy(table->ids, ids->ids, sizeof(int64_t) * ids->n);
	table->n = SortUnique(table->ids, ids->n, CompareI64);
	table->cat = mtl_alloc(sizeof(int32_t) * (table->n * table->n_slot_cols + 1));
	table->num = mtl_alloc(sizeof(float) * (table->n * table->n_num_cols + 1));
}

/*
 * One row's cells of an embedded field (slot columns and bag weights), with
 * base the row a local index counts from: 0 in id tables, the field's first
 * embedding row in a model's rows.
 */
typedef struct FieldCells
{
	int32_t    *slot;
	float	   *weight;			/* bags and sequences */
	int			width;
	int32_t		base;
	int32_t		item_base;		/* a sequence's slot for item position p: item_base + 1 + p */
	int			group;			/* slots per value: 1, or a history item's group */
	int			seq;			/* a sequence: slots name items (and their values) */
	const MtlLayout *layout;	/* NULL: local indices */
} FieldCells;

static void
CellsMissing(const FieldCells *c)
{
	c->slot[0] = c->base;
	if (c->weight == NULL)
		return;
	c->weight[0] = 1.0f;
	for (int k = 1; k < c->width; k++)
	{
		c->slot[k] = -1;
		c->weight[k] = 0.0f;
	}
}

/*
 * Where the last value written went: a list or history is written value by
 * value into the same cells, so the next free slot is almost always right
 * after it. Only a hint, checked against the cells before use.
 */
static _Thread_local const int32_t *last_cells;
static _Thread_local int last_free;

/*
 * The first free slot (a group's first) of a bag or sequence, width when
 * full: values are only appended, so the filled ones are a prefix, whose end
 * is the hint when it checks out, else found by bisection.
 */
static int
FirstFree(const FieldCells *c)
{
	int			lo = 0,
				hi = c->width / c->group,
				k = last_free;

	if (c->slot[0] == c->base)
		return 0;				/* missing so far */
	if (c->slot == last_cells && k > 0 && k <= c->width && k % c->group == 0 &&
		c->slot[k - c->group] != -1 && (k == c->width || c->slot[k] == -1))
		return k;
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (c->slot[mid * c->group] != -1)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo * c->group;
}

/* Remember that the group at k of c's cells was just filled. */
static void
Filled(const FieldCells *c, int k)
{
	last_cells = c->slot;
	last_free = k + c->group;
}

/* Add a bag's value (slot content) in the first free slot; 0 when full. */
static int
CellsAddBag(const FieldCells *c, int32_t value, uint32_t weight_bits)
{
	int			k = FirstFree(c);

	if (k == c->width)
		return 0;
	c->slot[k] = value;
	Filled(c, k);
	if (weight_bits == MTL_BAG_MEAN_BITS)
		c->weight[k] = NAN;
	else
		memcpy(&c->weight[k], &weight_bits, sizeof(float));
	return 1;
}

/*
 * Add a history item (its position, -1: unknown, skipped) as a group: its
 * slot, then its stored categorical values; 0 when full.
 */
static int
CellsAddItem(const MtlSchema *schema, const FieldCells *c, int64_t pos)
{
	const MtlIdTable *items = &schema->ids[MTL_SIDE_ITEM];
	int			k;

	if (pos < 0)
		return 1;
	k = FirstFree(c);
	if (k >= c->width)
		return 0;
	c->slot[k] = c->item_base + 1 + (int32_t) pos;
	Filled(c, k);
	for (int g = 0; g < schema->n_item_cats; g++)
	{
		const MtlFeature *feat = &schema->fields[schema->item_cat_field[g]];

		c->slot[k + 1 + g] = items->cat[pos * items->n_slot_cols + feat->side_slot] +
			(c->layout != NULL ? (int32_t) c->layout->cat_row0[feat->index] : 0);
	}
	for (int g = 0; g < c->group; g++)
		c->weight[k + g] = NAN;
	return 1;
}

/* List members' weights: 1 / (known values). */
static void
CellsFinishBag(const FieldCells *c)
{
	int			known = 0;

	if (c->slot[0] == c->base)
		return;
	for (int k = 0; k < c->width; k += c->group)
		known += c->slot[k] != -1;
	for (int k = 0; k < c->width; k++)
		if (isnan(c->weight[k]))
			c->weight[k] = 1.0f / (float) known;
}

/*
 * The cells of embedded field f in a side's row of columns (an id table's
 * row, a dataset's feature set): local indices without a layout, embedding
 * rows with one.
 */
static FieldCells
SideCells(const MtlSchema *schema, const MtlLayout *layout, int f, int32_t *cat, float *num)
{
	const MtlFeature *feat = &schema->fields[f];
	FieldCells	c;

	c.slot = cat + feat->side_slot;
	c.weight = mtl_kind_is_multi(feat->kind) ? num + feat->side_col : NULL;
	c.width = feat->width;
	c.base = layout != NULL ? (int32_t) layout->cat_row0[feat->index] : 0;
	c.item_base = layout != NULL ? (int32_t) layout->item_row0 - 1 : 0;
	c.group = feat->kind == MTL_KIND_SEQ ? 1 + schema->n_item_cats : 1;
	c.seq = feat->kind == MTL_KIND_SEQ;
	c.layout = layout;
	return c;
}

/* The cells of embedded field f in a model row's slots and nums. */
static FieldCells
RowCells(const MtlSchema *schema, const MtlLayout *layout, int f, int32_t *slots, float *nums)
{
	const MtlFeature *feat = &schema->fields[f];
	FieldCells	c;

	c.slot = slots + 2 + feat->slot;
	c.weight = mtl_kind_is_multi(feat->kind) ? nums + feat->col : NULL;
	c.width = feat->width;
	c.base = (int32_t) layout->cat_row0[feat->index];
	c.item_base = (int32_t) layout->item_row0 - 1;
	c.group = feat->kind == MTL_KIND_SEQ ? 1 + schema->n_item_cats : 1;
	c.seq = feat->kind == MTL_KIND_SEQ;
	c.layout = layout;
	return c;
}

/* Write one value of an embedded field into its cells; 0 when a bag is full. */
static int
CellsSet(const MtlSchema *schema, int f, const FieldCells *c, uint64_t value)
{
	int32_t		local;

	if (schema->fields[f].kind == MTL_KIND_CAT)
	{
		c->slot[0] = c->base + mtl_schema_cat_index(schema, f, value);
		return 1;
	}
	/* unseen values and unknown items are skipped */
	if (schema->fields[f].kind == MTL_KIND_SEQ)
		return CellsAddItem(schema, c, mtl_schema_find_id(schema, MTL_SIDE_ITEM, (int64_t) value));
	local = mtl_schema_cat_index(schema, f, mtl_bag_key(value));
	return local == 0 ? 1 : CellsAddBag(c, c->base + local, mtl_bag_weight_bits(value));
}

void
mtl_schema_side_features(const MtlSchema *schema, const MtlLayout *layout,
						 const MtlRowStore *store, uint32_t set, int32_t *cat, float *num)
{
	int			side = store->set_side[set];

	for (int f = 0; f < schema->n_fields; f++)
	{
		const MtlFeature *feat = &schema->fields[f];
		FieldCells	c;

		if (feat->side != side)
			continue;
		if (feat->kind == MTL_KIND_NUM)
		{
			num[feat->side_col] = 0.0f;
			continue;
		}
		c = SideCells(schema, layout, f, cat, num);
		CellsMissing(&c);
	}
	for (int64_t e = store->set_end[set - 1]; e < store->set_end[set]; e++)
	{
		int			f = store->entry_field[e];
		const MtlFeature *feat = &schema->fields[f];
		FieldCells	c;

		if (feat->kind == MTL_KIND_NUM)
		{
			num[feat->side_col] = mtl_schema_standardise(schema, f,
														 mtl_bits_number(store->entry_value[e]));
			continue;
		}
		c = SideCells(schema, layout, f, cat, num);
		CellsSet(schema, f, &c, store->entry_value[e]);
	}
	for (int f = 0; f < schema->n_fields; f++)
		if (schema->fields[f].side == side && mtl_kind_is_multi(schema->fields[f].kind))
		{
			FieldCells	c = SideCells(schema, layout, f, cat, num);

			CellsFinishBag(&c);
		}
}

/* Write a set's entries into an id table's row p (other fields missing). */
static void
SetIdFeatures(MtlSchema *schema, const MtlRowStore *store, int side, int64_t p, uint32_t set)
{
	MtlIdTable *t = &schema->ids[side];

	mtl_schema_side_features(schema, NULL, store, set, t->cat + p * t->n_slot_cols,
							 t->num + p * t->n_num_cols);
}

/* Each known id keeps the features of its last row that had any for its side. */
static void
FillIdFeatures(MtlSchema *schema, const MtlRowStore *store)
{
	/* items first: a user's history copies its items' values */
	for (int side = MTL_SIDE_ITEM; side >= MTL_SIDE_USER; side--)
	{
		const MtlIdIntern *ids = &store->ids[side];

		for (int64_t i = 0; i < ids->n; i++)
			if (ids->last_set[i] != 0)
				SetIdFeatures(schema, store, side, mtl_schema_find_id(schema, side, ids->ids[i]),
							  ids->last_set[i]);
	}
}

void
mtl_schema_build(MtlSchema *schema, const MtlRowStore *store, const MtlSpec *spec)
{
	memset(schema, 0, sizeof(*schema));
	BuildFields(schema, store, spec->bag_size, spec->sequence_length);
	BuildVocabularies(schema, store);
	BuildNumericStats(schema, store, spec->log_skewed != 0);
	BuildIdTable(&schema->ids[MTL_SIDE_USER], store, MTL_SIDE_USER);
	BuildIdTable(&schema->ids[MTL_SIDE_ITEM], store, MTL_SIDE_ITEM);
	mtl_schema_index_fields(schema);
	mtl_schema_index_ids(schema);
	FillIdFeatures(schema, store);
}

void
mtl_schema_free(MtlSchema *schema)
{
	for (int f = 0; f < schema->n_fields; f++)
	{
		mtl_free(schema->fields[f].name);
		mtl_free(schema->fields[f].values);
		mtl_free(schema->fields[f].value_slots);
	}
	mtl_free(schema->fields);
	mtl_free(schema->field_index);
	mtl_free(schema->cat_field);
	mtl_free(schema->num_field);
	mtl_free(schema->item_cat_field);
	for (int side = 0; side < 2; side++)
	{
		mtl_free(schema->ids[side].ids);
		mtl_free(schema->ids[side].cat);
		mtl_free(schema->ids[side].num);
		mtl_free(schema->ids[side].index);
	}
	memset(schema, 0, sizeof(*schema));
}

const MtlError *
mtl_schema_shape(const MtlSchema *schema, const char *scenario, int seq_pooling,
				 MtlShape *shape)
{
	memset(shape, 0, sizeof(*shape));
	shape->scenario_cat = -1;
	if (scenario[0] != '\0')
	{
		int			f = mtl_schema_find_field(schema, MTL_SIDE_CONTEXT, MTL_KIND_CAT,
											  scenario, strlen(scenario));

		if (f < 0)
			MTL_FAIL(MTL_E_NO_SCENARIO, "no row's context has the scenario key as a string");
		shape->scenario_cat = schema->fields[f].index;
	}
	shape->n_users = schema->ids[MTL_SIDE_USER].n;
	shape->n_items = schema->ids[MTL_SIDE_ITEM].n;
	shape->n_cat = schema->n_cat;
	shape->n_num = schema->n_num;
	shape->cat_rows = mtl_alloc(sizeof(int64_t) * (schema->n_cat + 1));
	shape->cat_side = mtl_alloc(schema->n_cat + 1);
	shape->cat_width = mtl_alloc(sizeof(int) * (schema->n_cat + 1));
	shape->cat_seq = mtl_alloc(schema->n_cat + 1);
	for (int c = 0; c < schema->n_cat; c++)
	{
		const MtlFeature *feat = &schema->fields[schema->cat_field[c]];

		shape->cat_rows[c] = feat->n_values + 1;
		shape->cat_side[c] = feat->side;
		shape->cat_width[c] = mtl_kind_is_multi(feat->kind) ? feat->width : 0;
		shape->cat_seq[c] = feat->kind == MTL_KIND_SEQ ? (uint8_t) seq_pooling : 0;
	}
	return NULL;
}

static uint64_t
IdHash(int64_t id)
{
	uint64_t	h = (uint64_t) id * 0x9E3779B97F4A7C15ULL;

	return h ^ (h >> 32);
}

void
mtl_schema_index_ids(MtlSchema *schema)
{
	for (int side = 0; side < 2; side++)
	{
		MtlIdTable *t = &schema->ids[side];
		int64_t		cap = 16;

		while (cap < 2 * t->n + 2)
			cap *= 2;
		mtl_free(t->index);
		t->index = mtl_alloc(sizeof(MtlIdSlot) * cap);
		t->index_cap = cap;
		for (int64_t p = 0; p < t->n; p++)
		{
			int64_t		i = (int64_t) (IdHash(t->ids[p]) & (uint64_t) (cap - 1));

			while (t->index[i].pos != 0)
				i = (i + 1) & (cap - 1);
			t->index[i].id = t->ids[p];
			t->index[i].pos = p + 1;
		}
		t->index_n = t->n;
	}
}

int64_t
mtl_schema_find_id(const MtlSchema *schema, int side, int64_t id)
{
	const MtlIdTable *t = &schema->ids[side];
	int64_t		lo = 0,
				hi = t->n;

	if (t->index != NULL && t->index_n == t->n)
	{
		int64_t		i = (int64_t) (IdHash(id) & (uint64_t) (t->index_cap - 1));

		for (; t->index[i].pos != 0; i = (i + 1) & (t->index_cap - 1))
			if (t->index[i].id == id)
				return t->index[i].pos - 1;
		return -1;
	}

	while (lo < hi)
	{
		int64_t		mid = lo + (hi - lo) / 2;

		if (t->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (lo < t->n && t->ids[lo] == id) ? lo : -1;
}

int32_t
mtl_schema_cat_index(const MtlSchema *schema, int field, uint64_t hash)
{
	const MtlFeature *feat = &schema->fields[field];
	int64_t		lo = 0,
				hi = feat->n_values;

	if (feat->value_cap > 0)
	{
		int64_t		mask = feat->value_cap - 1;

		for (int64_t i = (int64_t) (hash & (uint64_t) mask); feat->value_slots[i] != 0;
			 i = (i + 1) & mask)
			if (feat->values[feat->value_slots[i] - 1] == hash)
				return feat->value_slots[i];
		return 0;
	}
	while (lo < hi)
	{
		int64_t		mid = lo + (hi - lo) / 2;

		if (feat->values[mid] < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (lo < feat->n_values && feat->values[lo] == hash) ? (int32_t) (lo + 1) : 0;
}

float
mtl_schema_standardise(const MtlSchema *schema, int field, double value)
{
	const MtlFeature *feat = &schema->fields[field];

	return (float) ((NumTransform(feat->transform, value) - feat->mean) / feat->std);
}

double
mtl_schema_unstandardise(const MtlFeature *feat, float z)
{
	double		v = feat->mean + feat->std * z;

	return feat->transform == MTL_NUM_LOG ? copysign(expm1(fabs(v)), v) : v;
}

int
mtl_schema_set_feature(const MtlSchema *schema, const MtlLayout *layout, int field,
					   uint64_t value, int32_t *slots, float *nums)
{
	const MtlFeature *feat = &schema->fields[field];
	FieldCells	c;

	if (feat->kind == MTL_KIND_NUM)
	{
		nums[feat->col] = mtl_schema_standardise(schema, field, mtl_bits_number(value));
		return 1;
	}
	c = RowCells(schema, layout, field, slots, nums);
	return CellsSet(schema, field, &c, value);
}

void
mtl_schema_finish_side(const MtlSchema *schema, const MtlLayout *layout, int side,
					   int32_t *slots, float *nums)
{
	for (int f = 0; f < schema->n_fields; f++)
		if (schema->fields[f].side == side && mtl_kind_is_multi(schema->fields[f].kind))
		{
			FieldCells	c = RowCells(schema, layout, f, slots, nums);

			CellsFinishBag(&c);
		}
}

/* The model row of slot k of a field's local cells (-1: empty). */
static int32_t
GlobalSlot(const MtlSchema *schema, const MtlLayout *layout, const FieldCells *c, int k,
		   int32_t local)
{
	int			g = k % c->group;

	if (local < 0)
		return -1;
	if (!c->seq)
		return c->base + local;
	if (g > 0)					/* a history item's categorical value */
		return (int32_t) layout->cat_row0[schema->fields[schema->item_cat_field[g - 1]].index] + local;
	if (local == 0)
		return k == 0 ? c->base : -1;	/* missing opens a history only */
	return c->item_base + local;
}

void
mtl_schema_clear_side(const MtlSchema *schema, const MtlLayout *layout, int side,
					  int32_t *slots, float *nums)
{
	for (int f = 0; f < schema->n_fields; f++)
	{
		const MtlFeature *feat = &schema->fields[f];
		FieldCells	c;

		if (feat->side != side)
			continue;
		if (feat->kind == MTL_KIND_NUM)
		{
			nums[feat->col] = 0.0f;
			continue;
		}
		c = RowCells(schema, layout, f, slots, nums);
		CellsMissing(&c);
	}
}

void
mtl_schema_row_from_ids(const MtlSchema *schema, const MtlLayout *layout,
						int64_t user_pos, int64_t item_pos,
						int32_t *slots, float *nums)
{
	int64_t		pos[2] = {user_pos, item_pos};

	slots[0] = user_pos >= 0 ? (int32_t) user_pos : -1;
	slots[1] = item_pos >= 0 ? (int32_t) (layout->item_row0 + item_pos) : -1;
	for (int f = 0; f < schema->n_fields; f++)
	{
		const MtlFeature *feat = &schema->fields[f];
		const MtlIdTable *t = &schema->ids[feat->side == MTL_SIDE_CONTEXT ? 0 : feat->side];
		int64_t		p = feat->side == MTL_SIDE_CONTEXT ? -1 : pos[feat->side];
		FieldCells	c;

		if (feat->kind == MTL_KIND_NUM)
		{
			nums[feat->col] = p >= 0 ? t->num[p * t->n_num_cols + feat->side_col] : 0.0f;
			continue;
		}
		c = RowCells(schema, layout, f, slots, nums);
		if (p < 0)
		{
			CellsMissing(&c);
			continue;
		}
		for (int k = 0; k < feat->width; k++)
			c.slot[k] = GlobalSlot(schema, layout, &c, k,
								   t->cat[p * t->n_slot_cols + feat->side_slot + k]);
		if (c.weight != NULL)
			memcpy(c.weight, t->num + p * t->n_num_cols + feat->side_col,
				   sizeof(float) * feat->width);
	}
}

static bool
FieldIs(const MtlFeature *feat, int side, int kind, const char *name, size_t len)
{
	return feat->side == side && feat->kind == kind && feat->name != NULL &&
		feat->name_len == len && memcmp(feat->name, name, len) == 0;
}

/* Hash table of a categorical field's values: the values are hashes already. */
static void
IndexValues(MtlFeature *feat)
{
	int64_t		cap = 8;

	while (cap < 2 * feat->n_values + 2)
		cap *= 2;
	mtl_free(feat->value_slots);
	feat->value_slots = mtl_alloc(sizeof(int32_t) * cap);
	feat->value_cap = cap;
	for (int64_t v = 0; v < feat->n_values; v++)
	{
		int64_t		i = (int64_t) (feat->values[v] & (uint64_t) (cap - 1));

		while (feat->value_slots[i] != 0)
			i = (i + 1) & (cap - 1);
		feat->value_slots[i] = (int32_t) (v + 1);
	}
}

static size_t
FieldHome(const MtlSchema *schema, int side, int kind, const char *name, size_t len)
{
	return (size_t) mtl_hash64(name, len, (uint64_t) (side * 2 + kind + 1)) &
		(size_t) (schema->field_index_cap - 1);
}

void
mtl_schema_index_fields(MtlSchema *schema)
{
	int			cap = 8;
	int			mask;

	while (cap < 2 * schema->n_fields + 2)
		cap *= 2;
	mask = cap - 1;
	mtl_free(schema->field_index);
	schema->field_index = mtl_alloc(sizeof(int32_t) * cap);
	schema->field_index_cap = cap;
	for (int i = 0; i < cap; i++)
		schema->field_index[i] = -1;
	for (int f = 0; f < schema->n_fields; f++)
	{
		const MtlFeature *feat = &schema->fields[f];
		size_t		len;
		size_t		i;

		if (feat->name == NULL)
			continue;
		len = strlen(feat->name);
		schema->fields[f].name_len = len;
		if (feat->kind != MTL_KIND_NUM)
			IndexValues(&schema->fields[f]);
		i = FieldHome(schema, feat->side, feat->kind, feat->name, len);
		/* a repeated field keeps its first number, as a scan would find */
		while (schema->field_index[i] >= 0 &&
			   !FieldIs(&schema->fields[schema->field_index[i]], feat->side, feat->kind,
						feat->name, len))
			i = (i + 1) & mask;
		if (schema->field_index[i] < 0)
			schema->field_index[i] = f;
	}
}

int
mtl_schema_find_field_hinted(const MtlSchema *schema, int side, int kind,
							 const char *name, size_t len, int32_t *hint)
{
	int			field = *hint;

	if (field >= 0 && field < schema->n_fields &&
		FieldIs(&schema->fields[field], side, kind, name, len))
		return field;
	field = mtl_schema_find_field(schema, side, kind, name, len);
	if (field >= 0)
		*hint = field;
	return field;
}

int
mtl_schema_find_field(const MtlSchema *schema, int side, int kind,
					  const char *name, size_t len)
{
	if (schema->field_index_cap > 0)
	{
		size_t		mask = (size_t) schema->field_index_cap - 1;

		for (size_t i = FieldHome(schema, side, kind, name, len);
			 schema->field_index[i] >= 0; i = (i + 1) & mask)
			if (FieldIs(&schema->fields[schema->field_index[i]], side, kind, name, len))
				return schema->field_index[i];
		return -1;
	}
	for (int f = 0; f < schema->n_fields; f++)
		if (FieldIs(&schema->fields[f], side, kind, name, len))
			return f;
	return -1;
}

/* The union of a field's old vocabulary and the values the new rows brought. */
static void
MergeVocabulary(MtlFeature *feat, const MtlFeature *old)
{
	uint64_t   *merged = mtl_alloc(sizeof(uint64_t) * (feat->n_values + old->n_values + 1));

	memcpy(merged, feat->values, sizeof(uint64_t) * feat->n_values);
	memcpy(merged + feat->n_values, old->values, sizeof(uint64_t) * old->n_values);
	mtl_free(feat->values);
	feat->values = merged;
	feat->n_values = SortUnique(merged, feat->n_values + old->n_values, CompareU64);
}

/* Ids of the new rows and of the old table, sorted and distinct. */
static void
MergeIds(MtlIdTable *table, const MtlIdTable *old)
{
	int64_t    *merged = mtl_alloc(sizeof(int64_t) * (table->n + old->n + 1));

	memcpy(merged, table->ids, sizeof(int64_t) * table->n);
	memcpy(merged + table->n, old->ids, sizeof(int64_t) * old->n);
	mtl_free(table->ids);
	table->ids = merged;
	table->n = SortUnique(merged, table->n + old->n, CompareI64);
	mtl_free(table->cat);
	mtl_free(table->num);
	table->cat = mtl_alloc(sizeof(int32_t) * (table->n * table->n_slot_cols + 1));
	table->num = mtl_alloc(sizeof(float) * (table->n * table->n_num_cols + 1));
	memset(table->cat, 0, sizeof(int32_t) * table->n * table->n_slot_cols);
	memset(table->num, 0, sizeof(float) * table->n * table->n_num_cols);
}

/*
 * Local index `local` (>= 1) of slot k of old's field f in the merged
 * schema: a value's index in its field's merged vocabulary, a history item's
 * new position + 1, or its categorical value's in that field's vocabulary.
 */
static int32_t
RemapLocal(const MtlSchema *schema, const MtlSchema *old, int f, int k, int32_t local)
{
	const MtlFeature *feat = &old->fields[f];
	int			g;

	if (feat->kind != MTL_KIND_SEQ)
		return mtl_schema_cat_index(schema, f, feat->values[local - 1]);
	g = k % (1 + old->n_item_cats);
	if (g == 0)
		return (int32_t) mtl_schema_find_id(schema, MTL_SIDE_ITEM,
											old->ids[MTL_SIDE_ITEM].ids[local - 1]) + 1;
	f = old->item_cat_field[g - 1];
	return mtl_schema_cat_index(schema, f, old->fields[f].values[local - 1]);
}

/* An old id's stored features, with its categorical values re-indexed in the merged vocabularies. */
static void
CopyOldIdFeatures(MtlSchema *schema, const MtlSchema *old, int side)
{
	const MtlIdTable *from = &old->ids[side];
	MtlIdTable *to = &schema->ids[side];

	for (int64_t p = 0; p < from->n; p++)
	{
		int64_t		q = mtl_schema_find_id(schema, side, from->ids[p]);

		memcpy(to->num + q * to->n_num_cols, from->num + p * from->n_num_cols,
			   sizeof(float) * from->n_num_cols);
		for (int f = 0; f < old->n_fields; f++)
		{
			const MtlFeature *feat = &old->fields[f];

			if (feat->side != side || feat->kind == MTL_KIND_NUM)
				continue;
			for (int k = 0; k < feat->width; k++)
			{
				int32_t		local = from->cat[p * from->n_slot_cols + feat->side_slot + k];

				to->cat[q * to->n_slot_cols + feat->side_slot + k] = local <= 0 ? local :
					RemapLocal(schema, old, f, k, local);
			}
		}
	}
}

void
mtl_schema_extend(MtlSchema *schema, const MtlSchema *old, const MtlRowStore *store)
{
	int			bag_width = 1,
				seq_width = 1;

	for (int f = 0; f < old->n_fields; f++)
		if (old->fields[f].kind == MTL_KIND_BAG)
			bag_width = old->fields[f].width;
		else if (old->fields[f].kind == MTL_KIND_SEQ)
			seq_width = old->fields[f].width;
	memset(schema, 0, sizeof(*schema));
	BuildFields(schema, store, bag_width, seq_width);
	BuildVocabularies(schema, store);
	for (int f = 0; f < schema->n_fields; f++)
	{
		MtlFeature *feat = &schema->fields[f];

		if (feat->kind != MTL_KIND_NUM)
			MergeVocabulary(feat, &old->fields[f]);
		else
		{
			feat->mean = old->fields[f].mean;
			feat->std = old->fields[f].std;
			feat->transform = old->fields[f].transform;
		}
	}
	mtl_schema_index_fields(schema);
	/* both tables first: a user's history names items, with their values */
	for (int side = 0; side < 2; side++)
	{
		BuildIdTable(&schema->ids[side], store, side);
		MergeIds(&schema->ids[side], &old->ids[side]);
	}
	mtl_schema_index_ids(schema);
	for (int side = 0; side < 2; side++)
		CopyOldIdFeatures(schema, old, side);
	FillIdFeatures(schema, store);
	mtl_schema_index_ids(schema);
}
