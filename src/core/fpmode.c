#include "fpmode.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>

#define FLUSH_BITS 0x8040u		/* MXCSR: flush-to-zero (15), denormals-are-zero (6) */

void
mtl_fp_flush_begin(MtlFpMode *mode)
{
	unsigned int csr = _mm_getcsr();

	mode->saved = csr;
	_mm_setcsr(csr | FLUSH_BITS);
}

void
mtl_fp_flush_end(const MtlFpMode *mode)
{
	_mm_setcsr((unsigned int) mode->saved);
}

int
mtl_fp_flushing(void)
{
	return (_mm_getcsr() & FLUSH_BITS) == FLUSH_BITS;
}

#elif defined(__aarch64__)

#define FLUSH_BITS (1ULL << 24)	/* FPCR.FZ */

static unsigned long long
ReadFpcr(void)
{
	unsigned long long fpcr;

	__asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
	return fpcr;
}

static void
WriteFpcr(unsigned long long fpcr)
{
	__asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr));
}

void
mtl_fp_flush_begin(MtlFpMode *mode)
{
	mode->saved = ReadFpcr();
	WriteFpcr(mode->saved | FLUSH_BITS);
}

void
mtl_fp_flush_end(const MtlFpMode *mode)
{
	WriteFpcr(mode->saved);
}

int
mtl_fp_flushing(void)
{
	return (ReadFpcr() & FLUSH_BITS) != 0;
}

#else

/* Elsewhere denormals keep the platform's handling. */
void
mtl_fp_flush_begin(MtlFpMode *mode)
{
	mode->saved = 0;
}

void
mtl_fp_flush_end(const MtlFpMode *mode)
{
	(void) mode;
}

int
mtl_fp_flushing(void)
{
	return 0;
}

#endif
