-- mtl_refresh_trigger: an order refreshes that user's top-k rows with the deployed model
SET client_min_messages = warning;
SELECT mtl_demo_shop('ref_shop', 120, 50, 5000, 0.4);
RESET client_min_messages;
\set query 'SELECT user_id, item_id, ARRAY[clicked, CASE WHEN clicked = 1 THEN purchased END]::float8[] FROM ref_shop.impressions'
SELECT mtl_fit('ref', :'query', '{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "epochs": 2}');
SELECT mtl_fit('ref', :'query', '{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "epochs": 2, "seed": 3}');

-- a scores table with names that need quoting, in its own schema; int4 user ids
CREATE SCHEMA "Serving";
CREATE TABLE "Serving"."User Top" ("User" int, "Item" bigint, "Score" float8, PRIMARY KEY ("User", "Item"));
CREATE TABLE ref_orders (order_id serial PRIMARY KEY, buyer int, item_id bigint);
CREATE TRIGGER refresh_top AFTER INSERT OR UPDATE ON ref_orders FOR EACH ROW
EXECUTE FUNCTION mtl_refresh_trigger('ref', '5', '"Serving"."User Top"', 'User', 'Item', 'Score', 'ctr*cvr', 'buyer');

-- rows equal mtl_recommend's top 5 for each user who ordered, and only for them
CREATE FUNCTION ref_right(OUT users bigint, OUT rows bigint, OUT matching bigint) LANGUAGE sql AS $$
	SELECT count(DISTINCT t."User"), count(*),
		   count(*) FILTER (WHERE r.item_id IS NOT NULL AND abs(r.score - t."Score") < 1e-12)
	FROM "Serving"."User Top" t
	LEFT JOIN LATERAL (SELECT * FROM mtl_recommend('ref', t."User", 5, 'ctr*cvr')) r ON r.item_id = t."Item" $$;
INSERT INTO ref_orders (buyer, item_id) VALUES (3, 1), (4, 2), (3, 7);
SELECT * FROM ref_right();
INSERT INTO ref_orders (buyer, item_id) SELECT g, 1 FROM generate_series(1, 30) g;
SELECT * FROM ref_right();
-- an order of an unknown user stores the anonymous top 5; an anonymous order changes nothing
INSERT INTO ref_orders (buyer, item_id) VALUES (100000, 1), (NULL, 1);
SELECT count(*) AS new_user_rows, bool_and(t."Item" IN (SELECT item_id FROM mtl_recommend('ref', NULL, 5, 'ctr*cvr'))) AS anonymous_top
FROM "Serving"."User Top" t WHERE "User" = 100000;
-- after a deploy, the next order refreshes with the new version
SELECT mtl_deploy('ref', 2);
UPDATE ref_orders SET item_id = 9 WHERE buyer = 3;
SELECT bool_and(abs(t."Score" - r.score) < 1e-12) AS new_version, count(*)
FROM "Serving"."User Top" t
JOIN (SELECT (mtl_recommend(mtl_model('ref', 2), 3, 5, 'ctr*cvr')).*) r ON r.item_id = t."Item"
WHERE t."User" = 3;
-- only user 3 was refreshed: the others keep version 1's rows until their next order
SELECT * FROM ref_right();

-- errors
CREATE TABLE ref_bad (buyer bigint, who text);
CREATE TRIGGER bad BEFORE INSERT ON ref_bad FOR EACH ROW
EXECUTE FUNCTION mtl_refresh_trigger('ref', '5', '"Serving"."User Top"', 'User', 'Item', 'Score');
INSERT INTO ref_bad VALUES (1);
DROP TRIGGER bad ON ref_bad;
CREATE TRIGGER bad AFTER INSERT ON ref_bad FOR EACH ROW
EXECUTE FUNCTION mtl_refresh_trigger('ref', '5', '"Serving"."User Top"');
INSERT INTO ref_bad VALUES (1);
DROP TRIGGER bad ON ref_bad;
CREATE TRIGGER bad AFTER INSERT ON ref_bad FOR EACH ROW
EXECUTE FUNCTION mtl_refresh_trigger('ref', 'ten', '"Serving"."User Top"', 'User', 'Item', 'Score');
INSERT INTO ref_bad VALUES (1);
DROP TRIGGER bad ON ref_bad;
CREATE TRIGGER bad AFTER INSERT ON ref_bad FOR EACH ROW
EXECUTE FUNCTION mtl_refresh_trigger('ref', '5', '"Serving"."User Top"', 'User', 'Item', 'Score');
INSERT INTO ref_bad VALUES (1);
DROP TRIGGER bad ON ref_bad;
CREATE TRIGGER bad AFTER INSERT ON ref_bad FOR EACH ROW
EXECUTE FUNCTION mtl_refresh_trigger('ref', '5', '"Serving"."User Top"', 'User', 'Item', 'Score', '', 'who');
INSERT INTO ref_bad VALUES (1, 'x');
DROP TRIGGER bad ON ref_bad;
CREATE TRIGGER bad AFTER INSERT ON ref_bad FOR EACH ROW
EXECUTE FUNCTION mtl_refresh_trigger('ref', '5', 'no_such_table', 'User', 'Item', 'Score', '', 'buyer');
INSERT INTO ref_bad VALUES (1);
DROP TRIGGER bad ON ref_bad;
CREATE TRIGGER bad AFTER INSERT ON ref_bad FOR EACH ROW
EXECUTE FUNCTION mtl_refresh_trigger('ref', '5', '"Serving"."User Top"', 'User', 'Item', 'Score', 'ctr*nope', 'buyer');
INSERT INTO ref_bad VALUES (1);
DROP TRIGGER bad ON ref_bad;
CREATE TRIGGER bad AFTER INSERT ON ref_bad FOR EACH ROW
EXECUTE FUNCTION mtl_refresh_trigger('ref', '5', '"Serving"."User Top"', 'User', 'Item', 'no_column', '', 'buyer');
INSERT INTO ref_bad VALUES (1);
DROP TRIGGER bad ON ref_bad;
CREATE TRIGGER bad AFTER INSERT ON ref_bad FOR EACH ROW
EXECUTE FUNCTION mtl_refresh_trigger('nope', '5', '"Serving"."User Top"', 'User', 'Item', 'Score', '', 'buyer');
INSERT INTO ref_bad VALUES (1);
SELECT mtl_refresh_trigger();
-- the failed orders left no rows behind
SELECT count(*) FROM ref_bad;
