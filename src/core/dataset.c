#include "dataset.h"

#include <math.h>
#include <string.h>

#include "mem.h"

/* Embedding row of each interned id of a side ([0]: none). */
static int32_t *
IdRows(const MtlSchema *schema, const MtlRowStore *store, int side, int64_t row0)
{
	const MtlIdIntern *ids = &store->ids[side];
	int32_t    *rows = mtl_alloc(sizeof(int32_t) * (ids->n + 1));

	rows[0] = -1;
	for (int64_t i = 0; i < ids->n; i++)
	{
		int64_t		p = mtl_schema_find_id(schema, side, ids->ids[i]);

		/* an id the schema does not know (rows of another model's) has no row */
		rows[i + 1] = p < 0 ? -1 : (int32_t) (row0 + p);
	}
	return rows;
}

/* Which row slots and nums columns each side's columns fill. */
static void
SideFields(MtlDataset *data, const MtlSchema *schema, const MtlLayout *layout)
{
	for (int side = 0; side < MTL_N_SIDES; side++)
	{
		data->side_cat[side] = mtl_alloc(sizeof(int) * (schema->n_slot_cols + 1));
		data->side_num[side] = mtl_alloc(sizeof(int) * (schema->n_num_cols + 1));
	}
	for (int f = 0; f < schema->n_fields; f++)
	{
		const MtlFeature *feat = &schema->fields[f];
		int			side = feat->side;

		for (int k = 0; k < feat->width; k++)
		{
			if (feat->kind != MTL_KIND_NUM)
				data->side_cat[side][feat->side_slot + k] = layout->cat_slot[feat->index] + k;
			if (feat->kind != MTL_KIND_CAT)
				data->side_num[side][feat->side_col + k] = feat->col + k;
		}
		if (feat->kind != MTL_KIND_NUM)
			data->side_n_cat[side] += feat->width;
		if (feat->kind != MTL_KIND_CAT)
			data->side_n_num[side] += feat->width;
	}
}

/* Each set's values in its side's column order: embedding rows, numbers and weights. */
static void
EncodeSets(MtlDataset *data, const MtlSchema *schema, const MtlLayout *layout,
		   const MtlRowStore *store)
{
	int64_t		n_cat = 0,
				n_num = 0;

	data->set_cat0 = mtl_alloc(sizeof(int64_t) * (store->n_sets + 2));
	data->set_num0 = mtl_alloc(sizeof(int64_t) * (store->n_sets + 2));
	for (int64_t set = 1; set <= store->n_sets; set++)
	{
		data->set_cat0[set] = n_cat;
		data->set_num0[set] = n_num;
		n_cat += data->side_n_cat[store->set_side[set]];
		n_num += data->side_n_num[store->set_side[set]];
	}
	data->set_cat = mtl_alloc(sizeof(int32_t) * (n_cat + 1));
	data->set_num = mtl_alloc(sizeof(float) * (n_num + 1));
	for (int64_t set = 1; set <= store->n_sets; set++)
		mtl_schema_side_features(schema, layout, store, (uint32_t) set,
								 data->set_cat + data->set_cat0[set],
								 data->set_num + data->set_num0[set]);
}

double
mtl_dataset_bytes(const MtlSchema *schema, const MtlRowStore *store)
{
	return 4.0 * (store->ids[0].n + store->ids[1].n) +
		(16.0 + 4.0 * (schema->n_slot_cols + schema->n_num_cols)) * store->n_sets;
}

void
mtl_dataset_build(MtlDataset *data, const MtlSchema *schema, const MtlLayout *layout,
				  const MtlRowStore *store)
{
	memset(data, 0, sizeof(*data));
	data->store = store;
	data->n_rows = store->n_rows;
	data->n_slots = layout->n_slots;
	data->n_cols = layout->n_cols;
	data->n_tasks = store->n_tasks;
	data->user_row = IdRows(schema, store, MTL_SIDE_USER, 0);
	data->item_row = IdRows(schema, store, MTL_SIDE_ITEM, layout->item_row0);
	data->missing = mtl_alloc(sizeof(int32_t) * (layout->n_slots + 1));
	data->missing_nums = mtl_alloc(sizeof(float) * (layout->n_cols + 1));
	data->missing[0] = data->missing[1] = -1;
	for (int f = 0; f < schema->n_cat; f++)
		for (int k = 0; k < layout->cat_slots[f]; k++)
		{
			/* a bag with no value: its missing row with weight 1 in its first slot */
			data->missing[layout->cat_slot[f] + k] = k == 0 ? (int32_t) layout->cat_row0[f] : -1;
			if (layout->cat_wcol[f] >= 0)
				data->missing_nums[layout->cat_wcol[f] + k] = k == 0 ? 1.0f : 0.0f;
		}
	SideFields(data, schema, layout);
	EncodeSets(data, schema, layout, store);
	for (int t = 0; t <= MTL_MAX_TASKS; t++)
	{
		data->label_mean[t] = 0.0f;
		data->label_std[t] = 1.0f;
	}
}

void
mtl_dataset_free(MtlDataset *data)
{
	mtl_free(data->user_row);
	mtl_free(data->item_row);
	mtl_free(data->missing);
	mtl_free(data->missing_nums);
	for (int side = 0; side < MTL_N_SIDES; side++)
	{
		mtl_free(data->side_cat[side]);
		mtl_free(data->side_num[side]);
	}
	mtl_free(data->set_cat0);
	mtl_free(data->set_num0);
	mtl_free(data->set_cat);
	mtl_free(data->set_num);
	memset(data, 0, sizeof(*data));
}

void
mtl_dataset_expand_sides(const MtlDataset *data, const MtlRowRef *ref, int32_t *restrict slots,
						 float *restrict nums)
{
	for (int side = 0; side < MTL_N_SIDES; side++)
	{
		uint32_t	set = ref->set[side];
		/* locals: the writes below cannot then make the compiler reload them */
		const int32_t *restrict cat;
		const float *restrict num;
		const int  *restrict cat_at = data->side_cat[side];
		const int  *restrict num_at = data->side_num[side];
		int			n_cat = data->side_n_cat[side],
					n_num = data->side_n_num[side];

		if (set == 0)
			continue;
		cat = data->set_cat + data->set_cat0[set];
		num = data->set_num + data->set_num0[set];
		for (int k = 0; k < n_cat; k++)
			slots[cat_at[k]] = cat[k];
		for (int k = 0; k < n_num; k++)
			nums[num_at[k]] = num[k];
	}
}

void
mtl_dataset_expand_with_ids(const MtlDataset *data, const MtlSchema *schema, const MtlLayout *layout,
							const MtlRowRef *ref, int32_t *slots, float *nums)
{
	int			stored = 0;

	for (int side = 0; side < MTL_N_SIDES; side++)
		stored |= ref->set[side] == 0 && data->side_n_cat[side] + data->side_n_num[side] > 0;
	if (stored)
	{
		int32_t		item = data->item_row[ref->item];

		mtl_schema_row_from_ids(schema, layout, data->user_row[ref->user],
								item < 0 ? -1 : item - layout->item_row0, slots, nums);
	}
	else
	{
		/* every side's columns come from the row's own sets: no id table is read */
		memcpy(slots, data->missing, sizeof(int32_t) * data->n_slots);
		memcpy(nums, data->missing_nums, sizeof(float) * data->n_cols);
		slots[0] = data->user_row[ref->user];
		slots[1] = data->item_row[ref->item];
	}
	mtl_dataset_expand_sides(data, ref, slots, nums);
}

void
mtl_dataset_expand(const MtlDataset *data, const MtlRowRef *ref, const float *labels,
				   int32_t *restrict slots, float *restrict nums, float *restrict out_labels)
{
	memcpy(slots, data->missing, sizeof(int32_t) * data->n_slots);
	slots[0] = data->user_row[ref->user];
	slots[1] = data->item_row[ref->item];
	memcpy(nums, data->missing_nums, sizeof(float) * data->n_cols);
	mtl_dataset_expand_sides(data, ref, slots, nums);
	for (int t = 0; t < data->n_tasks; t++)
		out_labels[t] = isnan(labels[t]) ? labels[t] :
			(labels[t] - data->label_mean[t]) / data->label_std[t];
}
