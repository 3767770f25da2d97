/*
 * A training query's row packed into one bytea (mtl_round_pack), so that the
 * passes of training in rounds read a table of them instead of running the
 * query again: a shop's join and to_jsonb cost several times more than
 * reading the row they make.
 *
 * Layout, little-endian:
 *   u32 magic
 *   u8  flags: MTL_HAS_USER, MTL_HAS_ITEM, and PACKED_SIDE << side for each
 *       features object given (even empty: it replaces the id's stored ones)
 *   i64 user id, i64 item id
 *   u8  labels, then f64 each (NaN: missing)
 *   u32 features, then each: u8 side, u8 kind, u16 name length, the name,
 *       u64 value (a category's hash or a number's bits)
 *
 * Reading checks every length and value: the bytes are an argument that a
 * caller may forge.
 */
#include "mtl_pg.h"

#include <math.h>

#include "utils/array.h"

#include "../core/bytes.h"
#include "packed_row.h"

#define PACKED_MAGIC 0x4B50544DU	/* "MTPK" little-endian */
#define PACKED_SIDE 4

typedef struct Packing
{
	MtlWriter	w;
	uint32		count;
} Packing;

static void
PackVisit(void *arg, int side, int kind, const char *name, int len, uint64 value,
		  int position)
{
	Packing    *p = arg;
	MtlWriter  *w = &p->w;

	p->count++;
	mtl_put_u8(w, (uint8) side);
	mtl_put_u8(w, (uint8) kind);
	mtl_put_u8(w, (uint8) (len & 0xFF));
	mtl_put_u8(w, (uint8) (len >> 8));
	mtl_put_bytes(w, name, len);
	mtl_put_u64(w, value);
}

/* values/nulls as MtlTrainAddRow takes them; labels are checked against the tasks later */
bytea *
MtlPackRow(const Datum *values, const bool *nulls, int n_values)
{
	Packing		p = {{0}};
	MtlWriter  *w = &p.w;
	double		y[MTL_MAX_LABELS];
	int			n_labels;
	uint8		flags = 0;
	size_t		count_at;
	bytea	   *out;

	if (nulls[2])
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("labels must not be NULL"),
				 errhint("Use an array of NULLs for a row whose labels are all missing.")));
	n_labels = MtlLabelValues(DatumGetArrayTypeP(values[2]), y);
	flags |= nulls[0] ? 0 : MTL_HAS_USER;
	flags |= nulls[1] ? 0 : MTL_HAS_ITEM;
	for (int side = 0; side < 3 && 3 + side < n_values; side++)
		flags |= nulls[3 + side] ? 0 : PACKED_SIDE << side;
	mtl_put_u32(w, PACKED_MAGIC);
	mtl_put_u8(w, flags);
	mtl_put_u64(w, nulls[0] ? 0 : (uint64) DatumGetInt64(values[0]));
	mtl_put_u64(w, nulls[1] ? 0 : (uint64) DatumGetInt64(values[1]));
	mtl_put_u8(w, (uint8) n_labels);
	for (int t = 0; t < n_labels; t++)
	{
		if (isinf(y[t]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("label %d must be a finite number or NULL", t + 1)));
		mtl_put_f64(w, y[t]);
	}
	count_at = w->len;
	mtl_put_u32(w, 0);
	for (int side = 0; side < 3 && 3 + side < n_values; side++)
		if (!nulls[3 + side])
			MtlVisitFeatures(DatumGetJsonbP(values[3 + side]),
							 side == 0 ? MTL_SIDE_USER : side == 1 ? MTL_SIDE_ITEM : MTL_SIDE_CONTEXT,
							 NULL, PackVisit, &p);
	for (int i = 0; i < 4; i++)
		w->data[count_at + i] = (uint8) (p.count >> (8 * i));
	out = palloc(VARHDRSZ + w->len);
	SET_VARSIZE(out, VARHDRSZ + w->len);
	memcpy(VARDATA(out), w->data, w->len);
	mtl_free(w->data);
	return out;
}

static float
BagWeight(uint64 value)
{
	uint32		bits = mtl_bag_weight_bits(value);
	float		w;

	memcpy(&w, &bits, sizeof(w));
	return w;
}

static void
ReportBadPacked(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid packed row: %s", why),
			 errhint("Pass rows made by mtl_round_pack.")));
}

void
MtlUnpackRow(bytea *packed, const MtlSpec *spec, MtlPackedRow *row)
{
	MtlReader  *r = &row->reader;
	double		y[MTL_MAX_LABELS];
	int			n_labels;

	r->data = (const uint8 *) VARDATA_ANY(packed);
	r->len = VARSIZE_ANY_EXHDR(packed);
	r->pos = 0;
	r->failed = NULL;
	if (mtl_get_u32(r) != PACKED_MAGIC)
		ReportBadPacked("not a packed row");
	row->flags = mtl_get_u8(r);
	row->user_id = (int64) mtl_get_u64(r);
	row->item_id = (int64) mtl_get_u64(r);
	n_labels = mtl_get_u8(r);
	if (n_labels > MTL_MAX_LABELS)
		ReportBadPacked("too many labels");
	for (int t = 0; t < n_labels; t++)
		y[t] = mtl_get_f64(r);
	row->n_features = mtl_get_u32(r);
	if (r->failed)
		ReportBadPacked(r->failed);
	if (row->flags & ~(MTL_HAS_USER | MTL_HAS_ITEM | (7 * PACKED_SIDE)))
		ReportBadPacked("unknown flags");
	/* every entry takes at least 12 bytes */
	if (row->n_features > (r->len - r->pos) / 12)
		ReportBadPacked("more features than bytes");
	MtlCheckLabels(y, n_labels, spec, row->labels);
}

bool
MtlPackedHasSide(const MtlPackedRow *row, int side)
{
	return (row->flags & (PACKED_SIDE << side)) != 0;
}

bool
MtlPackedNextFeature(MtlPackedRow *row, MtlPackedFeature *f)
{
	MtlReader  *r = &row->reader;
	int			len;

	if (row->n_features == 0)
	{
		if (r->pos != r->len)
			ReportBadPacked("trailing bytes");
		return false;
	}
	row->n_features--;
	f->side = mtl_get_u8(r);
	f->kind = mtl_get_u8(r);
	len = mtl_get_u8(r);
	len |= mtl_get_u8(r) << 8;
	if (!r->failed && (len > MTL_MAX_FIELD_NAME || !mtl_reader_has(r, len)))
		mtl_reader_fail(r, "a feature name too long");
	f->name = r->failed ? NULL : (const char *) r->data + r->pos;
	f->len = len;
	r->pos += r->failed ? 0 : len;
	f->value = mtl_get_u64(r);
	if (r->failed)
		ReportBadPacked(r->failed);
	if (f->side > MTL_SIDE_CONTEXT || !MtlPackedHasSide(row, f->side))
		ReportBadPacked("a feature of a side the row does not have");
	if (f->kind > MTL_KIND_LAST)
		ReportBadPacked("a feature of unknown kind");
	if (f->kind == MTL_KIND_BAG && !isfinite(BagWeight(f->value)) &&
		mtl_bag_weight_bits(f->value) != MTL_BAG_MEAN_BITS)
		ReportBadPacked("a weight that is not finite");
	if (f->kind == MTL_KIND_NUM && !isfinite(mtl_bits_number(f->value)))
		ReportBadPacked("a number that is not finite");
	return true;
}
