/*
 * Text features: PostgreSQL's text search turns a string into words
 * (to_tsvector: its parser, stemming and stop words), and the hashing trick
 * turns each word into one of text_buckets values of a bag field, so a text
 * needs no vocabulary of its own and unseen words cost nothing.
 */
#include "mtl_pg.h"

#include <limits.h>

#include "catalog/namespace.h"
#include "tsearch/ts_type.h"
#include "utils/builtins.h"
#include "utils/regproc.h"

#include "../core/rng.h"

Oid
MtlTextConfigOid(const char *name)
{
	List	   *names;

#if PG_VERSION_NUM >= 160000
	names = stringToQualifiedNameList(name, NULL);
#else
	names = stringToQualifiedNameList(name);
#endif
	return get_ts_config_oid(names, false);
}

typedef struct Word
{
	int			pos;			/* first position in the text */
	int			entry;
} Word;

static int
CompareWords(const void *a, const void *b)
{
	const Word *x = a,
			   *y = b;

	return x->pos != y->pos ? (x->pos < y->pos ? -1 : 1) : x->entry - y->entry;
}

int
MtlTextBuckets(const char *text, int len, const MtlSpec *spec, uint32 *buckets)
{
	Oid			config = MtlTextConfigOid(spec->text_config);
	TSVector	tsv = DatumGetTSVector(DirectFunctionCall2(to_tsvector_byid,
														   ObjectIdGetDatum(config),
														   PointerGetDatum(cstring_to_text_with_len(text, len))));
	WordEntry  *entries = ARRPTR(tsv);
	Word	   *words = palloc(sizeof(Word) * (tsv->size + 1));
	int			n;

	/* a text's first words, not its alphabetically first lexemes */
	for (int i = 0; i < tsv->size; i++)
	{
		words[i].entry = i;
		words[i].pos = entries[i].haspos && POSDATALEN(tsv, &entries[i]) > 0 ?
			WEP_GETPOS(POSDATAPTR(tsv, &entries[i])[0]) : INT_MAX;
	}
	qsort(words, tsv->size, sizeof(Word), CompareWords);
	n = tsv->size < spec->bag_size ? tsv->size : spec->bag_size;
	for (int k = 0; k < n; k++)
	{
		const WordEntry *e = &entries[words[k].entry];

		buckets[k] = (uint32) (mtl_hash64(STRPTR(tsv) + e->pos, e->len, 0x7e47) %
							   (uint64) spec->text_buckets);
	}
	pfree(words);
	return n;
}
