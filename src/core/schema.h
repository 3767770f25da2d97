/*
 * What the model knows about its inputs: feature fields with their
 * vocabularies (categorical) or mean and std (numeric), the user and item ids
 * seen in training, and the features each of those ids had.
 *
 * A categorical value's local index is 1 + its position in the sorted hash
 * list; 0 means missing or never seen (a learned embedding row of its own).
 * A numeric value is standardised; missing is 0, the training mean. A
 * non-negative field with a long right tail (skewness above
 * MTL_SKEW_FOR_LOG: money amounts, counts) is standardised after log1p
 * (transform MTL_NUM_LOG), so that its few huge values do not squeeze the
 * rest into one point; at scoring, a negative value takes -log1p(-v).
 * A bag (multi-valued categorical: tags, text tokens) has `width` slots and
 * as many weights: its embedding is the weighted sum of its values' rows.
 * Unseen values are skipped; a bag with no known value is missing (local 0,
 * weight 1); empty slots are -1 with weight 0. A sequence (a history of item
 * ids) is stored as a bag of groups: each history item takes 1 + (item
 * categorical fields) slots, its id (local index k >= 1 names item position
 * k - 1; in a model's row, the item's embedding row) and the item's stored
 * categorical values, so a history item is seen as the item a candidate is
 * (id and category). Every slot of a group has the item's weight. A
 * sequence has no vocabulary of its own, only its missing row.
 *
 * Columns of a row (see model.h): slots [2 + cat slot columns] hold embedding
 * rows, a categorical field one, a bag `width`; nums [numeric fields, then
 * each bag's weights].
 * An id never seen in training is treated as anonymous: no id embedding, and,
 * when no features are passed, missing features.
 */
#ifndef MTL_SCHEMA_H
#define MTL_SCHEMA_H

#include <stdint.h>

#include "model.h"
#include "rows.h"

/* What a numeric field's values go through before they are standardised. */
#define MTL_NUM_PLAIN 0
#define MTL_NUM_LOG 1
#define MTL_NUM_LAST MTL_NUM_LOG
#define MTL_SKEW_FOR_LOG 2.0

/* Kinds with several slots and a weight per slot: bags and sequences. */
static inline int
mtl_kind_is_multi(int kind)
{
	return kind == MTL_KIND_BAG || kind == MTL_KIND_SEQ;
}

typedef struct MtlFeature
{
	uint8_t		side;
	uint8_t		kind;
	char	   *name;
	int			index;			/* categorical and bag: embedded field number; numeric: its number */
	int			width;			/* slots (and bag weights) of the field: bag width, else 1 */
	int			slot;			/* first slot column among the cat slots (row slot 2 + slot) */
	int			col;			/* numeric: its nums column; bag: its first weight column */
	int			side_slot;		/* the same within the side's id table */
	int			side_col;
	int64_t		n_values;		/* categorical and bag: vocabulary size */
	uint64_t   *values;			/* categorical: sorted hashes; bag: sorted keys */
	double		mean;			/* numeric, of the transformed values */
	double		std;
	uint8_t		transform;		/* numeric: MTL_NUM_PLAIN or MTL_NUM_LOG */
	/* built by mtl_schema_index_fields: */
	size_t		name_len;
	int64_t		value_cap;		/* categorical: open-addressing table of the values, */
	int32_t    *value_slots;	/* a power of two; entries are local indices, 0 empty */
} MtlFeature;

typedef struct MtlIdTable
{
	int64_t		n;
	int64_t    *ids;			/* sorted */
	int			n_slot_cols;	/* this side's cat slot columns */
	int			n_num_cols;		/* this side's nums columns (numbers, bag weights) */
	int32_t    *cat;			/* [n x n_slot_cols] local indices, -1: empty bag slot */
	float	   *num;			/* [n x n_num_cols] standardised values and bag weights */
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
	int			n_cat;			/* embedded fields: categorical and bags */
	int			n_num;			/* numeric fields */
	int			n_slot_cols;	/* slot columns of the embedded fields */
	int			n_num_cols;		/* nums columns: n_num, then bag weights */
	int			n_item_cats;	/* the item's categorical fields (a history item's group - 1) */
	int		   *item_cat_field; /* [n_item_cats] their field numbers, in order */
	int		   *cat_field;		/* [n_cat] field number of each embedded field */
	int		   *num_field;		/* [n_num] field number of each num column */
	MtlIdTable	ids[2];			/* MTL_SIDE_USER, MTL_SIDE_ITEM */
	/* open-addressing index of (side, kind, name) -> field; -1 empty */
	int			field_index_cap;	/* a power of two; 0: not built, scan */
	int32_t    *field_index;
} MtlSchema;

/*
 * Build vocabularies, statistics and id tables from collected rows; a bag
 * field has spec's bag_size slots, a sequence sequence_length, and skewed
 * numeric fields are logged when spec's log_skewed is set.
 */
void		mtl_schema_build(MtlSchema *schema, const MtlRowStore *store, const MtlSpec *spec);
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
 * scenario is the categorical context field named scenario ("": none), and
 * sequences are pooled by seq_pooling (MtlSequencePooling).
 * Returns NULL or why the shape is impossible (no such field).
 */
const MtlError *mtl_schema_shape(const MtlSchema *schema, const char *scenario, int seq_pooling,
								 MtlShape *shape);

/*
 * Number the fields' columns (index, slot, col, side_slot, side_col) from
 * their kinds and widths: after the fields are built or decoded.
 */
void		mtl_schema_assign_columns(MtlSchema *schema);

/* Position of id in the side's table, or -1. */
int64_t		mtl_schema_find_id(const MtlSchema *schema, int side, int64_t id);
/* Local index of a categorical hash in field f (0 if unseen). */
int32_t		mtl_schema_cat_index(const MtlSchema *schema, int field, uint64_t hash);
float		mtl_schema_standardise(const MtlSchema *schema, int field, double value);
/* The raw value of a standardised one (its transform undone). */
double		mtl_schema_unstandardise(const MtlFeature *feat, float z);

/*
 * Start a row for prediction: id slots and the stored features of known ids
 * (or missing). Then the caller may overwrite one side's features.
 */
void		mtl_schema_row_from_ids(const MtlSchema *schema, const MtlLayout *layout,
									int64_t user_pos, int64_t item_pos,
									int32_t *slots, float *nums);
/*
 * The columns of a side's row (id table layout: side_slot, side_col) from
 * feature set `set` of the store: local indices without a layout, embedding
 * rows with one.
 */
void		mtl_schema_side_features(const MtlSchema *schema, const MtlLayout *layout,
									 const MtlRowStore *store, uint32_t set, int32_t *cat,
									 float *num);
/* Clear one side's features to missing before writing the passed ones. */
void		mtl_schema_clear_side(const MtlSchema *schema, const MtlLayout *layout, int side,
								  int32_t *slots, float *nums);
/*
 * Write one feature value into a row (kind decides how value is read). A bag
 * value fills the field's next free slot; unseen ones and those beyond its
 * width are dropped. Returns 0 when a bag was full.
 */
int			mtl_schema_set_feature(const MtlSchema *schema, const MtlLayout *layout, int field,
								   uint64_t value, int32_t *slots, float *nums);
/* After set_feature: list members' weights become 1 / (known values). */
void		mtl_schema_finish_side(const MtlSchema *schema, const MtlLayout *layout, int side,
								   int32_t *slots, float *nums);

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
