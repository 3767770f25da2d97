-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION mtl_demo" to load this file. \quit

-- A synthetic shop with a known truth, for the quick start, tests and
-- benchmarks. Kept out of the mtl extension: a production database installs
-- mtl alone and gets nothing that creates or drops schemas.

-- Tags and titles of the items, and the hidden likes of the users, for
-- mtl_demo_shop(..., rich_features => true).
CREATE FUNCTION mtl_demo_rich_tables(target_schema text)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
	-- tags: 2 to 4 of 24; a title: adjective, colour, material, the category's noun
	EXECUTE format($q$
		CREATE TABLE %1$I.item_rich AS
		SELECT i.item_id,
			   (ARRAY['linen','cotton','wool','silk','leather','denim','plastic','bamboo'])
				   [1 + floor(random() * 8)::int] AS material,
			   ARRAY(SELECT DISTINCT (ARRAY['summer','winter','casual','formal','sale','eco','handmade',
						'bestseller','new','classic','sport','travel','gift','kids','vintage','outdoor',
						'office','party','minimal','bold','clearance','premium','local','limited'])
						[1 + floor(random() * 24)::int]
					 FROM generate_series(1, 2 + floor(random() * 3)::int) k WHERE i.item_id > 0) AS tag_list,
			   (ARRAY['Soft','Light','Warm','Elegant','Everyday','Classic','Modern','Cosy'])
				   [1 + floor(random() * 8)::int] AS adjective,
			   (ARRAY['blue','red','black','white','green','grey','beige','navy'])
				   [1 + floor(random() * 8)::int] AS colour
		FROM %1$I.items i$q$, target_schema);
	EXECUTE format($q$
		ALTER TABLE %1$I.item_rich ADD COLUMN tags jsonb;
		UPDATE %1$I.item_rich SET tags = to_jsonb(tag_list);
		ALTER TABLE %1$I.items ADD COLUMN tags jsonb, ADD COLUMN title text;
		UPDATE %1$I.items i SET tags = r.tags,
			title = r.adjective || ' ' || r.colour || ' ' || r.material || ' ' ||
				(ARRAY['shirts','dresses','shoes','jackets','bags','hats','scarves','trousers','skirts',
					   'coats','socks','belts'])[substr(i.category, 5)::int]
		FROM %1$I.item_rich r WHERE r.item_id = i.item_id$q$, target_schema);
	EXECUTE format($q$
		CREATE TABLE %1$I.user_rich AS
		SELECT u.user_id,
			   (ARRAY['summer','winter','casual','formal','sale','eco','handmade','bestseller','new',
					  'classic','sport','travel','gift','kids','vintage','outdoor','office','party',
					  'minimal','bold','clearance','premium','local','limited'])[1 + floor(random() * 24)::int]
				   AS fav_tag,
			   (ARRAY['linen','cotton','wool','silk','leather','denim','plastic','bamboo'])
				   [1 + floor(random() * 8)::int] AS fav_material
		FROM %1$I.users u$q$, target_schema);
END
$fn$;

CREATE FUNCTION mtl_demo_shop(target_schema text DEFAULT 'shop', users int DEFAULT 5000,
							  items int DEFAULT 1000, impressions int DEFAULT 200000,
							  seed float8 DEFAULT 0.42, rich_features boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
	marker text;
	-- with rich_features: what the tags, titles and histories add to a click's logit
	rich_columns text := '';
	rich_logit text := '0';
	rich_joins text := '';
	rich_select text := '';
BEGIN
	IF users < 1 OR items < 1 OR impressions < 1 THEN
		RAISE EXCEPTION 'users, items and impressions must be positive'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF seed < -1 OR seed > 1 THEN
		RAISE EXCEPTION 'seed must be between -1 and 1 (it is passed to setseed)'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF target_schema IS NULL OR target_schema = '' THEN
		RAISE EXCEPTION 'target_schema must be a schema name' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- only a schema this function made (it carries the marker comment) is replaced
	SELECT obj_description(n.oid, 'pg_namespace') INTO marker
	  FROM pg_catalog.pg_namespace n WHERE n.nspname = target_schema;
	IF FOUND THEN
		IF marker IS DISTINCT FROM 'mtl demo shop' THEN
			RAISE EXCEPTION 'schema "%" exists and was not made by mtl_demo_shop', target_schema
				USING ERRCODE = 'duplicate_schema',
					  HINT = 'Name a schema that does not exist; mtl_demo_shop replaces only schemas it made.';
		END IF;
		EXECUTE format('DROP SCHEMA %I CASCADE', target_schema);
	END IF;
	EXECUTE format('CREATE SCHEMA %1$I; COMMENT ON SCHEMA %1$I IS %2$L', target_schema, 'mtl demo shop');
	PERFORM setseed(seed);

	-- users: public features, and a hidden taste vector
	EXECUTE format($q$
		CREATE TABLE %1$I.users AS
		SELECT g::bigint AS user_id,
			   (ARRAY['student','family','professional','senior'])[1 + floor(random() * 4)::int] AS segment,
			   (ARRAY['north','south','east','west','city'])[1 + floor(random() * 5)::int] AS region,
			   random() < 0.3 AS member
		FROM generate_series(1, %2$s) g$q$, target_schema, users);
	EXECUTE format($q$
		CREATE TABLE %1$I.user_taste AS
		SELECT g::bigint AS user_id,
			   ARRAY(SELECT sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())
					 FROM generate_series(1, 4) d WHERE g > 0) AS taste
		FROM generate_series(1, %2$s) g$q$, target_schema, users);

	-- items: categorical and numeric features, hidden quality and taste
	EXECUTE format($q$
		CREATE TABLE %1$I.items AS
		SELECT g::bigint AS item_id,
			   'cat_' || (1 + floor(random() * 12)::int) AS category,
			   'brand_' || (1 + floor(random() * 40)::int) AS brand,
			   round(exp(3 + 0.8 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::numeric, 2) AS price,
			   random() < 0.2 AS on_sale
		FROM generate_series(1, %2$s) g$q$, target_schema, items);
	EXECUTE format($q$
		CREATE TABLE %1$I.item_taste AS
		SELECT g::bigint AS item_id,
			   sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS quality,
			   ARRAY(SELECT sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())
					 FROM generate_series(1, 4) d WHERE g > 0) AS taste
		FROM generate_series(1, %2$s) g$q$, target_schema, items);

	IF rich_features THEN
		PERFORM mtl_demo_rich_tables(target_schema);
		-- a tag the user likes, a material the user likes (it is in the title),
		-- tags and materials everyone likes or avoids, and the session: a category
		-- among the user's last 10 impressions
		rich_columns := ', ur.fav_tag, ur.fav_material, ir.tags, ir.material, h.prev_items,
			(SELECT count(*) FROM unnest(h.prev_items) p JOIN %1$I.items i2 ON i2.item_id = p
			 WHERE i2.category = i.category) > 0 AS session_match';
		rich_joins := ' JOIN %1$I.user_rich ur USING (user_id) JOIN %1$I.item_rich ir USING (item_id)
			JOIN history h USING (impression_id)';
		rich_logit := '(-0.9 + 0.9 * (tags ? fav_tag)::int + 0.7 * (material = fav_material)::int
			+ 0.5 * (tags ? ''bestseller'')::int - 0.5 * (tags ? ''clearance'')::int
			+ 0.4 * (material = ''silk'')::int - 0.5 * (material = ''plastic'')::int
			+ 1.0 * session_match::int)';
		rich_select := ', COALESCE((SELECT jsonb_agg(x ORDER BY k DESC) FROM unnest(prev_items) WITH ORDINALITY AS t(x, k)),
			''[]''::jsonb) AS recent_items';
	END IF;
	-- impressions: who saw what where, the true probabilities, and the outcomes
	EXECUTE format($q$
		CREATE TABLE %1$I.impressions AS
		WITH shown AS MATERIALIZED (
			SELECT g::bigint AS impression_id,
				   1 + floor(%2$s * power(random(), 1.3))::bigint AS user_id,
				   1 + floor(%3$s * power(random(), 1.8))::bigint AS item_id,
				   (ARRAY['home','home','home','home','home','search','search','search','ads','ads'])
					   [1 + floor(random() * 10)::int] AS scenario,
				   1 + floor(random() * 14)::int AS day
			FROM generate_series(1, %4$s) g
		), history AS MATERIALIZED (
			-- the items of the user's 10 impressions before this one, oldest first
			SELECT impression_id,
				   array_agg(item_id) OVER (PARTITION BY user_id ORDER BY day, impression_id
											ROWS BETWEEN 10 PRECEDING AND 1 PRECEDING) AS prev_items
			FROM shown
		), truth AS MATERIALIZED (
			SELECT s.*,
				   (SELECT sum(a * b) FROM unnest(ut.taste, it.taste) AS t(a, b)) AS affinity,
				   0.8 * sin(array_position(ARRAY['student','family','professional','senior'], u.segment) * 1.7
							 + substr(i.category, 5)::int * 2.3) AS segment_fit,
				   it.quality, u.member, ln(i.price::float8) - 3 AS log_price, i.on_sale %5$s
			FROM shown s
			JOIN %1$I.users u USING (user_id)
			JOIN %1$I.user_taste ut USING (user_id)
			JOIN %1$I.items i USING (item_id)
			JOIN %1$I.item_taste it USING (item_id) %6$s
			ORDER BY s.impression_id
		), probs AS MATERIALIZED (
			SELECT impression_id, user_id, item_id, scenario, day, affinity, quality %8$s,
				   -- the scenario changes what drives a click: taste on the home feed,
				   -- intent and price in search, the discount on ads
				   1 / (1 + exp(-(-2.2 + %7$s + segment_fit + 0.4 * quality - 0.25 * log_price
								  + 0.4 * on_sale::int
								  + CASE scenario WHEN 'search' THEN 0.7 + 1.3 * affinity - 0.6 * log_price
												  WHEN 'ads' THEN -0.6 + 0.5 * affinity + 1.0 * on_sale::int
												  ELSE 0.9 * affinity + 0.5 * segment_fit END))) AS p_click,
				   1 / (1 + exp(-(-2.2 + 0.6 * affinity + 0.7 * quality + 0.5 * member::int
								  - 0.6 * log_price))) AS p_buy_given_click
			FROM truth
			ORDER BY impression_id
		), drawn AS MATERIALIZED (
			SELECT p.*, random() < p_click AS c, random() AS buy_draw, random() AS r1, random() AS r2
			FROM probs p
			ORDER BY impression_id
		)
		SELECT impression_id, user_id, item_id, scenario, day %9$s,
			   c::int AS clicked,
			   (c AND buy_draw < p_buy_given_click)::int AS purchased,
			   CASE WHEN c AND buy_draw < p_buy_given_click THEN
					greatest(1, least(5, round(3.0 + 0.8 * quality + 0.4 * affinity
						+ 0.5 * sqrt(-2 * ln(1 - r1)) * cos(2 * pi() * r2))))::float8
			   END AS rating,
			   p_click, p_buy_given_click, p_click * p_buy_given_click AS p_purchase
		FROM drawn
		ORDER BY impression_id$q$,
		target_schema, users, items, impressions, format(rich_columns, target_schema),
		format(rich_joins, target_schema), rich_logit,
		CASE WHEN rich_features THEN ', prev_items' ELSE '' END,
		CASE WHEN rich_features THEN rich_select ELSE '' END);
	EXECUTE format('ALTER TABLE %1$I.users ADD PRIMARY KEY (user_id);
					ALTER TABLE %1$I.items ADD PRIMARY KEY (item_id);
					ANALYZE %1$I.users, %1$I.items, %1$I.impressions', target_schema);
END
$fn$;

COMMENT ON FUNCTION mtl_demo_shop(text, int, int, int, float8, boolean) IS
'create a synthetic shop in a new schema (or replace one it made before, marked by its comment ''mtl demo shop''): users, items, impressions with clicks, purchases, ratings and their true probabilities (p_click, p_buy_given_click, p_purchase); with rich_features, items also have tags and titles and impressions the user''s recent items, and the clicks depend on them';

