/*
 * A ranking objective: a product of task outputs, numbers and numeric item
 * features, written like "ctr*cvr*price" (spaces allowed around terms).
 * A term is a task's name, a number, or the name of a numeric item feature
 * (the item's stored value; a missing value counts as the training mean).
 */
#ifndef MTL_OBJECTIVE_H
#define MTL_OBJECTIVE_H

#include "format.h"

#define MTL_OBJECTIVE_TERMS 16

typedef enum MtlTermKind
{
	MTL_TERM_TASK,
	MTL_TERM_NUMBER,
	MTL_TERM_FEATURE
} MtlTermKind;

typedef struct MtlObjective
{
	int			n_terms;
	struct
	{
		MtlTermKind kind;
		int			index;		/* task number, or field number of the feature */
		double		value;		/* the number */
	}			terms[MTL_OBJECTIVE_TERMS];
} MtlObjective;

/*
 * Parse text (NULL or empty: the first task). Returns NULL, or why it failed
 * with the offending term copied into bad (at most bad_len bytes).
 */
const MtlError *mtl_objective_parse(const MtlTrained *trained, const char *text, MtlObjective *obj,
								char *bad, size_t bad_len);

/* The objective's value for item position item_pos with task outputs [n_tasks]. */
double		mtl_objective_value(const MtlTrained *trained, const MtlObjective *obj,
								const double *outputs, int64_t item_pos);

#endif
