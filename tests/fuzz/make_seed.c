/*
 * Writes a small valid model to the fuzzer's seed corpus: a PLE with two
 * levels, scenario towers, uncertainty weighting, a bag field (item tags),
 * a user history pooled by attention, a text field's settings and a task's negative rate, and the same
 * model compressed (fp16, int8), so that the seeds hold every section the
 * format has. With a second path, seeds of the state
 * fuzzer there: a row store, a counting store and a round state, each after
 * the byte that picks its decoder (see fuzz_state.c).
 */
#include <stdio.h>
#include <string.h>

#include "../../src/core/fit.h"
#include "../../src/core/mem.h"
#include "../../src/core/round.h"
#include "../unit/synthetic.h"

static int
WriteSeed(const char *dir, const char *name, uint8_t pick, const MtlWriter *w)
{
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(&pick, 1, 1, f) != 1 || fwrite(w->data, 1, w->len, f) != w->len)
		return 1;
	fclose(f);
	return 0;
}

static int
StateSeeds(const char *dir, const MtlTrained *m, MtlRowStore *rows)
{
	MtlWriter	w = {0};
	/* with held-out scores kept: the longest form of a round state */
	MtlRoundOptions opt = {.round = 1, .learning_rate = 0.01f, .row_fraction = 1.0, .metrics = 1};
	MtlRound   *round = mtl_round_create(m, 7, &opt);
	MtlRowStore *counting = mtl_rows_create_counting(rows->n_tasks);
	int			bad = 0;

	mtl_rows_write(&w, rows);
	bad |= WriteSeed(dir, "seed_rows", 0, &w);
	w.len = 0;
	mtl_rows_merge(counting, rows);
	mtl_rows_write(&w, counting);
	bad |= WriteSeed(dir, "seed_counting", 0, &w);
	for (int64_t k = 0; k < 40 && k < rows->n_rows; k++)
	{
		int32_t    *slots;
		float	   *nums,
				   *labels;

		int			part = k % 4 == 0 ? MTL_ROUND_VALIDATION : MTL_ROUND_TRAIN;

		mtl_round_row(round, part, &slots, &nums, &labels);
		mtl_schema_row_from_ids(&m->schema, &m->model.layout, k % m->schema.ids[0].n,
								k % m->schema.ids[1].n, slots, nums);
		memcpy(labels, mtl_rows_labels(rows, k), sizeof(float) * rows->n_tasks);
		mtl_round_commit(round, part);
	}
	mtl_round_flush(round);
	w.len = 0;
	mtl_round_write(&w, round);
	bad |= WriteSeed(dir, "seed_round", 1, &w);
	bad |= WriteSeed(dir, "seed_round_nocrc", 2, &w);
	return bad;
}

int
main(int argc, char **argv)
{
	MtlSpec		spec;
	MtlTrained	m;
	double	   *truth,
				needed;
	MtlRowStore *rows;

	synthetic_history = 1;
	rows = synthetic_rows_tags(300, 1, &truth, 1);
	uint8_t    *bytes;
	size_t		n;
	FILE	   *f;

	if (argc != 2 && argc != 3)
		return 2;
	synthetic_spec(&spec, MTL_MODEL_PLE);
	strcpy(spec.scenario, "scenario");
	spec.n_text = 1;
	strcpy(spec.text_fields[0], "title");
	spec.text_buckets = 4096;
	strcpy(spec.text_config, "english");
	spec.loss_weighting = MTL_WEIGHTING_UNCERTAINTY;
	spec.dropout = 0.1f;
	spec.embedding_dim = 2;
	spec.shared_experts = 1;
	spec.expert_units[0] = 4;
	spec.tower_units[0] = 2;
	spec.epochs = 1;
	spec.tasks[0].negative_rate = 0.5f;
	if (mtl_fit(&spec, rows, NULL, 0, &needed, &m) != NULL)
		return 1;
	/* the model as float32, and compressed both ways (the same path + .fp16, .int8) */
	for (int c = MTL_COMPRESS_NONE; c <= MTL_COMPRESS_LAST; c++)
	{
		char		path[4096];

		snprintf(path, sizeof(path), c == MTL_COMPRESS_NONE ? "%s" : "%s.%s", argv[1],
				 mtl_compression_name((MtlCompression) c));
		m.compression = (MtlCompression) c;
		n = mtl_encode(&m, &bytes);
		f = fopen(path, "wb");
		if (f == NULL || fwrite(bytes, 1, n, f) != n)
			return 1;
		fclose(f);
	}
	m.compression = MTL_COMPRESS_NONE;
	return argc == 3 ? StateSeeds(argv[2], &m, rows) : 0;
}
