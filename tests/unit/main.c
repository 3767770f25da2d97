#include <stdio.h>
#include <string.h>

#include "check.h"

int			check_failures = 0;
int			check_count = 0;

void		test_gradients(void);
void		test_optim_metrics(void);
void		test_format(void);
void		test_training(void);
void		test_predict(void);
void		test_evaluate(void);
void		test_weighting(void);
void		test_update(void);
void		test_embeddings(void);
void		test_sampling(void);
void		test_fpmode(void);
void		test_rows(void);
void		test_round(void);
void		test_explain(void);
void		test_threads(void);

static const struct
{
	const char *name;
	void		(*run) (void);
}			suites[] = {
	{"gradients", test_gradients},
	{"optim_metrics", test_optim_metrics},
	{"format", test_format},
	{"training", test_training},
	{"threads", test_threads},
	{"predict", test_predict},
	{"evaluate", test_evaluate},
	{"weighting", test_weighting},
	{"update", test_update},
	{"embeddings", test_embeddings},
	{"sampling", test_sampling},
	{"fpmode", test_fpmode},
	{"rows", test_rows},
	{"round", test_round},
	{"explain", test_explain},
};

/* run_tests [suite ...]: the named suites (the sanitizer runs pick some), else all */
int
main(int argc, char **argv)
{
	int			n = sizeof(suites) / sizeof(suites[0]);

	for (int i = 0; i < n; i++)
	{
		int			wanted = argc < 2;

		for (int a = 1; a < argc; a++)
			wanted |= strcmp(argv[a], suites[i].name) == 0;
		if (wanted)
			suites[i].run();
	}
	printf("%d checks, %d failed\n", check_count, check_failures);
	return check_failures ? 1 : 0;
}
