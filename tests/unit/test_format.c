/* The model file: round trip, and errors (never crashes) on damaged bytes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "synthetic.h"
#include "../../src/core/bytes.h"
#include "../../src/core/fit.h"
#include "../../src/core/mem.h"
#include "../../src/core/predict.h"
#include "../../src/core/rng.h"

static MtlTrained trained;
static uint8_t *bytes;
static size_t n_bytes;

static void
Train(void)
{
	MtlSpec		spec;
	double		needed,
			   *truth;
	MtlRowStore *rows = synthetic_rows(2000, 1, &truth);

	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.epochs = 2;
	spec.validation_fraction = 0.1f;	/* the summary then carries validation losses */
	CHECK(mtl_fit(&spec, rows, NULL, 0, &needed, &trained) == NULL, "fit works");
	{
		MtlTrained	small;
		const MtlError *why = mtl_fit(&spec, rows, NULL, 1024, &needed, &small);

		CHECK(why != NULL && why->code == MTL_E_MEMORY && needed > 1024,
			  "fit beyond its memory limit: a memory error before allocating");
	}
	n_bytes = mtl_encode(&trained, &bytes);
	mtl_rows_free(rows);
	mtl_free(truth);
}

static void
Score(const MtlTrained *m, int64_t user, int64_t item, double *out)
{
	MtlPredictor *p = mtl_predictor_create(m);

	mtl_schema_row_from_ids(&m->schema, &m->model.layout,
							mtl_schema_find_id(&m->schema, MTL_SIDE_USER, user),
							mtl_schema_find_id(&m->schema, MTL_SIDE_ITEM, item),
							p->slots, p->nums);
	mtl_predictor_run(p, out);
	mtl_predictor_free(p);
}

static void
TestRoundTrip(void)
{
	MtlTrained	back;
	uint8_t    *again;
	size_t		n_again;
	double		a[2],
				b[2];

	CHECK(mtl_decode(bytes, n_bytes, &back, 1) == NULL, "decode of encode works");
	n_again = mtl_encode(&back, &again);
	CHECK(n_again == n_bytes && memcmp(again, bytes, n_bytes) == 0, "re-encoding gives the same bytes");
	Score(&trained, 1003, 5007, a);
	Score(&back, 1003, 5007, b);
	CHECK(a[0] == b[0] && a[1] == b[1], "decoded model scores the same");
	CHECK(a[0] > 0 && a[0] < 1, "ctr is a probability: %g", a[0]);
	CHECK(back.schema.ids[0].n == 200 && back.schema.n_cat == 2 && back.schema.n_num == 1,
		  "schema survives");
	CHECK(back.summary.validation_rows == 200 && back.summary.epochs == 2 &&
		  back.summary.validation_loss[1] == trained.summary.validation_loss[1] &&
		  back.summary.best_epoch == trained.summary.best_epoch &&
		  back.model.spec.validation_fraction == 0.1f, "training summary survives");
	{
		int			seg = mtl_schema_find_field(&back.schema, MTL_SIDE_USER, MTL_KIND_CAT, "segment", 7);
		int			price = mtl_schema_find_field(&back.schema, MTL_SIDE_ITEM, MTL_KIND_NUM, "price", 5);

		CHECK(seg >= 0 && strcmp(back.schema.fields[seg].name, "segment") == 0 &&
			  price >= 0 && strcmp(back.schema.fields[price].name, "price") == 0 &&
			  mtl_schema_find_field(&back.schema, MTL_SIDE_ITEM, MTL_KIND_CAT, "segment", 7) < 0 &&
			  mtl_schema_find_field(&back.schema, MTL_SIDE_USER, MTL_KIND_NUM, "segment", 7) < 0 &&
			  mtl_schema_find_field(&back.schema, MTL_SIDE_USER, MTL_KIND_CAT, "segmen", 6) < 0 &&
			  mtl_schema_find_field(&back.schema, MTL_SIDE_USER, MTL_KIND_CAT, "segments", 8) < 0,
			  "decoded schema finds fields by side, kind and exact name");
	}
	mtl_trained_free(&back);
	mtl_free(again);
}

static void
TestDamage(void)
{
	MtlTrained	back;
	MtlRng		rng;
	int			errors = 0,
				trials = 0;

	/* every truncation is an error */
	for (size_t len = 0; len < n_bytes; len += 1 + len / 8)
	{
		trials++;
		errors += mtl_decode(bytes, len, &back, 1) != NULL;
	}
	CHECK(errors == trials, "%d of %d truncations rejected", errors, trials);

	/* random flips are caught by the checksum */
	mtl_rng_seed(&rng, 3);
	errors = trials = 0;
	for (int k = 0; k < 300; k++)
	{
		uint8_t    *copy = mtl_alloc(n_bytes);
		size_t		at = mtl_rng_below(&rng, n_bytes);

		memcpy(copy, bytes, n_bytes);
		copy[at] ^= (uint8_t) (1 + mtl_rng_below(&rng, 255));
		trials++;
		errors += mtl_decode(copy, n_bytes, &back, 1) != NULL;
		/* without the checksum the parser must still never crash */
		if (mtl_decode(copy, n_bytes, &back, 0) == NULL)
			mtl_trained_free(&back);
		mtl_free(copy);
	}
	CHECK(errors == trials, "%d of %d corruptions rejected", errors, trials);
	CHECK(mtl_decode((const uint8_t *) "hello world, not a model at all", 31, &back, 1) != NULL &&
		  mtl_decode((const uint8_t *) "hello world, not a model at all", 31, &back, 1)->code == MTL_E_CORRUPT,
		  "foreign bytes rejected");
	{
		uint8_t    *copy = mtl_alloc(n_bytes + 8);

		memcpy(copy, bytes, n_bytes);
		CHECK(mtl_decode(copy, n_bytes + 8, &back, 1) != NULL, "extended bytes rejected");
		mtl_free(copy);
	}
}

/*
 * A model written by mtl 0.1 (format 1, tests/data/model_v1.mtl, made by
 * tests/fuzz/make_seed.c of that version) still decodes, has no phase times,
 * and encodes again as the current format with the same parameters.
 */
static void
TestFormatOne(void)
{
	FILE	   *f = fopen("../data/model_v1.mtl", "rb");
	uint8_t		old[65536];
	size_t		n = f ? fread(old, 1, sizeof(old), f) : 0;
	MtlTrained	m,
				again;
	uint8_t    *now;
	size_t		n_now;
	const MtlError *why;

	if (f)
		fclose(f);
	CHECK(n > 0, "read tests/data/model_v1.mtl");
	why = mtl_decode(old, n, &m, 1);
	CHECK(why == NULL, "a format 1 model decodes: %s", why ? why->detail : "");
	if (why != NULL)
		return;
	CHECK(isnan(m.summary.phase_seconds[MTL_PHASE_EPOCHS]), "format 1 has no phase times");
	CHECK(m.summary.epochs == 1 && m.model.layout.n_params > 0, "its summary and parameters");
	n_now = mtl_encode(&m, &now);
	CHECK(now[4] == MTL_FORMAT_VERSION, "encoded again as format %d", now[4]);
	why = mtl_decode(now, n_now, &again, 1);
	CHECK(why == NULL && again.model.layout.n_params == m.model.layout.n_params &&
		  memcmp(again.model.params, m.model.params, sizeof(float) * m.model.layout.n_params) == 0,
		  "the same parameters in the current format");
	if (why == NULL)
		mtl_trained_free(&again);
	old[4] = MTL_FORMAT_VERSION + 1;
	why = mtl_decode(old, n, &again, 0);
	CHECK(why != NULL && why->code == MTL_E_VERSION, "a later format is refused as a version error");
	mtl_trained_free(&m);
	mtl_free(now);
}

/* CRC-32C: the standard check value, and pieces chained give the whole's, at every alignment. */
static void
TestCrc(void)
{
	uint8_t		data[67];
	int			chained = 1;

	CHECK(mtl_crc32c(0, "123456789", 9) == 0xE3069283u, "crc32c of 123456789 is e3069283");
	for (int i = 0; i < (int) sizeof(data); i++)
		data[i] = (uint8_t) (i * 37 + 11);
	for (int cut = 0; cut <= (int) sizeof(data); cut++)
		chained &= mtl_crc32c(mtl_crc32c(0, data, cut), data + cut, sizeof(data) - cut) ==
			mtl_crc32c(0, data, sizeof(data));
	CHECK(chained, "crc32c chains across every cut");
}

/*
 * Compressed parameters: smaller bytes, each parameter within its format's
 * rounding (a half's 2^-11 relative; an int8 row's half step), scores
 * close, every truncation rejected, and a compressed model re-encodes to the
 * same bytes.
 */
static void
TestCompression(void)
{
	const MtlLayout *L = &trained.model.layout;
	size_t		dense0 = (size_t) L->emb_rows * L->n_copies * L->E;

	for (int c = MTL_COMPRESS_FP16; c <= MTL_COMPRESS_INT8; c++)
	{
		MtlTrained	copy = trained,
					back;
		uint8_t    *small,
				   *again;
		size_t		n_small,
					n_again;
		double		worst = 0.0,
					a[2],
					b[2];
		int			rejected = 0;

		copy.compression = (MtlCompression) c;
		n_small = mtl_encode(&copy, &small);
		CHECK(mtl_decode(small, n_small, &back, 1) == NULL && back.compression == (MtlCompression) c,
			  "%s: decodes", mtl_compression_name(c));
		for (size_t i = 0; i < L->n_params; i++)
		{
			float		x = trained.model.params[i],
						y = back.model.params[i];
			double		bound = fabs(x) / 2048.0 + 1e-7;

			if (c == MTL_COMPRESS_INT8 && i < dense0)
			{
				float		top = 0.0f;

				for (int k = 0; k < L->E; k++)
					top = fmaxf(top, fabsf(trained.model.params[i / L->E * L->E + k]));
				bound = top / 127.0 / 2.0 + 1e-7;
			}
			worst = fmax(worst, fabs(x - y) / bound);
		}
		printf("  %s: %zu of %zu bytes, worst parameter error %.3f of its bound\n",
			   mtl_compression_name(c), n_small, n_bytes, worst);
		CHECK(worst <= 1.0, "%s: parameters within rounding (%g of the bound)", mtl_compression_name(c), worst);
		CHECK(n_small < n_bytes, "%s: smaller", mtl_compression_name(c));
		Score(&trained, 1003, 5007, a);
		Score(&back, 1003, 5007, b);
		CHECK(fabs(a[0] - b[0]) < 0.01, "%s: ctr close: %g vs %g", mtl_compression_name(c), a[0], b[0]);
		n_again = mtl_encode(&back, &again);
		CHECK(n_again == n_small && memcmp(again, small, n_small) == 0, "%s: re-encodes the same",
			  mtl_compression_name(c));
		for (size_t cut = 1; cut < n_small; cut += 97)
		{
			MtlTrained	damaged;

			rejected += mtl_decode(small, cut, &damaged, 0) != NULL;
		}
		CHECK(rejected == (int) ((n_small - 2) / 97 + 1), "%s: every truncation rejected",
			  mtl_compression_name(c));
		mtl_trained_free(&back);
		mtl_free(small);
		mtl_free(again);
	}
}

/*
 * A non-negative field with a long tail is logged before it is standardised
 * (a symmetric one and one with negative values are not), its standardised
 * values have mean 0 and std 1, scoring undoes the transform, and the model
 * file keeps it.
 */
static void
TestSkewedNumeric(void)
{
	MtlRowStore *store = mtl_rows_create(1);
	int			amount = mtl_rows_field(store, MTL_SIDE_USER, MTL_KIND_NUM, "amount", 6);
	int			age = mtl_rows_field(store, MTL_SIDE_USER, MTL_KIND_NUM, "age", 3);
	int			delta = mtl_rows_field(store, MTL_SIDE_USER, MTL_KIND_NUM, "delta", 5);
	double		raw[1000];
	MtlSpec		spec;
	MtlSchema	logged,
				plain;
	float		label = 1.0f;
	double		sum = 0,
				sum2 = 0,
				mean = 0,
				worst = 0;
	int			fa,
				fg,
				fd;

	for (int r = 0; r < 1000; r++)
	{
		raw[r] = r % 20 == 0 ? 1000.0 * (r % 7 + 1) : (r % 3);
		mtl_rows_add(store, r, r % 10, MTL_HAS_USER | MTL_HAS_ITEM, &label);
		mtl_rows_add_entry(store, amount, mtl_number_bits(raw[r]));
		mtl_rows_add_entry(store, age, mtl_number_bits(20 + r % 50));
		mtl_rows_add_entry(store, delta, mtl_number_bits(r % 20 == 0 ? 500 : -1));
		mean += raw[r] / 1000;
	}
	mtl_rows_seal(store);
	synthetic_spec(&spec, MTL_MODEL_MMOE);
	spec.log_skewed = 1;
	mtl_schema_build(&logged, store, &spec);
	spec.log_skewed = 0;
	mtl_schema_build(&plain, store, &spec);
	fa = mtl_schema_find_field(&logged, MTL_SIDE_USER, MTL_KIND_NUM, "amount", 6);
	fg = mtl_schema_find_field(&logged, MTL_SIDE_USER, MTL_KIND_NUM, "age", 3);
	fd = mtl_schema_find_field(&logged, MTL_SIDE_USER, MTL_KIND_NUM, "delta", 5);
	CHECK(logged.fields[fa].transform == MTL_NUM_LOG && logged.fields[fg].transform == MTL_NUM_PLAIN &&
		  logged.fields[fd].transform == MTL_NUM_PLAIN, "only the skewed non-negative field is logged");
	CHECK(plain.fields[fa].transform == MTL_NUM_PLAIN && fabs(plain.fields[fa].mean - mean) < 1e-9,
		  "log_skewed off: plain standardisation (mean %g)", plain.fields[fa].mean);
	for (int r = 0; r < 1000; r++)
	{
		float		z = mtl_schema_standardise(&logged, fa, raw[r]);

		sum += z;
		sum2 += (double) z * z;
	}
	CHECK(fabs(sum / 1000) < 1e-5 && fabs(sum2 / 1000 - 1) < 1e-4,
		  "logged values standardised: mean %g, variance %g", sum / 1000, sum2 / 1000);
	for (double v = -7; v < 2e5; v = v * -3 + 1)
	{
		double		back = mtl_schema_unstandardise(&logged.fields[fa],
													mtl_schema_standardise(&logged, fa, v));

		worst = fmax(worst, fabs(back - v) / (1 + fabs(v)));
	}
	CHECK(worst < 1e-5, "unstandardise undoes the log, negative values too (worst %g)", worst);
	mtl_schema_free(&logged);
	mtl_schema_free(&plain);
	mtl_rows_free(store);
	/* sums that overflow: finite stats all the same */
	store = mtl_rows_create(1);
	amount = mtl_rows_field(store, MTL_SIDE_USER, MTL_KIND_NUM, "amount", 6);
	for (int r = 0; r < 4; r++)
	{
		mtl_rows_add(store, r, r, MTL_HAS_USER | MTL_HAS_ITEM, &label);
		mtl_rows_add_entry(store, amount, mtl_number_bits(r % 2 ? 1.5e308 : -1.5e308));
	}
	mtl_rows_seal(store);
	mtl_schema_build(&plain, store, &spec);
	CHECK(isfinite(plain.fields[0].mean) && isfinite(plain.fields[0].std) && plain.fields[0].std > 0 &&
		  isfinite(mtl_schema_standardise(&plain, 0, 1.5e308)),
		  "values near DBL_MAX: finite mean %g and std %g", plain.fields[0].mean, plain.fields[0].std);
	mtl_schema_free(&plain);
	mtl_rows_free(store);
	{
		int			price = mtl_schema_find_field(&trained.schema, MTL_SIDE_ITEM, MTL_KIND_NUM, "price", 5);
		MtlTrained	back;
		uint8_t    *again;
		size_t		n_again;

		trained.schema.fields[price].transform = MTL_NUM_LOG;
		trained.model.spec.log_skewed = 1;
		n_again = mtl_encode(&trained, &again);
		CHECK(mtl_decode(again, n_again, &back, 1) == NULL &&
			  back.schema.fields[price].transform == MTL_NUM_LOG && back.model.spec.log_skewed == 1,
			  "the transform survives the model file");
		trained.schema.fields[price].transform = MTL_NUM_PLAIN;
		trained.model.spec.log_skewed = 0;
		mtl_trained_free(&back);
		mtl_free(again);
	}
}

void
test_format(void)
{
	TestCrc();
	Train();
	TestRoundTrip();
	TestCompression();
	TestDamage();
	TestFormatOne();
	TestSkewedNumeric();
	mtl_trained_free(&trained);
	mtl_free(bytes);
}
