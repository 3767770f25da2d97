/*
 * libFuzzer harness of the aggregate states that travel between processes
 * and, under Citus, between servers: the first byte picks the decoder.
 *   0: mtl_train's and mtl_round_init's row store (mtl_rows_read); a store
 *      that reads back is merged into an empty one and written again.
 *   1, 2: a round state (mtl_round_sum_read) with and without its checksum,
 *      so the fuzzer reaches the parser behind it; a state that reads back is
 *      merged with itself and written again.
 * Any crash, out-of-bounds read or leak is a bug; a refusal is the expected
 * answer.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../src/core/mem.h"
#include "../../src/core/round.h"
#include "../../src/core/rows.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
Rows(const uint8_t *data, size_t size)
{
	MtlReader	r = {data, size, 0, NULL};
	MtlRowStore *s = mtl_rows_read(&r);
	MtlRowStore *into;
	MtlWriter	w = {0};

	if (s == NULL)
		return;
	into = s->no_rows ? mtl_rows_create_counting(s->n_tasks) : mtl_rows_create(s->n_tasks);
	mtl_rows_merge(into, s);
	mtl_rows_write(&w, into);
	mtl_free(w.data);
	mtl_rows_free(into);
	mtl_rows_free(s);
}

static void
Round(const uint8_t *data, size_t size, int check_crc)
{
	MtlReader	r = {data, size, 0, NULL};
	MtlRoundSum *s = mtl_round_sum_read(&r, check_crc);
	MtlWriter	w = {0};

	if (s == NULL)
		return;
	mtl_round_sum_merge(s, s);
	mtl_round_sum_write(&w, s);
	mtl_free(w.data);
	mtl_round_sum_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] % 3 == 0)
		Rows(data + 1, size - 1);
	else
		Round(data + 1, size - 1, data[0] % 3 == 1);
	return 0;
}
