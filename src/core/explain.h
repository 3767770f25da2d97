/*
 * Why a model scored a row: each input's contribution to each task's logit,
 * by integrated gradients (Sundararajan, Taly and Yan, "Axiomatic
 * Attribution for Deep Networks", ICML 2017) against the anonymous row (no
 * ids, no features, no context).
 *
 * The inputs are the model's input segments: the user's and the item's id
 * embeddings, each categorical or bag field's embedding (a bag's weighted
 * sum, a history's pooled vector, attention included) and each numeric
 * value. The path runs straight from the anonymous row's segments to the
 * row's; the cross slot is not an input of its own but the function of the
 * segments it is (model.h), so the affinity it carries is shared among the
 * segments it multiplies. The integral is a midpoint sum over `steps`
 * points.
 *
 * A scenario also picks its STAR tower weights, which no straight path can
 * interpolate: the path runs with the row's scenario tower, and the scenario
 * field is given, besides its embedding's share, the jump from the shared
 * tower to the row's scenario tower at the anonymous row. So each task's
 * attributions sum to its logit minus the anonymous row's logit, up to the
 * midpoint sum's error, which explain reports; steps double (from
 * MTL_EXPLAIN_STEPS to MTL_EXPLAIN_MAX_STEPS) until it is within
 * mtl_explain_tolerance.
 */
#ifndef MTL_EXPLAIN_H
#define MTL_EXPLAIN_H

#include "format.h"

#define MTL_EXPLAIN_STEPS 32
#define MTL_EXPLAIN_MAX_STEPS 1024
#define MTL_EXPLAIN_BATCH 64	/* path points per forward and backward pass */

typedef struct MtlExplainer
{
	const MtlTrained *trained;
	MtlWork    *work;
	int			n_inputs;		/* 2 (user id, item id) + the schema's fields */
	int		   *col_input;		/* [Xw] input of each column of X, -1: the cross slot */
	int32_t    *slots;			/* [2 x n_slots] the row, the anonymous row */
	float	   *nums;			/* [2 x n_cols] */
	float	   *xa,
			   *xb;				/* [Xw] the row's and the anonymous row's input */
	float	   *grad;			/* [n_tasks x Xw] the gradients' sum along the path */
	float	   *dlogit;			/* [MTL_EXPLAIN_BATCH] */
	float	   *zero;			/* [MTL_EXPLAIN_BATCH] */
	float	   *pools;			/* [8 E] */
} MtlExplainer;

typedef struct MtlExplanation
{
	int			steps;			/* path points of the midpoint sum */
	int			scenario_input; /* input given the tower jump, -1: none */
	double		logit[MTL_MAX_TASKS];
	double		baseline_logit[MTL_MAX_TASKS];
	double		error[MTL_MAX_TASKS];	/* |sum of attributions - (logit - baseline)| */
	double	   *attribution;	/* [n_tasks x n_inputs], owned by the caller */
	/* each task's gate over its experts at each level, for the row */
	int			n_levels;
	int			gate_n[MTL_MAX_LEVELS][MTL_MAX_TASKS];
	float		gate[MTL_MAX_LEVELS][MTL_MAX_TASKS][MTL_MAX_EXPERTS];
} MtlExplanation;

MtlExplainer *mtl_explainer_create(const MtlTrained *trained);
void		mtl_explainer_free(MtlExplainer *e);

/* The tolerance of the attributions' sum for a logit difference delta. */
double		mtl_explain_tolerance(double delta);

/*
 * Explain the row of slots and nums (a row as the predictor builds it) into
 * out; out->attribution must hold n_tasks x n_inputs doubles.
 */
void		mtl_explain_row(MtlExplainer *e, const int32_t *slots, const float *nums,
							MtlExplanation *out);

/*
 * Name of input i ("user_id", "item_id", or the field's side and name,
 * "user.age"), written into buf of size len.
 */
void		mtl_explain_input_name(const MtlTrained *trained, int i, char *buf, size_t len);

#endif
