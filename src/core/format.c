#include "format.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bytes.h"
#include "mem.h"
#include "rng.h"

static void ReadText(MtlReader *r, MtlSpec *s);
static void ReadSequences(MtlReader *r, MtlSpec *s);
static void ReadNegativeRates(MtlReader *r, MtlSpec *s);

static const char MAGIC[4] = {'M', 'T', 'L', 'M'};

#define MAX_UNITS 65536
#define MAX_EMBEDDING 1024

static void
WriteSpec(MtlWriter *w, const MtlSpec *s)
{
	mtl_put_u32(w, (uint32_t) s->n_tasks);
	for (int t = 0; t < s->n_tasks; t++)
	{
		mtl_put_str(w, s->tasks[t].name);
		mtl_put_u8(w, (uint8_t) s->tasks[t].type);
		mtl_put_f32(w, s->tasks[t].weight);
		mtl_put_f32(w, s->tasks[t].pos_weight);
		mtl_put_u32(w, (uint32_t) (s->tasks[t].given + 1));
		mtl_put_f32(w, s->tasks[t].target_mean);
		mtl_put_f32(w, s->tasks[t].target_std);
	}
	mtl_put_u8(w, (uint8_t) s->model);
	mtl_put_u32(w, (uint32_t) s->embedding_dim);
	mtl_put_u32(w, (uint32_t) s->n_experts);
	mtl_put_u32(w, (uint32_t) s->n_levels);
	mtl_put_u32(w, (uint32_t) s->shared_experts);
	mtl_put_u32(w, (uint32_t) s->task_experts);
	mtl_put_u32(w, (uint32_t) s->n_expert_layers);
	mtl_put_i32_array(w, s->expert_units, s->n_expert_layers);
	mtl_put_u32(w, (uint32_t) s->n_bottom_layers);
	mtl_put_i32_array(w, s->bottom_units, s->n_bottom_layers);
	mtl_put_u32(w, (uint32_t) s->n_tower_layers);
	mtl_put_i32_array(w, s->tower_units, s->n_tower_layers);
	mtl_put_str(w, s->scenario);
	mtl_put_u32(w, (uint32_t) s->epochs);
	mtl_put_u32(w, (uint32_t) s->batch_size);
	mtl_put_f32(w, s->learning_rate);
	mtl_put_f32(w, s->lr_decay);
	mtl_put_f32(w, s->clip_norm);
	mtl_put_f32(w, s->l2);
	mtl_put_f32(w, s->dropout);
	mtl_put_f32(w, s->id_dropout);
	mtl_put_u8(w, (uint8_t) s->loss_weighting);
	mtl_put_f32(w, s->gradnorm_alpha);
	mtl_put_f32(w, s->dwa_temperature);
	mtl_put_f32(w, s->validation_fraction);
	mtl_put_u32(w, (uint32_t) s->patience);
	mtl_put_u64(w, s->seed);
	mtl_put_u8(w, (uint8_t) s->interaction);
	mtl_put_f32(w, s->embedding_l2);
	mtl_put_u32(w, (uint32_t) s->validate_every);
	mtl_put_u32(w, (uint32_t) s->bag_size);
	mtl_put_u32(w, (uint32_t) s->text_buckets);
	mtl_put_str(w, s->text_config);
	mtl_put_u8(w, (uint8_t) s->n_text);
	for (int k = 0; k < s->n_text; k++)
		mtl_put_str(w, s->text_fields[k]);
	mtl_put_u32(w, (uint32_t) s->sequence_length);
	mtl_put_u8(w, (uint8_t) s->sequence_pooling);
	mtl_put_u32(w, (uint32_t) s->attention_units);
	mtl_put_u8(w, (uint8_t) s->n_seq);
	for (int k = 0; k < s->n_seq; k++)
		mtl_put_str(w, s->seq_fields[k]);
	for (int t = 0; t < s->n_tasks; t++)
		mtl_put_f32(w, s->tasks[t].negative_rate);
	mtl_put_u8(w, (uint8_t) (s->log_skewed != 0));
}

static void
WriteSchema(MtlWriter *w, const MtlSchema *s)
{
	mtl_put_u32(w, (uint32_t) s->n_fields);
	for (int f = 0; f < s->n_fields; f++)
	{
		const MtlFeature *feat = &s->fields[f];

		mtl_put_u8(w, feat->side);
		mtl_put_u8(w, feat->kind);
		mtl_put_str(w, feat->name);
		if (feat->kind != MTL_KIND_NUM)
		{
			mtl_put_u64(w, (uint64_t) feat->n_values);
			mtl_put_u64_array(w, feat->values, feat->n_values);
		}
		else
		{
			mtl_put_f64(w, feat->mean);
			mtl_put_f64(w, feat->std);
			mtl_put_u8(w, feat->transform);
		}
		if (mtl_kind_is_multi(feat->kind))
			mtl_put_u32(w, (uint32_t) feat->width);
	}
	for (int side = 0; side < 2; side++)
	{
		const MtlIdTable *t = &s->ids[side];

		mtl_put_u64(w, (uint64_t) t->n);
		mtl_put_u64_array(w, (const uint64_t *) t->ids, t->n);
		mtl_put_i32_array(w, t->cat, (size_t) t->n * t->n_slot_cols);
		mtl_put_f32_array(w, t->num, (size_t) t->n * t->n_num_cols);
	}
}

/* Gate utilisation after the parameters: its sizes come from the layout. */
static void
WriteGateUse(MtlWriter *w, const MtlTrained *trained)
{
	const MtlLayout *L = &trained->model.layout;

	mtl_put_u64(w, (uint64_t) trained->summary.gate_rows);
	for (int k = 0; k < L->n_levels; k++)
		for (int o = 0; o <= trained->model.spec.n_tasks; o++)
			mtl_put_f32_array(w, trained->summary.gate_use[k][o], L->levels[k].gate_n[o]);
}

static void
WriteHoldout(MtlWriter *w, const MtlTrained *trained)
{
	for (int t = 0; t < trained->model.spec.n_tasks; t++)
	{
		const MtlHoldout *h = &trained->summary.holdout[t];

		mtl_put_u64(w, (uint64_t) h->rows);
		mtl_put_f64(w, h->auc);
		mtl_put_f64(w, h->logloss);
		mtl_put_f64(w, h->rmse);
		mtl_put_f64(w, h->mae);
	}
}

const char *
mtl_compression_name(MtlCompression c)
{
	return c == MTL_COMPRESS_FP16 ? "fp16" : c == MTL_COMPRESS_INT8 ? "int8" : "none";
}

/* IEEE half from float, rounding to nearest even; overflow gives infinity. */
static uint16_t
HalfFromFloat(float f)
{
	uint32_t	x;
	uint32_t	sign,
				mant;
	int			exp;

	memcpy(&x, &f, 4);
	sign = (x >> 16) & 0x8000u;
	exp = (int) ((x >> 23) & 0xff) - 127 + 15;
	mant = x & 0x7fffffu;
	if (((x >> 23) & 0xff) == 0xff)		/* infinity or NaN */
		return (uint16_t) (sign | 0x7c00u | (mant ? 0x200u : 0));
	if (exp >= 31)
		return (uint16_t) (sign | 0x7c00u);
	if (exp <= 0)
	{
		/* subnormal half (or zero): shift the full mantissa into place */
		uint32_t	full = mant | 0x800000u,
					shift = (uint32_t) (14 - exp),
					half,
					rest,
					halfway;

		if (exp < -10)
			return (uint16_t) sign;
		half = full >> shift;
		rest = full & ((1u << shift) - 1);
		halfway = 1u << (shift - 1);
		if (rest > halfway || (rest == halfway && (half & 1)))
			half++;
		return (uint16_t) (sign | half);
	}
	{
		uint32_t	half = ((uint32_t) exp << 10) | (mant >> 13),
					rest = mant & 0x1fffu;

		if (rest > 0x1000u || (rest == 0x1000u && (half & 1)))
			half++;				/* may carry into the exponent: still right */
		return (uint16_t) (sign | half);
	}
}

static float
FloatFromHalf(uint16_t h)
{
	uint32_t	sign = ((uint32_t) h & 0x8000u) << 16,
				exp = (h >> 10) & 0x1f,
				mant = h & 0x3ffu,
				x;
	float		f;

	if (exp == 0)
	{
		f = ldexpf((float) mant, -24);
		return sign ? -f : f;
	}
	if (exp == 31)
		x = sign | 0x7f800000u | (mant << 13);
	else
		x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
	memcpy(&f, &x, 4);
	return f;
}

static void
PutHalves(MtlWriter *w, const float *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		uint16_t	h = HalfFromFloat(v[i]);

		mtl_put_u8(w, (uint8_t) (h & 0xff));
		mtl_put_u8(w, (uint8_t) (h >> 8));
	}
}

/*
 * The parameters as trained->compression says: a byte naming it, then
 * float32s; or halves; or each embedding row as a float32 scale and E int8
 * (value = scale * q, scale = largest magnitude / 127), then the dense
 * parameters as halves.
 */
static void
WriteParams(MtlWriter *w, const MtlTrained *trained)
{
	const MtlLayout *L = &trained->model.layout;
	const float *p = trained->model.params;
	size_t		dense0 = (size_t) L->emb_rows * L->n_copies * L->E;

	mtl_put_u8(w, (uint8_t) trained->compression);
	if (trained->compression == MTL_COMPRESS_NONE)
	{
		mtl_put_f32_array(w, p, L->n_params);
		return;
	}
	if (trained->compression == MTL_COMPRESS_FP16)
	{
		PutHalves(w, p, L->n_params);
		return;
	}
	for (size_t row = 0; row < dense0 / L->E; row++)
	{
		const float *v = p + row * L->E;
		float		top = 0.0f,
					scale;

		for (int i = 0; i < L->E; i++)
			top = fmaxf(top, fabsf(v[i]));
		scale = top / 127.0f;
		mtl_put_f32(w, scale);
		for (int i = 0; i < L->E; i++)
			mtl_put_u8(w, (uint8_t) (int8_t) (scale > 0.0f ? lrintf(v[i] / scale) : 0));
	}
	PutHalves(w, p + dense0, L->n_params - dense0);
}

size_t
mtl_encode(const MtlTrained *trained, uint8_t **out)
{
	MtlWriter	w = {0};
	const MtlTrainSummary *sum = &trained->summary;
	uint64_t	hash;
	uint32_t	crc;
	int			record;

	mtl_put_bytes(&w, MAGIC, 4);
	mtl_put_u32(&w, MTL_FORMAT_VERSION);
	mtl_put_u64(&w, 0);			/* content hash, filled below */
	mtl_put_u64(&w, 0);			/* total length, filled below */
	WriteSpec(&w, &trained->model.spec);
	WriteSchema(&w, &trained->schema);
	mtl_put_u64(&w, (uint64_t) sum->rows);
	mtl_put_u64(&w, (uint64_t) sum->validation_rows);
	mtl_put_u32(&w, (uint32_t) sum->epochs);
	mtl_put_u32(&w, (uint32_t) sum->best_epoch);
	for (int e = 0; e < sum->epochs; e++)
		mtl_put_f64(&w, sum->epoch_loss[e]);
	if (sum->validation_rows > 0)
		for (int e = 0; e < sum->epochs; e++)
			mtl_put_f64(&w, sum->validation_loss[e]);
	for (int e = 0; e < sum->epochs; e++)
		mtl_put_f32_array(&w, sum->task_loss[e], trained->model.spec.n_tasks);
	mtl_put_f32_array(&w, sum->loss_weight, trained->model.spec.n_tasks);
	/* wall-clock time would make equal trainings give unequal bytes */
	record = trained->model.spec.record_seconds;
	mtl_put_f64(&w, record ? sum->seconds : NAN);
	mtl_put_u32(&w, MTL_N_PHASES);
	for (int p = 0; p < MTL_N_PHASES; p++)
		mtl_put_f64(&w, record ? sum->phase_seconds[p] : NAN);
	mtl_put_u64(&w, trained->model.layout.n_params);
	WriteParams(&w, trained);
	WriteGateUse(&w, trained);
	WriteHoldout(&w, trained);

	hash = mtl_hash64(w.data + MTL_HEADER_SIZE, w.len - MTL_HEADER_SIZE, 0);
	for (int i = 0; i < 8; i++)
	{
		w.data[8 + i] = (uint8_t) (hash >> (8 * i));
		w.data[16 + i] = (uint8_t) ((uint64_t) (w.len + MTL_TRAILER_SIZE) >> (8 * i));
	}
	crc = mtl_crc32c(0, w.data, w.len);
	mtl_put_u32(&w, crc);
	*out = w.data;
	return w.len;
}

static int
ReadUnits(MtlReader *r, int *count, int *units)
{
	uint32_t	n = mtl_get_u32(r);

	if (n > MTL_MAX_LAYERS)
	{
		mtl_reader_fail(r, "too many layers");
		return 0;
	}
	*count = (int) n;
	for (uint32_t l = 0; l < n; l++)
	{
		uint32_t	u = mtl_get_u32(r);

		if (u < 1 || u > MAX_UNITS)
			mtl_reader_fail(r, "layer width out of range");
		units[l] = (int) u;
	}
	return !r->failed;
}

static void
ReadTask(MtlReader *r, MtlSpec *s, int t)
{
	MtlTask    *task = &s->tasks[t];
	char	   *name = mtl_get_str(r, MTL_NAME_LEN - 1);
	uint8_t		type = mtl_get_u8(r);
	uint32_t	given;

	if (name == NULL)
		return;
	strcpy(task->name, name);
	mtl_free(name);
	if (type > MTL_TASK_REGRESSION)
		{ mtl_reader_fail(r, "unknown task type"); return; }
	task->type = (MtlTaskType) type;
	task->weight = mtl_get_f32(r);
	task->pos_weight = mtl_get_f32(r);
	given = mtl_get_u32(r);
	task->target_mean = mtl_get_f32(r);
	task->target_std = mtl_get_f32(r);
	task->negative_rate = 1.0f; /* format 4 reads it after the sequences */
	if (!isfinite(task->weight) || task->weight < 0 ||
		!isfinite(task->pos_weight) || !(task->pos_weight > 0) ||
		!isfinite(task->target_mean) || !isfinite(task->target_std) ||
		!(task->target_std > 0))
		{ mtl_reader_fail(r, "invalid task settings"); return; }
	if (given > MTL_MAX_TASKS)
		{ mtl_reader_fail(r, "invalid conditional task"); return; }
	task->given = (int) given - 1;
}

static void
ReadTraining(MtlReader *r, MtlSpec *s)
{
	uint8_t		weighting;

	s->epochs = (int) mtl_get_u32(r);
	s->batch_size = (int) mtl_get_u32(r);
	s->learning_rate = mtl_get_f32(r);
	s->lr_decay = mtl_get_f32(r);
	s->clip_norm = mtl_get_f32(r);
	s->l2 = mtl_get_f32(r);
	s->dropout = mtl_get_f32(r);
	s->id_dropout = mtl_get_f32(r);
	weighting = mtl_get_u8(r);
	s->gradnorm_alpha = mtl_get_f32(r);
	s->dwa_temperature = mtl_get_f32(r);
	s->validation_fraction = mtl_get_f32(r);
	s->patience = (int) mtl_get_u32(r);
	if (weighting > MTL_WEIGHTING_LAST)
		{ mtl_reader_fail(r, "unknown loss weighting"); return; }
	s->loss_weighting = (MtlLossWeighting) weighting;
	/* dropout is applied when training only, but a mask buffer is sized by it */
	if (!(s->dropout >= 0.0f && s->dropout < 1.0f))
		{ mtl_reader_fail(r, "invalid dropout"); return; }
	if (!(s->validation_fraction >= 0.0f && s->validation_fraction < 1.0f) ||
		s->patience < 0 || s->patience > MTL_MAX_EPOCHS)
		{ mtl_reader_fail(r, "invalid validation settings"); return; }
	s->seed = mtl_get_u64(r);
}

static void
ReadSpec(MtlReader *r, MtlSpec *s, uint32_t version)
{
	uint32_t	n_tasks = mtl_get_u32(r);
	uint8_t		model;
	char	   *scenario;

	if (r->failed)
		return;
	if (n_tasks < 1 || n_tasks > MTL_MAX_TASKS)
		{ mtl_reader_fail(r, "number of tasks out of range"); return; }
	s->n_tasks = (int) n_tasks;
	for (int t = 0; t < s->n_tasks && !r->failed; t++)
		ReadTask(r, s, t);
	if (r->failed)
		return;
	model = mtl_get_u8(r);
	if (model > MTL_MODEL_LAST)
		{ mtl_reader_fail(r, "unknown model type"); return; }
	s->model = (MtlModelType) model;
	s->embedding_dim = (int) mtl_get_u32(r);
	s->n_experts = (int) mtl_get_u32(r);
	s->n_levels = (int) mtl_get_u32(r);
	s->shared_experts = (int) mtl_get_u32(r);
	s->task_experts = (int) mtl_get_u32(r);
	if (s->embedding_dim < 1 || s->embedding_dim > MAX_EMBEDDING)
		{ mtl_reader_fail(r, "embedding dimension out of range"); return; }
	if (s->n_experts < 0 || s->n_experts > MTL_MAX_EXPERTS ||
		s->shared_experts < 0 || s->shared_experts > MTL_MAX_EXPERTS ||
		s->task_experts < 0 || s->task_experts > MTL_MAX_EXPERTS ||
		s->n_levels < 0 || s->n_levels > MTL_MAX_LEVELS)
		{ mtl_reader_fail(r, "number of experts out of range"); return; }
	if (!ReadUnits(r, &s->n_expert_layers, s->expert_units) ||
		!ReadUnits(r, &s->n_bottom_layers, s->bottom_units) ||
		!ReadUnits(r, &s->n_tower_layers, s->tower_units))
		return;
	scenario = mtl_get_str(r, MTL_NAME_LEN - 1);
	if (scenario == NULL)
		return;
	strcpy(s->scenario, scenario);
	mtl_free(scenario);
	ReadTraining(r, s);
	s->interaction = MTL_INTERACTION_IDS;
	s->embedding_l2 = s->l2;
	if (version >= 3 && !r->failed)
	{
		uint8_t		interaction = mtl_get_u8(r);

		if (interaction > MTL_INTERACTION_LAST)
			{ mtl_reader_fail(r, "unknown interaction"); return; }
		s->interaction = (MtlInteraction) interaction;
		s->embedding_l2 = mtl_get_f32(r);
		if (!(s->embedding_l2 >= 0.0f) || !isfinite(s->embedding_l2))
			{ mtl_reader_fail(r, "invalid embedding_l2"); return; }
		s->validate_every = (int) mtl_get_u32(r);
		if (s->validate_every < 0)
			{ mtl_reader_fail(r, "invalid validation settings"); return; }
	}
	s->bag_size = 1;
	s->n_text = 0;
	s->n_seq = 0;
	s->sequence_length = 0;
	s->sequence_pooling = 0;
	s->attention_units = 0;
	s->text_buckets = 0;
	s->text_config[0] = '\0';
	if (version >= 4 && !r->failed)
	{
		ReadText(r, s);
		ReadNegativeRates(r, s);
	}
	s->log_skewed = 0;
	if (version >= 5 && !r->failed)
	{
		uint8_t		log_skewed = mtl_get_u8(r);

		if (log_skewed > 1)
			{ mtl_reader_fail(r, "invalid log_skewed"); return; }
		s->log_skewed = log_skewed;
	}
}

/* Each task's negative_rate: (0, 1], below 1 for one unconditional binary task at most. */
static void
ReadNegativeRates(MtlReader *r, MtlSpec *s)
{
	int			sampled = 0;

	for (int t = 0; t < s->n_tasks && !r->failed; t++)
	{
		MtlTask    *task = &s->tasks[t];

		task->negative_rate = mtl_get_f32(r);
		if (!(task->negative_rate > 0.0f && task->negative_rate <= 1.0f))
			{ mtl_reader_fail(r, "invalid negative_rate"); return; }
		if (task->negative_rate < 1.0f &&
			(task->type != MTL_TASK_BINARY || task->given >= 0 || sampled++ > 0))
			{ mtl_reader_fail(r, "invalid negative_rate"); return; }
	}
}

/* Copy a string of at most MTL_NAME_LEN - 1 bytes into to; false on failure. */
static bool
ReadName(MtlReader *r, char *to)
{
	char	   *name = mtl_get_str(r, MTL_NAME_LEN - 1);

	if (name == NULL)
		return false;
	strcpy(to, name);
	mtl_free(name);
	return true;
}

static void
ReadText(MtlReader *r, MtlSpec *s)
{
	uint32_t	bag_size = mtl_get_u32(r),
				buckets = mtl_get_u32(r);
	uint8_t		n_text;

	if (bag_size > MTL_MAX_BAG || buckets > INT32_MAX)
		{ mtl_reader_fail(r, "invalid bag settings"); return; }
	s->bag_size = (int) bag_size;
	s->text_buckets = (int) buckets;
	if (!ReadName(r, s->text_config))
		return;
	n_text = mtl_get_u8(r);
	if (n_text > MTL_MAX_TEXT)
		{ mtl_reader_fail(r, "too many text fields"); return; }
	for (int k = 0; k < n_text; k++)
		if (!ReadName(r, s->text_fields[k]))
			return;
	s->n_text = n_text;
	ReadSequences(r, s);
}

static void
ReadSequences(MtlReader *r, MtlSpec *s)
{
	uint32_t	length = mtl_get_u32(r);
	uint8_t		pooling = mtl_get_u8(r);
	uint32_t	units = mtl_get_u32(r);
	uint8_t		n_seq = mtl_get_u8(r);

	if (r->failed)
		return;
	if (length > MTL_MAX_BAG || (pooling != 0 && pooling != MTL_POOL_MEAN && pooling != MTL_POOL_DIN) ||
		units > MTL_MAX_ATTENTION || n_seq > MTL_MAX_TEXT)
		{ mtl_reader_fail(r, "invalid sequence settings"); return; }
	s->sequence_length = (int) length;
	s->sequence_pooling = (MtlSequencePooling) pooling;
	s->attention_units = (int) units;
	for (int k = 0; k < n_seq; k++)
		if (!ReadName(r, s->seq_fields[k]))
			return;
	s->n_seq = n_seq;
}

static void
ReadField(MtlReader *r, MtlSchema *s, int f, uint32_t version)
{
	MtlFeature *feat = &s->fields[f];

	feat->side = mtl_get_u8(r);
	feat->kind = mtl_get_u8(r);
	if (feat->side > MTL_SIDE_CONTEXT || feat->kind > MTL_KIND_LAST)
		{ mtl_reader_fail(r, "invalid feature field"); return; }
	feat->name = mtl_get_str(r, MTL_MAX_FIELD_NAME);
	feat->width = 1;
	if (feat->kind != MTL_KIND_NUM)
	{
		uint64_t	n = mtl_get_u64(r);

		if (n >= INT32_MAX)
			{ mtl_reader_fail(r, "vocabulary too large"); return; }
		feat->n_values = (int64_t) n;
		feat->values = mtl_get_u64_array(r, n);
	}
	else
	{
		feat->mean = mtl_get_f64(r);
		feat->std = mtl_get_f64(r);
		if (!isfinite(feat->mean) || !isfinite(feat->std) || !(feat->std > 0))
			{ mtl_reader_fail(r, "invalid feature statistics"); return; }
		feat->transform = version >= 5 ? mtl_get_u8(r) : MTL_NUM_PLAIN;
		if (feat->transform > MTL_NUM_LAST)
			{ mtl_reader_fail(r, "invalid numeric transform"); return; }
	}
	if (mtl_kind_is_multi(feat->kind))
	{
		uint32_t	width = mtl_get_u32(r);

		if (width < 1 || width > MTL_MAX_BAG)
			{ mtl_reader_fail(r, "invalid bag width"); return; }
		feat->width = (int) width;
	}
}

/*
 * Stored categorical indices must stay inside their field's vocabulary (a
 * bag's empty slots are -1), and bag weights must be finite.
 */
static void
CheckIdFeatures(MtlReader *r, const MtlSchema *s, int side)
{
	const MtlIdTable *t = &s->ids[side];

	for (int f = 0; f < s->n_fields; f++)
	{
		const MtlFeature *feat = &s->fields[f];
		int			lowest = mtl_kind_is_multi(feat->kind) ? -1 : 0;
		int			group = feat->kind == MTL_KIND_SEQ ? 1 + s->n_item_cats : 1;

		if (feat->side != side || feat->kind == MTL_KIND_NUM)
			continue;
		if (feat->width % group != 0)
			{ mtl_reader_fail(r, "invalid sequence width"); return; }
		for (int64_t i = 0; i < t->n; i++)
			for (int k = 0; k < feat->width; k++)
			{
				int32_t		v = t->cat[i * t->n_slot_cols + feat->side_slot + k];
				/* a history item's id, or its categorical value */
				int64_t		highest = feat->kind != MTL_KIND_SEQ ? feat->n_values :
					k % group == 0 ? s->ids[MTL_SIDE_ITEM].n :
					s->fields[s->item_cat_field[k % group - 1]].n_values;

				if (v < lowest || v > highest)
					{ mtl_reader_fail(r, "stored feature index out of range"); return; }
				/* 0 (missing) only opens a history; a later item is -1 or an item */
				if (feat->kind == MTL_KIND_SEQ && k > 0 && k % group == 0 && v == 0)
					{ mtl_reader_fail(r, "stored history item out of range"); return; }
			}
	}
	for (int64_t i = 0; i < t->n * t->n_num_cols; i++)
		if (!isfinite(t->num[i]))
			{ mtl_reader_fail(r, "stored feature value not finite"); return; }
}

static void
ReadSchema(MtlReader *r, MtlSchema *s, uint32_t version)
{
	uint32_t	n_fields = mtl_get_u32(r);

	if (r->failed)
		return;
	if (n_fields > MTL_MAX_FIELDS)
		{ mtl_reader_fail(r, "too many feature fields"); return; }
	s->fields = mtl_alloc(sizeof(MtlFeature) * (n_fields + 1));
	s->cat_field = mtl_alloc(sizeof(int) * (n_fields + 1));
	s->num_field = mtl_alloc(sizeof(int) * (n_fields + 1));
	for (uint32_t f = 0; f < n_fields && !r->failed; f++)
	{
		s->n_fields = (int) f + 1;
		ReadField(r, s, (int) f, version);
	}
	if (r->failed)
		return;
	mtl_schema_assign_columns(s);
	for (int side = 0; side < 2 && !r->failed; side++)
	{
		MtlIdTable *t = &s->ids[side];
		uint64_t	n = mtl_get_u64(r);

		if (n >= INT32_MAX)
			{ mtl_reader_fail(r, "too many ids"); return; }
		t->n = (int64_t) n;
		t->ids = (int64_t *) mtl_get_u64_array(r, n);
		if (n > 0 && (size_t) t->n_slot_cols + t->n_num_cols > SIZE_MAX / 8 / n)
			{ mtl_reader_fail(r, "id table too large"); return; }
		t->cat = mtl_get_i32_array(r, n * (size_t) t->n_slot_cols);
		t->num = mtl_get_f32_array(r, n * (size_t) t->n_num_cols);
	}
	/* after both tables: a user's history names items */
	for (int side = 0; side < 2 && !r->failed; side++)
		CheckIdFeatures(r, s, side);
	if (!r->failed)
	{
		mtl_schema_index_fields(s);
		mtl_schema_index_ids(s);
	}
}

static void
ReadSummary(MtlReader *r, MtlTrainSummary *sum, int n_tasks, uint32_t version)
{
	uint32_t	epochs,
				best;

	sum->rows = (int64_t) mtl_get_u64(r);
	sum->validation_rows = (int64_t) mtl_get_u64(r);
	epochs = mtl_get_u32(r);
	best = mtl_get_u32(r);
	if (epochs > MTL_MAX_EPOCHS)
		{ mtl_reader_fail(r, "too many epochs"); return; }
	if (best > epochs || sum->rows < 0 || sum->validation_rows < 0)
		{ mtl_reader_fail(r, "invalid training summary"); return; }
	sum->epochs = (int) epochs;
	sum->best_epoch = (int) best;
	for (uint32_t e = 0; e < epochs; e++)
		sum->epoch_loss[e] = mtl_get_f64(r);
	for (uint32_t e = 0; e < epochs; e++)
		sum->validation_loss[e] = sum->validation_rows > 0 ? mtl_get_f64(r) : NAN;
	for (uint32_t e = 0; e < epochs; e++)
		for (int t = 0; t < n_tasks; t++)
			sum->task_loss[e][t] = mtl_get_f32(r);
	for (int t = 0; t < n_tasks; t++)
		sum->loss_weight[t] = mtl_get_f32(r);
	sum->seconds = mtl_get_f64(r);
	for (int p = 0; p < MTL_N_PHASES; p++)
		sum->phase_seconds[p] = NAN;
	if (version >= 2)
	{
		/* phases: a later format may know more of them than this one */
		uint32_t	n_phases = mtl_get_u32(r);

		if (n_phases > 64)
			{ mtl_reader_fail(r, "invalid training summary"); return; }
		for (uint32_t p = 0; p < n_phases; p++)
		{
			double		seconds = mtl_get_f64(r);

			if (p < MTL_N_PHASES)
				sum->phase_seconds[p] = seconds;
		}
	}
}

static void
ReadGateUse(MtlReader *r, MtlTrained *m)
{
	const MtlLayout *L = &m->model.layout;

	m->summary.gate_rows = (int64_t) mtl_get_u64(r);
	if (m->summary.gate_rows < 0)
		{ mtl_reader_fail(r, "invalid training summary"); return; }
	for (int k = 0; k < L->n_levels; k++)
		for (int o = 0; o <= m->model.spec.n_tasks; o++)
			for (int j = 0; j < L->levels[k].gate_n[o]; j++)
				m->summary.gate_use[k][o][j] = mtl_get_f32(r);
}

static void
ReadHoldout(MtlReader *r, MtlTrained *m)
{
	for (int t = 0; t < m->model.spec.n_tasks; t++)
	{
		MtlHoldout *h = &m->summary.holdout[t];

		h->rows = (int64_t) mtl_get_u64(r);
		h->auc = mtl_get_f64(r);
		h->logloss = mtl_get_f64(r);
		h->rmse = mtl_get_f64(r);
		h->mae = mtl_get_f64(r);
		if (h->rows < 0 || h->rows > m->summary.validation_rows)
			{ mtl_reader_fail(r, "invalid held-out metrics"); return; }
	}
}

/* n halves into v; 0 (reader failed) when they do not fit or one is not finite. */
static int
GetHalves(MtlReader *r, float *v, size_t n)
{
	if (n > (r->len - r->pos) / 2)
		{ mtl_reader_fail(r, "array longer than the data"); return 0; }
	for (size_t i = 0; i < n; i++)
	{
		v[i] = FloatFromHalf((uint16_t) (r->data[r->pos] | (r->data[r->pos + 1] << 8)));
		r->pos += 2;
		if (!isfinite(v[i]))
			{ mtl_reader_fail(r, "a compressed parameter is not finite"); return 0; }
	}
	return 1;
}

static void
ReadCompressedParams(MtlReader *r, MtlTrained *m)
{
	const MtlLayout *L = &m->model.layout;
	size_t		dense0 = (size_t) L->emb_rows * L->n_copies * L->E;
	size_t		rows = dense0 / L->E;
	float	   *p;

	if (m->compression == MTL_COMPRESS_FP16)
		dense0 = 0;
	else if (rows > (r->len - r->pos) / (4 + (size_t) L->E))
		{ mtl_reader_fail(r, "array longer than the data"); return; }
	p = mtl_alloc(sizeof(float) * (L->n_params + 1));
	for (size_t row = 0; row < dense0 / L->E; row++)
	{
		float		scale = mtl_get_f32(r);

		if (!(scale >= 0.0f) || !isfinite(scale))
			{ mtl_reader_fail(r, "invalid int8 scale"); mtl_free(p); return; }
		for (int i = 0; i < L->E; i++)
			p[row * L->E + i] = scale * (float) (int8_t) r->data[r->pos++];
	}
	if (!GetHalves(r, p + dense0, L->n_params - dense0))
		{ mtl_free(p); return; }
	m->model.params = p;
}

static void
ReadParams(MtlReader *r, MtlTrained *m, uint32_t version)
{
	uint64_t	n = mtl_get_u64(r);
	const MtlError *why;

	if (r->failed)
		return;
	why = mtl_schema_shape(&m->schema, m->model.spec.scenario, m->model.spec.sequence_pooling,
						   &m->model.shape);
	if (why != NULL)
		{ mtl_reader_fail(r, why->detail); return; }
	why = mtl_layout_build(&m->model.layout, &m->model.spec, &m->model.shape);
	if (why != NULL)
		{ mtl_reader_fail(r, why->detail); return; }
	if (n != m->model.layout.n_params)
		{ mtl_reader_fail(r, "parameter count does not match the architecture"); return; }
	m->compression = version >= 4 ? (MtlCompression) mtl_get_u8(r) : MTL_COMPRESS_NONE;
	if (r->failed || m->compression > MTL_COMPRESS_LAST)
		{ mtl_reader_fail(r, "unknown parameter compression"); return; }
	if (m->compression == MTL_COMPRESS_NONE)
		m->model.params = mtl_get_f32_array(r, n);
	else
		ReadCompressedParams(r, m);
}

const MtlError *
mtl_decode(const uint8_t *data, size_t len, MtlTrained *m, int check_crc)
{
	MtlReader	r = {data, len, 0, NULL};
	uint64_t	total;
	uint32_t	version;

	memset(m, 0, sizeof(*m));
	if (len < MTL_HEADER_SIZE + MTL_TRAILER_SIZE || memcmp(data, MAGIC, 4) != 0)
		MTL_FAIL(MTL_E_CORRUPT, "not an mtl model");
	r.pos = 4;
	version = mtl_get_u32(&r);
	if (version < MTL_FORMAT_OLDEST || version > MTL_FORMAT_VERSION)
		MTL_FAIL(MTL_E_VERSION, "unsupported model format version");
	(void) mtl_get_u64(&r);
	total = mtl_get_u64(&r);
	if (total != len)
		MTL_FAIL(MTL_E_CORRUPT, "model length does not match its header (truncated or extended)");
	if (check_crc)
	{
		uint32_t	stored = 0;

		for (int i = 0; i < 4; i++)
			stored |= (uint32_t) data[len - 4 + i] << (8 * i);
		if (mtl_crc32c(0, data, len - 4) != stored)
			MTL_FAIL(MTL_E_CORRUPT, "checksum mismatch (the model bytes are corrupted)");
	}
	r.len = len - MTL_TRAILER_SIZE;
	ReadSpec(&r, &m->model.spec, version);
	ReadSchema(&r, &m->schema, version);
	ReadSummary(&r, &m->summary, m->model.spec.n_tasks, version);
	ReadParams(&r, m, version);
	if (!r.failed)
		ReadGateUse(&r, m);
	if (!r.failed)
		ReadHoldout(&r, m);
	if (r.failed == NULL && r.pos != r.len)
		mtl_reader_fail(&r, "trailing bytes after the parameters");
	if (r.failed)
	{
		mtl_trained_free(m);
		return mtl_error_corrupt(r.failed);
	}
	return NULL;
}

void
mtl_trained_free(MtlTrained *m)
{
	mtl_model_free(&m->model);
	mtl_schema_free(&m->schema);
}

int
mtl_model_key(const uint8_t *data, size_t len, MtlModelKey *key)
{
	if (len < MTL_HEADER_SIZE + MTL_TRAILER_SIZE)
		return 0;
	key->len = len;
	key->content_hash = 0;
	key->crc = 0;
	for (int i = 0; i < 8; i++)
		key->content_hash |= (uint64_t) data[8 + i] << (8 * i);
	for (int i = 0; i < 4; i++)
		key->crc |= (uint32_t) data[len - 4 + i] << (8 * i);
	return 1;
}
