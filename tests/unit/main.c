#include <stdio.h>

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

int
main(void)
{
	test_gradients();
	test_optim_metrics();
	test_format();
	test_training();
	test_predict();
	test_evaluate();
	test_weighting();
	test_update();
	test_embeddings();
	test_sampling();
	test_fpmode();
	test_rows();
	test_round();
	test_explain();
	printf("%d checks, %d failed\n", check_count, check_failures);
	return check_failures ? 1 : 0;
}
