/*
 * mtl_fit(name, query, config): train on the rows of a query and store the
 * model as a new version in the registry.
 *
 * The query runs through SPI exactly as written, as the calling user (the
 * function is not SECURITY DEFINER), so privileges and row-level security
 * apply to it as to any query of that user. Its columns follow the mtl_train
 * aggregate's arguments: user_id, item_id, labels [, user_features,
 * item_features [, context]]. Storing goes through mtl_registry_add, again as
 * the caller.
 */
#include "mtl_pg.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(mtl_fit_query);
PG_FUNCTION_INFO_V1(mtl_query_columns);

#define FETCH_ROWS 10000

static const char *const column_names[] = {
	"user_id", "item_id", "labels", "user_features", "item_features", "context"
};

static bool
IsIdType(Oid type)
{
	return type == INT8OID || type == INT4OID || type == INT2OID;
}

/* The query's columns must be those of mtl_train: 3, 5 or 6 of the right types. */
static void
CheckColumns(TupleDesc desc)
{
	int			n = desc->natts;

	if (n != 3 && n != 5 && n != 6)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("mtl_fit query returns %d columns, expected 3, 5 or 6", n),
				 errdetail("The columns are those of mtl_train: user_id, item_id, labels "
						   "[, user_features, item_features [, context]].")));
	for (int i = 0; i < n; i++)
	{
		Oid			type = TupleDescAttr(desc, i)->atttypid;
		bool		ok = i < 2 ? IsIdType(type) : i == 2 ? type == FLOAT8ARRAYOID : type == JSONBOID;

		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("mtl_fit query column %d (%s) has type %s, expected %s",
							i + 1, column_names[i], format_type_be(type),
							i < 2 ? "bigint" : i == 2 ? "float8[]" : "jsonb"),
					 errhint("Cast it in the query, e.g. %s.",
							 i < 2 ? "user_id::bigint" : i == 2 ? "ARRAY[clicked, bought]::float8[]"
							 : "to_jsonb(...)")));
	}
}

static Datum
IdDatum(Datum value, Oid type)
{
	if (type == INT4OID)
		return Int64GetDatum((int64) DatumGetInt32(value));
	if (type == INT2OID)
		return Int64GetDatum((int64) DatumGetInt16(value));
	return value;
}

/* Under SPI: a cursor on the query, whose columns are checked. */
static Portal
OpenQuery(const char *query)
{
	SPIPlanPtr	plan = SPI_prepare(query, 0, NULL);
	Portal		portal;

	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("cannot prepare the mtl_fit query: %s", SPI_result_code_string(SPI_result))));
	if (!SPI_is_cursor_plan(plan))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("mtl_fit query must be one statement that returns rows, such as a SELECT")));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	CheckColumns(portal->tupDesc);
	return portal;
}

/* Collect every row of the query into state; returns the number of rows. */
static int64
CollectRows(const char *query, TrainState *state, MemoryContext rows_context)
{
	Portal		portal = OpenQuery(query);
	int64		total = 0;

	for (;;)
	{
		SPI_cursor_fetch(portal, true, FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			Datum		values[6];
			bool		nulls[6];

			for (int c = 0; c < desc->natts; c++)
			{
				values[c] = SPI_getbinval(tuple, desc, c + 1, &nulls[c]);
				if (c < 2 && !nulls[c])
					values[c] = IdDatum(values[c], TupleDescAttr(desc, c)->atttypid);
			}
			MtlTrainAddRow(state, values, nulls, desc->natts, rows_context);
		}
		total += SPI_processed;
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	return total;
}

/* Store the model through mtl_registry_add (as the caller) and return its version. */
static int32
StoreVersion(Oid nsp, text *name, bytea *model, Jsonb *config, text *query, double seconds)
{
	char		sql[256];
	Oid			types[5] = {TEXTOID, BYTEAOID, JSONBOID, TEXTOID, FLOAT8OID};
	Datum		args[5] = {PointerGetDatum(name), PointerGetDatum(model),
		JsonbPGetDatum(config), PointerGetDatum(query), Float8GetDatum(seconds)};
	bool		isnull;
	int			rc;

	snprintf(sql, sizeof(sql), "SELECT %s.mtl_registry_add($1, $2, $3, $4, $5)",
			 quote_identifier(get_namespace_name(nsp)));
	rc = SPI_execute_with_args(sql, 5, types, args, NULL, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "storing the model failed: %s", SPI_result_code_string(rc));
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

Datum
mtl_fit_query(PG_FUNCTION_ARGS)
{
	text	   *name;
	char	   *query;
	Jsonb	   *config;
	MemoryContext rows_context;
	TrainState *state;
	bytea	   *model;
	int32		version;
	TimestampTz start;
	double		seconds;

	for (int i = 0; i < 3; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be NULL", i == 0 ? "name" : i == 1 ? "query" : "config")));
	name = PG_GETARG_TEXT_PP(0);
	if (VARSIZE_ANY_EXHDR(name) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model name must not be empty")));
	query = text_to_cstring(PG_GETARG_TEXT_PP(1));
	config = PG_GETARG_JSONB_P(2);

	/* rows and the model outlive SPI's memory */
	rows_context = AllocSetContextCreate(CurrentMemoryContext, "mtl_fit rows", ALLOCSET_DEFAULT_SIZES);
	state = MtlTrainCreate(rows_context, config, false);
	SPI_connect();
	if (CollectRows(query, state, rows_context) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("mtl_fit query returned no rows")));
	{
		MemoryContext spi = MemoryContextSwitchTo(rows_context);

		start = GetCurrentTimestamp();
		model = MtlTrainFinish(state, NULL, false);
		MtlRowsSpillClose(state->rows);
		seconds = (GetCurrentTimestamp() - start) / 1e6;
		MemoryContextSwitchTo(spi);
	}
	/* mtl_registry_add is in the schema of this function, the extension's */
	version = StoreVersion(get_func_namespace(fcinfo->flinfo->fn_oid), name, model, config,
						   PG_GETARG_TEXT_PP(1), seconds);
	SPI_finish();
	MemoryContextDelete(rows_context);
	PG_RETURN_INT32(version);
}

/*
 * mtl_query_columns(query) -> int: how many columns a training query has (3,
 * 5 or 6), checked as mtl_fit checks them, without running it.
 */
Datum
mtl_query_columns(PG_FUNCTION_ARGS)
{
	Portal		portal;
	int			n;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("query must not be NULL")));
	SPI_connect();
	portal = OpenQuery(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	n = portal->tupDesc->natts;
	SPI_cursor_close(portal);
	SPI_finish();
	PG_RETURN_INT32(n);
}
