/* train_internal.h: what trainer.c and compare.c share: the run's output files. */
#ifndef DEEPC_TRAIN_INTERNAL_H
#define DEEPC_TRAIN_INTERNAL_H

#include "deepc/train.h"

/* The `metrics.json` document of a finished run (malloc'ed text, NULL on OOM). */
char *dc__run_metrics_json(const dc_train_config *cfg, const dc_train_result *res, const dc_dataset_info *info);
/* metrics.json, history.csv and (cfg->plots) loss.png/.svg, accuracy.png, confusion.png. */
dc_status dc__write_run_outputs(const dc_train_config *cfg, const dc_train_result *res, const dc_dataset_info *info);

#endif
