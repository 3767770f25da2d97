/* Negative down-sampling: the share kept, and the correction of the scores. */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "synthetic.h"
#include "../../src/core/loss.h"
#include "../../src/core/sampling.h"

void
test_sampling(void)
{
	MtlSpec		spec;
	int64_t		kept = 0,
				negatives = 0,
				positives_kept = 0,
				same = 0;
	float		labels[2];

	synthetic_spec(&spec, MTL_MODEL_MMOE);
	CHECK(mtl_sampled_task(&spec) == -1, "no task down-sampled by default");
	spec.tasks[0].negative_rate = 0.2f;
	CHECK(mtl_sampled_task(&spec) == 0, "the task with a rate is the sampled one");
	for (int64_t r = 0; r < 200000; r++)
	{
		labels[0] = r % 4 == 0 ? 1.0f : 0.0f;
		labels[1] = NAN;
		if (labels[0] == 1.0f)
			positives_kept += mtl_sampling_keeps(&spec, r, r % 1000, r % 77, labels);
		else
		{
			int			keep = mtl_sampling_keeps(&spec, r, r % 1000, r % 77, labels);

			negatives++;
			kept += keep;
			same += keep == mtl_sampling_keeps(&spec, r, r % 1000, r % 77, labels);
		}
	}
	printf("  negative sampling at 0.2: %.4f of %lld negatives kept\n", (double) kept / negatives,
		   (long long) negatives);
	CHECK(fabs((double) kept / negatives - 0.2) < 0.005, "about 0.2 of negatives kept: %g",
		  (double) kept / negatives);
	CHECK(positives_kept == 50000, "every positive kept: %lld", (long long) positives_kept);
	CHECK(same == negatives, "the same row, the same answer");
	labels[0] = NAN;
	CHECK(mtl_sampling_keeps(&spec, 1, 1, 1, labels), "a row without the task's label is kept");

	/* p' = p / (p + (1 - p) / rate) */
	for (float logit = -4.0f; logit <= 4.0f; logit += 0.5f)
	{
		double		p = mtl_sigmoid(logit),
					expect = p / (p + (1 - p) / 0.2),
					got = mtl_task_output(&spec.tasks[0], logit);

		CHECK(fabs(got - expect) < 1e-6, "corrected score at logit %g: %g vs %g", logit, got, expect);
	}
	spec.tasks[0].negative_rate = 1.0f;
	CHECK(fabs(mtl_task_output(&spec.tasks[0], 0.3f) - mtl_sigmoid(0.3f)) < 1e-12, "rate 1: no correction");
}
