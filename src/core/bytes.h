/*
 * Little-endian byte writer and bounds-checked reader.
 *
 * The reader never reads past its end: a short or lying input sets `failed`
 * with a reason, every later read returns zeros, and the caller checks once.
 */
#ifndef MTL_BYTES_H
#define MTL_BYTES_H

#include <stddef.h>
#include <stdint.h>

typedef struct MtlWriter
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
} MtlWriter;

void		mtl_put_bytes(MtlWriter *w, const void *p, size_t n);
void		mtl_put_u8(MtlWriter *w, uint8_t v);
void		mtl_put_u32(MtlWriter *w, uint32_t v);
void		mtl_put_u64(MtlWriter *w, uint64_t v);
void		mtl_put_f32(MtlWriter *w, float v);
void		mtl_put_f64(MtlWriter *w, double v);
void		mtl_put_str(MtlWriter *w, const char *s);
void		mtl_put_f32_array(MtlWriter *w, const float *v, size_t n);
void		mtl_put_i32_array(MtlWriter *w, const int32_t *v, size_t n);
void		mtl_put_u64_array(MtlWriter *w, const uint64_t *v, size_t n);

typedef struct MtlReader
{
	const uint8_t *data;
	size_t		len;
	size_t		pos;
	const char *failed;			/* NULL while all reads succeeded */
} MtlReader;

void		mtl_reader_fail(MtlReader *r, const char *reason);
int			mtl_reader_has(MtlReader *r, size_t n);	/* fails if fewer remain */
uint8_t		mtl_get_u8(MtlReader *r);
uint32_t	mtl_get_u32(MtlReader *r);
uint64_t	mtl_get_u64(MtlReader *r);
float		mtl_get_f32(MtlReader *r);
double		mtl_get_f64(MtlReader *r);
/* a string of at most max_len bytes, copied and NUL-terminated; NULL on failure */
char	   *mtl_get_str(MtlReader *r, size_t max_len);
/* arrays of n elements, allocated; NULL on failure (n checked against what remains) */
float	   *mtl_get_f32_array(MtlReader *r, size_t n);
int32_t    *mtl_get_i32_array(MtlReader *r, size_t n);
uint64_t   *mtl_get_u64_array(MtlReader *r, size_t n);

uint32_t	mtl_crc32c(uint32_t crc, const void *data, size_t len);

#endif
