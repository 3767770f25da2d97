/*
 * Feature objects (jsonb) and label arrays of a row.
 *
 * Strings and booleans are categorical, numbers numeric, JSON null missing.
 * Keys are read in place from the jsonb; categorical values are hashed, never
 * copied.
 */
#include "mtl_pg.h"

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
	if (ndigits > 0)
		result *= pow(10000.0, weight - (ndigits - 1));
	return negative ? -result : result;
#endif
}

/*
 * Kind and value of one feature; false for JSON null (missing). Errors on
 * arrays, objects and numbers that are not finite.
 */
static bool
ReadFeatureValue(const JsonbValue *key, const JsonbValue *v, int *kind, uint64 *value)
{
	switch (v->type)
	{
		case jbvNull:
			return false;
		case jbvString:
			*kind = MTL_KIND_CAT;
			*value = mtl_category_hash(v->val.string.val, v->val.string.len, 0);
			return true;
		case jbvBool:
			*kind = MTL_KIND_CAT;
			*value = mtl_category_hash(v->val.boolean ? "true" : "false",
									   v->val.boolean ? 4 : 5, 1);
			return true;
		case jbvNumeric:
			{
				double		d = NumericToDouble(v->val.numeric);

				if (!isfinite(d))
					ereport(ERROR,
							(errcode(ERRCODE_DATA_EXCEPTION),
							 errmsg("feature \"%.*s\" must be a finite number",
									key->val.string.len, key->val.string.val)));
				*kind = MTL_KIND_NUM;
				*value = mtl_number_bits(d);
				return true;
			}
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("feature \"%.*s\" must be a string, number, boolean or null",
							key->val.string.len, key->val.string.val),
					 errhint("Flatten nested objects and arrays into separate keys.")));
	}
	return false;
}

void
MtlVisitFeatures(Jsonb *features, int side, MtlFeatureVisit visit, void *arg)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	CheckObject(features, side);
	it = JsonbIteratorInit(&features->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		int			kind;
		uint64		value;

		if (tok != WJB_KEY)
			continue;
		JsonbIteratorNext(&it, &v, true);
		if (!ReadFeatureValue(&k, &v, &kind, &value))
			continue;
		if (k.val.string.len > MTL_MAX_FIELD_NAME)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("feature name longer than %d bytes", MTL_MAX_FIELD_NAME)));
		visit(arg, side, kind, k.val.string.val, k.val.string.len, value);
	}
}

typedef struct AddArg
{
	MtlRowStore *store;
	MemoryContext context;
} AddArg;

static void
AddVisit(void *arg, int side, int kind, const char *name, int len, uint64 value)
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
MtlAddFeatures(MtlRowStore *store, Jsonb *features, int side, MemoryContext store_context)
{
	AddArg		a = {store, store_context};

	MtlVisitFeatures(features, side, AddVisit, &a);
}

void
MtlSetRowFeatures(const MtlTrained *trained, Jsonb *features, int side,
				  int32 *slots, float *nums, int32 *hints)
{
	const MtlSchema *schema = &trained->schema;
	const MtlLayout *layout = &trained->model.layout;
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	int			position = 0;

	CheckObject(features, side);
	mtl_schema_clear_side(schema, layout, side, slots, nums);
	it = JsonbIteratorInit(&features->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		int			kind,
					field;
		uint64		value;

		if (tok != WJB_KEY)
			continue;
		JsonbIteratorNext(&it, &v, true);
		if (!ReadFeatureValue(&k, &v, &kind, &value))
			continue;
		/* keys the model was not trained on are ignored */
		if (hints != NULL && position < MTL_MAX_FIELDS)
			field = mtl_schema_find_field_hinted(schema, side, kind, k.val.string.val,
												 k.val.string.len, &hints[position++]);
		else
			field = mtl_schema_find_field(schema, side, kind, k.val.string.val, k.val.string.len);
		if (field >= 0)
			mtl_schema_set_feature(schema, layout, field, value, slots, nums);
	}
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
	if (n > MTL_MAX_TASKS)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("more than %d labels", MTL_MAX_TASKS)));
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
	double		y[MTL_MAX_TASKS];

	MtlCheckLabels(y, MtlLabelValues(labels, y), spec, out);
}

void
MtlCheckLabels(const double *y, int n, const MtlSpec *spec, float *out)
{
	if (n != spec->n_tasks)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("expected %d labels (one per task), not %d", spec->n_tasks, n)));
	for (int t = 0; t < n; t++)
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
