/*
 * mtl_refresh_trigger: when an order row arrives, replace that user's rows
 * in a scores table with the top k items of the deployed version of a named
 * model.
 *
 *   CREATE TRIGGER refresh AFTER INSERT ON orders FOR EACH ROW
 *   EXECUTE FUNCTION mtl_refresh_trigger('shop', '20', 'user_top', 'user_id',
 *                                        'item_id', 'score' [, objective [, order_user_column]]);
 *
 * Concurrent orders of the same user are serialised by a transaction-level
 * advisory lock on (scores table, user), taken before the delete, so two
 * refreshes never interleave into duplicate or missing rows; orders of
 * different users do not wait for each other.
 */
#include "mtl_pg.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(mtl_refresh_trigger);

enum
{
	ARG_MODEL, ARG_K, ARG_TABLE, ARG_USER, ARG_ITEM, ARG_SCORE, ARG_OBJECTIVE, ARG_ORDER_USER
};

static void
CheckTriggerUse(FunctionCallInfo fcinfo)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("mtl_refresh_trigger must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(td->tg_event) || TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("mtl_refresh_trigger must be an AFTER INSERT or UPDATE trigger FOR EACH ROW")));
	if (td->tg_trigger->tgnargs < 6 || td->tg_trigger->tgnargs > 8)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mtl_refresh_trigger takes 6 to 8 arguments, not %d", td->tg_trigger->tgnargs),
				 errhint("Arguments: model name, k, scores table, its user, item and score columns, "
						 "[objective, [the order's user column]].")));
}

static int
ParseK(const char *s)
{
	char	   *end;
	long		k = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || k < 1 || k > 100000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mtl_refresh_trigger: k must be a number of items from 1 to 100000, not \"%s\"", s)));
	return (int) k;
}

/* The scores table named by the argument (schema-qualified or on the search path), quoted. */
static Oid
ScoresTable(const char *name, char **quoted)
{
	RangeVar   *rv = makeRangeVarFromNameList(textToQualifiedNameList(cstring_to_text(name)));
	Oid			relid = RangeVarGetRelid(rv, NoLock, false);

	*quoted = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										 get_rel_name(relid));
	return relid;
}

/* The ordering user's id from the new row; false when it is NULL. */
static bool
OrderUser(TriggerData *td, const char *column, int64 *user_id)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	HeapTuple	tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	int			attnum = SPI_fnumber(desc, column);
	Oid			type;
	bool		isnull;
	Datum		value;

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("mtl_refresh_trigger: table \"%s\" has no column \"%s\"",
						RelationGetRelationName(td->tg_relation), column),
				 errhint("Name the order's user column as the eighth trigger argument.")));
	type = TupleDescAttr(desc, attnum - 1)->atttypid;
	value = SPI_getbinval(tuple, desc, attnum, &isnull);
	if (isnull)
		return false;
	if (type == INT8OID)
		*user_id = DatumGetInt64(value);
	else if (type == INT4OID)
		*user_id = DatumGetInt32(value);
	else if (type == INT2OID)
		*user_id = DatumGetInt16(value);
	else
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("mtl_refresh_trigger: column \"%s\" must be an integer user id, not %s",
						column, format_type_be(type))));
	return true;
}

/* Wait for (and hold until commit) the refresh lock of this user in this table. */
static void
LockUser(Oid relid, int64 user_id)
{
	LOCKTAG		tag;
	uint32		hi = (uint32) ((uint64) user_id >> 32),
				lo = (uint32) user_id;

	/* the same tag as pg_advisory_xact_lock(int4, int4) would make, so it shows in pg_locks */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, relid, lo ^ (hi * 0x9E3779B1u), 2);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

static void
ReplaceRows(const char *table, const char *user_col, const char *item_col, const char *score_col,
			int64 user_id, const MtlTopItems *top)
{
	StringInfoData sql;
	Datum	   *items = palloc(sizeof(Datum) * (top->n + 1));
	Datum	   *scores = palloc(sizeof(Datum) * (top->n + 1));
	Oid			types[3] = {INT8OID, INT8ARRAYOID, FLOAT8ARRAYOID};
	Datum		args[3];
	int			rc;

	for (int i = 0; i < top->n; i++)
	{
		items[i] = Int64GetDatum(top->item_ids[i]);
		scores[i] = Float8GetDatum(top->score[i]);
	}
	args[0] = Int64GetDatum(user_id);
	args[1] = PointerGetDatum(construct_array(items, top->n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[2] = PointerGetDatum(construct_array(scores, top->n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s WHERE %s = $1", table, quote_identifier(user_col));
	rc = SPI_execute_with_args(sql.data, 1, types, args, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "mtl_refresh_trigger: delete failed: %s", SPI_result_code_string(rc));
	resetStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s (%s, %s, %s) SELECT $1, t.i, t.s FROM unnest($2, $3) AS t(i, s)",
					 table, quote_identifier(user_col), quote_identifier(item_col),
					 quote_identifier(score_col));
	rc = SPI_execute_with_args(sql.data, 3, types, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "mtl_refresh_trigger: insert failed: %s", SPI_result_code_string(rc));
}

Datum
mtl_refresh_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	char	  **argv;
	int			nargs;
	int			k;
	char	   *table;
	Oid			relid;
	int64		user_id;
	text	   *objective = NULL;
	MtlTopItems top;

	CheckTriggerUse(fcinfo);
	argv = td->tg_trigger->tgargs;
	nargs = td->tg_trigger->tgnargs;
	k = ParseK(argv[ARG_K]);
	if (!OrderUser(td, nargs > ARG_ORDER_USER ? argv[ARG_ORDER_USER] : argv[ARG_USER], &user_id))
		return PointerGetDatum(NULL);	/* an anonymous order has no user's rows to refresh */
	relid = ScoresTable(argv[ARG_TABLE], &table);
	if (nargs > ARG_OBJECTIVE && argv[ARG_OBJECTIVE][0] != '\0')
		objective = cstring_to_text(argv[ARG_OBJECTIVE]);

	MtlRecommendTop(MtlRegistryModel(fcinfo, cstring_to_text(argv[ARG_MODEL])), true, user_id, k,
					objective, NULL, NULL, NULL, &top);
	LockUser(relid, user_id);
	SPI_connect();
	ReplaceRows(table, argv[ARG_USER], argv[ARG_ITEM], argv[ARG_SCORE], user_id, &top);
	SPI_finish();
	return PointerGetDatum(NULL);
}
