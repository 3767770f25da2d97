/*
 * Row chunks: a training query's rows kept once, for the passes of training
 * in rounds on one server (mtl_fit_parallel), so that the query's join and
 * to_jsonb run once and the rounds read compact rows.
 *
 * A chunk is a row store (src/core/rows.h: interned ids and feature sets,
 * 20 + 4 * tasks bytes a row) of up to the rows one process met in a row:
 *
 *   CREATE UNLOGGED TABLE chunks AS
 *     SELECT mtl_round_rows(user_id, item_id, labels, ..., config) AS c
 *     FROM (query) q GROUP BY mtl_round_chunk_key(65536);
 *
 * mtl_round_rows is mtl_train's collecting aggregate with a final function
 * that writes the store instead of training. Under parallel query each
 * process fills its own chunks (mtl_round_chunk_key numbers them per
 * process), so the partial aggregates never need combining and the leader
 * only writes a few large values instead of inserting every row.
 *
 * Layout: u32 magic "MTLC", u32 format, the store (mtl_rows_write), u32
 * CRC-32C of everything before. Reading checks the checksum and every count
 * and index: a caller may pass any bytea.
 */
#include "mtl_pg.h"

#include "access/parallel.h"
#include "utils/memutils.h"

#include <math.h>

#include "round_rows.h"
#include "../core/round.h"
#include "../core/update.h"

#define CHUNK_MAGIC 0x434C544DU	/* "MTLC" little-endian */
#define CHUNK_FORMAT 1

PG_FUNCTION_INFO_V1(mtl_round_rows_final);
PG_FUNCTION_INFO_V1(mtl_round_chunk_key);

/* The collected rows of one group as a chunk. */
Datum
mtl_round_rows_final(PG_FUNCTION_ARGS)
{
	TrainState *state;
	MtlWriter	w = {0};
	bytea	   *out;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "mtl_round_rows_final called in non-aggregate context");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (TrainState *) PG_GETARG_POINTER(0);
	if (state->spec.sample_weight)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("training in rounds does not take sample weights"),
				 errhint("Train weighted rows with mtl_train or mtl_fit.")));
	mtl_put_u32(&w, CHUNK_MAGIC);
	mtl_put_u32(&w, CHUNK_FORMAT);
	mtl_rows_write(&w, state->rows);
	MtlRowsSpillClose(state->rows);
	mtl_put_u32(&w, mtl_crc32c(0, w.data, w.len));
	out = MtlToBytea(w.data, w.len, "chunk of rows", "Give mtl_round_chunk_key fewer rows per chunk.");
	mtl_free(w.data);
	PG_RETURN_BYTEA_P(out);
}

/*
 * mtl_round_chunk_key(rows_per_chunk) -> bigint: the chunk the row of this
 * call goes to: the process (a parallel worker or the leader) in the upper
 * bits, the rows it met at this call site before, divided by rows_per_chunk,
 * in the lower ones.
 */
Datum
mtl_round_chunk_key(PG_FUNCTION_ARGS)
{
	int32		per_chunk = PG_GETARG_INT32(0);
	int64	   *seen = fcinfo->flinfo->fn_extra;

	if (per_chunk < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rows per chunk must be at least 1")));
	if (seen == NULL)
		seen = fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(int64));
	PG_RETURN_INT64(((int64) (ParallelWorkerNumber + 1) << 40) + (*seen)++ / per_chunk);
}

void
MtlReportBadChunk(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid chunk of rows: %s", why),
			 errhint("Pass chunks made by mtl_round_rows unmodified.")));
}

double
MtlChunkRowPosition(const MtlSpec *spec, const MtlRowStore *store, const MtlRowRef *ref)
{
	return mtl_round_position(spec, ref->user != 0, ref->user ? mtl_rows_user_id(store, ref) : 0,
							  ref->item != 0, ref->item ? mtl_rows_item_id(store, ref) : 0);
}

MtlRowStore *
MtlReadChunk(bytea *chunk, int n_tasks)
{
	const uint8 *data = (const uint8 *) VARDATA_ANY(chunk);
	size_t		len = VARSIZE_ANY_EXHDR(chunk);
	MtlReader	r = {data, len, 0, NULL};
	MtlRowStore *store;

	if (len < 12 || mtl_crc32c(0, data, len - 4) !=
		(uint32) (data[len - 4] | (data[len - 3] << 8) | (data[len - 2] << 16) | ((uint32) data[len - 1] << 24)))
		MtlReportBadChunk("checksum mismatch (damaged or truncated)");
	r.len = len - 4;
	if (mtl_get_u32(&r) != CHUNK_MAGIC || mtl_get_u32(&r) != CHUNK_FORMAT)
		MtlReportBadChunk("not a chunk made by mtl_round_rows");
	store = mtl_rows_read(&r);
	if (store == NULL)
		MtlReportBadChunk(r.failed);
	/* on an error the store goes with the caller's memory context */
	if (store->no_rows)
		MtlReportBadChunk("a store without rows");
	if (r.pos != r.len)
		MtlReportBadChunk("trailing bytes");
	if (store->n_tasks != n_tasks)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the chunk's rows have %d labels, the model %d tasks", store->n_tasks, n_tasks)));
	for (int64 c = 0; c < store->n_chunks; c++)
	{
		const uint8 *rows;
		int			n = mtl_rows_chunk(store, c, NULL, &rows);

		for (int k = 0; k < n; k++)
			for (int t = 0; t < n_tasks; t++)
				if (isinf(mtl_chunk_labels(store, rows, k)[t]))
					MtlReportBadChunk("an infinite label");
	}
	return store;
}

MtlRowStore *
MtlReadChunkFor(bytea *chunk, const MtlTrained *m, MtlDataset *data)
{
	MtlRowStore *store = MtlReadChunk(chunk, m->model.spec.n_tasks);

	mtl_update_rows(&m->schema, store);
	mtl_dataset_build(data, &m->schema, &m->model.layout, store);
	/* each set's numbers once, rather than each row's */
	for (int64 set = 1; set <= store->n_sets; set++)
		for (int k = 0; k < data->side_n_num[store->set_side[set]]; k++)
			if (!isfinite(data->set_num[data->set_num0[set] + k]))
				MtlReportBadChunk("a number that is not finite");
	return store;
}
