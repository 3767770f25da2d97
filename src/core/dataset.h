/*
 * The collected rows as training reads them.
 *
 * Rows stay as the store holds them (references to interned ids and feature
 * sets, see rows.h); what is encoded is each id's embedding row and each
 * feature set's local indices and standardised numbers, once. A batch is
 * expanded from its rows' references into slots, numbers and labels
 * (regression labels standardised) when it is gathered.
 */
#ifndef MTL_DATASET_H
#define MTL_DATASET_H

#include <stdint.h>

#include "model.h"
#include "rows.h"
#include "schema.h"

typedef struct MtlDataset
{
	const MtlRowStore *store;
	int64_t		n_rows;
	int			n_slots;
	int			n_cols;			/* nums of a row: numbers, then bag weights */
	int			n_tasks;		/* label columns: the tasks', then a weight (sample_weight) */
	int32_t    *user_row;		/* [1 + users]: embedding row of an interned user; [0] and unknown ids: -1 */
	int32_t    *item_row;		/* [1 + items] */
	int32_t    *missing;		/* [n_slots]: slots of a row without ids or features */
	float	   *missing_nums;	/* [n_cols]: its nums */
	int			side_n_cat[MTL_N_SIDES];
	int			side_n_num[MTL_N_SIDES];
	int		   *side_cat[MTL_N_SIDES];	/* row slot of each of the side's slot columns */
	int		   *side_num[MTL_N_SIDES];	/* nums column of each of the side's columns */
	int64_t    *set_cat0;		/* [1 + sets]: first of the set's values in set_cat */
	int64_t    *set_num0;
	int32_t    *set_cat;		/* embedding rows, side_n_cat per set */
	float	   *set_num;		/* standardised numbers, side_n_num per set */
	float		label_mean[MTL_MAX_TASKS + 1];	/* regression labels: (y - mean) / std */
	float		label_std[MTL_MAX_TASKS + 1];
} MtlDataset;

/* Encode the store's ids and feature sets for the schema and layout. */
void		mtl_dataset_build(MtlDataset *data, const MtlSchema *schema, const MtlLayout *layout,
							  const MtlRowStore *store);
void		mtl_dataset_free(MtlDataset *data);
/* Bytes mtl_dataset_build will hold. */
double		mtl_dataset_bytes(const MtlSchema *schema, const MtlRowStore *store);

/*
 * Ask for what a row will read, in two stages a few rows apart (a row's
 * sets lie anywhere in memory: on features-only data each row has its own):
 * where its sets start, then the sets themselves.
 */
static inline void
mtl_dataset_prefetch_index(const MtlDataset *data, const MtlRowRef *ref)
{
	for (int side = 0; side < MTL_N_SIDES; side++)
		if (ref->set[side] != 0)
		{
			__builtin_prefetch(data->set_cat0 + ref->set[side]);
			__builtin_prefetch(data->set_num0 + ref->set[side]);
		}
}

static inline void
mtl_dataset_prefetch(const MtlDataset *data, const MtlRowRef *ref)
{
	for (int side = 0; side < MTL_N_SIDES; side++)
		if (ref->set[side] != 0)
		{
			__builtin_prefetch(data->set_cat + data->set_cat0[ref->set[side]]);
			__builtin_prefetch(data->set_num + data->set_num0[ref->set[side]]);
		}
}

/*
 * Write the values of the feature sets ref gives into slots and nums,
 * leaving the columns of sides it gives none: what a row's own features
 * object replaces of its ids' stored features.
 */
void		mtl_dataset_expand_sides(const MtlDataset *data, const MtlRowRef *ref, int32_t *slots,
									 float *nums);

/*
 * A row as rounds of training read it: for a side it gives no features
 * for, the stored features of its id (schema's id tables); its own sets'
 * values on the others.
 */
void		mtl_dataset_expand_with_ids(const MtlDataset *data, const MtlSchema *schema,
										const MtlLayout *layout, const MtlRowRef *ref,
										int32_t *slots, float *nums);

/* Expand one row into slots [n_slots], nums [n_cols] and labels [n_tasks columns]. */
void		mtl_dataset_expand(const MtlDataset *data, const MtlRowRef *ref, const float *labels,
							   int32_t *slots, float *nums, float *out_labels);

#endif
