/* A small synthetic shop for core tests: latent preferences plus features. */
#ifndef MTL_TEST_SYNTHETIC_H
#define MTL_TEST_SYNTHETIC_H

#include "../../src/core/format.h"
#include "../../src/core/model.h"
#include "../../src/core/rows.h"

/* Rows with tasks (ctr binary, rating regression); true click probabilities in *truth. */
MtlRowStore *synthetic_rows(int n_rows, uint64_t seed, double **truth);
/* The same with a context field "scenario" that changes the click rate. */
MtlRowStore *synthetic_rows_scenario(int n_rows, uint64_t seed, double **truth);
/* items carry a list of tags that the clicks depend on (optionally scenarios too) */
MtlRowStore *synthetic_rows_tags(int n_rows, uint64_t seed, double **truth, int with_scenario);
/* the same clicks (tags matter) without the tags field */
MtlRowStore *synthetic_rows_untagged(int n_rows, uint64_t seed, double **truth);
/* users have a history (a sequence field "recent" of item ids) */
extern int	synthetic_history;
/* items are drawn from [lo, hi) (0 and 100 by default) */
extern int	synthetic_item_lo,
			synthetic_item_hi;
void		synthetic_spec(MtlSpec *spec, MtlModelType type);
/* ctr AUC of m on 4,000 fresh rows, and the true probabilities' (test_training.c) */
double		HeldOutAuc(const MtlTrained *m, double *oracle_auc);

#endif
