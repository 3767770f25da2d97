/*
 * The rows a training aggregate collects, before any vocabulary exists.
 *
 * Features are kept as sparse (field, value) entries: a categorical value is
 * the 64-bit hash of its text, a numeric one the bits of its double. Fields
 * are registered as they first appear, keyed by (side, kind, name), so the
 * same key may be both categorical and numeric. Two stores merge by remapping
 * field numbers, which is what a parallel aggregate's combine step needs.
 *
 * Bytes per row: 8 + 8 (ids) + 1 (flags) + 4 * tasks (labels) + 8 (offset)
 * + 12 per non-null feature.
 */
#ifndef MTL_ROWS_H
#define MTL_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"

#define MTL_SIDE_USER 0
#define MTL_SIDE_ITEM 1
#define MTL_SIDE_CONTEXT 2		/* per row (scenario, time, device): no id */
#define MTL_KIND_CAT 0
#define MTL_KIND_NUM 1
#define MTL_HAS_USER 1
#define MTL_HAS_ITEM 2
#define MTL_MAX_FIELDS 1024
#define MTL_MAX_FIELD_NAME 256

typedef struct MtlFieldDef
{
	uint8_t		side;
	uint8_t		kind;
	char	   *name;
} MtlFieldDef;

typedef struct MtlRowStore
{
	int			n_tasks;
	int			n_fields;
	MtlFieldDef fields[MTL_MAX_FIELDS];
	int64_t		n_rows;
	int64_t		cap_rows;
	int64_t    *user_ids;
	int64_t    *item_ids;
	uint8_t    *flags;
	float	   *labels;			/* [n_rows x n_tasks], NaN = missing */
	int64_t    *entry_end;		/* row r's entries end here */
	int64_t		n_entries;
	int64_t		cap_entries;
	uint32_t   *entry_field;
	uint64_t   *entry_value;
} MtlRowStore;

MtlRowStore *mtl_rows_create(int n_tasks);
void		mtl_rows_free(MtlRowStore *store);

/* Field number of (side, kind, name), registering it; -1 if MTL_MAX_FIELDS are used. */
int			mtl_rows_field(MtlRowStore *store, int side, int kind, const char *name, size_t len);

/* Start a row; its labels array has n_tasks values (NaN = missing). */
void		mtl_rows_add(MtlRowStore *store, int64_t user_id, int64_t item_id, uint8_t flags,
						 const float *labels);
/* Add a feature entry to the row started last. */
void		mtl_rows_add_entry(MtlRowStore *store, int field, uint64_t value);

/* Append every row of src to dst; NULL or a reason (too many fields). */
const char *mtl_rows_merge(MtlRowStore *dst, const MtlRowStore *src);

size_t		mtl_rows_bytes(const MtlRowStore *store);

void		mtl_rows_write(MtlWriter *w, const MtlRowStore *store);
/* NULL-safe: on malformed input sets r->failed and returns NULL */
MtlRowStore *mtl_rows_read(MtlReader *r);

uint64_t	mtl_category_hash(const char *text, size_t len, int is_bool);
uint64_t	mtl_number_bits(double value);
double		mtl_bits_number(uint64_t bits);

#endif
