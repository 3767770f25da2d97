#include "bytes.h"

#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>
#endif

#include "mem.h"

static void
Reserve(MtlWriter *w, size_t n)
{
	if (w->len + n <= w->cap)
		return;
	while (w->len + n > w->cap)
		w->cap = w->cap ? w->cap * 2 : 4096;
	w->data = mtl_realloc(w->data, w->cap);
}

void
mtl_put_bytes(MtlWriter *w, const void *p, size_t n)
{
	Reserve(w, n);
	if (n > 0)
		memcpy(w->data + w->len, p, n);
	w->len += n;
}

void
mtl_put_u8(MtlWriter *w, uint8_t v)
{
	mtl_put_bytes(w, &v, 1);
}

void
mtl_put_u32(MtlWriter *w, uint32_t v)
{
	uint8_t		b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t) (v >> (8 * i));
	mtl_put_bytes(w, b, 4);
}

void
mtl_put_u64(MtlWriter *w, uint64_t v)
{
	uint8_t		b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t) (v >> (8 * i));
	mtl_put_bytes(w, b, 8);
}

void
mtl_put_f32(MtlWriter *w, float v)
{
	uint32_t	bits;

	memcpy(&bits, &v, 4);
	mtl_put_u32(w, bits);
}

void
mtl_put_f64(MtlWriter *w, double v)
{
	uint64_t	bits;

	memcpy(&bits, &v, 8);
	mtl_put_u64(w, bits);
}

void
mtl_put_str(MtlWriter *w, const char *s)
{
	size_t		n = strlen(s);

	mtl_put_u32(w, (uint32_t) n);
	mtl_put_bytes(w, s, n);
}

void
mtl_put_f32_array(MtlWriter *w, const float *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mtl_put_f32(w, v[i]);
}

void
mtl_put_i32_array(MtlWriter *w, const int32_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mtl_put_u32(w, (uint32_t) v[i]);
}

void
mtl_put_u64_array(MtlWriter *w, const uint64_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mtl_put_u64(w, v[i]);
}

void
mtl_reader_fail(MtlReader *r, const char *reason)
{
	if (r->failed == NULL)
		r->failed = reason;
}

int
mtl_reader_has(MtlReader *r, size_t n)
{
	if (r->failed)
		return 0;
	if (n > r->len - r->pos)
	{
		mtl_reader_fail(r, "unexpected end of data");
		return 0;
	}
	return 1;
}

uint8_t
mtl_get_u8(MtlReader *r)
{
	if (!mtl_reader_has(r, 1))
		return 0;
	return r->data[r->pos++];
}

uint32_t
mtl_get_u32(MtlReader *r)
{
	uint32_t	v = 0;

	if (!mtl_reader_has(r, 4))
		return 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t) r->data[r->pos + i] << (8 * i);
	r->pos += 4;
	return v;
}

uint64_t
mtl_get_u64(MtlReader *r)
{
	uint64_t	v = 0;

	if (!mtl_reader_has(r, 8))
		return 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t) r->data[r->pos + i] << (8 * i);
	r->pos += 8;
	return v;
}

float
mtl_get_f32(MtlReader *r)
{
	uint32_t	bits = mtl_get_u32(r);
	float		v;

	memcpy(&v, &bits, 4);
	return v;
}

double
mtl_get_f64(MtlReader *r)
{
	uint64_t	bits = mtl_get_u64(r);
	double		v;

	memcpy(&v, &bits, 8);
	return v;
}

char *
mtl_get_str(MtlReader *r, size_t max_len)
{
	uint32_t	n = mtl_get_u32(r);
	char	   *s;

	if (r->failed)
		return NULL;
	if (n > max_len)
	{
		mtl_reader_fail(r, "string too long");
		return NULL;
	}
	if (!mtl_reader_has(r, n))
		return NULL;
	if (memchr(r->data + r->pos, '\0', n) != NULL)
	{
		mtl_reader_fail(r, "string contains a NUL byte");
		return NULL;
	}
	s = mtl_alloc(n + 1);
	memcpy(s, r->data + r->pos, n);
	r->pos += n;
	return s;
}

/* Check n elements of the given size fit in what remains, without overflow. */
static int
HasArray(MtlReader *r, size_t n, size_t size)
{
	if (r->failed)
		return 0;
	if (n > (r->len - r->pos) / size)
	{
		mtl_reader_fail(r, "array longer than the data");
		return 0;
	}
	return 1;
}

/* n little-endian values of size bytes each (checked by HasArray) into v. */
static void
ReadArray(MtlReader *r, void *v, size_t n, size_t size)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(v, r->data + r->pos, n * size);
	r->pos += n * size;
#else
	for (size_t i = 0; i < n; i++)
	{
		if (size == 4)
			((uint32_t *) v)[i] = mtl_get_u32(r);
		else
			((uint64_t *) v)[i] = mtl_get_u64(r);
	}
#endif
}

float *
mtl_get_f32_array(MtlReader *r, size_t n)
{
	float	   *v;

	if (!HasArray(r, n, 4))
		return NULL;
	v = mtl_alloc(sizeof(float) * (n ? n : 1));
	ReadArray(r, v, n, 4);
	return v;
}

int32_t *
mtl_get_i32_array(MtlReader *r, size_t n)
{
	int32_t    *v;

	if (!HasArray(r, n, 4))
		return NULL;
	v = mtl_alloc(sizeof(int32_t) * (n ? n : 1));
	ReadArray(r, v, n, 4);
	return v;
}

uint64_t *
mtl_get_u64_array(MtlReader *r, size_t n)
{
	uint64_t   *v;

	if (!HasArray(r, n, 8))
		return NULL;
	v = mtl_alloc(sizeof(uint64_t) * (n ? n : 1));
	ReadArray(r, v, n, 8);
	return v;
}

/* CRC-32C (Castagnoli), reflected, bitwise table built on first use. */
static uint32_t
Crc32cTable(uint32_t crc, const uint8_t *p, size_t len)
{
	static uint32_t table[256];
	static int	ready = 0;

	if (!ready)
	{
		for (uint32_t i = 0; i < 256; i++)
		{
			uint32_t	c = i;

			for (int k = 0; k < 8; k++)
				c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
			table[i] = c;
		}
		ready = 1;
	}
	for (size_t i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__) && defined(__GNUC__)

/* The SSE 4.2 instruction: decoding a model checks every byte, so this is most of a cold call's cost. */
__attribute__((target("sse4.2")))
static uint32_t
Crc32cSse42(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t	c = crc;

	for (; len >= 8; p += 8, len -= 8)
	{
		uint64_t	word;

		memcpy(&word, p, 8);
		c = _mm_crc32_u64(c, word);
	}
	crc = (uint32_t) c;
	for (; len > 0; p++, len--)
		crc = _mm_crc32_u8(crc, *p);
	return crc;
}
#endif

uint32_t
mtl_crc32c(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__) && defined(__GNUC__)
	static int	sse42 = -1;

	if (sse42 < 0)
		sse42 = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	if (sse42)
		return ~Crc32cSse42(~crc, data, len);
#endif
	return ~Crc32cTable(~crc, data, len);
}
