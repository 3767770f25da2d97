-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION mtl UPDATE TO '0.2'" to load this file. \quit

-- 0.1 -> 0.2: the demo shop moves to its own extension (mtl_demo), and the
-- registry is no longer readable by every role. Stored models keep scoring:
-- the 0.2 library decodes every model format ever released.

DROP FUNCTION mtl_demo_shop(text, int, int, int, float8);

-- Privileges. Nothing of the registry is granted to PUBLIC: a model's bytes
-- hold every training id with the features stored for it, and the registry
-- keeps each training query. Two roles, in the style of PostgreSQL's
-- predefined roles, are granted to users by the DBA:
--   mtl_scorer   scores by name (mtl_predict, mtl_recommend, the refresh
--                trigger) and nothing else; it never reads model bytes,
--                configs or queries (the lookup runs as the registry's owner
--                inside the C functions, see src/pg/registry.c);
--   mtl_trainer  trains into the registry (mtl_fit, mtl_registry_add),
--                deploys, rolls back, reads models, versions and queries,
--                and scores (it is a member of mtl_scorer).
-- Roles belong to the cluster: they are made once and outlive the extension.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'mtl_scorer') THEN
		CREATE ROLE mtl_scorer NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'mtl_trainer') THEN
		CREATE ROLE mtl_trainer NOLOGIN;
	END IF;
	IF NOT pg_catalog.pg_has_role('mtl_trainer', 'mtl_scorer', 'MEMBER') THEN
		GRANT mtl_scorer TO mtl_trainer;
	END IF;
END
$roles$;

REVOKE ALL ON mtl_models, mtl_deployments, mtl_versions FROM PUBLIC;
REVOKE ALL ON SEQUENCE mtl_models_id_seq, mtl_deployments_id_seq FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
	mtl_predict(text, bigint, bigint),
	mtl_predict(text, bigint, bigint, jsonb, jsonb),
	mtl_predict(text, bigint, bigint, jsonb, jsonb, jsonb),
	mtl_recommend(text, bigint, int, text, bigint[], jsonb),
	mtl_refresh_trigger(),
	mtl_fit(text, text, jsonb),
	mtl_registry_add(text, bytea, jsonb, text, float8),
	mtl_registry_lock(text),
	mtl_deploy(text, int),
	mtl_rollback(text),
	mtl_deployed_version(text),
	mtl_model(text, int)
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
	mtl_predict(text, bigint, bigint),
	mtl_predict(text, bigint, bigint, jsonb, jsonb),
	mtl_predict(text, bigint, bigint, jsonb, jsonb, jsonb),
	mtl_recommend(text, bigint, int, text, bigint[], jsonb),
	mtl_refresh_trigger()
TO mtl_scorer;

GRANT SELECT, INSERT, UPDATE ON mtl_models, mtl_deployments TO mtl_trainer;
GRANT SELECT ON mtl_versions TO mtl_trainer;
GRANT USAGE ON SEQUENCE mtl_models_id_seq, mtl_deployments_id_seq TO mtl_trainer;
GRANT EXECUTE ON FUNCTION
	mtl_fit(text, text, jsonb),
	mtl_registry_add(text, bytea, jsonb, text, float8),
	mtl_registry_lock(text),
	mtl_deploy(text, int),
	mtl_rollback(text),
	mtl_deployed_version(text),
	mtl_model(text, int)
TO mtl_trainer;
