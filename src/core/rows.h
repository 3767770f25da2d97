/*
 * The rows a training aggregate collects, before any vocabulary exists.
 *
 * Features are (field, value) entries: a categorical value is the 64-bit
 * hash of its text, a numeric one the bits of its double. Fields are
 * registered as they first appear, keyed by (side, kind, name), so the same
 * key may be both categorical and numeric.
 *
 * A shop's rows repeat themselves: every impression of a user carries the
 * same user features, every impression of an item the same item features.
 * So a row does not hold its entries. Each side's entries are interned as a
 * feature set (kept once, with the number of rows that use it), user and item
 * ids are interned too, and a row is five 32-bit references plus its labels:
 * 20 + 4 * tasks bytes. Sets and ids cost their own size once.
 *
 * Rows live in chunks of MTL_CHUNK_ROWS. With spill hooks and a memory
 * budget, full chunks beyond the budget go to the spill file (a temporary
 * file inside PostgreSQL) oldest first, so chunks 0 .. n_spilled-1 are on
 * disk, in order, and the rest in memory.
 *
 * Two stores merge by remapping fields, sets and ids, which is what a
 * parallel aggregate's combine step needs.
 */
#ifndef MTL_ROWS_H
#define MTL_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "error.h"

#define MTL_SIDE_USER 0
#define MTL_SIDE_ITEM 1
#define MTL_SIDE_CONTEXT 2		/* per row (scenario, time, device): no id */
#define MTL_N_SIDES 3
#define MTL_KIND_CAT 0
#define MTL_KIND_NUM 1
#define MTL_KIND_BAG 2			/* one value of a multi-valued field (tags, text) */
#define MTL_KIND_SEQ 3			/* one item id of a behaviour sequence: the id's bits */
#define MTL_KIND_LAST MTL_KIND_SEQ
#define MTL_HAS_USER 1
#define MTL_HAS_ITEM 2
#define MTL_MAX_FIELDS 1024
#define MTL_MAX_FIELD_NAME 256
#define MTL_CHUNK_ROWS 16384
#define MTL_STREAM_CHUNKS 16		/* chunks shuffled together when rows stream from the spill file */
#define MTL_SHUFFLE_ALL_CHUNKS 64	/* up to this many chunks in memory, training shuffles all rows */

typedef struct MtlFieldDef
{
	uint8_t		side;
	uint8_t		kind;
	char	   *name;
} MtlFieldDef;

/* One row: 1 + interned user and item, 1 + feature set of each side; 0: none. */
typedef struct MtlRowRef
{
	uint32_t	user;
	uint32_t	item;
	uint32_t	set[MTL_N_SIDES];
} MtlRowRef;

/* The distinct ids of one side in first-seen order, with a hash index. */
typedef struct MtlIdIntern
{
	int64_t		n;
	int64_t		cap;
	int64_t    *ids;
	uint32_t   *last_set;		/* set of the id's last row with features of its side, 0: none */
	int64_t		index_cap;		/* a power of two */
	uint32_t   *index;			/* 1 + position, 0: empty */
} MtlIdIntern;

/* Where full chunks go beyond the memory budget (inside PostgreSQL: a BufFile). */
typedef struct MtlSpillHooks
{
	void	   *arg;
	/* append len bytes at the end of the file; raises its own error on failure */
	void		(*write) (void *arg, const void *data, size_t len);
	/* read len bytes at offset */
	void		(*read) (void *arg, uint64_t offset, void *data, size_t len);
} MtlSpillHooks;

typedef struct MtlRowStore
{
	int			n_tasks;
	int			n_fields;
	int			field_hint;		/* where mtl_rows_field looks first */
	MtlFieldDef fields[MTL_MAX_FIELDS];
	MtlIdIntern ids[2];			/* MTL_SIDE_USER, MTL_SIDE_ITEM */
	/* feature set s (1 .. n_sets) has entries [set_end[s - 1], set_end[s]) */
	int64_t		n_sets;
	int64_t		cap_sets;
	int64_t    *set_end;		/* [cap_sets + 1], set_end[0] = 0 */
	uint8_t    *set_side;		/* [cap_sets + 1] */
	int64_t    *set_rows;		/* [cap_sets + 1] rows that use the set */
	int64_t		set_index_cap;	/* a power of two; 0: no index (after a remap) */
	uint32_t   *set_index;		/* set number, 0: empty */
	int64_t		n_entries;
	int64_t		cap_entries;
	uint32_t   *entry_field;
	uint64_t   *entry_value;
	/* rows, in chunks */
	int64_t		n_rows;
	int64_t		n_chunks;
	int64_t		cap_chunks;
	uint8_t   **chunks;			/* [n_chunks] rows of mtl_rows_stride bytes; NULL once spilled */
	int64_t		n_spilled;
	size_t		memory_budget;	/* bytes of chunks kept in memory; 0: no limit */
	const MtlSpillHooks *spill; /* NULL: never spill */
	/* counting only (mtl_rows_create_counting): rows are counted, not kept */
	int			no_rows;
	MtlRowRef	open_ref;		/* the row being added when no_rows */
	/* the row being added: entries wait here until the next row seals it */
	int			row_open;
	int64_t		n_pending;
	int64_t		cap_pending;
	uint32_t   *pending_field;
	uint64_t   *pending_value;
} MtlRowStore;

MtlRowStore *mtl_rows_create(int n_tasks);
/*
 * A store that keeps ids, feature sets and how many rows used each, but not
 * the rows: what vocabularies and statistics need (the first pass of
 * data-parallel training). It has no chunks.
 */
MtlRowStore *mtl_rows_create_counting(int n_tasks);
void		mtl_rows_free(MtlRowStore *store);

/* Let full chunks beyond budget bytes go to the spill file. */
void		mtl_rows_set_spill(MtlRowStore *store, const MtlSpillHooks *hooks, size_t budget);

/* Field number of (side, kind, name), registering it; -1 if MTL_MAX_FIELDS are used. */
int			mtl_rows_field(MtlRowStore *store, int side, int kind, const char *name, size_t len);

/* Start a row; its labels array has n_tasks values (NaN = missing). */
void		mtl_rows_add(MtlRowStore *store, int64_t user_id, int64_t item_id, uint8_t flags,
						 const float *labels);
/* Add a feature entry to the row started last. */
void		mtl_rows_add_entry(MtlRowStore *store, int field, uint64_t value);
/* Finish the row started last (readers call it; adding a row does it too). */
void		mtl_rows_seal(MtlRowStore *store);

/* Append every row of src to dst; NULL or a reason (too many fields). */
const MtlError *mtl_rows_merge(MtlRowStore *dst, MtlRowStore *src);

/*
 * Keep only the fields map sends somewhere (map[f] >= 0, into defs of n_defs
 * fields, which become the store's fields). The store takes no rows after.
 */
void		mtl_rows_remap_fields(MtlRowStore *store, const MtlFieldDef *defs, int n_defs,
								  const int *map);

/* Bytes the store holds in memory. */
size_t		mtl_rows_bytes(const MtlRowStore *store);
/* Bytes of one chunk of rows. */
size_t		mtl_rows_chunk_bytes(const MtlRowStore *store);

/*
 * Chunk c's rows (MTL_CHUNK_ROWS, fewer in the last chunk): *rows points into
 * memory, or, for a spilled chunk, at buffer (mtl_rows_chunk_bytes), read
 * from the file. A row is its reference followed by its labels (NaN =
 * missing), so gathering a row touches one cache line.
 */
int			mtl_rows_chunk(const MtlRowStore *store, int64_t c, void *buffer, const uint8_t **rows);

static inline size_t
mtl_rows_stride(const MtlRowStore *store)
{
	return sizeof(MtlRowRef) + sizeof(float) * store->n_tasks;
}

static inline const MtlRowRef *
mtl_chunk_ref(const MtlRowStore *store, const uint8_t *rows, int k)
{
	return (const MtlRowRef *) (rows + mtl_rows_stride(store) * k);
}

static inline const float *
mtl_chunk_labels(const MtlRowStore *store, const uint8_t *rows, int k)
{
	return (const float *) (rows + mtl_rows_stride(store) * k + sizeof(MtlRowRef));
}

/* Row r of an unspilled store (tests, small reads). */
const MtlRowRef *mtl_rows_ref(const MtlRowStore *store, int64_t r);
const float *mtl_rows_labels(const MtlRowStore *store, int64_t r);
int64_t		mtl_rows_user_id(const MtlRowStore *store, const MtlRowRef *ref);
int64_t		mtl_rows_item_id(const MtlRowStore *store, const MtlRowRef *ref);

void		mtl_rows_write(MtlWriter *w, MtlRowStore *store);
/* NULL-safe: on malformed input sets r->failed and returns NULL */
MtlRowStore *mtl_rows_read(MtlReader *r);

uint64_t	mtl_category_hash(const char *text, size_t len, int is_bool);

/*
 * A bag entry's value: the upper 32 bits of its hash (its key in the field's
 * vocabulary) and its weight's float bits. A NaN weight marks a member of a
 * list, whose weight is 1 / (the list's known values) once the row is
 * complete; an object's value -> weight entries keep their weight.
 */
#define MTL_BAG_MEAN_BITS 0x7fc00000u
static inline uint64_t
mtl_bag_value(uint64_t hash, uint32_t weight_bits)
{
	return (hash & 0xFFFFFFFF00000000ULL) | weight_bits;
}

static inline uint64_t
mtl_bag_key(uint64_t value)
{
	return value >> 32;
}

static inline uint32_t
mtl_bag_weight_bits(uint64_t value)
{
	return (uint32_t) value;
}
uint64_t	mtl_number_bits(double value);
double		mtl_bits_number(uint64_t bits);

#endif
