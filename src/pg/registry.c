/*
 * The deployed version of a named model, for mtl_predict(name, ...),
 * mtl_recommend(name, ...) and the refresh trigger.
 *
 * Version counter: a statement-level trigger on the registry tables
 * (mtl_registry_changed) queues a relcache invalidation of the table it
 * changed. PostgreSQL delivers it at commit to every backend through the
 * shared invalidation queue, where our relcache callback bumps a
 * backend-local generation. A query resolves a name at most once (the
 * resolution is pinned for all its call sites, so one statement never mixes
 * versions); it first accepts pending invalidations (a read of a shared
 * flag) and reuses the backend's resolution of the name while the generation
 * is unchanged. So a statement costs no query at all until someone deploys,
 * and the first statement after a deploy's commit looks the name up again.
 *
 * The lookup runs as the owner of the registry tables, the way PostgreSQL's
 * foreign-key checks run as the table owner: a role allowed to score by name
 * (EXECUTE on mtl_predict(text, ...), granted to mtl_scorer) needs no read
 * access to model bytes, configs or training queries, and no SQL-callable
 * function hands the bytes out. The switch is undone on return, and by
 * (sub)transaction abort on error.
 *
 * The lookup reads the latest committed state in READ COMMITTED (a deploy
 * whose invalidation we accepted committed before it was sent, so it is
 * seen). Under REPEATABLE READ or in parallel mode it reads the transaction
 * snapshot instead, and that resolution is trusted only inside the same
 * transaction.
 */
#include "mtl_pg.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "access/xact.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"

PG_FUNCTION_INFO_V1(mtl_registry_changed);

/* This backend's local transaction id: PostgreSQL 17 moved it into PGPROC.vxid. */
#if PG_VERSION_NUM >= 170000
#define MY_LXID (MyProc->vxid.lxid)
#else
#define MY_LXID (MyProc->lxid)
#endif

#define BACKEND_MODELS 8

/* A name resolved in this backend and its decoded model. */
typedef struct NamedModel
{
	char	   *name;			/* NULL: free slot */
	uint64		generation;		/* registry generation when resolved */
	LocalTransactionId lxid;	/* trusted only in this transaction (0: any) */
	int64		id;				/* mtl_models.id of the deployed version */
	int64		xmin;			/* its row version */
	uint64		last_use;
	ModelCache *cache;
} NamedModel;

/*
 * The versions one query pinned, shared by all its call sites: a query may
 * evaluate mtl_predict('m', ...) at several places (a flattened subquery
 * repeats an expression at each use), and all of them must score with one
 * version. Keyed by the query's memory context (fn_mcxt of every function in
 * its plan), allocated there, and unlinked by that context's reset callback.
 * PL/pgSQL evaluates its simple expressions (x := mtl_predict(...)) in one
 * context for the whole transaction, each under a new snapshot: the pins
 * start again when the snapshot's command id moved, so such an expression
 * sees a deploy made earlier in its transaction.
 */
typedef struct StatementPin
{
	char	   *name;
	int			len;
	NamedModel *model;
	int64		id;
	int64		xmin;
} StatementPin;

typedef struct StatementPins
{
	MemoryContext cxt;
	struct StatementPins *next;
	MemoryContextCallback unlink;
	CommandId	cid;			/* of the snapshot the pins were made under */
	int			n;
	int			size;
	int			last;			/* the pin found last: the common case of one name */
	StatementPin *pins;
} StatementPins;

static MemoryContext registry_context = NULL;
static NamedModel models[BACKEND_MODELS];
static uint64 registry_generation = 1;
static uint64 use_clock = 0;
static bool callback_registered = false;
static Oid	registry_nsp = InvalidOid;
static Oid	registry_relids[2] = {InvalidOid, InvalidOid};
static SPIPlanPtr lookup_plan = NULL;
static SPIPlanPtr fetch_plan = NULL;
static StatementPins *running_statements = NULL;

static void
RegistryInvalidated(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == registry_relids[0] || relid == registry_relids[1])
		registry_generation++;
}

/*
 * Statement-level trigger on mtl_models and mtl_deployments: tell every
 * backend, at commit, that the registry changed.
 */
Datum
mtl_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("mtl_registry_changed must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

/*
 * The lookups run as the registry's owner, so nothing in them may resolve
 * through the caller's search_path: tables and operators are qualified.
 */
#define EQ "OPERATOR(pg_catalog.=)"

/*
 * Prepare the lookup queries against the registry in schema nsp (the
 * extension's: that of the calling function). The tables' ids are taken
 * again on every resolution, as a re-created extension has new ones.
 */
static void
PreparePlans(Oid nsp)
{
	const char *schema;
	char		sql[512];
	Oid			argtype;

	registry_relids[0] = get_relname_relid("mtl_models", nsp);
	registry_relids[1] = get_relname_relid("mtl_deployments", nsp);
	if (nsp == registry_nsp && lookup_plan != NULL)
		return;
	schema = quote_identifier(get_namespace_name(nsp));
	if (lookup_plan != NULL)
		SPI_freeplan(lookup_plan);
	if (fetch_plan != NULL)
		SPI_freeplan(fetch_plan);
	lookup_plan = fetch_plan = NULL;

	argtype = TEXTOID;
	snprintf(sql, sizeof(sql),
			 "SELECT m.id, m.xmin::text::int8 FROM %s.mtl_deployments d "
			 "JOIN %s.mtl_models m ON m.name " EQ " d.name AND m.version " EQ " d.version "
			 "WHERE d.name " EQ " $1 AND d.rolled_back_at IS NULL ORDER BY d.id DESC LIMIT 1",
			 schema, schema);
	lookup_plan = SPI_prepare(sql, 1, &argtype);
	if (lookup_plan == NULL)
		elog(ERROR, "cannot prepare the registry lookup: %s", SPI_result_code_string(SPI_result));
	SPI_keepplan(lookup_plan);

	argtype = INT8OID;
	snprintf(sql, sizeof(sql), "SELECT model FROM %s.mtl_models WHERE id " EQ " $1 AND xmin::text::int8 " EQ " $2",
			 schema);
	{
		Oid			types[2] = {INT8OID, INT8OID};

		fetch_plan = SPI_prepare(sql, 2, types);
	}
	if (fetch_plan == NULL)
		elog(ERROR, "cannot prepare the registry fetch: %s", SPI_result_code_string(SPI_result));
	SPI_keepplan(fetch_plan);
	registry_nsp = nsp;
}

static void
EnsureSetUp(void)
{
	if (registry_context == NULL)
		registry_context = AllocSetContextCreate(TopMemoryContext, "mtl registry models",
												 ALLOCSET_DEFAULT_SIZES);
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(RegistryInvalidated, (Datum) 0);
		callback_registered = true;
	}
}

/* Whether this backend may read the latest committed registry rather than its snapshot. */
static bool
ReadsLatest(void)
{
	return !IsolationUsesXactSnapshot() && !IsInParallelMode();
}

/* The owner of mtl_models (PreparePlans found it). */
static Oid
RegistryOwner(void)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(registry_relids[0]));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the mtl registry table mtl_models is missing"),
				 errhint("ALTER EXTENSION mtl UPDATE, or re-create the extension.")));
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/* Connect SPI and act as the registry's owner until RegistryEnd. */
static void
RegistryBegin(Oid nsp, Oid *saved_user, int *saved_context)
{
	SPI_connect();
	PreparePlans(nsp);
	GetUserIdAndSecContext(saved_user, saved_context);
	SetUserIdAndSecContext(RegistryOwner(),
						   *saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
}

static void
RegistryEnd(Oid saved_user, int saved_context)
{
	SetUserIdAndSecContext(saved_user, saved_context);
	SPI_finish();
}

/* Under SPI: the deployed version's id and row version; false when none is deployed. */
static bool
LookupDeployed(const char *name, int64 *id, int64 *xmin)
{
	Datum		arg = CStringGetTextDatum(name);
	bool		latest = ReadsLatest();
	bool		isnull;
	int			rc;

	if (latest)
		PushActiveSnapshot(GetLatestSnapshot());
	rc = SPI_execute_plan(lookup_plan, &arg, NULL, true, 1);
	if (latest)
		PopActiveSnapshot();
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "registry lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return false;
	*id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*xmin = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	return true;
}

/* Under SPI: decode version (id, xmin) into entry's cache. */
static void
FetchModel(NamedModel *entry, int64 id, int64 xmin)
{
	Datum		args[2] = {Int64GetDatum(id), Int64GetDatum(xmin)};
	bool		latest = ReadsLatest();
	bool		isnull;
	int			rc;

	if (latest)
		PushActiveSnapshot(GetLatestSnapshot());
	rc = SPI_execute_plan(fetch_plan, args, NULL, true, 1);
	if (latest)
		PopActiveSnapshot();
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "registry fetch failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the deployed version of model \"%s\" was changed or deleted while in use",
						entry->name)));
	entry->id = 0;				/* not usable until decoded */
	MtlCacheLoad(entry->cache, DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
															   SPI_tuptable->tupdesc, 1, &isnull)));
	entry->id = id;
	entry->xmin = xmin;
}

static NamedModel *
FindEntry(const char *name)
{
	for (int i = 0; i < BACKEND_MODELS; i++)
		if (models[i].name != NULL && strcmp(models[i].name, name) == 0)
			return &models[i];
	return NULL;
}

/* A slot for name: a free one, or the one used longest ago. */
static NamedModel *
NewEntry(const char *name)
{
	NamedModel *victim = &models[0];

	for (int i = 0; i < BACKEND_MODELS; i++)
	{
		if (models[i].name == NULL)
		{
			victim = &models[i];
			break;
		}
		if (models[i].last_use < victim->last_use)
			victim = &models[i];
	}
	if (victim->name != NULL)
		pfree(victim->name);
	victim->name = NULL;
	if (victim->cache == NULL)
		victim->cache = MtlCacheCreate(registry_context);
	victim->id = 0;
	victim->name = MemoryContextStrdup(registry_context, name);
	return victim;
}

static bool
Trusted(const NamedModel *entry)
{
	return entry->id != 0 && entry->generation == registry_generation &&
		(entry->lxid == InvalidLocalTransactionId || entry->lxid == MY_LXID);
}

static void
ReportNotDeployed(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("model \"%s\" has no deployed version", name),
			 errhint("Train one with mtl_fit('%s', query, config), or deploy one with mtl_deploy('%s', version).",
					 name, name)));
}

/* The backend's entry for name, resolved again unless the registry is unchanged since. */
static NamedModel *
Resolve(const char *name, Oid nsp)
{
	NamedModel *entry;
	int64		id,
				xmin;
	Oid			saved_user;
	int			saved_context;

	EnsureSetUp();
	AcceptInvalidationMessages();
	entry = FindEntry(name);
	if (entry != NULL && Trusted(entry))
		return entry;

	RegistryBegin(nsp, &saved_user, &saved_context);
	/* a deploy committing during the lookup will bump the generation again */
	{
		uint64		generation = registry_generation;

		if (!LookupDeployed(name, &id, &xmin))
			ReportNotDeployed(name);
		if (entry == NULL)
			entry = NewEntry(name);
		if (entry->id != id || entry->xmin != xmin)
			FetchModel(entry, id, xmin);
		entry->generation = generation;
	}
	entry->lxid = ReadsLatest() ? InvalidLocalTransactionId : MY_LXID;
	RegistryEnd(saved_user, saved_context);
	return entry;
}

static void
UnlinkStatement(void *arg)
{
	StatementPins *pins = arg;

	for (StatementPins **p = &running_statements; *p != NULL; p = &(*p)->next)
		if (*p == pins)
		{
			*p = pins->next;
			return;
		}
}

/* The pins of the query this call belongs to, cached in fn_extra for the call site. */
static StatementPins *
PinsForCall(FunctionCallInfo fcinfo)
{
	MemoryContext cxt = fcinfo->flinfo->fn_mcxt;
	StatementPins *pins = fcinfo->flinfo->fn_extra;
	CommandId	cid = ActiveSnapshotSet() ? GetActiveSnapshot()->curcid : InvalidCommandId;

	if (pins == NULL)
	{
		for (pins = running_statements; pins != NULL; pins = pins->next)
			if (pins->cxt == cxt)
				break;
		if (pins == NULL)
		{
			pins = MemoryContextAllocZero(cxt, sizeof(StatementPins));
			pins->cxt = cxt;
			pins->cid = cid;
			pins->unlink.func = UnlinkStatement;
			pins->unlink.arg = pins;
			MemoryContextRegisterResetCallback(cxt, &pins->unlink);
			pins->next = running_statements;
			running_statements = pins;
		}
		fcinfo->flinfo->fn_extra = pins;
	}
	if (pins->cid != cid)
	{
		for (int i = 0; i < pins->n; i++)
			pfree(pins->pins[i].name);
		pins->n = 0;
		pins->last = 0;
		pins->cid = cid;
	}
	return pins;
}

/* The pin of the name given by (data, len), or -1; no allocation per row. */
static int
FindPin(StatementPins *pins, const char *data, int len)
{
	for (int k = 0; k < pins->n; k++)
	{
		int			i = (pins->last + k) % pins->n;

		if (pins->pins[i].len == len && memcmp(pins->pins[i].name, data, len) == 0)
		{
			pins->last = i;
			return i;
		}
	}
	return -1;
}

/* Another name reused the backend slot of a pinned version: load that version again. */
static NamedModel *
Repin(FunctionCallInfo fcinfo, StatementPin *pin)
{
	NamedModel *entry = FindEntry(pin->name);
	Oid			saved_user;
	int			saved_context;

	if (entry == NULL)
		entry = NewEntry(pin->name);
	elog(DEBUG1, "mtl: loading the pinned version of model \"%s\" again", pin->name);
	RegistryBegin(get_func_namespace(fcinfo->flinfo->fn_oid), &saved_user, &saved_context);
	FetchModel(entry, pin->id, pin->xmin);
	entry->generation = 0;		/* only pinned, not resolved */
	RegistryEnd(saved_user, saved_context);
	pin->model = entry;
	return entry;
}

static void
AddPin(StatementPins *pins, const char *name, NamedModel *entry)
{
	StatementPin *pin;

	if (pins->n == pins->size)
	{
		pins->size = pins->size == 0 ? 4 : 2 * pins->size;
		pins->pins = pins->pins == NULL ?
			MemoryContextAlloc(pins->cxt, pins->size * sizeof(StatementPin)) :
			repalloc(pins->pins, pins->size * sizeof(StatementPin));
	}
	pin = &pins->pins[pins->n];
	pin->name = MemoryContextStrdup(pins->cxt, name);
	pin->len = strlen(name);
	pin->model = entry;
	pin->id = entry->id;
	pin->xmin = entry->xmin;
	pins->last = pins->n++;
}

/*
 * The decoded deployed version of the named model, the same for every row
 * of the query, at every call site.
 */
ModelCache *
MtlRegistryModel(FunctionCallInfo fcinfo, text *name_text)
{
	StatementPins *pins = PinsForCall(fcinfo);
	int			i = FindPin(pins, VARDATA_ANY(name_text), VARSIZE_ANY_EXHDR(name_text));
	NamedModel *entry;
	char	   *name;

	if (i >= 0)
	{
		StatementPin *pin = &pins->pins[i];

		entry = pin->model;
		if (entry->name == NULL || strcmp(entry->name, pin->name) != 0 ||
			entry->id != pin->id || entry->xmin != pin->xmin)
			entry = Repin(fcinfo, pin);
		entry->last_use = ++use_clock;
		return entry->cache;
	}
	/* the registry is in the extension's schema, that of the calling function */
	name = text_to_cstring(name_text);
	entry = Resolve(name, get_func_namespace(fcinfo->flinfo->fn_oid));
	entry->last_use = ++use_clock;
	AddPin(pins, name, entry);
	pfree(name);
	return entry->cache;
}

