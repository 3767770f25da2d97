#include "objective.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void
CopyTerm(char *bad, size_t bad_len, const char *from, size_t len)
{
	if (bad_len == 0)
		return;
	len = len < bad_len - 1 ? len : bad_len - 1;
	memcpy(bad, from, len);
	bad[len] = '\0';
}

/* Resolve one term [from, from + len): a task, a number or a numeric item feature. */
static const MtlError *
ParseTerm(const MtlTrained *t, const char *from, size_t len, MtlObjective *obj)
{
	char		text[MTL_MAX_FIELD_NAME + 1];
	char	   *end;
	int			field;

	if (len == 0)
		MTL_FAIL(MTL_E_OBJECTIVE, "empty term");
	if (len > MTL_MAX_FIELD_NAME)
		MTL_FAIL(MTL_E_OBJECTIVE, "term too long");
	memcpy(text, from, len);
	text[len] = '\0';
	for (int k = 0; k < t->model.spec.n_tasks; k++)
		if (strcmp(t->model.spec.tasks[k].name, text) == 0)
		{
			obj->terms[obj->n_terms].kind = MTL_TERM_TASK;
			obj->terms[obj->n_terms++].index = k;
			return NULL;
		}
	obj->terms[obj->n_terms].value = strtod(text, &end);
	if (end == text + len && isfinite(obj->terms[obj->n_terms].value))
	{
		obj->terms[obj->n_terms++].kind = MTL_TERM_NUMBER;
		return NULL;
	}
	field = mtl_schema_find_field(&t->schema, MTL_SIDE_ITEM, MTL_KIND_NUM, text, len);
	if (field < 0)
		MTL_FAIL(MTL_E_OBJECTIVE, "not a task, a number or a numeric item feature");
	obj->terms[obj->n_terms].kind = MTL_TERM_FEATURE;
	obj->terms[obj->n_terms++].index = field;
	return NULL;
}

const MtlError *
mtl_objective_parse(const MtlTrained *trained, const char *text, MtlObjective *obj,
					char *bad, size_t bad_len)
{
	const char *at = text;

	memset(obj, 0, sizeof(*obj));
	CopyTerm(bad, bad_len, "", 0);
	if (text == NULL || text[strspn(text, " \t")] == '\0')
	{
		obj->n_terms = 1;
		obj->terms[0].kind = MTL_TERM_TASK;
		obj->terms[0].index = 0;
		return NULL;
	}
	for (;;)
	{
		const char *end = strchr(at, '*');
		const char *stop = end != NULL ? end : at + strlen(at);
		const MtlError *why;

		while (at < stop && isspace((unsigned char) *at))
			at++;
		while (stop > at && isspace((unsigned char) stop[-1]))
			stop--;
		if (obj->n_terms == MTL_OBJECTIVE_TERMS)
			MTL_FAIL(MTL_E_OBJECTIVE, "too many terms (at most 16)");
		why = ParseTerm(trained, at, (size_t) (stop - at), obj);
		if (why != NULL)
		{
			CopyTerm(bad, bad_len, at, (size_t) (stop - at));
			return why;
		}
		if (end == NULL)
			return NULL;
		at = end + 1;
	}
}

double
mtl_objective_value(const MtlTrained *trained, const MtlObjective *obj, const double *outputs,
					int64_t item_pos)
{
	const MtlIdTable *items = &trained->schema.ids[MTL_SIDE_ITEM];
	double		v = 1.0;

	for (int k = 0; k < obj->n_terms; k++)
		switch (obj->terms[k].kind)
		{
			case MTL_TERM_TASK:
				v *= outputs[obj->terms[k].index];
				break;
			case MTL_TERM_NUMBER:
				v *= obj->terms[k].value;
				break;
			case MTL_TERM_FEATURE:
				{
					const MtlFeature *f = &trained->schema.fields[obj->terms[k].index];
					float		z = items->num[item_pos * items->n_num_cols + f->side_col];

					v *= mtl_schema_unstandardise(f, z);
				}
				break;
		}
	return v;
}
