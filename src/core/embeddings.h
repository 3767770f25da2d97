/*
 * Each id's side vector as scoring pools it: its id's embedding plus its
 * stored features' embeddings (those the cross slot sums), for similar-item
 * or similar-user search outside mtl (pgvector).
 */
#ifndef MTL_EMBEDDINGS_H
#define MTL_EMBEDDINGS_H

#include "format.h"

/* Floats per vector: every input copy's pool of a side, side by side. */
int			mtl_embedding_width(const MtlModel *model);

/*
 * The vector ([mtl_embedding_width]) of the id at position pos of side (user
 * or item) with its stored features. slots [n_slots], nums [n_cols + 1] and
 * scratch [E]: the caller's work space.
 */
void		mtl_side_embedding(const MtlTrained *trained, int side, int64_t pos, int32_t *slots,
							   float *nums, float *scratch, float *out);

#endif
