/*
 * The core's errors: a code, which the PostgreSQL layer maps to an SQLSTATE
 * and a message in one table (src/pg/errors.c), and a detail in English.
 * A function that can fail returns a pointer to its error, NULL on success.
 */
#ifndef MTL_ERROR_H
#define MTL_ERROR_H

typedef enum MtlErrorCode
{
	MTL_E_MEMORY = 1,			/* needs more memory than the limit it was given */
	MTL_E_CORRUPT,				/* bytes that fail a check: damaged, truncated or foreign */
	MTL_E_VERSION,				/* a format version this build does not read */
	MTL_E_SHAPE,				/* sizes out of range: layers, experts, tasks, widths */
	MTL_E_LIMIT,				/* more fields, rows or parameters than a model holds */
	MTL_E_NO_SCENARIO,			/* the scenario key is a string in no row's context */
	MTL_E_MISMATCH,				/* states or models that cannot be combined */
	MTL_E_UNSUPPORTED,			/* an operation the model's type cannot do */
	MTL_E_OBJECTIVE,			/* a ranking objective that does not parse */
	MTL_N_ERROR_CODES
} MtlErrorCode;

typedef struct MtlError
{
	MtlErrorCode code;
	const char *detail;			/* static text */
} MtlError;

/* return an error of a fixed code and detail from the current function */
#define MTL_FAIL(code_, detail_) \
	do { \
		static const MtlError mtl_fail_ = {(code_), (detail_)}; \
		return &mtl_fail_; \
	} while (0)

/* A MTL_E_CORRUPT error with detail (static text), kept per thread until the next one. */
const MtlError *mtl_error_corrupt(const char *detail);

#endif
