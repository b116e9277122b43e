/* cmd_cnn.c: the CNN commands: deepc train, eval, compare, predict, download, models. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "deepc/deepc.h"
#include "deepc/data.h"
#include "deepc/models.h"
#include "deepc/train.h"

static const char *train_usage =
    "usage: deepc train --model M --dataset D [--data-dir DIR] [--epochs 10] [--batch-size 64] [--lr 1e-3]\n"
    "                   [--optimizer adam|adamw|sgd] [--momentum 0.9] [--weight-decay 0]\n"
    "                   [--schedule none|step|cosine|onecycle] [--val-size 5000] [--augment auto|none]\n"
    "                   [--seed 0] [--threads N] [--out DIR] [--resume DIR] [--max-train N] [--max-test N]\n"
    "                   [--quiet] [--no-plots]\n";

/* Parses the training flags shared by train and compare. Returns 1 if the flag was one. */
static int parse_train_flag(dc_args *a, dc_train_config *cfg, const char **dataset, int *threads)
{
    if (dc_args_flag(a, "--dataset")) *dataset = dc_args_str(a, "--dataset");
    else if (dc_args_flag(a, "--data-dir")) cfg->data_dir = dc_args_str(a, "--data-dir");
    else if (dc_args_flag(a, "--epochs")) cfg->epochs = (int)dc_args_int(a, "--epochs", 1, 100000);
    else if (dc_args_flag(a, "--batch-size")) cfg->batch_size = (int)dc_args_int(a, "--batch-size", 1, 65536);
    else if (dc_args_flag(a, "--lr")) cfg->lr = dc_args_double(a, "--lr", 1e-12, 100);
    else if (dc_args_flag(a, "--optimizer")) {
        static const dc_optim_kind kinds[] = {DC_OPTIM_ADAM, DC_OPTIM_ADAMW, DC_OPTIM_SGD};
        cfg->optimizer = kinds[dc_args_choice(a, "--optimizer", "adam|adamw|sgd")];
    } else if (dc_args_flag(a, "--momentum")) cfg->momentum = dc_args_double(a, "--momentum", 0, 1);
    else if (dc_args_flag(a, "--weight-decay")) cfg->weight_decay = dc_args_double(a, "--weight-decay", 0, 10);
    else if (dc_args_flag(a, "--schedule")) cfg->schedule = (dc_schedule)dc_args_choice(a, "--schedule", "none|step|cosine|onecycle");
    else if (dc_args_flag(a, "--val-size")) cfg->val_size = dc_args_int(a, "--val-size", 0, 1000000000);
    else if (dc_args_flag(a, "--augment")) cfg->augment = dc_args_choice(a, "--augment", "auto|none") == 0;
    else if (dc_args_flag(a, "--seed")) cfg->seed = (uint64_t)dc_args_int(a, "--seed", 0, INT64_MAX);
    else if (dc_args_flag(a, "--threads")) *threads = (int)dc_args_int(a, "--threads", 1, 1024);
    else if (dc_args_flag(a, "--out")) cfg->out_dir = dc_args_str(a, "--out");
    else if (dc_args_flag(a, "--resume")) cfg->resume_dir = dc_args_str(a, "--resume");
    else if (dc_args_flag(a, "--max-train")) cfg->max_train = dc_args_int(a, "--max-train", 1, INT64_MAX);
    else if (dc_args_flag(a, "--max-test")) cfg->max_test = dc_args_int(a, "--max-test", 1, INT64_MAX);
    else if (dc_args_flag(a, "--quiet")) cfg->quiet = true;
    else if (dc_args_flag(a, "--no-plots")) cfg->plots = false;
    else return 0;
    return 1;
}

static int finish_config(dc_args *a, dc_train_config *cfg, const char *dataset, int threads)
{
    if (a->failed) return 2;
    if (!dataset) {
        dc_args_error(a, "--dataset is required (valid: %s)", dc_dataset_names());
        return 2;
    }
    if (dc_dataset_parse(dataset, &cfg->dataset)) {
        dc_args_error(a, "%s", dc_last_error());
        return 2;
    }
    if (threads > 0) dc_set_num_threads(threads);
    return 0;
}

int dc_cmd_train(int argc, char **argv)
{
    dc_args a;
    dc_args_init(&a, "deepc train", argc, argv);
    dc_train_config cfg;
    dc_train_config_defaults(&cfg);
    cfg.model = NULL;
    const char *dataset = NULL;
    int threads = 0;
    while (dc_args_more(&a)) {
        if (dc_args_flag(&a, "--help")) {
            fputs(train_usage, stdout);
            return 0;
        }
        if (dc_args_flag(&a, "--model")) cfg.model = dc_args_str(&a, "--model");
        else if (!parse_train_flag(&a, &cfg, &dataset, &threads)) dc_args_unknown(&a);
    }
    if (!a.failed && !cfg.model) dc_args_error(&a, "--model is required (valid: %s)", dc_cnn_names());
    if (!a.failed && !dc_cnn_known(cfg.model)) dc_args_error(&a, "unknown model '%s' (valid: %s)", cfg.model, dc_cnn_names());
    int rc = finish_config(&a, &cfg, dataset, threads);
    if (rc) return rc;
    char out[4096];
    if (!cfg.out_dir) {
        snprintf(out, sizeof out, "runs/%s-%s", cfg.model, dc_dataset_info_of(cfg.dataset)->name);
        cfg.out_dir = out;
    }
    dc_train_result res;
    dc_status st = dc_train_run(&cfg, &res);
    if (st) {
        fprintf(stderr, "deepc train: %s\n", dc_last_error());
        dc_train_result_free(&res);
        return st == DC_ERR_INTERRUPTED ? 130 : 1;
    }
    dc_train_result_free(&res);
    return 0;
}

int dc_cmd_compare(int argc, char **argv)
{
    dc_args a;
    dc_args_init(&a, "deepc compare", argc, argv);
    dc_train_config cfg;
    dc_train_config_defaults(&cfg);
    const char *dataset = NULL, *models = "lenet5,alexnet,vgg11,resnet18";
    int threads = 0;
    while (dc_args_more(&a)) {
        if (dc_args_flag(&a, "--help")) {
            printf("usage: deepc compare --models lenet5,alexnet,vgg11,resnet18 --dataset D [training flags] --out DIR\n");
            return 0;
        }
        if (dc_args_flag(&a, "--models")) models = dc_args_str(&a, "--models");
        else if (!parse_train_flag(&a, &cfg, &dataset, &threads)) dc_args_unknown(&a);
    }
    if (!a.failed && !cfg.out_dir) dc_args_error(&a, "--out DIR is required");
    if (!a.failed && cfg.resume_dir) dc_args_error(&a, "--resume is for 'deepc train'");
    int rc = finish_config(&a, &cfg, dataset, threads);
    if (rc) return rc;
    char *list = strdup(models);
    const char *names[32];
    int n = 0;
    for (char *tok = strtok(list, ","); tok && n < 32; tok = strtok(NULL, ",")) {
        while (*tok == ' ') tok++;
        if (!dc_cnn_known(tok)) {
            fprintf(stderr, "deepc compare: unknown model '%s' (valid: %s)\n", tok, dc_cnn_names());
            free(list);
            return 2;
        }
        names[n++] = tok;
    }
    if (n == 0) {
        fprintf(stderr, "deepc compare: --models lists no model\n");
        free(list);
        return 2;
    }
    dc_status st = dc_compare_run(&cfg, n, names);
    free(list);
    if (st) {
        fprintf(stderr, "deepc compare: %s\n", dc_last_error());
        return st == DC_ERR_INTERRUPTED ? 130 : 1;
    }
    return 0;
}

/* Builds the model that fits a weights file: the model name comes from --model, the data set
 * from --dataset or the file's metadata. */
static dc_module *load_model(const char *cmd, const char *model, const char *weights, const char **dataset,
                             dc_dataset_id *id)
{
    dc_safetensors *st = dc_safetensors_open(weights);
    if (!st) {
        fprintf(stderr, "%s: %s\n", cmd, dc_last_error());
        return NULL;
    }
    if (!*dataset) *dataset = dc_safetensors_metadata(st, "dataset");
    if (!*dataset) {
        fprintf(stderr, "%s: --dataset is required (%s has no dataset metadata; valid: %s)\n", cmd, weights,
                dc_dataset_names());
        dc_safetensors_close(st);
        return NULL;
    }
    if (dc_dataset_parse(*dataset, id)) {
        fprintf(stderr, "%s: %s\n", cmd, dc_last_error());
        dc_safetensors_close(st);
        return NULL;
    }
    const dc_dataset_info *info = dc_dataset_info_of(*id);
    dc_module *m = dc_cnn_new(model, info->channels, info->height, info->num_classes, NULL);
    if (!m || dc_module_load_state_dict(m, st, true)) {
        fprintf(stderr, "%s: %s does not fit %s for %s: %s\n", cmd, weights, model, info->name, dc_last_error());
        dc_module_free(m);
        m = NULL;
    }
    dc_safetensors_close(st);
    return m;
}

int dc_cmd_eval(int argc, char **argv)
{
    dc_args a;
    dc_args_init(&a, "deepc eval", argc, argv);
    const char *model = NULL, *weights = NULL, *dataset = NULL, *data_dir = NULL;
    int split = 0, threads = 0;
    bool json = false;
    int64_t val_size = 5000, max_test = 0;
    uint64_t seed = 0;
    while (dc_args_more(&a)) {
        if (dc_args_flag(&a, "--help")) {
            printf("usage: deepc eval --model M --weights FILE.safetensors --dataset D [--data-dir DIR] [--split test|val]\n"
                   "                  [--val-size 5000] [--seed 0] [--threads N] [--json]\n");
            return 0;
        }
        if (dc_args_flag(&a, "--model")) model = dc_args_str(&a, "--model");
        else if (dc_args_flag(&a, "--weights")) weights = dc_args_str(&a, "--weights");
        else if (dc_args_flag(&a, "--dataset")) dataset = dc_args_str(&a, "--dataset");
        else if (dc_args_flag(&a, "--data-dir")) data_dir = dc_args_str(&a, "--data-dir");
        else if (dc_args_flag(&a, "--split")) split = dc_args_choice(&a, "--split", "test|val");
        else if (dc_args_flag(&a, "--val-size")) val_size = dc_args_int(&a, "--val-size", 1, 1000000000);
        else if (dc_args_flag(&a, "--seed")) seed = (uint64_t)dc_args_int(&a, "--seed", 0, INT64_MAX);
        else if (dc_args_flag(&a, "--max-test")) max_test = dc_args_int(&a, "--max-test", 1, INT64_MAX);
        else if (dc_args_flag(&a, "--threads")) threads = (int)dc_args_int(&a, "--threads", 1, 1024);
        else if (dc_args_flag(&a, "--json")) json = true;
        else dc_args_unknown(&a);
    }
    if (!a.failed && !model) dc_args_error(&a, "--model is required (valid: %s)", dc_cnn_names());
    if (!a.failed && !dc_cnn_known(model)) dc_args_error(&a, "unknown model '%s' (valid: %s)", model, dc_cnn_names());
    if (!a.failed && !weights) dc_args_error(&a, "--weights FILE.safetensors is required");
    if (a.failed) return 2;
    if (threads) dc_set_num_threads(threads);
    dc_dataset_id id;
    dc_module *m = load_model("deepc eval", model, weights, &dataset, &id);
    if (!m) return 1;
    dc_dataset *ds = dc_dataset_load(id, split ? DC_SPLIT_TRAIN : DC_SPLIT_TEST, data_dir);
    if (!ds) {
        fprintf(stderr, "deepc eval: %s\n", dc_last_error());
        dc_module_free(m);
        return 1;
    }
    int64_t *tr = NULL, *va = NULL, ntr = 0, nva = 0, n = ds->count;
    const int64_t *idx = NULL;
    if (split) {
        if (val_size >= ds->count || dc_split_train_val(ds->count, val_size, seed, &tr, &ntr, &va, &nva)) {
            fprintf(stderr, "deepc eval: --val-size %lld does not fit %lld training images\n", (long long)val_size,
                    (long long)ds->count);
            dc_dataset_free(ds);
            dc_module_free(m);
            return 2;
        }
        idx = va;
        n = nva;
    }
    if (max_test > 0 && max_test < n) n = max_test;
    dc_metrics met;
    double loss;
    int rc = 0;
    if (dc_evaluate(m, ds, idx, n, 256, &loss, &met)) {
        fprintf(stderr, "deepc eval: %s\n", dc_last_error());
        rc = 1;
    } else if (json) {
        char *text = dc_metrics_json(&met, loss, ds->info->class_names);
        if (text) puts(text);
        free(text);
    } else {
        printf("%s on %s (%s, %lld images): loss %.4f, accuracy %.2f%%, precision %.4f, recall %.4f, F1 %.4f\n", model,
               ds->info->title, split ? "validation" : "test", (long long)n, loss, 100.0 * met.accuracy, met.precision,
               met.recall, met.f1);
    }
    free(tr);
    free(va);
    dc_dataset_free(ds);
    dc_module_free(m);
    return rc;
}

int dc_cmd_predict(int argc, char **argv)
{
    dc_args a;
    dc_args_init(&a, "deepc predict", argc, argv);
    const char *model = NULL, *weights = NULL, *dataset = NULL;
    int top = 3;
    bool invert = false, json = false;
    const char *images[256];
    int n_images = 0;
    while (dc_args_more(&a)) {
        if (dc_args_flag(&a, "--help")) {
            printf("usage: deepc predict --model M --weights FILE.safetensors [--dataset D] [--top 3] [--invert] [--json] IMAGE...\n"
                   "IMAGE: PNG, JPEG or PGM/PPM; converted to the data set's channels and size, then normalized.\n"
                   "--invert: 255 - pixel (dark ink on white paper, for MNIST-like models).\n");
            return 0;
        }
        if (dc_args_flag(&a, "--model")) model = dc_args_str(&a, "--model");
        else if (dc_args_flag(&a, "--weights")) weights = dc_args_str(&a, "--weights");
        else if (dc_args_flag(&a, "--dataset")) dataset = dc_args_str(&a, "--dataset");
        else if (dc_args_flag(&a, "--top")) top = (int)dc_args_int(&a, "--top", 1, 10);
        else if (dc_args_flag(&a, "--invert")) invert = true;
        else if (dc_args_flag(&a, "--json")) json = true;
        else {
            const char *p = dc_args_positional(&a);
            if (!p) dc_args_unknown(&a);
            else if (n_images < 256) images[n_images++] = p;
            else dc_args_error(&a, "at most 256 images per call");
        }
    }
    if (!a.failed && !model) dc_args_error(&a, "--model is required (valid: %s)", dc_cnn_names());
    if (!a.failed && !dc_cnn_known(model)) dc_args_error(&a, "unknown model '%s' (valid: %s)", model, dc_cnn_names());
    if (!a.failed && !weights) dc_args_error(&a, "--weights FILE.safetensors is required");
    if (!a.failed && n_images == 0) dc_args_error(&a, "no IMAGE given");
    if (a.failed) return 2;
    dc_dataset_id id;
    dc_module *m = load_model("deepc predict", model, weights, &dataset, &id);
    if (!m) return 1;
    dc_module_eval(m);
    const dc_dataset_info *info = dc_dataset_info_of(id);
    int64_t chw = (int64_t)info->channels * info->height * info->width;
    float *x = malloc((size_t)chw * sizeof(float));
    int rc = 0;
    bool prev = dc_set_grad_enabled(false);
    if (json) printf("[");
    for (int i = 0; i < n_images && x; i++) {
        if (dc_image_load_normalized(images[i], id, invert, x)) {
            fprintf(stderr, "deepc predict: %s\n", dc_last_error());
            rc = 1;
            continue;
        }
        dc_pool_mark mark = dc_pool_push();
        dc_tensor *xt = dc_from_external(DC_F32, 4, (int64_t[]){1, info->channels, info->height, info->width}, x, NULL, NULL);
        dc_tensor *p = dc_contiguous(dc_softmax(dc_module_forward(m, xt), 1));
        if (!p) {
            fprintf(stderr, "deepc predict: %s: %s\n", images[i], dc_last_error());
            rc = 1;
            dc_pool_pop(mark);
            continue;
        }
        const float *prob = dc_data_f32(p);
        int order[DC_MAX_CLASSES];
        for (int c = 0; c < info->num_classes; c++) order[c] = c;
        for (int c = 0; c < info->num_classes; c++) /* selection sort: 10 classes */
            for (int d = c + 1; d < info->num_classes; d++)
                if (prob[order[d]] > prob[order[c]]) {
                    int t = order[c];
                    order[c] = order[d];
                    order[d] = t;
                }
        int k = top < info->num_classes ? top : info->num_classes;
        if (json) {
            printf("%s{\"image\":\"%s\",\"top\":[", i ? "," : "", images[i]);
            for (int c = 0; c < k; c++)
                printf("%s{\"class\":%d,\"name\":\"%s\",\"prob\":%.6f}", c ? "," : "", order[c],
                       info->class_names[order[c]], prob[order[c]]);
            printf("]}");
        } else {
            printf("%s:", images[i]);
            for (int c = 0; c < k; c++)
                printf("%s %s (%d) %.2f%%", c ? "," : "", info->class_names[order[c]], order[c], 100.0 * prob[order[c]]);
            printf("\n");
        }
        dc_pool_pop(mark);
    }
    if (json) printf("]\n");
    dc_set_grad_enabled(prev);
    free(x);
    dc_module_free(m);
    return rc;
}

int dc_cmd_models(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    static const char *names[] = {"lenet5", "alexnet", "vgg11", "vgg16", "resnet18", "resnet20"};
    printf("%-10s %14s %14s %16s %16s\n", "model", "params 1x28x28", "params 3x32x32", "MFLOPs 1x28x28", "MFLOPs 3x32x32");
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        dc_cnn_info a, b;
        dc_module *m1 = dc_cnn_new(names[i], 1, 28, 10, &a);
        dc_module *m3 = dc_cnn_new(names[i], 3, 32, 10, &b);
        if (!m1 || !m3) {
            fprintf(stderr, "deepc models: %s\n", dc_last_error());
            dc_module_free(m1);
            dc_module_free(m3);
            return 1;
        }
        printf("%-10s %14lld %14lld %16.2f %16.2f\n", names[i], (long long)a.params, (long long)b.params, a.mflops, b.mflops);
        dc_module_free(m1);
        dc_module_free(m3);
    }
    printf("(MNIST and Fashion-MNIST are 1x28x28, CIFAR-10 is 3x32x32; FLOPs count 2 per multiply-add)\n");
    return 0;
}

int dc_hf_download_main(int argc, char **argv); /* apps/cmd_generate.c */

int dc_cmd_download(int argc, char **argv)
{
    /* A positional argument that is not a data set name is a Hugging Face REPO_ID ("gpt2",
     * "org/name"): the model downloader takes the whole command line (its own flags too). */
    for (int i = 1; i < argc; i++) {
        bool is_value = i > 1 && (!strcmp(argv[i - 1], "--data-dir") || !strcmp(argv[i - 1], "--dir") ||
                                  !strcmp(argv[i - 1], "--revision"));
        dc_dataset_id probe;
        if (argv[i][0] != '-' && !is_value) {
            bool dataset = dc_dataset_parse(argv[i], &probe) == DC_OK;
            dc_clear_error();
            if (!dataset) return dc_hf_download_main(argc, argv);
            break;
        }
    }
    dc_args a;
    dc_args_init(&a, "deepc download", argc, argv);
    const char *what = NULL, *data_dir = NULL;
    while (dc_args_more(&a)) {
        if (dc_args_flag(&a, "--help")) {
            printf("usage: deepc download mnist|fashion-mnist|cifar10 [--data-dir DIR]\n"
                   "       deepc download REPO_ID [--revision main] [--dir DIR]   (Hugging Face model)\n");
            return 0;
        }
        if (dc_args_flag(&a, "--data-dir")) data_dir = dc_args_str(&a, "--data-dir");
        else if (dc_args_flag(&a, "--dir")) data_dir = dc_args_str(&a, "--dir");
        else {
            const char *p = dc_args_positional(&a);
            if (!p) dc_args_unknown(&a);
            else if (what) dc_args_error(&a, "one data set per call ('%s' and '%s')", what, p);
            else what = p;
        }
    }
    if (!a.failed && !what) dc_args_error(&a, "which data set? (%s)", dc_dataset_names());
    if (a.failed) return 2;
    dc_dataset_id id;
    if (dc_dataset_parse(what, &id)) {
        fprintf(stderr, "deepc download: %s, or a Hugging Face repo id such as openai-community/gpt2\n", dc_last_error());
        return 2;
    }
    if (dc_download_dataset(id, data_dir, NULL)) {
        fprintf(stderr, "deepc download: %s\n", dc_last_error());
        return 1;
    }
    return 0;
}
