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
	return store;
}

void
mtl_rows_free(MtlRowStore *store)
{
	if (store == NULL)
		return;
	for (int f = 0; f < store->n_fields; f++)
		mtl_free(store->fields[f].name);
	mtl_free(store->user_ids);
	mtl_free(store->item_ids);
	mtl_free(store->flags);
	mtl_free(store->labels);
	mtl_free(store->entry_end);
	mtl_free(store->entry_field);
	mtl_free(store->entry_value);
	mtl_free(store);
}

/* Fields are few (usually tens), so a linear scan beats a hash table here. */
int
mtl_rows_field(MtlRowStore *store, int side, int kind, const char *name, size_t len)
{
	MtlFieldDef *def;

	for (int f = 0; f < store->n_fields; f++)
	{
		def = &store->fields[f];
		if (def->side == side && def->kind == kind &&
			strncmp(def->name, name, len) == 0 && def->name[len] == '\0')
			return f;
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

static void
GrowRows(MtlRowStore *s)
{
	int64_t		cap = s->cap_rows ? s->cap_rows * 2 : 1024;

	s->user_ids = mtl_realloc(s->user_ids, sizeof(int64_t) * cap);
	s->item_ids = mtl_realloc(s->item_ids, sizeof(int64_t) * cap);
	s->flags = mtl_realloc(s->flags, cap);
	s->labels = mtl_realloc(s->labels, sizeof(float) * cap * (s->n_tasks ? s->n_tasks : 1));
	s->entry_end = mtl_realloc(s->entry_end, sizeof(int64_t) * cap);
	s->cap_rows = cap;
}

void
mtl_rows_add(MtlRowStore *s, int64_t user_id, int64_t item_id, uint8_t flags,
			 const float *labels)
{
	int64_t		r = s->n_rows;

	if (r == s->cap_rows)
		GrowRows(s);
	s->user_ids[r] = (flags & MTL_HAS_USER) ? user_id : 0;
	s->item_ids[r] = (flags & MTL_HAS_ITEM) ? item_id : 0;
	s->flags[r] = flags;
	memcpy(s->labels + r * s->n_tasks, labels, sizeof(float) * s->n_tasks);
	s->entry_end[r] = s->n_entries;
	s->n_rows++;
}

void
mtl_rows_add_entry(MtlRowStore *s, int field, uint64_t value)
{
	if (s->n_entries == s->cap_entries)
	{
		int64_t		cap = s->cap_entries ? s->cap_entries * 2 : 4096;

		s->entry_field = mtl_realloc(s->entry_field, sizeof(uint32_t) * cap);
		s->entry_value = mtl_realloc(s->entry_value, sizeof(uint64_t) * cap);
		s->cap_entries = cap;
	}
	s->entry_field[s->n_entries] = (uint32_t) field;
	s->entry_value[s->n_entries] = value;
	s->n_entries++;
	s->entry_end[s->n_rows - 1] = s->n_entries;
}

const char *
mtl_rows_merge(MtlRowStore *dst, const MtlRowStore *src)
{
	int			map[MTL_MAX_FIELDS];
	int64_t		e = 0;

	for (int f = 0; f < src->n_fields; f++)
	{
		const MtlFieldDef *def = &src->fields[f];

		map[f] = mtl_rows_field(dst, def->side, def->kind, def->name, strlen(def->name));
		if (map[f] < 0)
			return "too many feature fields";
	}
	for (int64_t r = 0; r < src->n_rows; r++)
	{
		mtl_rows_add(dst, src->user_ids[r], src->item_ids[r], src->flags[r],
					 src->labels + r * src->n_tasks);
		for (; e < src->entry_end[r]; e++)
			mtl_rows_add_entry(dst, map[src->entry_field[e]], src->entry_value[e]);
	}
	return NULL;
}

size_t
mtl_rows_bytes(const MtlRowStore *s)
{
	return (size_t) s->cap_rows * (8 + 8 + 1 + 8 + 4 * (size_t) s->n_tasks) +
		(size_t) s->cap_entries * 12;
}

void
mtl_rows_write(MtlWriter *w, const MtlRowStore *s)
{
	mtl_put_u32(w, (uint32_t) s->n_tasks);
	mtl_put_u32(w, (uint32_t) s->n_fields);
	for (int f = 0; f < s->n_fields; f++)
	{
		mtl_put_u8(w, s->fields[f].side);
		mtl_put_u8(w, s->fields[f].kind);
		mtl_put_str(w, s->fields[f].name);
	}
	mtl_put_u64(w, (uint64_t) s->n_rows);
	mtl_put_u64(w, (uint64_t) s->n_entries);
	mtl_put_bytes(w, s->user_ids, sizeof(int64_t) * s->n_rows);
	mtl_put_bytes(w, s->item_ids, sizeof(int64_t) * s->n_rows);
	mtl_put_bytes(w, s->flags, s->n_rows);
	mtl_put_bytes(w, s->labels, sizeof(float) * s->n_rows * s->n_tasks);
	mtl_put_bytes(w, s->entry_end, sizeof(int64_t) * s->n_rows);
	mtl_put_bytes(w, s->entry_field, sizeof(uint32_t) * s->n_entries);
	mtl_put_bytes(w, s->entry_value, sizeof(uint64_t) * s->n_entries);
}

/* Copy n raw host-order elements; the state never leaves this server. */
static void *
GetRaw(MtlReader *r, uint64_t n, size_t size)
{
	void	   *p;

	if (r->failed || n > (r->len - r->pos) / size)
	{
		mtl_reader_fail(r, "array longer than the data");
		return NULL;
	}
	p = mtl_alloc(n * size + 1);
	memcpy(p, r->data + r->pos, n * size);
	r->pos += n * size;
	return p;
}

MtlRowStore *
mtl_rows_read(MtlReader *r)
{
	uint32_t	n_tasks = mtl_get_u32(r);
	uint32_t	n_fields = mtl_get_u32(r);
	MtlRowStore *s;
	uint64_t	n_rows,
				n_entries;

	if (r->failed || n_tasks > 64 || n_fields > MTL_MAX_FIELDS)
	{
		mtl_reader_fail(r, "invalid training state");
		return NULL;
	}
	s = mtl_rows_create((int) n_tasks);
	for (uint32_t f = 0; f < n_fields && !r->failed; f++)
	{
		s->fields[f].side = mtl_get_u8(r);
		s->fields[f].kind = mtl_get_u8(r);
		s->fields[f].name = mtl_get_str(r, MTL_MAX_FIELD_NAME);
		s->n_fields = (int) f + 1;
	}
	n_rows = mtl_get_u64(r);
	n_entries = mtl_get_u64(r);
	s->user_ids = GetRaw(r, n_rows, 8);
	s->item_ids = GetRaw(r, n_rows, 8);
	s->flags = GetRaw(r, n_rows, 1);
	s->labels = GetRaw(r, n_rows * n_tasks, 4);
	s->entry_end = GetRaw(r, n_rows, 8);
	s->entry_field = GetRaw(r, n_entries, 4);
	s->entry_value = GetRaw(r, n_entries, 8);
	if (r->failed)
	{
		mtl_rows_free(s);
		return NULL;
	}
	s->n_rows = s->cap_rows = (int64_t) n_rows;
	s->n_entries = s->cap_entries = (int64_t) n_entries;
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
