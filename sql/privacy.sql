-- Who can do what with the registry: owner (the superuser running the
-- tests), a scorer (mtl_scorer), a trainer (mtl_trainer) and a stranger.
SET client_min_messages = warning;
SELECT mtl_demo_shop('priv_shop', 120, 40, 5000, 0.5);
RESET client_min_messages;
\set config '{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 2}'
SELECT mtl_fit('priv', 'SELECT user_id, item_id, ARRAY[clicked]::float8[] FROM priv_shop.impressions', :'config') AS version;
CREATE ROLE mtl_regress_scorer;
CREATE ROLE mtl_regress_trainer;
CREATE ROLE mtl_regress_stranger;
GRANT mtl_scorer TO mtl_regress_scorer;
GRANT mtl_trainer TO mtl_regress_trainer;
GRANT USAGE ON SCHEMA priv_shop TO mtl_regress_trainer;
GRANT SELECT ON priv_shop.impressions TO mtl_regress_trainer;
CREATE TABLE priv_expected AS SELECT mtl_predict(model, 3, 4) AS scores FROM mtl_models WHERE name = 'priv';
GRANT SELECT ON priv_expected TO PUBLIC;

-- nothing of the extension's relations is granted to PUBLIC
SELECT c.relname, a.privilege_type
FROM pg_depend d JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid,
	 aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mtl') AND a.grantee = 0;
-- functions PUBLIC may execute: those working on model bytes the caller already
-- has, and those running the caller's own query as the caller, writing no registry
-- (mtl_query_columns, mtl_cross_validate and its helpers)
SELECT p.oid::regprocedure AS public_function
FROM pg_depend d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid,
	 aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mtl') AND a.grantee = 0
  AND (p.proargtypes[0] = 'text'::regtype OR p.prosecdef)
ORDER BY 1::text;
-- nothing the extension installs creates or drops schemas or deletes rows; only
-- mtl_fit_parallel, mtl_cross_validate and mtl_tune drop a table: the one each
-- created under a fresh name in the same call
SELECT p.proname, p.prosrc ~* '\mdrop\s+table\M' AS drops_table,
	   p.prosrc ~* '\m(drop\s+schema|truncate|delete|create\s+schema)\M' AS drops_more
FROM pg_depend d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mtl')
  AND p.prosrc ~* '\m(drop|truncate|delete|create\s+schema)\M';

\set VERBOSITY sqlstate
-- the scorer scores by name, and can do nothing else with the registry
SET ROLE mtl_regress_scorer;
SELECT mtl_predict('priv', 3, 4) = (SELECT scores FROM priv_expected) AS scores_by_name;
SELECT count(*) FROM mtl_recommend('priv', 3, 5);
SELECT mtl_explain('priv', 3, 4);
SELECT model FROM mtl_models;
SELECT query FROM mtl_versions;
SELECT name FROM mtl_deployments;
SELECT mtl_model('priv');
SELECT mtl_deployed_version('priv');
SELECT mtl_deploy('priv', 1);
SELECT mtl_rollback('priv');
SELECT mtl_fit('priv', 'SELECT 1::bigint, 1::bigint, ARRAY[1]::float8[]', :'config');
SELECT mtl_registry_add('priv', '\x00'::bytea, NULL, NULL, NULL);
INSERT INTO mtl_deployments (name, version) VALUES ('priv', 1);
RESET ROLE;

-- the stranger can do nothing with the registry, scoring by name included
SET ROLE mtl_regress_stranger;
SELECT mtl_predict('priv', 3, 4);
SELECT * FROM mtl_recommend('priv', 3, 5);
SELECT model FROM mtl_models;
SELECT query FROM mtl_versions;
SELECT mtl_model('priv');
SELECT mtl_deploy('priv', 1);
RESET ROLE;

-- the trainer trains into the registry, reads it, deploys and rolls back
SET ROLE mtl_regress_trainer;
SELECT mtl_fit('priv', 'SELECT user_id, item_id, ARRAY[clicked]::float8[] FROM priv_shop.impressions', :'config') AS version;
SELECT mtl_deploy('priv', 2);
SELECT mtl_deployed_version('priv');
SELECT mtl_rollback('priv') AS back_to;
SELECT name, version, deployed, created_by FROM mtl_versions WHERE name = 'priv' ORDER BY version;
SELECT octet_length(mtl_model('priv', 2)) > 0 AS reads_model;
SELECT mtl_predict('priv', 3, 4) = (SELECT scores FROM priv_expected) AS scores_by_name;
SELECT abs((mtl_explain('priv', 3, 4) #>> '{tasks,ctr,score}')::float8 - (SELECT scores[1] FROM priv_expected)) < 1e-6
	   AS explains_by_name;
DELETE FROM mtl_models WHERE name = 'priv';
RESET ROLE;
\set VERBOSITY default

-- the lookup runs as the registry's owner, but resolves nothing through the
-- caller's search_path: an operator planted there is never called
\c
CREATE SCHEMA priv_evil AUTHORIZATION mtl_regress_scorer;
SET ROLE mtl_regress_scorer;
CREATE FUNCTION priv_evil.text_eq(text, text) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN RAISE NOTICE 'planted operator called as %', current_user; RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR priv_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = priv_evil.text_eq);
SET search_path = priv_evil, public, pg_catalog;
SELECT 'a'::text = 'a'::text AS planted_operator_in_effect;
SELECT mtl_predict('priv', 3, 4) = (SELECT scores FROM priv_expected) AS scores_by_name;
RESET search_path;
RESET ROLE;
DROP SCHEMA priv_evil CASCADE;

-- the demo generator is a separate extension, and replaces only schemas it made
SELECT e.extname FROM pg_depend d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
JOIN pg_extension e ON e.oid = d.refobjid WHERE p.proname = 'mtl_demo_shop';
CREATE SCHEMA priv_mine;
CREATE TABLE priv_mine.orders AS SELECT 1 AS id;
\set VERBOSITY sqlstate
SELECT mtl_demo_shop('priv_mine', 10, 5, 100);
SELECT mtl_demo_shop('public', 10, 5, 100);
SELECT mtl_demo_shop(NULL, 10, 5, 100);
\set VERBOSITY default
SELECT mtl_demo_shop('priv_mine', 10, 5, 100);
SELECT count(*) AS orders_kept FROM priv_mine.orders;
SET client_min_messages = warning;
SELECT mtl_demo_shop('priv_demo', 10, 5, 100);
SELECT mtl_demo_shop('priv_demo', 10, 5, 200);
RESET client_min_messages;
SELECT count(*) AS replaced FROM priv_demo.impressions;

DROP SCHEMA priv_mine, priv_demo, priv_shop CASCADE;
DROP TABLE priv_expected;
DELETE FROM mtl_deployments WHERE name = 'priv';
DELETE FROM mtl_models WHERE name = 'priv';
DROP ROLE mtl_regress_scorer;
DROP ROLE mtl_regress_trainer;
DROP ROLE mtl_regress_stranger;
