/* outputs.c: the files a training run leaves: metrics.json (the keys other tools read),
 * history.csv, and the loss / accuracy / confusion plots. All written atomically. */
#include <cjson/cJSON.h>
#include <math.h>

#include "../core/internal.h"
#include "../util/util.h"
#include "train_internal.h"

#include "deepc/io.h"
#include "deepc/plot.h"

static const char *optimizer_name(dc_optim_kind k)
{
    return k == DC_OPTIM_SGD ? "sgd" : k == DC_OPTIM_ADAMW ? "adamw" : "adam";
}

static const char *schedule_name(dc_schedule s)
{
    static const char *names[] = {"none", "step", "cosine", "onecycle"};
    return (unsigned)s < 4 ? names[s] : "?";
}

/* cJSON prints NaN as null, which is what we want for a missing validation set */
char *dc__run_metrics_json(const dc_train_config *cfg, const dc_train_result *res, const dc_dataset_info *info)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", cfg->model);
    cJSON_AddStringToObject(j, "dataset", info->name);
    cJSON_AddNumberToObject(j, "epochs", res->epochs);
    cJSON_AddNumberToObject(j, "batch_size", cfg->batch_size);
    cJSON_AddNumberToObject(j, "lr", cfg->lr);
    cJSON_AddStringToObject(j, "optimizer", optimizer_name(cfg->optimizer));
    cJSON_AddStringToObject(j, "schedule", schedule_name(cfg->schedule));
    cJSON_AddNumberToObject(j, "seed", (double)cfg->seed);
    cJSON_AddNumberToObject(j, "threads", dc_get_num_threads());
    cJSON_AddNumberToObject(j, "parameters", (double)res->info.params);
    cJSON_AddNumberToObject(j, "mflops_per_image", res->info.mflops);
    cJSON_AddNumberToObject(j, "train_seconds", res->train_seconds);
    cJSON_AddNumberToObject(j, "images_per_second", res->images_per_second);
    cJSON_AddNumberToObject(j, "peak_rss_mb", res->peak_rss_mb);
    cJSON *h = cJSON_AddArrayToObject(j, "history");
    for (int i = 0; i < res->epochs; i++) {
        const dc_epoch_stats *e = &res->history[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "epoch", e->epoch);
        cJSON_AddNumberToObject(o, "train_loss", e->train_loss);
        cJSON_AddNumberToObject(o, "val_loss", e->val_loss);
        cJSON_AddNumberToObject(o, "val_accuracy", e->val_accuracy);
        cJSON_AddNumberToObject(o, "seconds", e->seconds);
        cJSON_AddItemToArray(h, o);
    }
    char *test_text = dc_metrics_json(&res->test, res->test_loss, info->class_names);
    cJSON *test = test_text ? cJSON_Parse(test_text) : NULL;
    free(test_text);
    if (test) cJSON_AddItemToObject(j, "test", test);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    return text;
}

static dc_status write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    if (!dc__path_join(path, sizeof path, dir, name)) return dc_set_error(DC_ERR_IO, "path too long: %s/%s", dir, name);
    return dc_write_file_atomic(path, text, strlen(text));
}

static dc_status write_history_csv(const char *dir, const dc_train_result *res)
{
    size_t cap = 64 + (size_t)res->epochs * 128, used = 0;
    char *buf = dc__malloc(cap);
    if (!buf) return dc_last_status();
    used += (size_t)snprintf(buf + used, cap - used, "epoch,train_loss,val_loss,val_accuracy,seconds\n");
    for (int i = 0; i < res->epochs; i++) {
        const dc_epoch_stats *e = &res->history[i];
        used += (size_t)snprintf(buf + used, cap - used, "%d,%.6f,%.6f,%.6f,%.3f\n", e->epoch, e->train_loss,
                                 e->val_loss, e->val_accuracy, e->seconds);
    }
    dc_status st = write_text(dir, "history.csv", buf);
    free(buf);
    return st;
}

dc_status dc__write_run_outputs(const dc_train_config *cfg, const dc_train_result *res, const dc_dataset_info *info)
{
    char *json = dc__run_metrics_json(cfg, res, info);
    if (!json) return dc_set_error(DC_ERR_OOM, "metrics.json: out of memory");
    dc_status st = write_text(cfg->out_dir, "metrics.json", json);
    free(json);
    if (!st) st = write_history_csv(cfg->out_dir, res);
    if (st || !cfg->plots) return st;

    int n = res->epochs;
    double *train = dc__malloc(sizeof(double) * (size_t)(3 * n + 1));
    if (!train) return dc_last_status();
    double *val = train + n, *acc = val + n;
    for (int i = 0; i < n; i++) {
        train[i] = res->history[i].train_loss;
        val[i] = res->history[i].val_loss;
        acc[i] = 100.0 * res->history[i].val_accuracy;
    }
    char title[160], path[4096];
    snprintf(title, sizeof title, "%s on %s: loss per epoch", cfg->model, info->title);
    dc_series loss_series[] = {{"train", NULL, train, n}, {"validation", NULL, val, n}};
    dc_line_chart loss = {.title = title, .xlabel = "epoch", .ylabel = "cross-entropy loss",
                          .series = loss_series, .nseries = 2, .integer_x = true};
    const char *files[] = {"loss.png", "loss.svg"};
    for (int i = 0; i < 2 && !st; i++) {
        dc__path_join(path, sizeof path, cfg->out_dir, files[i]);
        st = dc_plot_lines(path, &loss);
    }
    if (!st) {
        snprintf(title, sizeof title, "%s on %s: validation accuracy (test %.2f%%)", cfg->model, info->title,
                 100.0 * res->test.accuracy);
        dc_series acc_series[] = {{"validation", NULL, acc, n}};
        dc_line_chart accc = {.title = title, .xlabel = "epoch", .ylabel = "accuracy (%)",
                              .series = acc_series, .nseries = 1, .integer_x = true};
        dc__path_join(path, sizeof path, cfg->out_dir, "accuracy.png");
        st = dc_plot_lines(path, &accc);
    }
    if (!st) {
        snprintf(title, sizeof title, "%s on %s: test confusion matrix (rows: true class)", cfg->model, info->title);
        dc__path_join(path, sizeof path, cfg->out_dir, "confusion.png");
        st = dc_plot_confusion(path, title, res->test.num_classes, &res->test.confusion[0][0], info->class_names);
    }
    free(train);
    return st;
}
