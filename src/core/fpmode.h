/*
 * Flushing denormal floats to zero while the core computes.
 *
 * Values below about 1e-38 (small gradients, decaying Adam moments, saturated
 * gates) take a slow microcode path on x86, one to two orders of magnitude
 * slower per operation; on an Intel Xeon they made each training epoch slower
 * than the last. Training and scoring set flush-to-zero and
 * denormals-are-zero for the calling thread and restore the caller's mode
 * afterwards, as TensorFlow's ScopedFlushDenormal does. Numbers that small
 * carry no information for a model (they are below float's precision relative
 * to any weight they are added to).
 *
 * The mode is per thread: OpenBLAS's own worker threads (threads > 1) keep
 * theirs.
 */
#ifndef MTL_FPMODE_H
#define MTL_FPMODE_H

typedef struct MtlFpMode
{
	unsigned long long saved;	/* the caller's control register */
} MtlFpMode;

/* Save the thread's floating-point mode into mode and flush denormals. */
void		mtl_fp_flush_begin(MtlFpMode *mode);
/* Restore the mode saved by mtl_fp_flush_begin. */
void		mtl_fp_flush_end(const MtlFpMode *mode);
/* 1 when the calling thread flushes denormals now (0 also where unsupported). */
int			mtl_fp_flushing(void);

#endif
