-- A census-like data set: features only (no ids), 30 categorical and 7 numeric
-- fields, two correlated binary tasks with known true probabilities.
-- psql variable: rows. Creates table census (id, features jsonb, y1, y2, p1, p2, test).
\set ON_ERROR_STOP on
SELECT setseed(0.7);
DROP TABLE IF EXISTS census;
CREATE TABLE census AS
WITH raw AS (
	SELECT g AS id,
		   ARRAY(SELECT floor(power(random(), 1.5) * (3 + 2 * k))::int FROM generate_series(1, 30) k
				 WHERE g > 0) AS c,
		   ARRAY(SELECT CASE WHEN k <= 3 THEN exp(2 * (random() + random() + random() - 1.5))
							 ELSE random() * 100 END
				 FROM generate_series(1, 7) k WHERE g > 0) AS x
	FROM generate_series(1, :rows) g
), effects AS (
	-- each field value moves the two tasks' logits; the tasks share half their effects
	SELECT id, c, x,
		   (SELECT sum(((hashint4(k * 1000 + c[k]) & 65535) / 65535.0 - 0.5) * (2.0 / sqrt(k)))
			FROM generate_series(1, 30) k) AS shared,
		   (SELECT sum(((hashint4(k * 7919 + c[k]) & 65535) / 65535.0 - 0.5) * (2.0 / sqrt(k)))
			FROM generate_series(1, 30) k) AS own
	FROM raw
)
SELECT id,
	   (SELECT jsonb_object_agg('c' || k, 'v' || c[k]) FROM generate_series(1, 30) k)
	   || (SELECT jsonb_object_agg('x' || k, round(x[k]::numeric, 3)) FROM generate_series(1, 7) k)
		   AS features,
	   p1, p2, (random() < p1)::int::float8 AS y1, (random() < p2)::int::float8 AS y2,
	   id % 5 = 0 AS test
FROM (SELECT e.*,
			 1 / (1 + exp(-(shared + 0.5 * own + 0.4 * ln(x[1]) - 0.02 * (x[4] - 50) - 0.3))) AS p1,
			 1 / (1 + exp(-(shared - 0.5 * own + 0.03 * (x[5] - 50) - 1.0))) AS p2
	  FROM effects e) t;
