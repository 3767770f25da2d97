/*
 * OpenBLAS sgemm GFLOP/s on this machine, to read the other figures against:
 * square products, and the shape of mtl's fused first layer in training
 * (batch 512 x input 73 x projection 272, the demo shop's MMoE).
 * Threads come from OPENBLAS_NUM_THREADS.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double
Now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
Measure(const char *label, int M, int N, int K)
{
	float	   *A = malloc(sizeof(float) * M * K);
	float	   *B = malloc(sizeof(float) * K * N);
	float	   *C = calloc((size_t) M * N, sizeof(float));
	double		flops = 2.0 * M * N * K,
				start,
				elapsed;
	int			reps = 0;

	for (int i = 0; i < M * K; i++)
		A[i] = (float) (i % 7) * 0.1f;
	for (int i = 0; i < K * N; i++)
		B[i] = (float) (i % 5) * 0.1f;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
	start = Now();
	do
	{
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N,
					0.0f, C, N);
		reps++;
		elapsed = Now() - start;
	} while (elapsed < 0.5);
	printf("%-28s %5d x %5d x %5d  %7.1f GFLOP/s\n", label, M, N, K, flops * reps / elapsed / 1e9);
	free(A);
	free(B);
	free(C);
}

int
main(void)
{
	printf("OpenBLAS threads: %d (%s)\n", openblas_get_num_threads(), openblas_get_config());
	Measure("square", 1024, 1024, 1024);
	Measure("training first layer", 512, 272, 73);
	Measure("training tower", 512, 32, 64);
	return 0;
}
