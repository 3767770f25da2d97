/* Writes a small valid model to the fuzzer's seed corpus. */
#include <stdio.h>

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
	MtlRowStore *rows = synthetic_rows(300, 1, &truth);
	uint8_t    *bytes;
	size_t		n;
	FILE	   *f;

	if (argc != 2)
		return 2;
	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.embedding_dim = 2;
	spec.n_experts = 2;
	spec.expert_units[0] = 4;
	spec.tower_units[0] = 2;
	spec.epochs = 1;
	mtl_fit(&spec, rows, NULL, 0, &needed, &m);
	n = mtl_encode(&m, &bytes);
	f = fopen(argv[1], "wb");
	if (f == NULL || fwrite(bytes, 1, n, f) != n)
		return 1;
	fclose(f);
	return 0;
}
