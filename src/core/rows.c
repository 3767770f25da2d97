#include "rows.h"

#include <math.h>
#include <string.h>

#include "mem.h"
#include "rng.h"

MtlRowStore *
mtl_rows_create(int n_tasks)
{
	MtlRowStore *store = mtl_alloc(sizeof(MtlRowStore));

	store->n_tasks = n_tasks;
	store->cap_sets = 64;
	store->set_end = mtl_alloc(sizeof(int64_t) * (store->cap_sets + 1));
	store->set_side = mtl_alloc(store->cap_sets + 1);
	store->set_rows = mtl_alloc(sizeof(int64_t) * (store->cap_sets + 1));
	return store;
}

MtlRowStore *
mtl_rows_create_counting(int n_tasks)
{
	MtlRowStore *store = mtl_rows_create(n_tasks);

	store->no_rows = 1;
	return store;
}

static void
FreeIntern(MtlIdIntern *t)
{
	mtl_free(t->ids);
	mtl_free(t->last_set);
	mtl_free(t->index);
}

void
mtl_rows_free(MtlRowStore *store)
{
	if (store == NULL)
		return;
	for (int f = 0; f < store->n_fields; f++)
		mtl_free(store->fields[f].name);
	for (int side = 0; side < 2; side++)
		FreeIntern(&store->ids[side]);
	mtl_free(store->set_end);
	mtl_free(store->set_side);
	mtl_free(store->set_rows);
	mtl_free(store->set_index);
	mtl_free(store->entry_field);
	mtl_free(store->entry_value);
	for (int64_t c = 0; c < store->n_chunks; c++)
		mtl_free(store->chunks[c]);
	mtl_free(store->chunks);
	mtl_free(store->pending_field);
	mtl_free(store->pending_value);
	mtl_free(store);
}

void
mtl_rows_set_spill(MtlRowStore *store, const MtlSpillHooks *hooks, size_t budget)
{
	store->spill = hooks;
	store->memory_budget = budget;
}

/* Fields are few (usually tens), so a linear scan beats a hash table here. */
int
mtl_rows_field(MtlRowStore *store, int side, int kind, const char *name, size_t len)
{
	MtlFieldDef *def;

	/* rows name their fields in one order (jsonb sorts keys): the next one first */
	for (int i = 0; i < store->n_fields; i++)
	{
		int			f = (store->field_hint + i) % store->n_fields;

		def = &store->fields[f];
		if (def->side == side && def->kind == kind &&
			strncmp(def->name, name, len) == 0 && def->name[len] == '\0')
		{
			store->field_hint = f + 1;
			return f;
		}
	}
	if (store->n_fields >= MTL_MAX_FIELDS)
		return -1;
	def = &store->fields[store->n_fields];
	def->side = (uint8_t) side;
	def->kind = (uint8_t) kind;
	def->name = mtl_alloc(len + 1);
	memcpy(def->name, name, len);
	return store->n_fields++;
}

static int64_t
NextPow2(int64_t n)
{
	int64_t		p = 1;

	while (p < n)
		p *= 2;
	return p;
}

/* ---- interned ids ---- */

static uint64_t
MixId(int64_t id)
{
	uint64_t	h = (uint64_t) id * 0x9E3779B97F4A7C15ULL;

	return h ^ (h >> 29);
}

static void
IndexIds(MtlIdIntern *t, int64_t cap)
{
	mtl_free(t->index);
	t->index = mtl_alloc(sizeof(uint32_t) * cap);
	t->index_cap = cap;
	for (int64_t p = 0; p < t->n; p++)
	{
		int64_t		i = (int64_t) (MixId(t->ids[p]) & (uint64_t) (cap - 1));

		while (t->index[i] != 0)
			i = (i + 1) & (cap - 1);
		t->index[i] = (uint32_t) (p + 1);
	}
}

/* 1 + the id's position, adding it when new. */
static uint32_t
InternId(MtlIdIntern *t, int64_t id)
{
	int64_t		i;

	if (t->index_cap == 0 || 2 * (t->n + 1) > t->index_cap)
		IndexIds(t, t->index_cap ? t->index_cap * 2 : 1024);
	i = (int64_t) (MixId(id) & (uint64_t) (t->index_cap - 1));
	while (t->index[i] != 0)
	{
		if (t->ids[t->index[i] - 1] == id)
			return t->index[i];
		i = (i + 1) & (t->index_cap - 1);
	}
	if (t->n == t->cap)
	{
		t->cap = t->cap ? t->cap * 2 : 1024;
		t->ids = mtl_realloc(t->ids, sizeof(int64_t) * t->cap);
		t->last_set = mtl_realloc(t->last_set, sizeof(uint32_t) * t->cap);
	}
	t->ids[t->n] = id;
	t->last_set[t->n] = 0;
	t->index[i] = (uint32_t) (++t->n);
	return (uint32_t) t->n;
}

/* ---- feature sets ---- */

static uint64_t
HashEntries(int side, const uint32_t *field, const uint64_t *value, int64_t n)
{
	uint64_t	h = 0x51ED27A3ULL + (uint64_t) side;

	for (int64_t k = 0; k < n; k++)
	{
		h ^= value[k] + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
		h ^= (uint64_t) field[k] * 0xFF51AFD7ED558CCDULL;
		h *= 0xC4CEB9FE1A85EC53ULL;
	}
	return h ^ (h >> 31);
}

static int
SetEquals(const MtlRowStore *s, int64_t set, int side, const uint32_t *field,
		  const uint64_t *value, int64_t n)
{
	int64_t		from = s->set_end[set - 1];

	return s->set_side[set] == side && s->set_end[set] - from == n &&
		memcmp(s->entry_field + from, field, sizeof(uint32_t) * n) == 0 &&
		memcmp(s->entry_value + from, value, sizeof(uint64_t) * n) == 0;
}

static int64_t
SetHome(const MtlRowStore *s, int64_t set)
{
	int64_t		from = s->set_end[set - 1];

	return (int64_t) (HashEntries(s->set_side[set], s->entry_field + from, s->entry_value + from,
								  s->set_end[set] - from) & (uint64_t) (s->set_index_cap - 1));
}

static void
IndexSets(MtlRowStore *s, int64_t cap)
{
	mtl_free(s->set_index);
	s->set_index = mtl_alloc(sizeof(uint32_t) * cap);
	s->set_index_cap = cap;
	for (int64_t set = 1; set <= s->n_sets; set++)
	{
		int64_t		i = SetHome(s, set);

		while (s->set_index[i] != 0)
			i = (i + 1) & (cap - 1);
		s->set_index[i] = (uint32_t) set;
	}
}

static void
ReserveEntries(MtlRowStore *s, int64_t more)
{
	if (s->n_entries + more <= s->cap_entries)
		return;
	while (s->n_entries + more > s->cap_entries)
		s->cap_entries = s->cap_entries ? s->cap_entries * 2 : 4096;
	s->entry_field = mtl_realloc(s->entry_field, sizeof(uint32_t) * s->cap_entries);
	s->entry_value = mtl_realloc(s->entry_value, sizeof(uint64_t) * s->cap_entries);
}

/* The set number of these entries of one side, adding the set when new. */
static uint32_t
InternSet(MtlRowStore *s, int side, const uint32_t *field, const uint64_t *value, int64_t n)
{
	int64_t		i;

	if (s->set_index_cap == 0 || 2 * (s->n_sets + 1) > s->set_index_cap)
		IndexSets(s, s->set_index_cap ? s->set_index_cap * 2 : 1024);
	i = (int64_t) (HashEntries(side, field, value, n) & (uint64_t) (s->set_index_cap - 1));
	while (s->set_index[i] != 0)
	{
		if (SetEquals(s, s->set_index[i], side, field, value, n))
			return s->set_index[i];
		i = (i + 1) & (s->set_index_cap - 1);
	}
	if (s->n_sets == s->cap_sets)
	{
		s->cap_sets *= 2;
		s->set_end = mtl_realloc(s->set_end, sizeof(int64_t) * (s->cap_sets + 1));
		s->set_side = mtl_realloc(s->set_side, s->cap_sets + 1);
		s->set_rows = mtl_realloc(s->set_rows, sizeof(int64_t) * (s->cap_sets + 1));
	}
	if (n > 0)
	{
		ReserveEntries(s, n);
		memcpy(s->entry_field + s->n_entries, field, sizeof(uint32_t) * n);
		memcpy(s->entry_value + s->n_entries, value, sizeof(uint64_t) * n);
		s->n_entries += n;
	}
	s->n_sets++;
	s->set_end[s->n_sets] = s->n_entries;
	s->set_side[s->n_sets] = (uint8_t) side;
	s->set_rows[s->n_sets] = 0;
	s->set_index[i] = (uint32_t) s->n_sets;
	return (uint32_t) s->n_sets;
}

/* ---- rows in chunks ---- */

size_t
mtl_rows_chunk_bytes(const MtlRowStore *s)
{
	return (size_t) MTL_CHUNK_ROWS * mtl_rows_stride(s);
}

/* Write the oldest chunks in memory to the spill file while over budget. */
static void
SpillChunks(MtlRowStore *s)
{
	size_t		chunk = mtl_rows_chunk_bytes(s);

	if (s->spill == NULL || s->memory_budget == 0)
		return;
	/* the last chunk is being filled: never spilled */
	while (s->n_spilled < s->n_chunks - 1 &&
		   (size_t) (s->n_chunks - s->n_spilled) * chunk > s->memory_budget)
	{
		int64_t		c = s->n_spilled++;

		s->spill->write(s->spill->arg, s->chunks[c], chunk);
		mtl_free(s->chunks[c]);
		s->chunks[c] = NULL;
	}
}

/* A row's sets count it, and its ids remember their latest features. */
static void
CountRow(MtlRowStore *s, const MtlRowRef *ref)
{
	for (int side = 0; side < MTL_N_SIDES; side++)
		if (ref->set[side] != 0)
			s->set_rows[ref->set[side]]++;
	if (ref->user != 0 && ref->set[MTL_SIDE_USER] != 0)
		s->ids[MTL_SIDE_USER].last_set[ref->user - 1] = ref->set[MTL_SIDE_USER];
	if (ref->item != 0 && ref->set[MTL_SIDE_ITEM] != 0)
		s->ids[MTL_SIDE_ITEM].last_set[ref->item - 1] = ref->set[MTL_SIDE_ITEM];
}

/* A slot for one more row: its reference and labels. */
static void
AppendRow(MtlRowStore *s, const MtlRowRef *ref, const float *labels)
{
	int64_t		k = s->n_rows % MTL_CHUNK_ROWS;
	int64_t		c = s->n_rows / MTL_CHUNK_ROWS;
	uint8_t    *row;

	if (s->no_rows)
	{
		s->open_ref = *ref;
		s->n_rows++;
		CountRow(s, ref);
		return;
	}
	if (k == 0)
	{
		if (s->n_chunks == s->cap_chunks)
		{
			s->cap_chunks = s->cap_chunks ? s->cap_chunks * 2 : 16;
			s->chunks = mtl_realloc(s->chunks, sizeof(uint8_t *) * s->cap_chunks);
		}
		s->chunks[c] = mtl_alloc(mtl_rows_chunk_bytes(s));
		s->n_chunks++;
		SpillChunks(s);
	}
	row = s->chunks[c] + mtl_rows_stride(s) * k;
	memcpy(row, ref, sizeof(MtlRowRef));
	memcpy(row + sizeof(MtlRowRef), labels, sizeof(float) * s->n_tasks);
	s->n_rows++;
	CountRow(s, ref);
}

static MtlRowRef *
LastRef(MtlRowStore *s)
{
	int64_t		r = s->n_rows - 1;

	if (s->no_rows)
		return &s->open_ref;
	return (MtlRowRef *) (s->chunks[r / MTL_CHUNK_ROWS] + mtl_rows_stride(s) * (r % MTL_CHUNK_ROWS));
}

/* Intern the open row's entries as one set per side (entries come side by side). */
void
mtl_rows_seal(MtlRowStore *s)
{
	MtlRowRef  *ref;
	int64_t		from = 0;

	if (!s->row_open)
		return;
	s->row_open = 0;
	ref = LastRef(s);
	while (from < s->n_pending)
	{
		int			side = s->fields[s->pending_field[from]].side;
		int64_t		to = from;
		uint32_t	set;

		while (to < s->n_pending && s->fields[s->pending_field[to]].side == side)
			to++;
		set = InternSet(s, side, s->pending_field + from, s->pending_value + from, to - from);
		if (ref->set[side] != 0)
			s->set_rows[ref->set[side]]--;	/* a side split in two: the later part wins */
		ref->set[side] = set;
		s->set_rows[set]++;
		from = to;
	}
	if (ref->user != 0 && ref->set[MTL_SIDE_USER] != 0)
		s->ids[MTL_SIDE_USER].last_set[ref->user - 1] = ref->set[MTL_SIDE_USER];
	if (ref->item != 0 && ref->set[MTL_SIDE_ITEM] != 0)
		s->ids[MTL_SIDE_ITEM].last_set[ref->item - 1] = ref->set[MTL_SIDE_ITEM];
	s->n_pending = 0;
}

void
mtl_rows_add(MtlRowStore *s, int64_t user_id, int64_t item_id, uint8_t flags,
			 const float *labels)
{
	MtlRowRef	ref = {0};

	mtl_rows_seal(s);
	if (flags & MTL_HAS_USER)
		ref.user = InternId(&s->ids[MTL_SIDE_USER], user_id);
	if (flags & MTL_HAS_ITEM)
		ref.item = InternId(&s->ids[MTL_SIDE_ITEM], item_id);
	AppendRow(s, &ref, labels);
	s->row_open = 1;
}

void
mtl_rows_add_entry(MtlRowStore *s, int field, uint64_t value)
{
	if (s->n_pending == s->cap_pending)
	{
		s->cap_pending = s->cap_pending ? s->cap_pending * 2 : 64;
		s->pending_field = mtl_realloc(s->pending_field, sizeof(uint32_t) * s->cap_pending);
		s->pending_value = mtl_realloc(s->pending_value, sizeof(uint64_t) * s->cap_pending);
	}
	s->pending_field[s->n_pending] = (uint32_t) field;
	s->pending_value[s->n_pending] = value;
	s->n_pending++;
}

int
mtl_rows_chunk(const MtlRowStore *s, int64_t c, void *buffer, const uint8_t **rows)
{
	int64_t		n = s->n_rows - c * MTL_CHUNK_ROWS;

	if (n > MTL_CHUNK_ROWS)
		n = MTL_CHUNK_ROWS;
	if (c >= s->n_spilled)
	{
		*rows = s->chunks[c];
		return (int) n;
	}
	s->spill->read(s->spill->arg, (uint64_t) c * mtl_rows_chunk_bytes(s), buffer,
				   mtl_rows_chunk_bytes(s));
	*rows = buffer;
	return (int) n;
}

const MtlRowRef *
mtl_rows_ref(const MtlRowStore *s, int64_t r)
{
	return mtl_chunk_ref(s, s->chunks[r / MTL_CHUNK_ROWS], (int) (r % MTL_CHUNK_ROWS));
}

const float *
mtl_rows_labels(const MtlRowStore *s, int64_t r)
{
	return mtl_chunk_labels(s, s->chunks[r / MTL_CHUNK_ROWS], (int) (r % MTL_CHUNK_ROWS));
}

int64_t
mtl_rows_user_id(const MtlRowStore *s, const MtlRowRef *ref)
{
	return ref->user ? s->ids[MTL_SIDE_USER].ids[ref->user - 1] : 0;
}

int64_t
mtl_rows_item_id(const MtlRowStore *s, const MtlRowRef *ref)
{
	return ref->item ? s->ids[MTL_SIDE_ITEM].ids[ref->item - 1] : 0;
}

/* ---- merging and remapping ---- */

/* A counting store's rows into dst: their counts, and the ids' latest features. */
static void
MergeCounts(MtlRowStore *dst, const MtlRowStore *src, const uint32_t *set_map,
			uint32_t *const *id_map)
{
	for (int64_t set = 1; set <= src->n_sets; set++)
		dst->set_rows[set_map[set]] += src->set_rows[set];
	for (int side = 0; side < 2; side++)
		for (int64_t p = 0; p < src->ids[side].n; p++)
			if (src->ids[side].last_set[p] != 0)
				dst->ids[side].last_set[id_map[side][p + 1] - 1] = set_map[src->ids[side].last_set[p]];
	dst->n_rows += src->n_rows;
}

const MtlError *
mtl_rows_merge(MtlRowStore *dst, MtlRowStore *src)
{
	int			map[MTL_MAX_FIELDS];
	uint32_t   *set_map = mtl_alloc(sizeof(uint32_t) * (src->n_sets + 1));
	uint32_t   *id_map[2];
	uint32_t   *field = mtl_alloc(sizeof(uint32_t) * (src->n_entries + 1));
	void	   *buffer = src->n_spilled ? mtl_alloc(mtl_rows_chunk_bytes(src)) : NULL;

	mtl_rows_seal(dst);
	mtl_rows_seal(src);
	for (int f = 0; f < src->n_fields; f++)
	{
		const MtlFieldDef *def = &src->fields[f];

		map[f] = mtl_rows_field(dst, def->side, def->kind, def->name, strlen(def->name));
		if (map[f] < 0)
		{
			mtl_free(set_map);
			mtl_free(field);
			mtl_free(buffer);
			MTL_FAIL(MTL_E_LIMIT, "too many feature fields");
		}
	}
	for (int64_t e = 0; e < src->n_entries; e++)
		field[e] = (uint32_t) map[src->entry_field[e]];
	for (int64_t set = 1; set <= src->n_sets; set++)
		set_map[set] = InternSet(dst, src->set_side[set], field + src->set_end[set - 1],
								 src->entry_value + src->set_end[set - 1],
								 src->set_end[set] - src->set_end[set - 1]);
	for (int side = 0; side < 2; side++)
	{
		id_map[side] = mtl_alloc(sizeof(uint32_t) * (src->ids[side].n + 1));
		for (int64_t p = 0; p < src->ids[side].n; p++)
			id_map[side][p + 1] = InternId(&dst->ids[side], src->ids[side].ids[p]);
	}
	if (src->no_rows)
		MergeCounts(dst, src, set_map, id_map);
	for (int64_t c = 0; c < src->n_chunks; c++)
	{
		const uint8_t *rows;
		int			n = mtl_rows_chunk(src, c, buffer, &rows);

		for (int k = 0; k < n; k++)
		{
			const MtlRowRef *from = mtl_chunk_ref(src, rows, k);
			MtlRowRef	ref;

			ref.user = id_map[0][from->user];
			ref.item = id_map[1][from->item];
			for (int side = 0; side < MTL_N_SIDES; side++)
				ref.set[side] = set_map[from->set[side]];
			AppendRow(dst, &ref, mtl_chunk_labels(src, rows, k));
		}
	}
	mtl_free(id_map[0]);
	mtl_free(id_map[1]);
	mtl_free(set_map);
	mtl_free(field);
	mtl_free(buffer);
	return NULL;
}

void
mtl_rows_remap_fields(MtlRowStore *s, const MtlFieldDef *defs, int n_defs, const int *map)
{
	int64_t		kept = 0;

	mtl_rows_seal(s);
	for (int64_t set = 1; set <= s->n_sets; set++)
	{
		int64_t		from = s->set_end[set - 1];

		for (int64_t e = from; e < s->set_end[set]; e++)
			if (map[s->entry_field[e]] >= 0)
			{
				s->entry_field[kept] = (uint32_t) map[s->entry_field[e]];
				s->entry_value[kept] = s->entry_value[e];
				kept++;
			}
		s->set_end[set] = kept;
	}
	s->n_entries = kept;
	for (int f = 0; f < s->n_fields; f++)
		mtl_free(s->fields[f].name);
	for (int f = 0; f < n_defs; f++)
	{
		s->fields[f] = defs[f];
		s->fields[f].name = mtl_strdup(defs[f].name);
	}
	s->n_fields = n_defs;
	/* sets that became equal stay apart: the index is gone, so no more rows */
	mtl_free(s->set_index);
	s->set_index = NULL;
	s->set_index_cap = 0;
}

size_t
mtl_rows_bytes(const MtlRowStore *s)
{
	size_t		bytes = (size_t) (s->n_chunks - s->n_spilled) * mtl_rows_chunk_bytes(s);

	for (int side = 0; side < 2; side++)
		bytes += (size_t) s->ids[side].cap * 12 + (size_t) s->ids[side].index_cap * 4;
	bytes += (size_t) s->cap_sets * 17 + (size_t) s->set_index_cap * 4;
	bytes += (size_t) s->cap_entries * 12;
	return bytes;
}

/* ---- the partial state of a parallel aggregate ---- */

void
mtl_rows_write(MtlWriter *w, MtlRowStore *s)
{
	void	   *buffer = s->n_spilled ? mtl_alloc(mtl_rows_chunk_bytes(s)) : NULL;

	mtl_rows_seal(s);
	mtl_put_u32(w, (uint32_t) s->n_tasks);
	mtl_put_u32(w, (uint32_t) s->n_fields);
	for (int f = 0; f < s->n_fields; f++)
	{
		mtl_put_u8(w, s->fields[f].side);
		mtl_put_u8(w, s->fields[f].kind);
		mtl_put_str(w, s->fields[f].name);
	}
	for (int side = 0; side < 2; side++)
	{
		mtl_put_u64(w, (uint64_t) s->ids[side].n);
		mtl_put_bytes(w, s->ids[side].ids, sizeof(int64_t) * s->ids[side].n);
		mtl_put_bytes(w, s->ids[side].last_set, sizeof(uint32_t) * s->ids[side].n);
	}
	mtl_put_u64(w, (uint64_t) s->n_sets);
	mtl_put_u64(w, (uint64_t) s->n_entries);
	mtl_put_bytes(w, s->set_end + 1, sizeof(int64_t) * s->n_sets);
	mtl_put_bytes(w, s->set_side + 1, s->n_sets);
	mtl_put_bytes(w, s->entry_field, sizeof(uint32_t) * s->n_entries);
	mtl_put_bytes(w, s->entry_value, sizeof(uint64_t) * s->n_entries);
	mtl_put_u8(w, (uint8_t) s->no_rows);
	mtl_put_u64(w, (uint64_t) s->n_rows);
	if (s->no_rows)
		mtl_put_bytes(w, s->set_rows + 1, sizeof(int64_t) * s->n_sets);
	for (int64_t c = 0; c < s->n_chunks; c++)
	{
		const uint8_t *rows;
		int			n = mtl_rows_chunk(s, c, buffer, &rows);

		mtl_put_bytes(w, rows, mtl_rows_stride(s) * n);
	}
	mtl_free(buffer);
}

/*
 * Copy n raw host-order elements: states travel between servers of one byte
 * order (a parallel query's workers, or Citus nodes, all little-endian).
 */
static int
GetRaw(MtlReader *r, void *to, uint64_t n, size_t size)
{
	if (r->failed || n > (r->len - r->pos) / size)
	{
		mtl_reader_fail(r, "array longer than the data");
		return 0;
	}
	memcpy(to, r->data + r->pos, n * size);
	r->pos += n * size;
	return 1;
}

/* Fields, checked: a side and kind that exist, a name. */
static void
ReadFields(MtlReader *r, MtlRowStore *s, uint32_t n_fields)
{
	for (uint32_t f = 0; f < n_fields && !r->failed; f++)
	{
		s->fields[f].side = mtl_get_u8(r);
		s->fields[f].kind = mtl_get_u8(r);
		s->fields[f].name = mtl_get_str(r, MTL_MAX_FIELD_NAME);
		s->n_fields = (int) f + 1;
		if (!r->failed && (s->fields[f].side >= MTL_N_SIDES || s->fields[f].kind > MTL_KIND_LAST))
			mtl_reader_fail(r, "invalid field");
	}
}

/* An id table; its last sets are checked once the sets are known. */
static void
ReadIds(MtlReader *r, MtlIdIntern *t)
{
	uint64_t	n = mtl_get_u64(r);

	if (r->failed || n > UINT32_MAX - 1 || n > (r->len - r->pos) / 12)
	{
		mtl_reader_fail(r, "invalid id table");
		return;
	}
	t->n = t->cap = (int64_t) n;
	t->ids = mtl_alloc(sizeof(int64_t) * (n + 1));
	t->last_set = mtl_alloc(sizeof(uint32_t) * (n + 1));
	GetRaw(r, t->ids, n, sizeof(int64_t));
	GetRaw(r, t->last_set, n, sizeof(uint32_t));
}

/* Sets: ends that grow within the entries, a side per set matching its fields. */
static void
ReadSets(MtlReader *r, MtlRowStore *s)
{
	uint64_t	n_sets = mtl_get_u64(r);
	uint64_t	n_entries = mtl_get_u64(r);

	if (r->failed || n_sets > UINT32_MAX - 1 || n_sets > (r->len - r->pos) / 9 ||
		n_entries > (r->len - r->pos) / 12)
	{
		mtl_reader_fail(r, "invalid feature sets");
		return;
	}
	s->n_sets = s->cap_sets = (int64_t) n_sets;
	s->set_end = mtl_realloc(s->set_end, sizeof(int64_t) * (n_sets + 1));
	s->set_side = mtl_realloc(s->set_side, n_sets + 1);
	s->set_rows = mtl_realloc(s->set_rows, sizeof(int64_t) * (n_sets + 1));
	memset(s->set_rows, 0, sizeof(int64_t) * (n_sets + 1));
	s->set_end[0] = 0;
	s->n_entries = s->cap_entries = (int64_t) n_entries;
	s->entry_field = mtl_alloc(sizeof(uint32_t) * (n_entries + 1));
	s->entry_value = mtl_alloc(sizeof(uint64_t) * (n_entries + 1));
	if (!GetRaw(r, s->set_end + 1, n_sets, sizeof(int64_t)) ||
		!GetRaw(r, s->set_side + 1, n_sets, 1) ||
		!GetRaw(r, s->entry_field, n_entries, sizeof(uint32_t)) ||
		!GetRaw(r, s->entry_value, n_entries, sizeof(uint64_t)))
		return;
	for (uint64_t set = 1; set <= n_sets; set++)
	{
		/* a set has at least one entry: an empty side is set 0 */
		if (s->set_end[set] <= s->set_end[set - 1] || s->set_end[set] > (int64_t) n_entries ||
			s->set_side[set] >= MTL_N_SIDES)
		{
			mtl_reader_fail(r, "invalid feature sets");
			return;
		}
		for (int64_t e = s->set_end[set - 1]; e < s->set_end[set]; e++)
			if (s->entry_field[e] >= (uint32_t) s->n_fields ||
				s->fields[s->entry_field[e]].side != s->set_side[set])
			{
				mtl_reader_fail(r, "invalid feature entry");
				return;
			}
	}
	/* every entry belongs to a set (and so was checked above) */
	if (s->set_end[n_sets] != (int64_t) n_entries)
		mtl_reader_fail(r, "invalid feature sets");
}

static int
RefValid(const MtlRowStore *s, const MtlRowRef *ref)
{
	if (ref->user > s->ids[0].n || ref->item > s->ids[1].n)
		return 0;
	for (int side = 0; side < MTL_N_SIDES; side++)
		if (ref->set[side] > s->n_sets ||
			(ref->set[side] != 0 && s->set_side[ref->set[side]] != side))
			return 0;
	return 1;
}

static void
ReadRows(MtlReader *r, MtlRowStore *s)
{
	uint64_t	n_rows = mtl_get_u64(r);
	size_t		stride = mtl_rows_stride(s);
	float		labels[64];

	if (r->failed || n_rows > (r->len - r->pos) / stride)
	{
		mtl_reader_fail(r, "invalid rows");
		return;
	}
	for (uint64_t k = 0; k < n_rows; k++)
	{
		const uint8_t *row = r->data + r->pos + stride * k;
		MtlRowRef	ref;

		memcpy(&ref, row, sizeof(MtlRowRef));
		memcpy(labels, row + sizeof(MtlRowRef), sizeof(float) * s->n_tasks);
		if (!RefValid(s, &ref))
		{
			mtl_reader_fail(r, "invalid row");
			return;
		}
		AppendRow(s, &ref, labels);
	}
	r->pos += stride * n_rows;
}

/* A counting store's row count and rows per set. */
static void
ReadCounts(MtlReader *r, MtlRowStore *s)
{
	uint64_t	n_rows = mtl_get_u64(r);

	if (r->failed || n_rows > (UINT64_C(1) << 62) ||
		!GetRaw(r, s->set_rows + 1, (uint64_t) s->n_sets, sizeof(int64_t)))
	{
		mtl_reader_fail(r, "invalid row counts");
		return;
	}
	s->n_rows = (int64_t) n_rows;
	for (int64_t set = 1; set <= s->n_sets; set++)
		if (s->set_rows[set] < 0 || (uint64_t) s->set_rows[set] > n_rows)
		{
			mtl_reader_fail(r, "invalid row counts");
			return;
		}
}

MtlRowStore *
mtl_rows_read(MtlReader *r)
{
	uint32_t	n_tasks = mtl_get_u32(r);
	uint32_t	n_fields = mtl_get_u32(r);
	MtlRowStore *s;

	if (r->failed || n_tasks > 64 || n_fields > MTL_MAX_FIELDS)
	{
		mtl_reader_fail(r, "invalid training state");
		return NULL;
	}
	s = mtl_rows_create((int) n_tasks);
	ReadFields(r, s, n_fields);
	for (int side = 0; side < 2 && !r->failed; side++)
		ReadIds(r, &s->ids[side]);
	if (!r->failed)
		ReadSets(r, s);
	for (int side = 0; side < 2 && !r->failed; side++)
		for (int64_t p = 0; p < s->ids[side].n; p++)
			if (s->ids[side].last_set[p] > s->n_sets ||
				(s->ids[side].last_set[p] != 0 && s->set_side[s->ids[side].last_set[p]] != side))
			{
				mtl_reader_fail(r, "invalid id features");
				break;
			}
	if (!r->failed)
		s->no_rows = mtl_get_u8(r);
	if (!r->failed && s->no_rows > 1)
		mtl_reader_fail(r, "invalid training state");
	if (!r->failed)
	{
		if (s->no_rows)
			ReadCounts(r, s);
		else
			ReadRows(r, s);
	}
	if (r->failed)
	{
		mtl_rows_free(s);
		return NULL;
	}
	/* the indexes of a store that takes more rows */
	for (int side = 0; side < 2; side++)
		IndexIds(&s->ids[side], 1024 > 2 * s->ids[side].n ? 1024 : NextPow2(2 * s->ids[side].n + 2));
	IndexSets(s, 1024 > 2 * s->n_sets ? 1024 : NextPow2(2 * s->n_sets + 2));
	return s;
}

uint64_t
mtl_category_hash(const char *text, size_t len, int is_bool)
{
	return mtl_hash64(text, len, is_bool ? 0x626f6f6cULL : 0x73747224ULL);
}

uint64_t
mtl_number_bits(double value)
{
	uint64_t	bits;

	memcpy(&bits, &value, 8);
	return bits;
}

double
mtl_bits_number(uint64_t bits)
{
	double		v;

	memcpy(&v, &bits, 8);
	return v;
}
