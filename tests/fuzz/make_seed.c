/*
 * Writes a small valid model to the fuzzer's seed corpus: a PLE with two
 * levels, scenario towers and uncertainty weighting, so that the seed holds
 * every section the format has.
 */
#include <stdio.h>
#include <string.h>

#include "../../src/core/fit.h"
#include "../../src/core/mem.h"
#include "../unit/synthetic.h"

int
main(int argc, char **argv)
{
	MtlSpec		spec;
	MtlTrained	m;
	double	   *truth,
				needed;
	MtlRowStore *rows = synthetic_rows_scenario(300, 1, &truth);
	uint8_t    *bytes;
	size_t		n;
	FILE	   *f;

	if (argc != 2)
		return 2;
	synthetic_spec(&spec, MTL_MODEL_PLE);
	strcpy(spec.scenario, "scenario");
	spec.loss_weighting = MTL_WEIGHTING_UNCERTAINTY;
	spec.dropout = 0.1f;
	spec.embedding_dim = 2;
	spec.shared_experts = 1;
	spec.expert_units[0] = 4;
	spec.tower_units[0] = 2;
	spec.epochs = 1;
	if (mtl_fit(&spec, rows, NULL, 0, &needed, &m) != NULL)
		return 1;
	n = mtl_encode(&m, &bytes);
	f = fopen(argv[1], "wb");
	if (f == NULL || fwrite(bytes, 1, n, f) != n)
		return 1;
	fclose(f);
	return 0;
}
