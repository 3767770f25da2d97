/*
 * Continue training a trained model on new rows (mtl_update).
 *
 * The updated model keeps the old one's architecture, fields and numeric
 * statistics. Vocabularies grow: new user and item ids get embedding rows
 * that start at zero (an unseen id's contribution, so a new id starts where
 * the old model put it), new categorical values start as a copy of their
 * field's "unseen" row, a new scenario starts with the shared towers. Tasks
 * may be added after the old ones: each gets a fresh tower, gates and (PLE,
 * ESMM) task experts; everything the old model had is copied over. Fields the
 * old model did not have are ignored.
 *
 * freeze_shared keeps everything below the towers (embeddings, experts,
 * gates) as it was, so only the towers (with their scenario parts) train.
 */
#ifndef MTL_UPDATE_H
#define MTL_UPDATE_H

#include "format.h"
#include "rows.h"
#include "train.h"

/*
 * spec: the old model's spec with its training settings changed and any new
 * tasks appended. Returns NULL, "memory" (with *needed set), or why the
 * update is impossible.
 */
const MtlError *mtl_update_fit(const MtlTrained *old, const MtlSpec *spec, MtlRowStore *store,
						   int freeze_shared, const MtlTrainCallbacks *cb, double memory_limit,
						   double *needed, MtlTrained *out);

/* Renumber the new rows' fields as old's, in place (unknown fields dropped). */
void		mtl_update_rows(const MtlSchema *old, MtlRowStore *store);

/* Copy every parameter old has into the laid-out model of out (whose other parameters are initialised). */
void		mtl_update_copy_params(const MtlTrained *old, MtlTrained *out);

#endif
