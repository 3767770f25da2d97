/*
 * The model file: what mtl_train returns and mtl_predict reads.
 *
 *   header   "MTLM", u32 format version, u64 content hash, u64 total length
 *   body     tasks and architecture, feature fields with vocabularies and
 *            statistics, id tables with their stored features, training
 *            summary, parameters
 *   trailer  u32 CRC-32C of everything before it
 *
 * All integers and floats are little-endian. Decoding checks the length, the
 * checksum and every count and index against the sizes it implies, so bytes
 * from anywhere give an error, never a read out of bounds.
 */
#ifndef MTL_FORMAT_H
#define MTL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "schema.h"
#include "train.h"

/*
 * Format versions: 1 (mtl 0.1); 2 adds the seconds of each training phase;
 * 3 the interaction and embedding_l2 (earlier: "ids" and l2); 4 lists, texts, sequences,
 * the tasks' negative rates and the parameters' compression; 5 log_skewed and each numeric
 * field's transform (earlier: none). The decoder reads every version
 * from MTL_FORMAT_OLDEST on.
 */
#define MTL_FORMAT_VERSION 5
#define MTL_FORMAT_OLDEST 1
#define MTL_HEADER_SIZE 24
#define MTL_TRAILER_SIZE 4

/* How a model's parameters are stored (mtl_compress); scoring reads them as floats. */
typedef enum MtlCompression
{
	MTL_COMPRESS_NONE = 0,		/* float32 */
	MTL_COMPRESS_FP16 = 1,		/* every parameter in IEEE half precision */
	MTL_COMPRESS_INT8 = 2		/* embedding rows in int8 with a scale per row; dense layers fp16 */
} MtlCompression;
#define MTL_COMPRESS_LAST MTL_COMPRESS_INT8

typedef struct MtlTrained
{
	MtlModel	model;
	MtlSchema	schema;
	MtlTrainSummary summary;
	MtlCompression compression; /* how mtl_encode stores the parameters */
} MtlTrained;

const char *mtl_compression_name(MtlCompression c);

/* Encode into a newly allocated buffer; returns its length. */
size_t		mtl_encode(const MtlTrained *trained, uint8_t **out);

/*
 * Decode into *trained; NULL on success, else the reason it failed (and
 * *trained holds nothing to free beyond what the allocator reclaims).
 * check_crc = 0 only for fuzzing the parser behind the checksum.
 */
const MtlError *mtl_decode(const uint8_t *data, size_t len, MtlTrained *trained, int check_crc);

void		mtl_trained_free(MtlTrained *trained);

/* Identity of an encoded model for caches: length, content hash and CRC. */
typedef struct MtlModelKey
{
	uint64_t	len;
	uint64_t	content_hash;
	uint32_t	crc;
} MtlModelKey;

/* Read the key of encoded bytes; 0 if they are too short to have one. */
int			mtl_model_key(const uint8_t *data, size_t len, MtlModelKey *key);

#endif
