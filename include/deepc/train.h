/* deepc/train.h: the CNN training and evaluation loop behind `deepc train`, `eval` and
 * `compare`: data split, batches, Adam/AdamW/SGD with a schedule, per-epoch validation,
 * test metrics, checkpoints that resume exactly, and the files a run leaves
 * (model.safetensors, metrics.json, history.csv, loss/accuracy/confusion plots). */
#ifndef DEEPC_TRAIN_H
#define DEEPC_TRAIN_H

#include "deepc/data.h"
#include "deepc/models.h"
#include "deepc/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dc_schedule { DC_SCHEDULE_NONE = 0, DC_SCHEDULE_STEP, DC_SCHEDULE_COSINE, DC_SCHEDULE_ONECYCLE } dc_schedule;

typedef struct dc_train_config {
    const char *model;       /* dc_cnn_names() */
    dc_dataset_id dataset;
    const char *data_dir;    /* NULL: the standard search */
    int epochs;              /* 10 */
    int batch_size;          /* 64 */
    double lr;               /* 1e-3 */
    dc_optim_kind optimizer; /* Adam */
    double momentum;         /* SGD: 0.9 */
    double weight_decay;     /* 0 */
    dc_schedule schedule;    /* none */
    int64_t val_size;        /* 5000 */
    bool augment;            /* --augment auto: CIFAR crop+flip; none for MNIST-like sets */
    uint64_t seed;           /* 0 */
    const char *out_dir;     /* required: where the run's files go */
    const char *resume_dir;  /* a previous out_dir with a checkpoint, or NULL */
    int64_t max_train;       /* use only the first N training images (0: all); tests and benches */
    int64_t max_test;        /* evaluate only the first N test images (0: all) */
    bool quiet;              /* no progress output */
    bool plots;              /* write PNG/SVG plots (default true) */
} dc_train_config;

void dc_train_config_defaults(dc_train_config *cfg);

typedef struct dc_epoch_stats {
    int epoch;
    double train_loss, val_loss, val_accuracy, seconds;
} dc_epoch_stats;

typedef struct dc_train_result {
    dc_cnn_info info;
    int epochs;
    dc_epoch_stats *history; /* epochs entries (malloc'ed; dc_train_result_free) */
    double train_seconds;    /* time in training steps (forward, backward, update) */
    double images_per_second;
    double peak_rss_mb;
    double test_loss;
    dc_metrics test;
    bool interrupted;        /* Ctrl-C: a checkpoint was saved in out_dir */
} dc_train_result;

void dc_train_result_free(dc_train_result *r);

/* Runs a whole training (or resumes one) and writes out_dir/{model.safetensors, metrics.json,
 * history.csv, loss.png, loss.svg, accuracy.png, confusion.png}. On Ctrl-C the state is saved
 * to out_dir/checkpoint.safetensors + optimizer.safetensors and DC_ERR_INTERRUPTED returned. */
dc_status dc_train_run(const dc_train_config *cfg, dc_train_result *result);

/* Mean cross-entropy and metrics of `model` (eval mode, no grad) over ds[idx[0..n)]
 * (idx NULL: the first n images). */
dc_status dc_evaluate(dc_module *model, const dc_dataset *ds, const int64_t *idx, int64_t n,
                      int batch_size, double *loss, dc_metrics *metrics);

/* The peak resident set size of this process in MB: since start, or since the last
 * dc_reset_peak_rss where Linux allows the reset (/proc/self/clear_refs). */
double dc_peak_rss_mb(void);
/* Empties the allocator caches (dc_mem_empty_cache) and restarts the peak RSS count from
 * the current resident size, so that a later dc_peak_rss_mb measures one piece of work
 * (compare calls it before each model). Returns false where the kernel refuses the reset;
 * dc_peak_rss_mb then still reports the process peak. */
bool dc_reset_peak_rss(void);

/* `deepc compare`: trains each model with the same config into out_dir/<model>/ and writes
 * out_dir/report.md, report.json, val_loss.png/.svg, accuracy.png, f1.png. */
dc_status dc_compare_run(const dc_train_config *cfg, int n_models, const char *const *models);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_TRAIN_H */
