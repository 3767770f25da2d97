/*
 * The temporary file behind a row store's spill hooks (core/rows.h).
 *
 * A BufFile: PostgreSQL's own temporary files, so temp_file_limit holds,
 * temp_tablespaces are used, log_temp_files reports them, and the files go
 * away at the end of the statement's resource owner, on error or cancel too.
 * Chunks are whole BLCKSZ blocks (16,384 rows of 20 + 4 * tasks bytes), so
 * a chunk is read with one block seek.
 */
#include "mtl_pg.h"

#include "storage/buffile.h"
#include "utils/memutils.h"

typedef struct SpillFile
{
	MtlSpillHooks hooks;
	MemoryContext context;		/* where the BufFile lives */
	BufFile    *file;			/* created by the first write */
	uint64		written;		/* bytes appended so far */
	bool		at_end;			/* the file position is the end */
	bool		closed;			/* closed by MtlRowsSpillClose: its chunks are gone */
} SpillFile;

static void
CheckOpen(const SpillFile *spill)
{
	if (spill->closed)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the rows of this mtl aggregate were spilled to a temporary file that is closed"),
				 errhint("Raise config key rows_memory_mb, or call the aggregate once per group.")));
}

static void
SpillWrite(void *arg, const void *data, size_t len)
{
	SpillFile  *spill = arg;

	CheckOpen(spill);
	if (spill->file == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(spill->context);

		spill->file = BufFileCreateTemp(false);
		spill->at_end = true;
		MemoryContextSwitchTo(old);
	}
	if (!spill->at_end)
	{
		if (spill->written % BLCKSZ != 0 ||
			BufFileSeekBlock(spill->file, (long) (spill->written / BLCKSZ)) != 0)
			elog(ERROR, "could not seek to the end of the mtl spill file");
		spill->at_end = true;
	}
	BufFileWrite(spill->file, (void *) data, len);
	spill->written += len;
}

static void
SpillRead(void *arg, uint64_t offset, void *data, size_t len)
{
	SpillFile  *spill = arg;

	CheckOpen(spill);
	if (spill->file == NULL || offset % BLCKSZ != 0 || offset + len > spill->written)
		elog(ERROR, "mtl spill file read out of range");
	if (BufFileSeekBlock(spill->file, (long) (offset / BLCKSZ)) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not seek in the mtl spill file")));
	spill->at_end = false;
	if (BufFileRead(spill->file, data, len) != len)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read %zu bytes of the mtl spill file", len)));
}

/* Spill the store's rows beyond budget bytes to a temporary file; lives in context. */
void
MtlRowsSpillToTempFile(MtlRowStore *rows, size_t budget, MemoryContext context)
{
	SpillFile  *spill = MemoryContextAllocZero(context, sizeof(SpillFile));

	spill->hooks.arg = spill;
	spill->hooks.write = SpillWrite;
	spill->hooks.read = SpillRead;
	spill->context = context;
	mtl_rows_set_spill(rows, &spill->hooks, budget);
}

/*
 * Close the store's temporary file once its rows are no longer read (after
 * training, after serialising a partial state): the file would otherwise stay
 * open until the transaction ends and be reported as leaked. An error before
 * that closes it through the resource owner.
 */
void
MtlRowsSpillClose(MtlRowStore *rows)
{
	SpillFile  *spill = rows->spill ? rows->spill->arg : NULL;

	if (spill == NULL || spill->file == NULL)
		return;
	BufFileClose(spill->file);
	spill->file = NULL;
	spill->closed = true;
}

/* Bytes the store has written to its temporary file. */
uint64
MtlRowsSpilledBytes(const MtlRowStore *rows)
{
	return rows->spill ? ((const SpillFile *) rows->spill->arg)->written : 0;
}
