/*
 * From collected rows to a trained model: build the schema, lay out the
 * model, encode the rows and train.
 */
#ifndef MTL_FIT_H
#define MTL_FIT_H

#include "format.h"
#include "rows.h"
#include "train.h"

/*
 * Bytes training will hold beyond the collected rows: encoded rows,
 * parameters with their gradients and Adam moments, batch buffers.
 */
double		mtl_fit_memory_bytes(const MtlSpec *spec, const MtlRowStore *store,
								 const MtlSchema *schema, const MtlLayout *layout);

/*
 * Train on the rows. Returns NULL, or the reason the architecture is
 * impossible. When memory_limit > 0 and training would hold more bytes than
 * that, returns "memory" without training and sets *needed.
 */
const MtlError *mtl_fit(const MtlSpec *spec, MtlRowStore *store, const MtlTrainCallbacks *cb,
					double memory_limit, double *needed, MtlTrained *out);

/*
 * The starting model of data-parallel training (round.h): schema from a
 * counting store, layout, parameters initialised from spec.seed, and the
 * label statistics applied. The summary says 0 epochs. Returns NULL or why
 * the architecture is impossible ("memory" as for mtl_fit, counting what a
 * round holds: parameters, their copy, gradients, Adam's moments).
 */
const MtlError *mtl_fit_init(const MtlSpec *spec, MtlRowStore *store, const MtlLabelStats *labels,
						 double memory_limit, double *needed, MtlTrained *out);

#endif
