/* data_internal.h: what the data-set readers share (not public API). */
#ifndef DEEPC_DATA_INTERNAL_H
#define DEEPC_DATA_INTERNAL_H

#include "deepc/data.h"

/* A dc_dataset with uninitialised arrays for `count` images of the data set's shape.
 * count 0 is allowed (arrays of one byte). NULL with DC_ERR_OOM on failure. */
dc_dataset *dc__dataset_new(dc_dataset_id id, int64_t count);

/* The base name of a path, for messages. */
const char *dc__basename(const char *path);

#endif
