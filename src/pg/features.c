/*
 * Feature objects (jsonb) and label arrays of a row.
 *
 * Strings and booleans are categorical, numbers numeric, JSON null missing.
 * Keys are read in place from the jsonb; categorical values are hashed, never
 * copied.
 */
#include "mtl_pg.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

static const char *
SideName(int side)
{
	return side == MTL_SIDE_USER ? "user_features" : side == MTL_SIDE_ITEM ? "item_features" : "context";
}

static void
CheckObject(Jsonb *features, int side)
{
	if (!JB_ROOT_IS_OBJECT(features) || JB_ROOT_IS_SCALAR(features))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a jsonb object", SideName(side)),
				 errhint("Pass an object such as '{\"segment\": \"a\", \"price\": 9.5}', or NULL.")));
}

/*
 * A numeric as a double, read from its stored form (sign, weight, base-10000
 * digits) instead of numeric_float8's detour through text, which took a tenth
 * of the time of scoring rows with features. The layout is PostgreSQL's
 * on-disk numeric format (see numeric.c: short and long headers); special
 * values (NaN, infinities; jsonb has none) go through numeric_float8. The
 * result may differ from the correctly rounded one in the last bit, which
 * does not matter for a standardised feature. The on-disk format is part of
 * pg_upgrade's contract and has not changed from 9.5 to 17 (the special
 * values came in 14); for other versions, the public numeric_float8.
 */
#if PG_VERSION_NUM >= 130000 && PG_VERSION_NUM < 180000
#define MTL_READ_NUMERIC_DIGITS 1
#endif

static double
NumericToDouble(Numeric num)
{
#ifndef MTL_READ_NUMERIC_DIGITS
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(num)));
#else
	const char *data = VARDATA_ANY(num);
	size_t		len = VARSIZE_ANY_EXHDR(num);
	uint16		header;
	int			weight,
				ndigits,
				negative;
	const char *digits;
	double		result = 0.0;

	if (len < sizeof(uint16))
		return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(num)));
	memcpy(&header, data, sizeof(uint16));
	if ((header & 0xC000) == 0xC000)	/* NUMERIC_SPECIAL */
		return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(num)));
	if (header & 0x8000)		/* NUMERIC_SHORT: sign, weight in the header */
	{
		negative = (header & 0x2000) != 0;
		weight = (header & 0x0040) ? (int) (~0x003F | (header & 0x003F)) : (header & 0x003F);
		digits = data + sizeof(uint16);
		ndigits = (int) ((len - sizeof(uint16)) / sizeof(int16));
	}
	else
	{
		int16		w;

		if (len < 2 * sizeof(uint16))
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(num)));
		negative = (header & 0xC000) == 0x4000;
		memcpy(&w, data + sizeof(uint16), sizeof(int16));
		weight = w;
		digits = data + 2 * sizeof(uint16);
		ndigits = (int) ((len - 2 * sizeof(uint16)) / sizeof(int16));
	}
	for (int i = 0; i < ndigits; i++)
	{
		int16		d;

		memcpy(&d, digits + i * sizeof(int16), sizeof(int16));
		result = result * 10000.0 + d;
	}
	/* integers such as ids have no exponent to apply: skip pow() */
	if (ndigits > 0 && weight != ndigits - 1)
		result *= pow(10000.0, weight - (ndigits - 1));
	return negative ? -result : result;
#endif
}

/* What reading a features object needs to know of the model's config. */
static int
BagLimit(const MtlSpec *spec)
{
	return spec != NULL ? spec->bag_size : MTL_MAX_BAG;
}

bool
MtlIsTextField(const MtlSpec *spec, const char *name, int len)
{
	if (spec == NULL)
		return false;
	for (int k = 0; k < spec->n_text; k++)
		if (strlen(spec->text_fields[k]) == (size_t) len &&
			memcmp(spec->text_fields[k], name, len) == 0)
			return true;
	return false;
}

static bool
IsTextField(const MtlSpec *spec, const JsonbValue *key)
{
	return MtlIsTextField(spec, key->val.string.val, key->val.string.len);
}

bool
MtlIsSequenceField(const MtlSpec *spec, const char *name, int len)
{
	if (spec == NULL)
		return false;
	for (int k = 0; k < spec->n_seq; k++)
		if (strlen(spec->seq_fields[k]) == (size_t) len &&
			memcmp(spec->seq_fields[k], name, len) == 0)
			return true;
	return false;
}

/*
 * A history: item ids (integers), newest first. Without a config (packed
 * rows) a list of numbers is taken for one; training checks it against the
 * config's sequences.
 */
static void
VisitSequence(const JsonbValue *key, JsonbContainer *list, const MtlSpec *spec, int side,
			  MtlFeatureVisit visit, void *arg, int position)
{
	JsonbIterator *it = JsonbIteratorInit(list);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			n = 0;
	int			limit = spec != NULL ? spec->sequence_length : MTL_MAX_BAG;

	if (side == MTL_SIDE_ITEM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sequence \"%.*s\" must be a user feature or in the context",
						key->val.string.len, key->val.string.val)));
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		double		id;

		if (tok != WJB_ELEM)
			continue;
		id = v.type == jbvNumeric ? NumericToDouble(v.val.numeric) : NAN;
		if (!(id == floor(id) && fabs(id) <= 9007199254740992.0))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("sequence \"%.*s\" must be a list of item ids (integers)",
							key->val.string.len, key->val.string.val),
					 errhint("Write it newest first, such as [1042, 977, 15].")));
		if (++n > limit)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("sequence \"%.*s\" has %d items, more than sequence_length (%d)",
							key->val.string.len, key->val.string.val, JsonContainerSize(list), limit),
					 errhint("Pass the newest sequence_length items, or train with a larger config key sequence_length.")));
		visit(arg, side, MTL_KIND_SEQ, key->val.string.val, key->val.string.len,
			  (uint64) (int64) id, position);
	}
}

/* Whether a list's first element is a number (a history, when there is no config to say). */
static bool
ListOfNumbers(JsonbContainer *list)
{
	JsonbIterator *it = JsonbIteratorInit(list);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_ELEM)
			return v.type == jbvNumeric;
	return false;
}

static void
ReportTooManyValues(const JsonbValue *key, int n, const MtlSpec *spec)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("feature \"%.*s\" has %d values, more than bag_size (%d)",
					key->val.string.len, key->val.string.val, n, BagLimit(spec)),
			 errhint("Pass at most bag_size values (for a history, the newest), or train with a larger config key bag_size.")));
}

/* A list of strings: each a bag value weighing 1 / (known values). */
static void
VisitList(const JsonbValue *key, JsonbContainer *list, const MtlSpec *spec, int side,
		  MtlFeatureVisit visit, void *arg, int position)
{
	JsonbIterator *it = JsonbIteratorInit(list);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			n = 0;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("feature \"%.*s\" must be a list of strings",
							key->val.string.len, key->val.string.val),
					 errhint("Write each value as a string, such as [\"summer\", \"linen\"].")));
		if (++n > BagLimit(spec))
			ReportTooManyValues(key, JsonContainerSize(list), spec);
		visit(arg, side, MTL_KIND_BAG, key->val.string.val, key->val.string.len,
			  mtl_bag_value(mtl_category_hash(v.val.string.val, v.val.string.len, 0),
							MTL_BAG_MEAN_BITS), position);
	}
}

/* An object of value -> weight: each a bag value with its weight. */
static void
VisitWeighted(const JsonbValue *key, JsonbContainer *object, const MtlSpec *spec, int side,
			  MtlFeatureVisit visit, void *arg, int position)
{
	JsonbIterator *it = JsonbIteratorInit(object);
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	int			n = 0;

	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		float		w;
		uint32		bits;

		if (tok != WJB_KEY)
			continue;
		JsonbIteratorNext(&it, &v, true);
		w = v.type == jbvNumeric ? (float) NumericToDouble(v.val.numeric) : NAN;
		if (!isfinite(w))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("feature \"%.*s\" must map each value to a finite number (its weight)",
							key->val.string.len, key->val.string.val),
					 errhint("Write it as {\"summer\": 2, \"linen\": 0.5}.")));
		if (++n > BagLimit(spec))
			ReportTooManyValues(key, JsonContainerSize(object), spec);
		memcpy(&bits, &w, sizeof(bits));
		visit(arg, side, MTL_KIND_BAG, key->val.string.val, key->val.string.len,
			  mtl_bag_value(mtl_category_hash(k.val.string.val, k.val.string.len, 0), bits),
			  position);
	}
}

/* A text field: its words (PostgreSQL's text search) hashed into buckets, as a list. */
static void
VisitText(const JsonbValue *key, const JsonbValue *v, const MtlSpec *spec, int side,
		  MtlFeatureVisit visit, void *arg, int position)
{
	int			n;
	uint32	   *buckets;

	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("text feature \"%.*s\" must be a string",
						key->val.string.len, key->val.string.val)));
	buckets = palloc(sizeof(uint32) * spec->bag_size);
	n = MtlTextBuckets(v->val.string.val, v->val.string.len, spec, buckets);
	for (int k = 0; k < n; k++)
		visit(arg, side, MTL_KIND_BAG, key->val.string.val, key->val.string.len,
			  mtl_bag_value((uint64) buckets[k] << 32, MTL_BAG_MEAN_BITS), position);
	pfree(buckets);
}

/*
 * Visit one key's value: its kind and value, or each value of a list,
 * weighted object or text. JSON null is missing; other values error.
 */
static void
VisitValue(const JsonbValue *key, const JsonbValue *v, const MtlSpec *spec, int side,
		   MtlFeatureVisit visit, void *arg, int position)
{
	const char *name = key->val.string.val;
	int			len = key->val.string.len;

	if (v->type == jbvNull)
		return;
	if (MtlIsSequenceField(spec, name, len))
	{
		if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("sequence \"%.*s\" must be a list of item ids", len, name)));
		VisitSequence(key, v->val.binary.data, spec, side, visit, arg, position);
	}
	else if (IsTextField(spec, key))
		VisitText(key, v, spec, side, visit, arg, position);
	else if (v->type == jbvString)
		visit(arg, side, MTL_KIND_CAT, name, len,
			  mtl_category_hash(v->val.string.val, v->val.string.len, 0), position);
	else if (v->type == jbvBool)
		visit(arg, side, MTL_KIND_CAT, name, len,
			  mtl_category_hash(v->val.boolean ? "true" : "false", v->val.boolean ? 4 : 5, 1),
			  position);
	else if (v->type == jbvNumeric)
	{
		double		d = NumericToDouble(v->val.numeric);

		if (!isfinite(d))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("feature \"%.*s\" must be a finite number", len, name)));
		visit(arg, side, MTL_KIND_NUM, name, len, mtl_number_bits(d), position);
	}
	else if (v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data) && spec == NULL &&
			 ListOfNumbers(v->val.binary.data))
		VisitSequence(key, v->val.binary.data, spec, side, visit, arg, position);
	else if (v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data))
		VisitList(key, v->val.binary.data, spec, side, visit, arg, position);
	else if (v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))
		VisitWeighted(key, v->val.binary.data, spec, side, visit, arg, position);
	else
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("feature \"%.*s\" must be a string, number, boolean, list of strings, object of weights or null",
						len, name)));
}

void
MtlVisitFeatures(Jsonb *features, int side, const MtlSpec *spec, MtlFeatureVisit visit,
				 void *arg)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	int			position = 0;

	CheckObject(features, side);
	it = JsonbIteratorInit(&features->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		JsonbIteratorNext(&it, &v, true);
		if (k.val.string.len > MTL_MAX_FIELD_NAME)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("feature name longer than %d bytes", MTL_MAX_FIELD_NAME)));
		VisitValue(&k, &v, spec, side, visit, arg, position++);
	}
}

typedef struct AddArg
{
	MtlRowStore *store;
	MemoryContext context;
} AddArg;

static void
AddVisit(void *arg, int side, int kind, const char *name, int len, uint64 value, int position)
{
	AddArg	   *a = arg;

	MtlAddFeature(a->store, side, kind, name, len, value, a->context);
}

void
MtlAddFeature(MtlRowStore *store, int side, int kind, const char *name, int len, uint64 value,
			  MemoryContext store_context)
{
	MemoryContext old = MemoryContextSwitchTo(store_context);
	int			field = mtl_rows_field(store, side, kind, name, len);

	if (field >= 0)
		mtl_rows_add_entry(store, field, value);
	MemoryContextSwitchTo(old);
	if (field < 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("more than %d distinct feature fields", MTL_MAX_FIELDS)));
}

void
MtlAddFeatures(MtlRowStore *store, Jsonb *features, int side, const MtlSpec *spec,
			   MemoryContext store_context)
{
	AddArg		a = {store, store_context};

	MtlVisitFeatures(features, side, spec, AddVisit, &a);
}

typedef struct SetArg
{
	const MtlTrained *trained;
	int32	   *slots;
	float	   *nums;
	int32	   *hints;
} SetArg;

static void
SetVisit(void *arg, int side, int kind, const char *name, int len, uint64 value, int position)
{
	SetArg	   *a = arg;
	const MtlSchema *schema = &a->trained->schema;
	int			field;

	/* keys the model was not trained on are ignored */
	if (a->hints != NULL && position < MTL_MAX_FIELDS)
		field = mtl_schema_find_field_hinted(schema, side, kind, name, len, &a->hints[position]);
	else
		field = mtl_schema_find_field(schema, side, kind, name, len);
	if (field >= 0)
		mtl_schema_set_feature(schema, &a->trained->model.layout, field, value, a->slots,
							   a->nums);
}

void
MtlSetRowFeatures(const MtlTrained *trained, Jsonb *features, int side,
				  int32 *slots, float *nums, int32 *hints)
{
	SetArg		a = {trained, slots, nums, hints};

	CheckObject(features, side);
	mtl_schema_clear_side(&trained->schema, &trained->model.layout, side, slots, nums);
	MtlVisitFeatures(features, side, &trained->model.spec, SetVisit, &a);
	mtl_schema_finish_side(&trained->schema, &trained->model.layout, side, slots, nums);
}

int
MtlLabelValues(ArrayType *labels, double *y)
{
	Datum	   *values;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(labels) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("labels must be a one-dimensional array")));
	deconstruct_array(labels, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &values, &nulls, &n);
	if (n > MTL_MAX_LABELS)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("more than %d labels", MTL_MAX_LABELS)));
	for (int t = 0; t < n; t++)
	{
		y[t] = nulls[t] ? NAN : DatumGetFloat8(values[t]);
		if (!nulls[t] && isnan(y[t]))
			y[t] = INFINITY;	/* a NaN given is not a missing label */
	}
	return n;
}

void
MtlReadLabels(ArrayType *labels, const MtlSpec *spec, float *out)
{
	double		y[MTL_MAX_LABELS];

	MtlCheckLabels(y, MtlLabelValues(labels, y), spec, out);
}

/* A row's weight (sample_weight): a finite number, at least 0. */
static float
CheckWeight(double w)
{
	if (isnan(w))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a row's weight must not be NULL")));
	if (!isfinite(w) || w < 0.0 || w > FLT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a row's weight must be a finite number of at least 0, not %g", w)));
	return (float) w;
}

void
MtlCheckLabels(const double *y, int n, const MtlSpec *spec, float *out)
{
	if (n != mtl_label_columns(spec))
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("expected %d labels (one per task%s), not %d", mtl_label_columns(spec),
						spec->sample_weight ? ", then the row's weight" : "", n)));
	if (spec->sample_weight)
		out[spec->n_tasks] = CheckWeight(y[spec->n_tasks]);
	for (int t = 0; t < spec->n_tasks; t++)
	{
		const MtlTask *task = &spec->tasks[t];

		if (isnan(y[t]))
		{
			out[t] = NAN;
			continue;
		}
		if (!isfinite(y[t]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("label of task \"%s\" must be a finite number or NULL", task->name)));
		if (task->type == MTL_TASK_BINARY && y[t] != 0.0 && y[t] != 1.0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("label of binary task \"%s\" must be 0, 1 or NULL, not %g", task->name, y[t])));
		out[t] = (float) y[t];
	}
}
