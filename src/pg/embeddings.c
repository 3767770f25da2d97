/*
 * mtl_embeddings(model, side): each known user's or item's vector as scoring
 * pools it (src/core/embeddings.c), as rows (id, float4[]) for pgvector.
 */
#include "mtl_pg.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "../core/embeddings.h"

PG_FUNCTION_INFO_V1(mtl_embeddings);

static int
SideArgument(text *side)
{
	char	   *s = text_to_cstring(side);

	if (strcmp(s, "user") == 0)
		return MTL_SIDE_USER;
	if (strcmp(s, "item") == 0)
		return MTL_SIDE_ITEM;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("side must be 'user' or 'item', not \"%s\"", s)));
	return -1;
}

/* mtl_embeddings(model bytea, side text) returns TABLE(id bigint, embedding float4[]). */
Datum
mtl_embeddings(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const MtlTrained *t;
	const MtlIdTable *ids;
	int			side,
				width;
	int32	   *slots;
	float	   *nums,
			   *scratch,
			   *vec;
	Datum	   *elems;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return (Datum) 0;
	side = SideArgument(PG_GETARG_TEXT_PP(1));
	t = MtlCacheModel(MtlModelForCall(fcinfo, 0));
	ids = &t->schema.ids[side];
	width = mtl_embedding_width(&t->model);
	slots = palloc(sizeof(int32) * t->model.layout.n_slots);
	nums = palloc(sizeof(float) * (t->model.layout.n_cols + 1));
	scratch = palloc(sizeof(float) * t->model.layout.E);
	vec = palloc(sizeof(float) * width);
	elems = palloc(sizeof(Datum) * width);
	for (int64 pos = 0; pos < ids->n; pos++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		CHECK_FOR_INTERRUPTS();
		mtl_side_embedding(t, side, pos, slots, nums, scratch, vec);
		for (int i = 0; i < width; i++)
			elems[i] = Float4GetDatum(vec[i]);
		values[0] = Int64GetDatum(ids->ids[pos]);
		values[1] = PointerGetDatum(construct_array(elems, width, FLOAT4OID, sizeof(float4), true,
													TYPALIGN_INT));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
