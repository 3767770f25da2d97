-- A sparse shop: many users seen about 20 times (16 training impressions),
-- items whose popularity falls off like a power law, three scenarios. Users
-- carry 3 categorical features, items 2 and a price. A click follows a latent
-- user-item affinity (user taste . item taste) that the user's features
-- reveal only in part (half its variance), the item's quality and the
-- scenario; a purchase after a click the same affinity, quality and price.
--
--   psql -v schema=sparse -v users=20000 -v items=4000 -v per_user=20 -v seed=0.17 -f sparse_shop.sql
--
-- Every fifth impression (impression_id % 5 = 0) is the test split.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS :"schema" CASCADE;
CREATE SCHEMA :"schema";
SET search_path = :"schema", public;
SELECT setseed(:seed);

CREATE FUNCTION gauss() RETURNS float8 LANGUAGE sql VOLATILE AS
$$ SELECT sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) $$;
-- a random vector of 8 normal draws times scale
CREATE FUNCTION gauss_vec(scale float8, salt bigint) RETURNS float8[] LANGUAGE sql VOLATILE AS
$$ SELECT array_agg(scale * gauss()) FROM generate_series(1, 8) WHERE salt IS NOT NULL $$;

-- what each feature value says about taste: 3 user features share half the
-- taste's variance (1/6 each), the rest is the user's own
CREATE TABLE feature_taste AS
SELECT f, v, gauss_vec(sqrt(1.0 / 6), v) AS taste
FROM (VALUES ('age', 6), ('gender', 3), ('city', 30), ('category', 20)) AS t(f, n),
	 generate_series(1, n) v;

CREATE TABLE users AS
SELECT g::bigint AS user_id,
	   'age_' || (1 + floor(random() * 6)::int) AS age_band,
	   'g_' || (1 + floor(random() * 3)::int) AS gender,
	   'city_' || (1 + floor(power(random(), 1.5) * 30)::int) AS city
FROM generate_series(1, :users) g;
CREATE TABLE user_taste AS
SELECT u.user_id,
	   ARRAY(SELECT a.taste[d] + g.taste[d] + c.taste[d] + sqrt(0.5) * gauss()
			 FROM generate_series(1, 8) d) AS taste
FROM users u
JOIN feature_taste a ON a.f = 'age' AND 'age_' || a.v = u.age_band
JOIN feature_taste g ON g.f = 'gender' AND 'g_' || g.v = u.gender
JOIN feature_taste c ON c.f = 'city' AND 'city_' || c.v = u.city;

-- items: the category reveals a third of the taste; quality is hidden
CREATE TABLE items AS
SELECT g::bigint AS item_id,
	   'cat_' || (1 + floor(random() * 20)::int) AS category,
	   'brand_' || (1 + floor(random() * 150)::int) AS brand,
	   round(exp(3 + 0.7 * gauss())::numeric, 2) AS price
FROM generate_series(1, :items) g;
CREATE TABLE item_taste AS
SELECT i.item_id, 0.8 * gauss() AS quality,
	   ARRAY(SELECT sqrt(2.0) * c.taste[d] + sqrt(2.0 / 3) * gauss() FROM generate_series(1, 8) d) AS taste
FROM items i JOIN feature_taste c ON c.f = 'category' AND 'cat_' || c.v = i.category;

-- impressions: per_user on average per user (from half to one and a half
-- times that), items by a power law of their id
CREATE TABLE impressions AS
WITH shown AS MATERIALIZED (
	SELECT u.user_id,
		   1 + floor(:items * power(random(), 2.2))::bigint AS item_id,
		   (ARRAY['home','home','home','home','home','search','search','search','ads','ads'])
			   [1 + floor(random() * 10)::int] AS scenario
	FROM users u, LATERAL generate_series(1, (:per_user * (0.5 + random()))::int + 0 * u.user_id::int) k
), truth AS MATERIALIZED (
	SELECT row_number() OVER (ORDER BY random()) AS impression_id, s.*,
		   (SELECT sum(a * b) FROM unnest(ut.taste, it.taste) AS t(a, b)) / sqrt(8.0) AS affinity,
		   it.quality, ln(i.price::float8) - 3 AS log_price
	FROM shown s
	JOIN user_taste ut USING (user_id)
	JOIN item_taste it USING (item_id)
	JOIN items i USING (item_id)
), probs AS MATERIALIZED (
	SELECT *,
		   1 / (1 + exp(-(-2.0 + 0.9 * affinity + 0.5 * quality
						  + CASE scenario WHEN 'search' THEN 0.5 + 0.3 * affinity WHEN 'ads' THEN -0.7 ELSE 0 END))) AS p_click,
		   1 / (1 + exp(-(-1.2 + 0.7 * affinity + 0.5 * quality - 0.5 * log_price))) AS p_buy_given_click
	FROM truth
)
SELECT impression_id, user_id, item_id, scenario, c::int AS clicked,
	   (c AND random() < p_buy_given_click)::int AS purchased,
	   p_click, p_buy_given_click,
	   impression_id % 5 = 0 AS test
FROM (SELECT *, random() < p_click AS c FROM probs) x
ORDER BY impression_id;
ALTER TABLE users ADD PRIMARY KEY (user_id);
ALTER TABLE items ADD PRIMARY KEY (item_id);
ANALYZE users, items, impressions;
DROP FUNCTION gauss_vec(float8, bigint);
DROP FUNCTION gauss();
