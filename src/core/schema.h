/*
 * What the model knows about its inputs: feature fields with their
 * vocabularies (categorical) or mean and std (numeric), the user and item ids
 * seen in training, and the features each of those ids had.
 *
 * A categorical value's local index is 1 + its position in the sorted hash
 * list; 0 means missing or never seen (a learned embedding row of its own).
 * A numeric value is standardised; missing is 0, the training mean.
 * An id never seen in training is treated as anonymous: no id embedding, and,
 * when no features are passed, missing features.
 */
#ifndef MTL_SCHEMA_H
#define MTL_SCHEMA_H

#include <stdint.h>

#include "model.h"
#include "rows.h"

typedef struct MtlFeature
{
	uint8_t		side;
	uint8_t		kind;
	char	   *name;
	int			index;			/* among fields of its kind: cat slot or num column */
	int			side_index;		/* among fields of its kind and side */
	int64_t		n_values;		/* categorical: vocabulary size */
	uint64_t   *values;			/* categorical: sorted hashes */
	double		mean;			/* numeric */
	double		std;
	/* built by mtl_schema_index_fields: */
	size_t		name_len;
	int64_t		value_cap;		/* categorical: open-addressing table of the values, */
	int32_t    *value_slots;	/* a power of two; entries are local indices, 0 empty */
} MtlFeature;

typedef struct MtlIdTable
{
	int64_t		n;
	int64_t    *ids;			/* sorted */
	int			n_cat;			/* this side's categorical fields */
	int			n_num;			/* this side's numeric fields */
	int32_t    *cat;			/* [n x n_cat] local indices */
	float	   *num;			/* [n x n_num] standardised values */
	/*
	 * Hash index of the ids (mtl_schema_index_ids), valid while index_n == n:
	 * each slot holds the id beside 1 + its position, so a lookup touches one
	 * cache line.
	 */
	int64_t		index_n;
	int64_t		index_cap;		/* a power of two */
	struct MtlIdSlot *index;
} MtlIdTable;

typedef struct MtlIdSlot
{
	int64_t		id;
	int64_t		pos;			/* 1 + position, 0: empty */
} MtlIdSlot;

typedef struct MtlSchema
{
	int			n_fields;
	MtlFeature *fields;
	int			n_cat;
	int			n_num;
	int		   *cat_field;		/* [n_cat] field number of each cat slot */
	int		   *num_field;		/* [n_num] field number of each num column */
	MtlIdTable	ids[2];			/* MTL_SIDE_USER, MTL_SIDE_ITEM */
	int			context_count[2];	/* context fields by kind (they have no id table) */
	/* open-addressing index of (side, kind, name) -> field; -1 empty */
	int			field_index_cap;	/* a power of two; 0: not built, scan */
	int32_t    *field_index;
} MtlSchema;

/* Build vocabularies, statistics and id tables from collected rows. */
void		mtl_schema_build(MtlSchema *schema, const MtlRowStore *store);
void		mtl_schema_free(MtlSchema *schema);

/*
 * The schema of an updated model: old's fields, in old's order (the store's
 * fields must be old's, registered first in the same order), their
 * vocabularies grown by the values of the new rows, old's numeric statistics,
 * and the union of old's and the new rows' ids. An id keeps its old features
 * unless a new row brings features for it.
 */
void		mtl_schema_extend(MtlSchema *schema, const MtlSchema *old, const MtlRowStore *store);

/*
 * Shape of the model input implied by the schema (cat_rows allocated); the
 * scenario is the categorical context field named scenario ("": none).
 * Returns NULL or why the shape is impossible (no such field).
 */
const MtlError *mtl_schema_shape(const MtlSchema *schema, const char *scenario, MtlShape *shape);

/* Side index counter of a field of this side and kind (ids' or context's). */
int		   *mtl_schema_side_counter(MtlSchema *schema, int side, int kind);

/* Position of id in the side's table, or -1. */
int64_t		mtl_schema_find_id(const MtlSchema *schema, int side, int64_t id);
/* Local index of a categorical hash in field f (0 if unseen). */
int32_t		mtl_schema_cat_index(const MtlSchema *schema, int field, uint64_t hash);
float		mtl_schema_standardise(const MtlSchema *schema, int field, double value);

/*
 * Start a row for prediction: id slots and the stored features of known ids
 * (or missing). Then the caller may overwrite one side's features.
 */
void		mtl_schema_row_from_ids(const MtlSchema *schema, const MtlLayout *layout,
									int64_t user_pos, int64_t item_pos,
									int32_t *slots, float *nums);
/* Clear one side's features to missing before writing the passed ones. */
void		mtl_schema_clear_side(const MtlSchema *schema, const MtlLayout *layout, int side,
								  int32_t *slots, float *nums);
/* Write one feature value into a row (kind decides how value is read). */
void		mtl_schema_set_feature(const MtlSchema *schema, const MtlLayout *layout, int field,
								   uint64_t value, int32_t *slots, float *nums);

/*
 * Hash indexes of the user and item ids (after the id tables are final), so
 * that finding an id is one probe, not a binary search over a large catalog:
 * 32 to 64 bytes per id.
 */
void		mtl_schema_index_ids(MtlSchema *schema);

/* Build the field and value indexes (after building or decoding the fields). */
void		mtl_schema_index_fields(MtlSchema *schema);

/*
 * The same, trying *hint first (a field number, or -1) and leaving the field
 * found in it: rows of one query usually bring the same keys in the same order.
 */
int			mtl_schema_find_field_hinted(const MtlSchema *schema, int side, int kind,
										 const char *name, size_t len, int32_t *hint);

/* Find a field by side, kind and name; -1 if the model has none. */
int			mtl_schema_find_field(const MtlSchema *schema, int side, int kind,
								  const char *name, size_t len);

#endif
