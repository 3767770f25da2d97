#include "sampling.h"

#include <string.h>

#include "rng.h"

int
mtl_sampled_task(const MtlSpec *spec)
{
	for (int t = 0; t < spec->n_tasks; t++)
		if (spec->tasks[t].negative_rate > 0.0f && spec->tasks[t].negative_rate < 1.0f)
			return t;
	return -1;
}

int
mtl_sampling_keeps(const MtlSpec *spec, int64_t row, int64_t user_id, int64_t item_id,
				   const float *labels)
{
	int			t = mtl_sampled_task(spec);
	uint64_t	key[3 + MTL_MAX_TASKS];
	uint64_t	h;

	if (t < 0 || !(labels[t] == 0.0f))
		return 1;
	key[0] = (uint64_t) row;
	key[1] = (uint64_t) user_id;
	key[2] = (uint64_t) item_id;
	for (int k = 0; k < spec->n_tasks; k++)
	{
		uint32_t	bits;

		memcpy(&bits, &labels[k], sizeof(bits));
		key[3 + k] = bits;
	}
	h = mtl_hash64(key, sizeof(uint64_t) * (3 + spec->n_tasks), spec->seed ^ 0x53414D504C45ULL);
	return (double) (h >> 11) * (1.0 / 9007199254740992.0) < spec->tasks[t].negative_rate;
}
