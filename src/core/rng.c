#include "rng.h"

#include <math.h>

static uint64_t
SplitMix64(uint64_t *x)
{
	uint64_t	z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t
Rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void
mtl_rng_seed(MtlRng *rng, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		rng->s[i] = SplitMix64(&seed);
}

uint64_t
mtl_rng_next(MtlRng *rng)
{
	uint64_t   *s = rng->s;
	uint64_t	result = Rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = Rotl(s[3], 45);
	return result;
}

double
mtl_rng_uniform(MtlRng *rng)
{
	return (mtl_rng_next(rng) >> 11) * 0x1.0p-53;
}

/* Box-Muller; one value per call keeps the stream simple to reproduce. */
float
mtl_rng_normal(MtlRng *rng)
{
	double		u1 = mtl_rng_uniform(rng);
	double		u2 = mtl_rng_uniform(rng);

	if (u1 < 1e-300)
		u1 = 1e-300;
	return (float) (sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

uint64_t
mtl_rng_below(MtlRng *rng, uint64_t n)
{
	/* Lemire's multiply-shift; the tiny bias is irrelevant for shuffling. */
	return (uint64_t) (((__uint128_t) mtl_rng_next(rng) * n) >> 64);
}

void
mtl_rng_shuffle(MtlRng *rng, int64_t *values, int64_t n)
{
	for (int64_t i = n - 1; i > 0; i--)
	{
		int64_t		j = (int64_t) mtl_rng_below(rng, (uint64_t) i + 1);
		int64_t		tmp = values[i];

		values[i] = values[j];
		values[j] = tmp;
	}
}

/* FNV-1a over the bytes, then a splitmix finaliser so short keys spread well. */
uint64_t
mtl_hash64(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t	h = 0xcbf29ce484222325ULL ^ seed;

	for (size_t i = 0; i < len; i++)
	{
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return SplitMix64(&h);
}
