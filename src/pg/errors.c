/*
 * The core's errors as PostgreSQL errors: the one table from the codes of
 * src/core/error.h to SQLSTATEs. Callers that know more (the memory a
 * training needs, the scenario key) write their own message with the
 * table's SQLSTATE; the others report the code's words and the detail.
 */
#include "mtl_pg.h"

static const struct
{
	int			sqlstate;
	const char *words;
}			errors[MTL_N_ERROR_CODES] = {
	[MTL_E_MEMORY] = {ERRCODE_PROGRAM_LIMIT_EXCEEDED, "more memory than allowed"},
	[MTL_E_CORRUPT] = {ERRCODE_DATA_CORRUPTED, "invalid bytes"},
	[MTL_E_VERSION] = {ERRCODE_FEATURE_NOT_SUPPORTED, "unsupported format"},
	[MTL_E_SHAPE] = {ERRCODE_INVALID_PARAMETER_VALUE, "invalid model shape"},
	[MTL_E_LIMIT] = {ERRCODE_PROGRAM_LIMIT_EXCEEDED, "beyond a limit of mtl"},
	[MTL_E_NO_SCENARIO] = {ERRCODE_INVALID_PARAMETER_VALUE, "scenario missing from the rows"},
	[MTL_E_MISMATCH] = {ERRCODE_DATA_EXCEPTION, "values that do not belong together"},
	[MTL_E_UNSUPPORTED] = {ERRCODE_FEATURE_NOT_SUPPORTED, "not supported"},
	[MTL_E_OBJECTIVE] = {ERRCODE_INVALID_PARAMETER_VALUE, "invalid objective"},
};

int
MtlErrorSqlState(const MtlError *e)
{
	if (e->code <= 0 || e->code >= MTL_N_ERROR_CODES || errors[e->code].sqlstate == 0)
		return ERRCODE_INTERNAL_ERROR;
	return errors[e->code].sqlstate;
}

/* ERROR "what: detail", or, when what is NULL, the code's own words and the detail */
void
MtlReportError(const MtlError *e, const char *what)
{
	bool		known = e->code > 0 && e->code < MTL_N_ERROR_CODES && errors[e->code].words != NULL;

	ereport(ERROR,
			(errcode(MtlErrorSqlState(e)),
			 errmsg("%s: %s", what != NULL ? what : known ? errors[e->code].words : "internal error",
					e->detail)));
	pg_unreachable();
}
