/* A small synthetic shop for core tests: latent preferences plus features. */
#ifndef MTL_TEST_SYNTHETIC_H
#define MTL_TEST_SYNTHETIC_H

#include "../../src/core/model.h"
#include "../../src/core/rows.h"

/* Rows with tasks (ctr binary, rating regression); true click probabilities in *truth. */
MtlRowStore *synthetic_rows(int n_rows, uint64_t seed, double **truth);
/* The same with a context field "scenario" that changes the click rate. */
MtlRowStore *synthetic_rows_scenario(int n_rows, uint64_t seed, double **truth);
void		synthetic_spec(MtlSpec *spec, MtlModelType type);

#endif
