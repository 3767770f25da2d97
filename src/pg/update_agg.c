/*
 * The mtl_update aggregate: the rows of mtl_train plus the model to continue
 * (see core/update.h). The model and config of the first row are used.
 * Serial only: a partial state would need the model in every worker.
 */
#include "mtl_pg.h"

#include "fmgr.h"
#include "utils/memutils.h"

#include "../core/update.h"

typedef struct UpdateState
{
	TrainState	base;			/* first: MtlTrainAddRow takes it */
	MtlTrained	old;
	bool		freeze_shared;
} UpdateState;

PG_FUNCTION_INFO_V1(mtl_update_step);
PG_FUNCTION_INFO_V1(mtl_update_final);

static UpdateState *
CreateState(FunctionCallInfo fcinfo, MemoryContext context, int config_arg)
{
	MemoryContext old = MemoryContextSwitchTo(context);
	UpdateState *state = palloc0(sizeof(UpdateState));
	bytea	   *model;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("mtl_update needs the model to continue, not NULL")));
	if (PG_ARGISNULL(config_arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("config must not be NULL"),
				 errhint("Pass '{}' to continue with the model's own settings.")));
	model = PG_GETARG_BYTEA_PP(1);
	MtlDecodeOrError((const uint8 *) VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model), &state->old);
	MtlParseUpdateConfig(PG_GETARG_JSONB_P(config_arg), &state->old.model.spec, &state->base.spec,
						 &state->freeze_shared);
	state->base.rows = MtlTrainRowStore(&state->base.spec, context);
	MemoryContextSwitchTo(old);
	return state;
}

/*
 * mtl_update_step(state, model, user_id, item_id, labels [, user_features,
 * item_features [, context]], config)
 */
Datum
mtl_update_step(PG_FUNCTION_ARGS)
{
	MemoryContext context;
	UpdateState *state = PG_ARGISNULL(0) ? NULL : (UpdateState *) PG_GETARG_POINTER(0);
	int			config_arg = PG_NARGS() - 1;
	Datum		values[6];
	bool		nulls[6];

	if (!AggCheckCallContext(fcinfo, &context))
		elog(ERROR, "mtl_update_step called in non-aggregate context");
	if (state == NULL)
		state = CreateState(fcinfo, context, config_arg);
	for (int i = 0; i < config_arg - 2; i++)
	{
		nulls[i] = PG_ARGISNULL(i + 2);
		values[i] = nulls[i] ? (Datum) 0 : PG_GETARG_DATUM(i + 2);
	}
	MtlTrainAddRow(&state->base, values, nulls, config_arg - 2, context);
	PG_RETURN_POINTER(state);
}

Datum
mtl_update_final(PG_FUNCTION_ARGS)
{
	UpdateState *state;
	int			call_context = AggCheckCallContext(fcinfo, NULL);
	bytea	   *model;

	if (!call_context)
		elog(ERROR, "mtl_update_final called in non-aggregate context");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (UpdateState *) PG_GETARG_POINTER(0);
	if (state->base.rows->n_rows == 0)
		PG_RETURN_NULL();
	model = MtlTrainFinish(&state->base, &state->old, state->freeze_shared);
	/* a plain aggregate is done with its rows; a window one may take more */
	if (call_context == AGG_CONTEXT_AGGREGATE)
		MtlRowsSpillClose(state->base.rows);
	PG_RETURN_BYTEA_P(model);
}
