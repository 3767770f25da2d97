/*
 * mtl_compress(model, method): the same model with its parameters stored in
 * half precision, or its embedding rows in int8 (src/core/format.c); every
 * function that takes model bytes reads it.
 */
#include "mtl_pg.h"

#include "utils/builtins.h"
#include "utils/memutils.h"

#include "../core/format.h"

PG_FUNCTION_INFO_V1(mtl_compress);

static MtlCompression
MethodArgument(text *method)
{
	char	   *s = text_to_cstring(method);

	for (int c = 0; c <= MTL_COMPRESS_LAST; c++)
		if (strcmp(s, mtl_compression_name((MtlCompression) c)) == 0)
			return (MtlCompression) c;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("compression must be 'fp16', 'int8' or 'none', not \"%s\"", s)));
	return MTL_COMPRESS_NONE;
}

/* mtl_compress(model bytea, method text) returns bytea; NULL in, NULL out. */
Datum
mtl_compress(PG_FUNCTION_ARGS)
{
	bytea	   *model = PG_GETARG_BYTEA_PP(0);
	MtlCompression method = MethodArgument(PG_GETARG_TEXT_PP(1));
	MtlTrained	m;
	uint8	   *bytes;
	size_t		len;

	MtlDecodeOrError((const uint8 *) VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model), &m);
	m.compression = method;
	len = mtl_encode(&m, &bytes);
	PG_RETURN_BYTEA_P(MtlToBytea(bytes, len, "compressed model", NULL));
}
