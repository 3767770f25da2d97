/*
 * libFuzzer harness of the model decoder. Half the inputs are decoded as
 * given (the checksum rejects nearly all); the other half skip the checksum
 * so the fuzzer reaches the parser behind it. Any crash, out-of-bounds read
 * or leak is a bug; a decode error is the expected answer.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../src/core/format.h"
#include "../../src/core/predict.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	MtlTrained	m;
	int			check_crc = size > 0 && (data[size - 1] & 1);

	if (mtl_decode(data, size, &m, check_crc) == NULL)
	{
		/* a model that decodes must also score without reading out of bounds */
		MtlPredictor *p = mtl_predictor_create(&m);
		double		out[MTL_MAX_TASKS];

		mtl_schema_row_from_ids(&m.schema, &m.model.layout,
								m.schema.ids[0].n > 0 ? 0 : -1,
								m.schema.ids[1].n > 0 ? 0 : -1, p->slots, p->nums);
		mtl_predictor_run(p, out);
		if (m.model.shape.scenario_cat >= 0)
		{
			/* and with its last scenario: that scenario's tower block */
			int			f = m.model.shape.scenario_cat;

			p->slots[2 + f] = (int32_t) (m.model.layout.cat_row0[f] + m.model.shape.cat_rows[f] - 1);
			mtl_predictor_run(p, out);
		}
		mtl_predictor_free(p);
		mtl_trained_free(&m);
	}
	return 0;
}
