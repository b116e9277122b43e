/* compare.c: `deepc compare`: trains several models with one recipe and writes the
 * comparison: report.md (a table), report.json, and charts of validation loss, test accuracy
 * and per-class F1 across the models. */
#include <cjson/cJSON.h>
#include <math.h>

#include "../core/internal.h"
#include "../util/util.h"
#include "train_internal.h"

#include "deepc/io.h"
#include "deepc/plot.h"

static void fmt_duration(double s, char *buf, size_t size)
{
    if (s < 60) snprintf(buf, size, "%.1f s", s);
    else if (s < 3600) snprintf(buf, size, "%d min %02d s", (int)s / 60, (int)s % 60);
    else snprintf(buf, size, "%d h %02d min", (int)s / 3600, ((int)s % 3600) / 60);
}

static dc_status write_report(const dc_train_config *cfg, int n, const char *const *models, const dc_train_result *r,
                              const dc_dataset_info *info)
{
    /* report.md */
    size_t cap = 8192 + (size_t)n * 1024, used = 0;
    char *md = dc__malloc(cap);
    if (!md) return dc_last_status();
#define MD(...) used += (size_t)snprintf(md + used, used < cap ? cap - used : 0, __VA_ARGS__)
    MD("# CNN comparison on %s\n\n", info->title);
    MD("Recipe: %d epochs, batch %d, %s lr %g, schedule %s, validation %lld images, seed %llu, %d threads.\n\n",
       cfg->epochs, cfg->batch_size, cfg->optimizer == DC_OPTIM_SGD ? "SGD" : cfg->optimizer == DC_OPTIM_ADAMW ? "AdamW" : "Adam",
       cfg->lr, (const char *[]){"none", "step", "cosine", "onecycle"}[cfg->schedule], (long long)cfg->val_size,
       (unsigned long long)cfg->seed, dc_get_num_threads());
    MD("| model | parameters | MFLOPs/image | epochs | train time | images/s | test accuracy | precision | recall | F1 |\n");
    MD("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        char t[32];
        fmt_duration(r[i].train_seconds, t, sizeof t);
        MD("| %s | %lld | %.2f | %d | %s | %.0f | %.2f%% | %.4f | %.4f | %.4f |\n", models[i], (long long)r[i].info.params,
           r[i].info.mflops, r[i].epochs, t, r[i].images_per_second, 100.0 * r[i].test.accuracy, r[i].test.precision,
           r[i].test.recall, r[i].test.f1);
    }
    MD("\nPrecision, recall and F1 are macro averages over the %d classes of the test set.\n\n", info->num_classes);
    MD("![validation loss](val_loss.png)\n\n![test accuracy](accuracy.png)\n\n![per-class F1](f1.png)\n\n");
    MD("## Per-class F1\n\n| class |");
    for (int i = 0; i < n; i++) MD(" %s |", models[i]);
    MD("\n|---|");
    for (int i = 0; i < n; i++) MD("---:|");
    MD("\n");
    for (int c = 0; c < info->num_classes; c++) {
        MD("| %s |", info->class_names[c]);
        for (int i = 0; i < n; i++) MD(" %.4f |", r[i].test.per_class[c].f1);
        MD("\n");
    }
    MD("\nEach model's folder holds its model.safetensors, metrics.json, history.csv and plots.\n");
#undef MD
    char path[4096];
    dc__path_join(path, sizeof path, cfg->out_dir, "report.md");
    dc_status st = used < cap ? dc_write_file_atomic(path, md, used) : dc_set_error(DC_ERR_OOM, "report.md too long");
    free(md);
    if (st) return st;

    /* report.json: {"dataset", "recipe", "models": [metrics.json of each]} */
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "dataset", info->name);
    cJSON *arr = cJSON_AddArrayToObject(j, "models");
    for (int i = 0; i < n; i++) {
        dc_train_config c = *cfg;
        c.model = models[i];
        char *text = dc__run_metrics_json(&c, &r[i], info);
        cJSON *o = text ? cJSON_Parse(text) : NULL;
        free(text);
        if (o) cJSON_AddItemToArray(arr, o);
    }
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return dc_set_error(DC_ERR_OOM, "report.json: out of memory");
    dc__path_join(path, sizeof path, cfg->out_dir, "report.json");
    st = dc_write_file_atomic(path, text, strlen(text));
    free(text);
    if (st || !cfg->plots) return st;

    /* charts */
    dc_series *series = dc__calloc((size_t)n, sizeof *series);
    double *vals = dc__calloc((size_t)n * (size_t)(cfg->epochs + info->num_classes + 1), sizeof(double));
    if (!series || !vals) {
        free(series);
        free(vals);
        return dc_last_status();
    }
    double *acc = vals, *f1 = vals + n, *curves = f1 + (size_t)n * info->num_classes;
    for (int i = 0; i < n; i++) {
        for (int e = 0; e < r[i].epochs; e++) curves[(size_t)i * cfg->epochs + e] = r[i].history[e].val_loss;
        series[i] = (dc_series){models[i], NULL, curves + (size_t)i * cfg->epochs, r[i].epochs};
        acc[i] = 100.0 * r[i].test.accuracy;
        for (int c = 0; c < info->num_classes; c++) f1[(size_t)i * info->num_classes + c] = r[i].test.per_class[c].f1;
    }
    char title[160];
    snprintf(title, sizeof title, "Validation loss on %s", info->title);
    dc_line_chart lc = {.title = title, .xlabel = "epoch", .ylabel = "cross-entropy loss", .series = series,
                        .nseries = n, .integer_x = true};
    const char *files[] = {"val_loss.png", "val_loss.svg"};
    for (int i = 0; i < 2 && !st; i++) {
        dc__path_join(path, sizeof path, cfg->out_dir, files[i]);
        st = dc_plot_lines(path, &lc);
    }
    if (!st) {
        snprintf(title, sizeof title, "Test accuracy on %s", info->title);
        double lo = 100;
        for (int i = 0; i < n; i++) lo = fmin(lo, acc[i]);
        dc_bar_chart bc = {.title = title, .xlabel = "model", .ylabel = "accuracy (%)", .ngroups = n,
                           .group_names = models, .nseries = 1, .values = acc, .value_format = "%.2f",
                           .y_min = fmax(0, floor(lo / 5) * 5 - 5), .y_max = 100};
        dc__path_join(path, sizeof path, cfg->out_dir, "accuracy.png");
        st = dc_plot_bars(path, &bc);
    }
    if (!st) {
        snprintf(title, sizeof title, "Per-class F1 on %s", info->title);
        dc_bar_chart fc = {.title = title, .xlabel = "class", .ylabel = "F1", .ngroups = info->num_classes,
                           .group_names = info->class_names, .nseries = n, .series_names = models, .values = f1,
                           .y_min = 0, .y_max = 1};
        dc__path_join(path, sizeof path, cfg->out_dir, "f1.png");
        st = dc_plot_bars(path, &fc);
    }
    free(series);
    free(vals);
    return st;
}

dc_status dc_compare_run(const dc_train_config *cfg, int n, const char *const *models)
{
    if (!cfg->out_dir) return dc_set_error(DC_ERR_ARG, "compare: an output folder (--out) is required");
    dc_status st = dc__mkdir_p(cfg->out_dir);
    if (st) return st;
    dc_train_result *r = dc__calloc((size_t)n, sizeof *r);
    if (!r) return dc_last_status();
    for (int i = 0; i < n && !st; i++) {
        dc_train_config c = *cfg;
        char dir[4096];
        c.model = models[i];
        dc__path_join(dir, sizeof dir, cfg->out_dir, models[i]);
        c.out_dir = dir;
        if (!cfg->quiet) fprintf(stderr, "== %s (%d/%d) ==\n", models[i], i + 1, n);
        /* each model's peak_rss_mb is its own, not the process peak of the models before it */
        if (!dc_reset_peak_rss() && i == 1 && !cfg->quiet)
            fprintf(stderr, "compare: cannot reset the peak RSS count (/proc/self/clear_refs); peak_rss_mb is the process peak so far\n");
        st = dc_train_run(&c, &r[i]);
    }
    if (!st) st = write_report(cfg, n, models, r, dc_dataset_info_of(cfg->dataset));
    if (!st && !cfg->quiet) {
        char path[4096];
        dc__path_join(path, sizeof path, cfg->out_dir, "report.md");
        fprintf(stderr, "report: %s\n", path);
    }
    for (int i = 0; i < n; i++) dc_train_result_free(&r[i]);
    free(r);
    return st;
}
