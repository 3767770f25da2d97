#include "error.h"

const MtlError *
mtl_error_corrupt(const char *detail)
{
	static _Thread_local MtlError e;

	e.code = MTL_E_CORRUPT;
	e.detail = detail;
	return &e;
}
