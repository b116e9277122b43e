/* cmd_seq2seq.c: `deepc seq2seq train|eval|predict`: sequence-to-sequence models with
 * attention on the reversal task (the seed) and the dates task (words -> ISO dates).
 *
 *   deepc seq2seq train [--task reverse|dates] [--cell rnn|gru|lstm] [--attention dot|general|additive]
 *                       [--hidden 64] [--embed N] [--min-len 5] [--max-len 15] [--train-size 10000]
 *                       [--val-size 1000] [--epochs 10] [--batch-size 32] [--lr 1e-3]
 *                       [--teacher-forcing 0.0] [--beam 5] [--seed 0] [--out DIR]
 *   deepc seq2seq eval --weights DIR/model.safetensors [--json] [--val-size N] [--seed S] [--beam K]
 *   deepc seq2seq predict --weights DIR/model.safetensors [--beam K] [--attention-out PATH] VALUES... | WORDS...
 *
 * train writes DIR/model.safetensors (config and data seed in its metadata), metrics.json,
 * loss.png and loss.svg. Validation data is generated from seed + 1, so eval regenerates the
 * same validation set from the checkpoint alone. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "deepc/deepc.h"
#include "deepc/optim.h"
#include "deepc/plot.h"
#include "deepc/progress.h"
#include "deepc/seq2seq.h"
#include "util/util.h"

bool dc__s2s_dates_parse(const int64_t *src, int64_t len, int64_t *iso_out);

#define CMD "deepc seq2seq"

/* CPU seconds of the whole process (all threads): on a shared, busy machine this is the
 * fairer speed figure beside wall time. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: deepc seq2seq train   [--task reverse|dates] [--cell rnn|gru|lstm] [--attention dot|general|additive]\n"
            "                             [--hidden 64] [--embed N] [--min-len 5] [--max-len 15] [--train-size 10000]\n"
            "                             [--val-size 1000] [--epochs 10] [--batch-size 32] [--lr 1e-3]\n"
            "                             [--teacher-forcing 0.0] [--beam 5] [--seed 0] [--out DIR]\n"
            "       deepc seq2seq eval    --weights DIR/model.safetensors [--json] [--val-size N] [--seed S] [--beam K]\n"
            "       deepc seq2seq predict --weights DIR/model.safetensors [--beam K] [--attention-out PATH]\n"
            "                             0.1 0.5 0.9 0.3            (reverse: the numbers to reverse)\n"
            "                             march fifth nineteen ninety nine   (dates: the words)\n"
            "tasks: reverse = random U[0,1) sequences -> reversed (MSE); dates = a date in words -> YYYY-MM-DD\n"
            "       (cross-entropy; exact match with greedy decoding and beam search)\n");
}

/* ---------------------------------------------------------------------------------------
 * Loading a checkpoint
 * ------------------------------------------------------------------------------------- */

typedef struct loaded {
    dc_module *model;
    dc_s2s_config cfg;
    uint64_t seed;
    int64_t val_size;
} loaded;

static int load_model(const char *path, loaded *out)
{
    memset(out, 0, sizeof *out);
    dc_safetensors *st = dc_safetensors_open(path);
    if (!st) {
        fprintf(stderr, CMD ": %s\n", dc_last_error());
        return 1;
    }
    int rc = 1;
    if (dc_s2s_config_from_file(st, &out->cfg)) {
        fprintf(stderr, CMD ": %s\n", dc_last_error());
        goto done;
    }
    const char *seed = dc_safetensors_metadata(st, "seed"), *vs = dc_safetensors_metadata(st, "val_size");
    out->seed = seed ? strtoull(seed, NULL, 10) : 0;
    out->val_size = vs ? strtoll(vs, NULL, 10) : 1000;
    if (out->val_size < 1) out->val_size = 1000;
    out->model = dc_seq2seq_new(&out->cfg);
    if (!out->model || dc_module_load_state_dict(out->model, st, true)) {
        fprintf(stderr, CMD ": %s: %s\n", path, dc_last_error());
        dc_module_free(out->model);
        out->model = NULL;
        goto done;
    }
    dc_module_eval(out->model);
    rc = 0;
done:
    dc_safetensors_close(st);
    return rc;
}

static dc_s2s_dataset *make_data(const dc_s2s_config *cfg, int64_t n, uint64_t seed)
{
    return cfg->task == DC_S2S_DATES ? dc_s2s_dates_dataset(n, seed)
                                     : dc_s2s_reverse_dataset(n, cfg->min_len, cfg->max_len, seed);
}

/* ---------------------------------------------------------------------------------------
 * train
 * ------------------------------------------------------------------------------------- */

typedef struct train_opts {
    dc_s2s_config cfg;
    int64_t train_size, val_size, epochs, batch_size;
    double lr, tf;
    int beam;
    uint64_t seed;
    const char *out;
} train_opts;

static int write_metrics(const char *dir, const train_opts *o, int64_t epochs_done, const double *tr, const double *va,
                         const double *secs, const double *cpu, const dc_s2s_eval *final, int64_t n_params)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "task", dc_s2s_task_name(o->cfg.task));
    cJSON_AddStringToObject(root, "cell", o->cfg.cell == DC_GRU ? "gru" : o->cfg.cell == DC_LSTM ? "lstm" : "rnn");
    cJSON_AddStringToObject(root, "attention", dc_attention_kind_name(o->cfg.attention));
    cJSON_AddNumberToObject(root, "hidden", (double)o->cfg.hidden);
    cJSON_AddNumberToObject(root, "parameters", (double)n_params);
    cJSON_AddNumberToObject(root, "train_size", (double)o->train_size);
    cJSON_AddNumberToObject(root, "val_size", (double)o->val_size);
    cJSON_AddNumberToObject(root, "batch_size", (double)o->batch_size);
    cJSON_AddNumberToObject(root, "lr", o->lr);
    cJSON_AddNumberToObject(root, "teacher_forcing", o->tf);
    cJSON_AddNumberToObject(root, "seed", (double)o->seed);
    cJSON_AddNumberToObject(root, "threads", dc_get_num_threads());
    cJSON *hist = cJSON_AddArrayToObject(root, "history");
    for (int64_t e = 0; e < epochs_done; e++) {
        cJSON *it = cJSON_CreateObject();
        cJSON_AddNumberToObject(it, "epoch", (double)(e + 1));
        cJSON_AddNumberToObject(it, "train_loss", tr[e]);
        cJSON_AddNumberToObject(it, "val_loss", va[e]);
        cJSON_AddNumberToObject(it, "seconds", secs[e]);
        cJSON_AddNumberToObject(it, "cpu_seconds", cpu[e]);
        cJSON_AddItemToArray(hist, it);
    }
    if (o->cfg.task == DC_S2S_REVERSE) {
        cJSON_AddNumberToObject(root, "val_mse", final->mse);
    } else {
        cJSON_AddNumberToObject(root, "val_exact_match", final->exact_match);
        cJSON_AddNumberToObject(root, "val_token_accuracy", final->token_accuracy);
        if (!isnan(final->beam_exact)) {
            cJSON_AddNumberToObject(root, "val_beam_exact_match", final->beam_exact);
            cJSON_AddNumberToObject(root, "beam", o->beam);
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char path[4096];
    dc__path_join(path, sizeof path, dir, "metrics.json");
    dc_status st = text ? dc_write_file_atomic(path, text, strlen(text)) : DC_ERR_OOM;
    free(text);
    if (st) fprintf(stderr, CMD " train: %s\n", dc_last_error());
    return st ? 1 : 0;
}

static int plot_losses(const char *dir, const train_opts *o, int64_t n, const double *tr, const double *va)
{
    dc_series s[2] = {{"train", NULL, tr, (int)n}, {"validation", NULL, va, (int)n}};
    char title[128];
    snprintf(title, sizeof title, "seq2seq %s: %s + %s attention, hidden %lld", dc_s2s_task_name(o->cfg.task),
             o->cfg.cell == DC_GRU ? "GRU" : o->cfg.cell == DC_LSTM ? "LSTM" : "RNN",
             dc_attention_kind_name(o->cfg.attention), (long long)o->cfg.hidden);
    dc_line_chart c = {.title = title, .xlabel = "epoch",
                       .ylabel = o->cfg.task == DC_S2S_DATES ? "cross-entropy" : "MSE (real positions)",
                       .series = s, .nseries = 2, .integer_x = true, .log_y = true};
    const char *names[2] = {"loss.png", "loss.svg"};
    for (int i = 0; i < 2; i++) {
        char path[4096];
        dc__path_join(path, sizeof path, dir, names[i]);
        if (dc_plot_lines(path, &c)) {
            fprintf(stderr, CMD " train: %s\n", dc_last_error());
            return 1;
        }
    }
    return 0;
}

static int cmd_train(int argc, char **argv)
{
    dc_args a;
    dc_args_init(&a, CMD " train", argc, argv);
    train_opts o = {{DC_S2S_REVERSE, DC_RNN_TANH, DC_ATTN_DOT, 64, 0, 5, 15}, 10000, 1000, 10, 32, 1e-3, 0.0, 5, 0,
                    "runs/seq2seq"};
    while (dc_args_more(&a)) {
        if (dc_args_flag(&a, "--task")) o.cfg.task = (dc_s2s_task)dc_args_choice(&a, "--task", "reverse|dates");
        else if (dc_args_flag(&a, "--cell")) {
            int c = dc_args_choice(&a, "--cell", "rnn|gru|lstm");
            o.cfg.cell = c == 1 ? DC_GRU : c == 2 ? DC_LSTM : DC_RNN_TANH;
        } else if (dc_args_flag(&a, "--attention"))
            o.cfg.attention = (dc_attention_kind)dc_args_choice(&a, "--attention", "dot|general|additive");
        else if (dc_args_flag(&a, "--hidden")) o.cfg.hidden = dc_args_int(&a, "--hidden", 1, 4096);
        else if (dc_args_flag(&a, "--embed")) o.cfg.embed = dc_args_int(&a, "--embed", 1, 4096);
        else if (dc_args_flag(&a, "--min-len")) o.cfg.min_len = (int)dc_args_int(&a, "--min-len", 1, 1000);
        else if (dc_args_flag(&a, "--max-len")) o.cfg.max_len = (int)dc_args_int(&a, "--max-len", 1, 1000);
        else if (dc_args_flag(&a, "--train-size")) o.train_size = dc_args_int(&a, "--train-size", 1, 100000000);
        else if (dc_args_flag(&a, "--val-size")) o.val_size = dc_args_int(&a, "--val-size", 1, 100000000);
        else if (dc_args_flag(&a, "--epochs")) o.epochs = dc_args_int(&a, "--epochs", 1, 100000);
        else if (dc_args_flag(&a, "--batch-size")) o.batch_size = dc_args_int(&a, "--batch-size", 1, 65536);
        else if (dc_args_flag(&a, "--lr")) {
            o.lr = dc_args_double(&a, "--lr", 0, 10);
            if (!a.failed && o.lr <= 0) dc_args_error(&a, "--lr must be > 0, got %g", o.lr);
        } else if (dc_args_flag(&a, "--teacher-forcing")) o.tf = dc_args_double(&a, "--teacher-forcing", 0, 1);
        else if (dc_args_flag(&a, "--beam")) o.beam = (int)dc_args_int(&a, "--beam", 1, 64);
        else if (dc_args_flag(&a, "--seed")) o.seed = (uint64_t)dc_args_int(&a, "--seed", 0, INT64_MAX - 1);
        else if (dc_args_flag(&a, "--out")) o.out = dc_args_str(&a, "--out");
        else if (dc_args_flag(&a, "--help") || dc_args_flag(&a, "-h")) {
            usage(stdout);
            return 0;
        } else dc_args_unknown(&a);
    }
    if (!a.failed && o.cfg.min_len > o.cfg.max_len)
        dc_args_error(&a, "--min-len %d is greater than --max-len %d", o.cfg.min_len, o.cfg.max_len);
    if (a.failed) return 2;
    if (o.cfg.task == DC_S2S_DATES) o.cfg.min_len = o.cfg.max_len = 0; /* lengths come from the grammar */

    dc_status st = dc__mkdir_p(o.out);
    if (st) {
        fprintf(stderr, CMD " train: %s\n", dc_last_error());
        return 1;
    }
    dc_manual_seed(o.seed);
    dc_module *model = dc_seq2seq_new(&o.cfg);
    dc_s2s_dataset *train = make_data(&o.cfg, o.train_size, o.seed * 2 + 1000);
    dc_s2s_dataset *val = make_data(&o.cfg, o.val_size, o.seed * 2 + 1001);
    dc_tensor_list *params = model ? dc_module_named_parameters(model) : NULL;
    dc_optimizer *opt = params ? dc_adam_new(params->count, params->tensors, dc_adam_options(o.lr)) : NULL;
    int64_t *order = malloc((size_t)o.train_size * sizeof(int64_t));
    double *tr = calloc((size_t)o.epochs, sizeof(double)), *va = calloc((size_t)o.epochs, sizeof(double));
    double *secs = calloc((size_t)o.epochs, sizeof(double)), *cpu = calloc((size_t)o.epochs, sizeof(double));
    int rc = 1;
    if (!model || !train || !val || !opt || !order || !tr || !va || !secs || !cpu) {
        fprintf(stderr, CMD " train: %s\n", dc_last_status() ? dc_last_error() : "out of memory");
        goto done;
    }
    const dc_s2s_config *cfg = dc_seq2seq_config(model); /* with the resolved embed size */
    int64_t n_params = dc_module_num_parameters(model);
    fprintf(stderr, "seq2seq %s: %s encoder/decoder, %s attention, hidden %lld, %lld parameters; %lld train / %lld val, "
                    "%d threads (%s)\n",
            dc_s2s_task_name(cfg->task), dc_rnn_mode_name(cfg->cell), dc_attention_kind_name(cfg->attention),
            (long long)cfg->hidden, (long long)n_params, (long long)o.train_size, (long long)o.val_size,
            dc_get_num_threads(), dc_blas_info());
    dc_rng rng;
    dc_rng_seed(&rng, o.seed);
    for (int64_t i = 0; i < o.train_size; i++) order[i] = i;
    const int64_t n_batches = (o.train_size + o.batch_size - 1) / o.batch_size;
    dc_s2s_eval ev = {0};
    int64_t epoch = 0;
    for (; epoch < o.epochs; epoch++) {
        /* shuffle (Fisher-Yates) */
        for (int64_t i = o.train_size - 1; i > 0; i--) {
            int64_t j = (int64_t)dc_rng_below(&rng, (uint64_t)(i + 1));
            int64_t t = order[i];
            order[i] = order[j], order[j] = t;
        }
        dc_module_train(model, true);
        char label[64];
        snprintf(label, sizeof label, "epoch %lld/%lld", (long long)(epoch + 1), (long long)o.epochs);
        dc_progress *p = dc_progress_begin(stderr, DC_PROGRESS_AUTO, label, n_batches, false);
        double t0 = dc__now(), c0 = cpu_now(), loss_sum = 0;
        int64_t seen = 0;
        for (int64_t bi = 0; bi < n_batches; bi++) {
            int64_t start = bi * o.batch_size, n = (o.batch_size < o.train_size - start ? o.batch_size : o.train_size - start);
            dc_s2s_batch b;
            if ((st = dc_s2s_collate(train, order + start, n, &b))) break;
            dc_pool_mark mark = dc_pool_push();
            dc_optimizer_zero_grad(opt);
            dc_tensor *loss = dc_seq2seq_loss(model, &b, o.tf, &rng);
            st = loss ? dc_backward(loss, NULL, false) : dc_last_status();
            if (!st) st = dc_optimizer_step(opt);
            double lv = loss ? dc_item(loss) : NAN;
            dc_pool_pop(mark);
            dc_s2s_batch_free(&b);
            if (st) break;
            loss_sum += lv * (double)n;
            seen += n;
            dc_progress_update(p, bi + 1, seen, loss_sum / (double)seen);
        }
        secs[epoch] = dc__now() - t0;
        cpu[epoch] = cpu_now() - c0;
        if (st) {
            dc_progress_end(p, NULL);
            fprintf(stderr, CMD " train: %s\n", dc_last_error());
            goto done;
        }
        tr[epoch] = loss_sum / (double)seen;
        dc_module_eval(model);
        bool last = epoch + 1 == o.epochs;
        if ((st = dc_seq2seq_evaluate(model, val, 256, last && cfg->task == DC_S2S_DATES ? o.beam : 1, &ev))) {
            dc_progress_end(p, NULL);
            fprintf(stderr, CMD " train: %s\n", dc_last_error());
            goto done;
        }
        va[epoch] = ev.loss;
        char summary[160];
        if (cfg->task == DC_S2S_REVERSE)
            snprintf(summary, sizeof summary, "train_loss %.6f  val_mse %.6f  (%.2f s train)", tr[epoch], ev.mse, secs[epoch]);
        else
            snprintf(summary, sizeof summary, "train_loss %.4f  val_loss %.4f  exact %.2f%%  tokens %.2f%%  (%.2f s train)",
                     tr[epoch], ev.loss, 100 * ev.exact_match, 100 * ev.token_accuracy, secs[epoch]);
        dc_progress_end(p, summary);
    }
    /* the checkpoint, with what eval needs to rebuild the model and its validation data */
    {
        const char *const *base = dc_s2s_config_metadata(cfg);
        const char *md[32];
        int k = 0;
        for (; base[k]; k++) md[k] = base[k];
        char seed_s[32], vs_s[32], tf_s[32];
        snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)o.seed);
        snprintf(vs_s, sizeof vs_s, "%lld", (long long)o.val_size);
        snprintf(tf_s, sizeof tf_s, "%g", o.tf);
        const char *extra[] = {"seed", seed_s, "val_size", vs_s, "teacher_forcing", tf_s, NULL};
        for (int j = 0; extra[j]; j++) md[k++] = extra[j];
        md[k] = NULL;
        char path[4096];
        dc__path_join(path, sizeof path, o.out, "model.safetensors");
        if (dc_module_save(model, path, md)) {
            fprintf(stderr, CMD " train: %s\n", dc_last_error());
            goto done;
        }
    }
    if (write_metrics(o.out, &o, epoch, tr, va, secs, cpu, &ev, n_params) || plot_losses(o.out, &o, epoch, tr, va)) goto done;
    if (cfg->task == DC_S2S_REVERSE)
        printf("val_mse %.6f after %lld epochs; wrote %s/model.safetensors, metrics.json, loss.png, loss.svg\n", ev.mse,
               (long long)epoch, o.out);
    else
        printf("val_exact_match %.2f%% (greedy), %.2f%% (beam %d) after %lld epochs; wrote %s/model.safetensors, "
               "metrics.json, loss.png, loss.svg\n",
               100 * ev.exact_match, 100 * ev.beam_exact, o.beam, (long long)epoch, o.out);
    rc = 0;
done:
    free(order);
    free(tr);
    free(va);
    free(secs);
    free(cpu);
    dc_optimizer_free(opt);
    dc_tensor_list_free(params);
    dc_s2s_dataset_free(train);
    dc_s2s_dataset_free(val);
    dc_module_free(model);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * eval
 * ------------------------------------------------------------------------------------- */

static int cmd_eval(int argc, char **argv)
{
    dc_args a;
    dc_args_init(&a, CMD " eval", argc, argv);
    const char *weights = NULL;
    bool json = false;
    int64_t val_size = 0, seed = -1;
    int beam = 5;
    while (dc_args_more(&a)) {
        if (dc_args_flag(&a, "--weights")) weights = dc_args_str(&a, "--weights");
        else if (dc_args_flag(&a, "--json")) json = true;
        else if (dc_args_flag(&a, "--val-size")) val_size = dc_args_int(&a, "--val-size", 1, 100000000);
        else if (dc_args_flag(&a, "--seed")) seed = dc_args_int(&a, "--seed", 0, INT64_MAX - 1);
        else if (dc_args_flag(&a, "--beam")) beam = (int)dc_args_int(&a, "--beam", 1, 64);
        else if (dc_args_flag(&a, "--help") || dc_args_flag(&a, "-h")) {
            usage(stdout);
            return 0;
        } else dc_args_unknown(&a);
    }
    if (!a.failed && !weights) dc_args_error(&a, "--weights DIR/model.safetensors is required");
    if (a.failed) return 2;
    loaded m;
    if (load_model(weights, &m)) return 1;
    if (seed >= 0) m.seed = (uint64_t)seed;
    if (val_size > 0) m.val_size = val_size;
    dc_s2s_dataset *val = make_data(&m.cfg, m.val_size, m.seed * 2 + 1001);
    dc_s2s_eval ev;
    int rc = 1;
    if (!val || dc_seq2seq_evaluate(m.model, val, 256, m.cfg.task == DC_S2S_DATES ? beam : 1, &ev)) {
        fprintf(stderr, CMD " eval: %s\n", dc_last_error());
        goto done;
    }
    if (m.cfg.task == DC_S2S_REVERSE) {
        if (json) printf("{\"mse\": %.8g, \"n\": %lld}\n", ev.mse, (long long)m.val_size);
        else printf("reverse: %lld validation sequences, MSE %.6f (real positions)\n", (long long)m.val_size, ev.mse);
    } else {
        if (json)
            printf("{\"exact_match\": %.6g, \"beam_exact_match\": %.6g, \"beam\": %d, \"token_accuracy\": %.6g, \"n\": %lld}\n",
                   ev.exact_match, beam > 1 ? ev.beam_exact : ev.exact_match, beam, ev.token_accuracy,
                   (long long)m.val_size);
        else
            printf("dates: %lld validation dates, exact match %.2f%% greedy, %.2f%% beam %d, token accuracy %.2f%%\n",
                   (long long)m.val_size, 100 * ev.exact_match, 100 * (beam > 1 ? ev.beam_exact : ev.exact_match), beam,
                   100 * ev.token_accuracy);
    }
    rc = 0;
done:
    dc_s2s_dataset_free(val);
    dc_module_free(m.model);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * predict
 * ------------------------------------------------------------------------------------- */

static int attention_map(const char *path, const float *w, int64_t T, int64_t S, const char *const *rows,
                         const char *const *cols, const char *title)
{
    dc_heatmap h = {.title = title, .xlabel = "input step", .ylabel = "output step", .rows = (int)T, .cols = (int)S,
                    .values = w, .row_labels = rows, .col_labels = cols, .cell_format = T * S <= 400 ? "%.2f" : NULL,
                    .colormap = DC_CMAP_VIRIDIS, .colorbar = true, .v_min = 0, .v_max = 1};
    if (dc_plot_heatmap(path, &h)) {
        fprintf(stderr, CMD " predict: %s\n", dc_last_error());
        return 1;
    }
    return 0;
}

static int cmd_predict(int argc, char **argv)
{
    dc_args a;
    dc_args_init(&a, CMD " predict", argc, argv);
    const char *weights = NULL, *att_out = NULL;
    int beam = 5;
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = 0;
    if (!pos) return 1;
    while (dc_args_more(&a)) {
        const char *p = dc_args_positional(&a);
        if (p) {
            pos[npos++] = p;
            continue;
        }
        if (dc_args_flag(&a, "--weights")) weights = dc_args_str(&a, "--weights");
        else if (dc_args_flag(&a, "--beam")) beam = (int)dc_args_int(&a, "--beam", 1, 64);
        else if (dc_args_flag(&a, "--attention-out")) att_out = dc_args_str(&a, "--attention-out");
        else if (dc_args_flag(&a, "--help") || dc_args_flag(&a, "-h")) {
            usage(stdout);
            free(pos);
            return 0;
        } else dc_args_unknown(&a);
    }
    if (!a.failed && !weights) dc_args_error(&a, "--weights DIR/model.safetensors is required");
    if (!a.failed && npos == 0) dc_args_error(&a, "no input sequence given (numbers for reverse, words for dates)");
    if (a.failed) {
        free(pos);
        return 2;
    }
    loaded m;
    if (load_model(weights, &m)) {
        free(pos);
        return 1;
    }
    const bool tok = m.cfg.task == DC_S2S_DATES;
    int64_t S = npos;
    int rc = 2;
    float *vals = calloc((size_t)S, sizeof(float));
    int64_t *toks = calloc((size_t)S, sizeof(int64_t));
    char att_path[4096];
    if (!vals || !toks) goto done;
    /* the input: numbers (reverse) or words (dates) */
    int64_t max_len = tok ? DC_S2S_DATES_MAX_SRC : m.cfg.max_len;
    if (S > max_len) {
        fprintf(stderr, CMD " predict: the sequence has %lld %s; this model was trained on at most %lld\n", (long long)S,
                tok ? "words" : "values", (long long)max_len);
        goto done;
    }
    for (int64_t i = 0; i < S; i++) {
        if (tok) {
            char word[64];
            dc__strlcpy(word, sizeof word, pos[i]);
            for (char *c = word; *c; c++) *c = (char)tolower((unsigned char)*c);
            toks[i] = dc_s2s_src_token(word);
            if (toks[i] < 0) {
                fprintf(stderr, CMD " predict: '%s' is not a word of the dates task (a date in words, e.g. "
                                "'the twenty first of march nineteen ninety nine')\n", pos[i]);
                goto done;
            }
        } else {
            char *end;
            errno = 0;
            double v = strtod(pos[i], &end);
            if (end == pos[i] || *end || errno || !isfinite(v)) {
                fprintf(stderr, CMD " predict: '%s' is not a number (the reverse task takes a sequence of numbers)\n",
                        pos[i]);
                goto done;
            }
            vals[i] = (float)v;
        }
    }
    rc = 1;
    /* a batch of one */
    dc_s2s_dataset d = {m.cfg.task, 1, (int64_t[]){0, S}, (int64_t[]){0, tok ? DC_S2S_DATES_TGT : S},
                        tok ? NULL : vals, tok ? NULL : vals, tok ? toks : NULL, NULL};
    int64_t iso[DC_S2S_DATES_TGT];
    bool known = tok ? dc__s2s_dates_parse(toks, S, iso) : true;
    if (tok) {
        if (!known)
            for (int i = 0; i < DC_S2S_DATES_TGT; i++) iso[i] = DC_S2S_PAD;
        d.tgt_t = iso;
    }
    dc_s2s_batch b;
    int64_t T = tok ? DC_S2S_DATES_TGT : S;
    float *out = calloc((size_t)T, sizeof(float)), *w = calloc((size_t)(T * S), sizeof(float));
    int64_t *otok = calloc((size_t)T, sizeof(int64_t));
    if (!out || !w || !otok || dc_s2s_collate(&d, (int64_t[]){0}, 1, &b)) {
        fprintf(stderr, CMD " predict: %s\n", dc_last_error());
        free(out), free(w), free(otok);
        goto done;
    }
    dc_status st = dc_seq2seq_greedy(m.model, &b, T, out, otok, w);
    dc_s2s_batch_free(&b);
    if (st) {
        fprintf(stderr, CMD " predict: %s\n", dc_last_error());
        free(out), free(w), free(otok);
        goto done;
    }
    char title[160];
    const char **rows = calloc((size_t)T, sizeof *rows), **cols = calloc((size_t)S, sizeof *cols);
    char (*rbuf)[24] = calloc((size_t)T, 24), (*cbuf)[24] = calloc((size_t)S, 24);
    if (!rows || !cols || !rbuf || !cbuf) {
        free(out), free(w), free(otok), free(rows), free(cols), free(rbuf), free(cbuf);
        goto done;
    }
    int64_t T_shown = T;
    if (!tok) {
        printf("input:     ");
        for (int64_t i = 0; i < S; i++) printf(" %.4f", vals[i]);
        printf("\npredicted: ");
        double se = 0;
        for (int64_t i = 0; i < S; i++) {
            printf(" %.4f", out[i]);
            double e = (double)out[i] - vals[S - 1 - i];
            se += e * e;
        }
        printf("\nexpected:  ");
        for (int64_t i = 0; i < S; i++) printf(" %.4f", vals[S - 1 - i]);
        printf("\nmse: %.6g\n", se / (double)S);
        for (int64_t i = 0; i < S; i++) {
            snprintf(cbuf[i], 24, "%.2f", vals[i]);
            snprintf(rbuf[i], 24, "%.2f", out[i]);
        }
        snprintf(title, sizeof title, "%s + %s attention",
                 m.cfg.cell == DC_GRU ? "GRU" : m.cfg.cell == DC_LSTM ? "LSTM" : "RNN", dc_attention_kind_name(m.cfg.attention));
    } else {
        char greedy[64] = "", beam_s[64] = "", expect[64] = "";
        T_shown = 0;
        for (int64_t t = 0; t < T && otok[t] != DC_S2S_EOS; t++, T_shown++)
            strncat(greedy, dc_s2s_tgt_symbol(otok[t]), sizeof greedy - strlen(greedy) - 1);
        if (T_shown < T) T_shown++; /* show the EOS row too */
        int64_t bt[DC_S2S_DATES_TGT + 4];
        int64_t bl = beam > 1 ? dc_seq2seq_beam(m.model, toks, S, beam, DC_S2S_DATES_TGT + 2, bt) : -1;
        for (int64_t t = 0; t < bl; t++) strncat(beam_s, dc_s2s_tgt_symbol(bt[t]), sizeof beam_s - strlen(beam_s) - 1);
        for (int t = 0; known && t < 10; t++) strncat(expect, dc_s2s_tgt_symbol(iso[t]), sizeof expect - strlen(expect) - 1);
        printf("input:     ");
        for (int64_t i = 0; i < S; i++) printf(" %s", dc_s2s_src_word(toks[i]));
        printf("\npredicted:  %s (greedy)\n", greedy);
        if (beam > 1) printf("            %s (beam %d)\n", bl >= 0 ? beam_s : "(failed)", beam);
        printf("expected:   %s\n", known ? expect : "(not a date the task writes)");
        for (int64_t i = 0; i < S; i++) dc__strlcpy(cbuf[i], 24, dc_s2s_src_word(toks[i]));
        for (int64_t t = 0; t < T; t++) dc__strlcpy(rbuf[t], 24, dc_s2s_tgt_symbol(otok[t]));
        snprintf(title, sizeof title, "%s + %s attention",
                 m.cfg.cell == DC_GRU ? "GRU" : m.cfg.cell == DC_LSTM ? "LSTM" : "RNN", dc_attention_kind_name(m.cfg.attention));
    }
    for (int64_t t = 0; t < T; t++) rows[t] = rbuf[t];
    for (int64_t i = 0; i < S; i++) cols[i] = cbuf[i];
    if (!att_out) {
        /* beside the weights */
        dc__strlcpy(att_path, sizeof att_path, weights);
        char *slash = strrchr(att_path, '/');
        if (slash) slash[1] = '\0';
        else att_path[0] = '\0';
        strncat(att_path, "attention.png", sizeof att_path - strlen(att_path) - 1);
        att_out = att_path;
    }
    rc = attention_map(att_out, w, T_shown, S, rows, cols, title);
    if (!rc) printf("attention map: %s\n", att_out);
    free(out), free(w), free(otok), free(rows), free(cols), free(rbuf), free(cbuf);
done:
    free(vals);
    free(toks);
    free(pos);
    dc_module_free(m.model);
    return rc;
}

int dc_cmd_seq2seq(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(argv[1], "predict")) return cmd_predict(argc - 1, argv + 1);
    fprintf(stderr, CMD ": unknown subcommand '%s' (train, eval, predict)\n", argv[1]);
    return 2;
}
