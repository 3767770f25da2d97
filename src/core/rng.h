/* Seeded random numbers: xoshiro256** seeded through splitmix64. */
#ifndef MTL_RNG_H
#define MTL_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct MtlRng
{
	uint64_t	s[4];
} MtlRng;

void		mtl_rng_seed(MtlRng *rng, uint64_t seed);
uint64_t	mtl_rng_next(MtlRng *rng);
double		mtl_rng_uniform(MtlRng *rng);	/* [0, 1) */
float		mtl_rng_normal(MtlRng *rng);
uint64_t	mtl_rng_below(MtlRng *rng, uint64_t n);	/* [0, n) */
void		mtl_rng_shuffle(MtlRng *rng, int64_t *values, int64_t n);
uint64_t	mtl_hash64(const void *data, size_t len, uint64_t seed);

#endif
