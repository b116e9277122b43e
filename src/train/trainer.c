/* trainer.c: the CNN training loop (deepc/train.h): split, batches, optimizer and schedule,
 * validation per epoch, test metrics, exact-resume checkpoints and the run's output files.
 *
 * A checkpoint is three files in the run folder, written in this order, each atomically:
 * model.safetensors (state_dict), optimizer.safetensors (optimizer + scheduler state) and
 * checkpoint.safetensors (the trainer's own state: epoch, batch, this epoch's sample order,
 * both RNG states, history, running sums). checkpoint.safetensors is written last, so its
 * presence means the other two are from the same step. It is written after every epoch and
 * on Ctrl-C (mid-epoch); resuming continues from the exact batch with the exact RNG states,
 * so the result equals an uninterrupted run's. */
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../core/internal.h"
#include "../util/util.h"
#include "train_internal.h"

#include "deepc/io.h"
#include "deepc/progress.h"
#include "deepc/train.h"

void dc_train_config_defaults(dc_train_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->model = "lenet5";
    cfg->dataset = DC_DATASET_FASHION_MNIST;
    cfg->epochs = 10;
    cfg->batch_size = 64;
    cfg->lr = 1e-3;
    cfg->optimizer = DC_OPTIM_ADAM;
    cfg->momentum = 0.9;
    cfg->weight_decay = 0;
    cfg->schedule = DC_SCHEDULE_NONE;
    cfg->val_size = 5000;
    cfg->augment = true;
    cfg->seed = 0;
    cfg->plots = true;
}

void dc_train_result_free(dc_train_result *r)
{
    if (!r) return;
    free(r->history);
    r->history = NULL;
}

/* VmHWM (the resettable peak) from /proc/self/status; getrusage's ru_maxrss, which never
 * resets, where /proc is not there. */
double dc_peak_rss_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        long kb = -1;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
        fclose(f);
        if (kb >= 0) return (double)kb / 1024.0;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

bool dc_reset_peak_rss(void)
{
    dc_mem_empty_cache();
    /* "5" resets VmHWM to the current RSS (Linux 4.0+, proc(5)) */
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

/* ---------------------------------------------------------------------------------------
 * Ctrl-C
 * ------------------------------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ---------------------------------------------------------------------------------------
 * Evaluation
 * ------------------------------------------------------------------------------------- */

dc_status dc_evaluate(dc_module *model, const dc_dataset *ds, const int64_t *idx, int64_t n, int batch_size,
                      double *loss_out, dc_metrics *metrics)
{
    if (batch_size < 1) batch_size = 256;
    const int C = ds->channels, H = ds->height, W = ds->width;
    float *x = dc__malloc((size_t)batch_size * C * H * W * sizeof(float));
    int64_t *y = dc__malloc((size_t)batch_size * sizeof(int64_t));
    int64_t *pred = dc__malloc((size_t)batch_size * sizeof(int64_t));
    int64_t *seq = dc__malloc((size_t)batch_size * sizeof(int64_t));
    dc_status st = DC_OK;
    if (!x || !y || !pred || !seq) {
        st = dc_last_status();
        goto done;
    }
    if (metrics) dc_metrics_init(metrics, ds->info->num_classes);
    bool was_training = model->training;
    dc_module_eval(model);
    bool prev = dc_set_grad_enabled(false);
    double total = 0;
    dc_augment none = dc_augment_none();
    for (int64_t start = 0; start < n && !st; start += batch_size) {
        int64_t b = DC_MIN((int64_t)batch_size, n - start);
        const int64_t *ids = idx ? idx + start : seq;
        if (!idx)
            for (int64_t i = 0; i < b; i++) seq[i] = start + i;
        if ((st = dc_dataset_batch(ds, ids, b, &none, NULL, x, y))) break;
        dc_pool_mark mark = dc_pool_push();
        dc_tensor *xt = dc_from_external(DC_F32, 4, (int64_t[]){b, C, H, W}, x, NULL, NULL);
        dc_tensor *yt = dc_from_external(DC_I64, 1, (int64_t[]){b}, y, NULL, NULL);
        dc_tensor *logits = dc_module_forward(model, xt);
        dc_tensor *loss = dc_cross_entropy(logits, yt, DC_REDUCE_SUM, DC_IGNORE_INDEX_DEFAULT, 0.0f);
        if (!loss) {
            st = dc_last_status();
        } else {
            total += dc_item(loss);
            dc_tensor *lc = dc_contiguous(logits);
            dc_argmax_rows(dc_data_f32(lc), b, (int)logits->shape[1], pred);
            if (metrics) st = dc_metrics_update(metrics, y, pred, b);
        }
        dc_pool_pop(mark);
    }
    dc_set_grad_enabled(prev);
    dc_module_train(model, was_training);
    if (!st) {
        if (metrics) dc_metrics_finalize(metrics);
        if (loss_out) *loss_out = n ? total / (double)n : 0;
    }
done:
    free(x);
    free(y);
    free(pred);
    free(seq);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Checkpoint of the trainer's own state
 * ------------------------------------------------------------------------------------- */

typedef struct trainer_state {
    int epoch;         /* 1-based epoch in progress */
    int64_t batch;     /* next batch of that epoch */
    bool shuffled;     /* order already holds this epoch's shuffle */
    int64_t *order;    /* this epoch's training order [n_train] */
    int64_t n_train;
    dc_rng data_rng;   /* shuffles and augmentation */
    double sum_loss;   /* this epoch so far */
    int64_t seen;
    double epoch_seconds, train_seconds;
    int64_t train_images;
    dc_epoch_stats *history;
    int n_history;
} trainer_state;

/* an RNG as 627 I64 values: 624 words, index, has_next_normal, next_normal's bits */
static void rng_pack(const dc_rng *r, int64_t *out)
{
    for (int i = 0; i < 624; i++) out[i] = r->mt[i];
    out[624] = r->index;
    out[625] = r->has_next_normal;
    memcpy(&out[626], &r->next_normal, sizeof(double));
}

static void rng_unpack(dc_rng *r, const int64_t *in)
{
    for (int i = 0; i < 624; i++) r->mt[i] = (uint32_t)in[i];
    r->index = (int)in[624];
    r->has_next_normal = in[625] != 0;
    memcpy(&r->next_normal, &in[626], sizeof(double));
}

static dc_status save_checkpoint(const dc_train_config *cfg, dc_module *model, dc_optimizer *opt,
                                 dc_scheduler *sched, const trainer_state *ts)
{
    char path[4096];
    dc_status st;
    dc__path_join(path, sizeof path, cfg->out_dir, "model.safetensors");
    const char *model_meta[] = {"model", cfg->model, "dataset", dc_dataset_info_of(cfg->dataset)->name, "format", "pt", NULL};
    if ((st = dc_module_save(model, path, model_meta))) return st;
    dc__path_join(path, sizeof path, cfg->out_dir, "optimizer.safetensors");
    if ((st = dc_optimizer_save(opt, path, sched))) return st;

    int64_t rng_a[627], rng_b[627];
    rng_pack(&ts->data_rng, rng_a);
    rng_pack(dc_default_rng(), rng_b);
    dc_pool_mark mark = dc_pool_push();
    dc_tensor *order = dc_from_external(DC_I64, 1, (int64_t[]){ts->n_train}, ts->order, NULL, NULL);
    dc_tensor *ra = dc_from_external(DC_I64, 1, (int64_t[]){627}, rng_a, NULL, NULL);
    dc_tensor *rb = dc_from_external(DC_I64, 1, (int64_t[]){627}, rng_b, NULL, NULL);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", cfg->model);
    cJSON_AddStringToObject(j, "dataset", dc_dataset_info_of(cfg->dataset)->name);
    cJSON_AddNumberToObject(j, "epoch", ts->epoch);
    cJSON_AddNumberToObject(j, "batch", (double)ts->batch);
    cJSON_AddBoolToObject(j, "shuffled", ts->shuffled);
    cJSON_AddNumberToObject(j, "sum_loss", ts->sum_loss);
    cJSON_AddNumberToObject(j, "seen", (double)ts->seen);
    cJSON_AddNumberToObject(j, "epoch_seconds", ts->epoch_seconds);
    cJSON_AddNumberToObject(j, "train_seconds", ts->train_seconds);
    cJSON_AddNumberToObject(j, "train_images", (double)ts->train_images);
    cJSON *h = cJSON_AddArrayToObject(j, "history");
    for (int i = 0; i < ts->n_history; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "epoch", ts->history[i].epoch);
        cJSON_AddNumberToObject(e, "train_loss", ts->history[i].train_loss);
        cJSON_AddNumberToObject(e, "val_loss", ts->history[i].val_loss);
        cJSON_AddNumberToObject(e, "val_accuracy", ts->history[i].val_accuracy);
        cJSON_AddNumberToObject(e, "seconds", ts->history[i].seconds);
        cJSON_AddItemToArray(h, e);
    }
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    dc__path_join(path, sizeof path, cfg->out_dir, "checkpoint.safetensors");
    const char *meta[] = {"trainer", text ? text : "{}", NULL};
    st = dc_safetensors_save(path, 3,
                             (dc_named_tensor[]){{"order", order}, {"data_rng", ra}, {"torch_rng", rb}}, meta);
    free(text);
    dc_pool_pop(mark);
    return st;
}

static double json_num(const cJSON *o, const char *key, double fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

static dc_status load_checkpoint(const dc_train_config *cfg, dc_module *model, dc_optimizer *opt,
                                 dc_scheduler *sched, trainer_state *ts)
{
    char path[4096];
    const char *dir = cfg->resume_dir;
    dc__path_join(path, sizeof path, dir, "checkpoint.safetensors");
    dc_safetensors *ck = dc_safetensors_open(path);
    if (!ck)
        return dc_set_error(DC_ERR_IO, "--resume %s: no checkpoint there (%s)", dir, dc_last_error());
    dc_status st = DC_OK;
    cJSON *j = NULL;
    dc_pool_mark mark = dc_pool_push();
    const char *text = dc_safetensors_metadata(ck, "trainer");
    j = text ? cJSON_Parse(text) : NULL;
    if (!j) {
        st = dc_set_error(DC_ERR_FORMAT, "%s: missing or malformed trainer metadata", path);
        goto done;
    }
    const cJSON *jm = cJSON_GetObjectItemCaseSensitive(j, "model");
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(j, "dataset");
    if (!cJSON_IsString(jm) || strcmp(jm->valuestring, cfg->model) || !cJSON_IsString(jd) ||
        strcmp(jd->valuestring, dc_dataset_info_of(cfg->dataset)->name)) {
        st = dc_set_error(DC_ERR_ARG, "--resume %s: the checkpoint is of %s on %s, not %s on %s", dir,
                          cJSON_IsString(jm) ? jm->valuestring : "?", cJSON_IsString(jd) ? jd->valuestring : "?",
                          cfg->model, dc_dataset_info_of(cfg->dataset)->name);
        goto done;
    }
    dc_tensor *order = dc_to_dtype(dc_safetensors_get(ck, "order"), DC_I64);
    dc_tensor *ra = dc_to_dtype(dc_safetensors_get(ck, "data_rng"), DC_I64);
    dc_tensor *rb = dc_to_dtype(dc_safetensors_get(ck, "torch_rng"), DC_I64);
    if (!order || !ra || !rb || dc_numel(ra) != 627 || dc_numel(rb) != 627) {
        st = dc_set_error(DC_ERR_FORMAT, "%s: missing trainer tensors (order, data_rng, torch_rng)", path);
        goto done;
    }
    if (dc_numel(order) != ts->n_train) {
        st = dc_set_error(DC_ERR_ARG, "--resume %s: the checkpoint trained on %lld images, this run has %lld (same --val-size and data?)",
                          dir, (long long)dc_numel(order), (long long)ts->n_train);
        goto done;
    }
    memcpy(ts->order, dc_data(order), (size_t)ts->n_train * sizeof(int64_t));
    rng_unpack(&ts->data_rng, dc_data(ra));
    rng_unpack(dc_default_rng(), dc_data(rb));
    ts->epoch = (int)json_num(j, "epoch", 1);
    ts->batch = (int64_t)json_num(j, "batch", 0);
    ts->shuffled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "shuffled"));
    ts->sum_loss = json_num(j, "sum_loss", 0);
    ts->seen = (int64_t)json_num(j, "seen", 0);
    ts->epoch_seconds = json_num(j, "epoch_seconds", 0);
    ts->train_seconds = json_num(j, "train_seconds", 0);
    ts->train_images = (int64_t)json_num(j, "train_images", 0);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "history");
    ts->n_history = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, h)
    {
        if (ts->n_history >= cfg->epochs) break;
        dc_epoch_stats *s = &ts->history[ts->n_history++];
        s->epoch = (int)json_num(e, "epoch", 0);
        s->train_loss = json_num(e, "train_loss", NAN);
        s->val_loss = json_num(e, "val_loss", NAN);
        s->val_accuracy = json_num(e, "val_accuracy", NAN);
        s->seconds = json_num(e, "seconds", 0);
    }
    dc__path_join(path, sizeof path, dir, "model.safetensors");
    if ((st = dc_module_load(model, path, true))) goto done;
    dc__path_join(path, sizeof path, dir, "optimizer.safetensors");
    if ((st = dc_optimizer_load(opt, path, sched))) goto done;
done:
    cJSON_Delete(j);
    dc_pool_pop(mark);
    dc_safetensors_close(ck);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------------------------- */

static dc_scheduler *make_scheduler(const dc_train_config *cfg, dc_optimizer *opt, int64_t steps_per_epoch,
                                    bool *per_batch)
{
    *per_batch = true;
    int64_t total = (int64_t)cfg->epochs * steps_per_epoch;
    switch (cfg->schedule) {
    case DC_SCHEDULE_STEP:
        /* lr x 0.1 after each third of the epochs */
        *per_batch = false;
        return dc_step_lr_new(opt, DC_MAX(1, cfg->epochs / 3), 0.1);
    case DC_SCHEDULE_COSINE: return dc_cosine_annealing_lr_new(opt, total, 0.0);
    case DC_SCHEDULE_ONECYCLE: return dc_one_cycle_lr_new(opt, dc_one_cycle_options_default(cfg->lr, total));
    default: return NULL;
    }
}

dc_status dc_train_run(const dc_train_config *cfg, dc_train_result *res)
{
    memset(res, 0, sizeof *res);
    if (!cfg->out_dir) return dc_set_error(DC_ERR_ARG, "train: an output folder (--out) is required");
    if (cfg->epochs < 1 || cfg->batch_size < 1 || !(cfg->lr > 0) || cfg->val_size < 0)
        return dc_set_error(DC_ERR_ARG, "train: epochs, batch size and lr must be positive and val size >= 0 (got %d, %d, %g, %lld)",
                            cfg->epochs, cfg->batch_size, cfg->lr, (long long)cfg->val_size);
    if (!dc_cnn_known(cfg->model))
        return dc_set_error(DC_ERR_ARG, "unknown model '%s' (valid: %s)", cfg->model, dc_cnn_names());
    dc_status st = DC_OK;
    dc_dataset *train = NULL, *test = NULL;
    dc_module *model = NULL;
    dc_optimizer *opt = NULL;
    dc_scheduler *sched = NULL;
    dc_tensor_list *params = NULL;
    int64_t *tr = NULL, *va = NULL, n_tr = 0, n_va = 0;
    /* evaluation at the training batch size reuses the training step's cached blocks and
     * needs less memory than the step (no graph), so it never sets the run's peak */
    const int eval_batch = cfg->batch_size;
    float *x = NULL;
    int64_t *y = NULL;
    trainer_state ts = {0};
    dc_progress *bar = NULL;
    struct sigaction old_sa, sa = {0};
    bool sa_installed = false;

    if ((st = dc__mkdir_p(cfg->out_dir))) return st;
    if (!(train = dc_dataset_load(cfg->dataset, DC_SPLIT_TRAIN, cfg->data_dir))) return dc_last_status();
    if (!(test = dc_dataset_load(cfg->dataset, DC_SPLIT_TEST, cfg->data_dir))) {
        st = dc_last_status();
        goto done;
    }
    int64_t n_all = cfg->max_train > 0 ? DC_MIN(cfg->max_train, train->count) : train->count;
    if (cfg->val_size >= n_all) {
        st = dc_set_error(DC_ERR_ARG, "train: --val-size %lld leaves no training images (the set has %lld)",
                          (long long)cfg->val_size, (long long)n_all);
        goto done;
    }
    const int C = train->channels, H = train->height, W = train->width, B = cfg->batch_size;
    dc_manual_seed(cfg->seed);
    model = dc_cnn_new(cfg->model, C, H, train->info->num_classes, &res->info);
    if (!model) {
        st = dc_last_status();
        goto done;
    }
    if ((st = dc_split_train_val(n_all, cfg->val_size, cfg->seed, &tr, &n_tr, &va, &n_va))) goto done;
    params = dc_module_named_parameters(model);
    if (!params) {
        st = dc_last_status();
        goto done;
    }
    dc_optim_options o = cfg->optimizer == DC_OPTIM_SGD ? dc_sgd_options(cfg->lr)
                         : cfg->optimizer == DC_OPTIM_ADAMW ? dc_adamw_options(cfg->lr)
                                                            : dc_adam_options(cfg->lr);
    if (cfg->optimizer == DC_OPTIM_SGD) o.momentum = cfg->momentum;
    o.weight_decay = cfg->weight_decay;
    if (!(opt = dc_optimizer_new(cfg->optimizer, params->count, params->tensors, o))) {
        st = dc_last_status();
        goto done;
    }
    int64_t steps = (n_tr + B - 1) / B;
    bool sched_per_batch = true;
    if (cfg->schedule != DC_SCHEDULE_NONE && !(sched = make_scheduler(cfg, opt, steps, &sched_per_batch))) {
        st = dc_last_status();
        goto done;
    }
    x = dc__malloc((size_t)B * C * H * W * sizeof(float));
    y = dc__malloc((size_t)B * sizeof(int64_t));
    ts.order = dc__malloc((size_t)n_tr * sizeof(int64_t));
    ts.history = dc__calloc((size_t)cfg->epochs, sizeof *ts.history);
    if (!x || !y || !ts.order || !ts.history) {
        st = dc_last_status();
        goto done;
    }
    ts.n_train = n_tr;
    ts.epoch = 1;
    memcpy(ts.order, tr, (size_t)n_tr * sizeof(int64_t));
    dc_rng_seed(&ts.data_rng, cfg->seed);
    bool fresh_epoch = true;
    if (cfg->resume_dir) {
        if ((st = load_checkpoint(cfg, model, opt, sched, &ts))) goto done;
        fresh_epoch = !ts.shuffled;
        if (!cfg->quiet)
            fprintf(stderr, "resuming %s on %s from %s: epoch %d, batch %lld\n", cfg->model, train->info->name,
                    cfg->resume_dir, ts.epoch, (long long)ts.batch);
    }
    dc_augment aug = cfg->augment ? dc_augment_auto(cfg->dataset) : dc_augment_none();

    interrupted = 0;
    /* DEEPC_INTERRUPT_AFTER=N acts as a Ctrl-C after N training steps of this run (tests of
     * checkpoint/resume, which must not depend on a signal's timing) */
    const char *ia = getenv("DEEPC_INTERRUPT_AFTER");
    int64_t interrupt_after = ia ? atoll(ia) : 0, steps_run = 0;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa_installed = sigaction(SIGINT, &sa, &old_sa) == 0;

    for (; ts.epoch <= cfg->epochs; ts.epoch++) {
        if (fresh_epoch) {
            memcpy(ts.order, tr, (size_t)n_tr * sizeof(int64_t));
            if ((st = dc_shuffle_indices(ts.order, n_tr, &ts.data_rng))) goto done;
            ts.batch = 0;
            ts.sum_loss = 0;
            ts.seen = 0;
            ts.epoch_seconds = 0;
        }
        fresh_epoch = true;
        ts.shuffled = true;
        dc_module_train(model, true);
        char label[96];
        snprintf(label, sizeof label, "%s epoch %d/%d", cfg->model, ts.epoch, cfg->epochs);
        bar = dc_progress_begin(stderr, cfg->quiet ? DC_PROGRESS_QUIET : DC_PROGRESS_AUTO, label, steps, false);
        double epoch_start = dc__now() - ts.epoch_seconds;
        for (; ts.batch < steps; ts.batch++) {
            if (interrupt_after > 0 && steps_run == interrupt_after) interrupted = 1;
            steps_run++;
            if (interrupted) {
                ts.epoch_seconds = dc__now() - epoch_start;
                dc_progress_end(bar, "interrupted");
                bar = NULL;
                st = save_checkpoint(cfg, model, opt, sched, &ts);
                if (!st) {
                    res->interrupted = true;
                    st = dc_set_error(DC_ERR_INTERRUPTED, "interrupted at epoch %d, batch %lld: checkpoint saved; continue with --resume %s",
                                      ts.epoch, (long long)ts.batch, cfg->out_dir);
                }
                goto done;
            }
            int64_t n = DC_MIN((int64_t)B, n_tr - ts.batch * B);
            if ((st = dc_dataset_batch(train, ts.order + ts.batch * B, n, &aug, &ts.data_rng, x, y))) goto done;
            double t0 = dc__now();
            dc_pool_mark mark = dc_pool_push();
            dc_tensor *xt = dc_from_external(DC_F32, 4, (int64_t[]){n, C, H, W}, x, NULL, NULL);
            dc_tensor *yt = dc_from_external(DC_I64, 1, (int64_t[]){n}, y, NULL, NULL);
            dc_tensor *loss = dc_cross_entropy(dc_module_forward(model, xt), yt, DC_REDUCE_MEAN,
                                               DC_IGNORE_INDEX_DEFAULT, 0.0f);
            dc_optimizer_zero_grad(opt);
            st = loss ? dc_backward(loss, NULL, false) : dc_last_status();
            if (!st) st = dc_optimizer_step(opt);
            if (!st && sched && sched_per_batch) st = dc_scheduler_step(sched);
            double l = st ? NAN : dc_item(loss);
            dc_pool_pop(mark);
            ts.train_seconds += dc__now() - t0;
            ts.train_images += n;
            if (st) goto done;
            if (!isfinite(l)) {
                st = dc_set_error(DC_ERR_STATE, "training diverged: the loss is %s at epoch %d, batch %lld (try a lower --lr)",
                                  isnan(l) ? "NaN" : "Inf", ts.epoch, (long long)ts.batch + 1);
                goto done;
            }
            ts.sum_loss += l * (double)n;
            ts.seen += n;
            dc_progress_update(bar, ts.batch + 1, ts.seen, ts.sum_loss / (double)ts.seen);
        }
        if (sched && !sched_per_batch && (st = dc_scheduler_step(sched))) goto done;
        dc_epoch_stats *e = &ts.history[ts.n_history++];
        e->epoch = ts.epoch;
        e->train_loss = ts.sum_loss / (double)DC_MAX(ts.seen, 1);
        dc_metrics vm;
        if (n_va > 0) {
            if ((st = dc_evaluate(model, train, va, n_va, eval_batch, &e->val_loss, &vm))) goto done;
            e->val_accuracy = vm.accuracy;
        } else {
            e->val_loss = NAN;
            e->val_accuracy = NAN;
        }
        e->seconds = dc__now() - epoch_start;
        char summary[160];
        snprintf(summary, sizeof summary, "train_loss %.4f  val_loss %.4f  val_acc %.2f%%  (%.0f img/s in training steps)",
                 e->train_loss, e->val_loss, 100.0 * e->val_accuracy, ts.train_images / DC_MAX(ts.train_seconds, 1e-9));
        dc_progress_end(bar, summary);
        bar = NULL;
        /* end-of-epoch checkpoint: resumes at the start of the next epoch */
        ts.batch = 0;
        ts.shuffled = false;
        int saved_epoch = ts.epoch;
        ts.epoch++;
        st = save_checkpoint(cfg, model, opt, sched, &ts);
        ts.epoch = saved_epoch;
        if (st) goto done;
    }

    /* test */
    int64_t n_test = cfg->max_test > 0 ? DC_MIN(cfg->max_test, test->count) : test->count;
    if ((st = dc_evaluate(model, test, NULL, n_test, eval_batch, &res->test_loss, &res->test))) goto done;
    res->epochs = cfg->epochs;
    res->history = ts.history;
    ts.history = NULL;
    res->train_seconds = ts.train_seconds;
    res->images_per_second = ts.train_images / DC_MAX(ts.train_seconds, 1e-9);
    res->peak_rss_mb = dc_peak_rss_mb();
    {
        char path[4096];
        dc__path_join(path, sizeof path, cfg->out_dir, "model.safetensors");
        const char *model_meta[] = {"model", cfg->model, "dataset", train->info->name, "format", "pt", NULL};
        if ((st = dc_module_save(model, path, model_meta))) goto done;
        if ((st = dc__write_run_outputs(cfg, res, train->info))) goto done;
        /* the run is complete: its checkpoint is spent */
        dc__path_join(path, sizeof path, cfg->out_dir, "checkpoint.safetensors");
        unlink(path);
        dc__path_join(path, sizeof path, cfg->out_dir, "optimizer.safetensors");
        unlink(path);
    }
    if (!cfg->quiet)
        fprintf(stderr, "%s on %s: test accuracy %.2f%%, macro F1 %.4f, %.0f images/s, peak RSS %.0f MB -> %s\n",
                cfg->model, train->info->title, 100.0 * res->test.accuracy, res->test.f1, res->images_per_second,
                res->peak_rss_mb, cfg->out_dir);
done:
    if (sa_installed) sigaction(SIGINT, &old_sa, NULL);
    if (bar) dc_progress_end(bar, NULL);
    free(ts.order);
    free(ts.history);
    free(x);
    free(y);
    free(tr);
    free(va);
    dc_scheduler_free(sched);
    dc_optimizer_free(opt);
    dc_tensor_list_free(params);
    dc_module_free(model);
    dc_dataset_free(train);
    dc_dataset_free(test);
    return st;
}
