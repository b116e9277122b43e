/* cmd_summarize.c: `deepc summarize`: summarizes a text with a BART / T5 model folder
 * (abstractive, the generation settings the model's summarization pipeline would use unless
 * overridden) or, without --model, with TextRank (extractive, no model needed). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "deepc/deepc.h"
#include "deepc/summarize.h"

#define CMD "deepc summarize"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: deepc summarize [--model DIR|REPO_ID] [--method abstractive|extractive] [--num-beams N]\n"
            "                       [--min-length N] [--max-length N] [--length-penalty X]\n"
            "                       [--no-repeat-ngram-size N] [--chunk] [--json] [--sentences N] [FILE|-]\n"
            "\n"
            "Reads the text from FILE (or standard input: no FILE or '-') and prints its summary.\n"
            "\n"
            "  --model DIR|REPO_ID  a Hugging Face folder of a BART/DistilBART or T5/Flan-T5 model\n"
            "                       (config.json, model.safetensors or shards, tokenizer files), or a\n"
            "                       hub id (owner/name): deepc's cache, the Hugging Face cache, else\n"
            "                       downloaded from the hub\n"
            "  --method M           abstractive (needs --model) or extractive (TextRank; the default\n"
            "                       without --model)\n"
            "  --num-beams N, --min-length N, --max-length N, --length-penalty X,\n"
            "  --no-repeat-ngram-size N\n"
            "                       override the model's generation settings (generation_config.json,\n"
            "                       then config.json task_specific_params.summarization, as\n"
            "                       transformers' summarization pipeline)\n"
            "  --chunk              summarize a long input as overlapping chunks and join the summaries\n"
            "                       (otherwise it is truncated to the model's limit, with a warning)\n"
            "  --sentences N        extractive: how many sentences to keep (default: about a fifth, 1-5)\n"
            "  --json               print {\"summary\":...,\"tokens\":...,\"seconds\":...}\n");
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", out);
        else if (*p == '\t') fputs("\\t", out);
        else if (*p == '\r') fputs("\\r", out);
        else if (*p < 0x20) fprintf(out, "\\u%04x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
}

static char *read_all(FILE *fp, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
        if (n == cap) {
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

static bool is_dir(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

/* DIR as given; or a hub id "owner/name": deepc's model cache (dc_hf_cache_dir), then the
 * Hugging Face cache ($HF_HOME/hub or ~/.cache/huggingface/hub), else a download with
 * dc_hf_download (deepc/llm.h). NULL with *why set when none works. */
static char *resolve_model(const char *arg, const char **why)
{
    *why = "neither a model folder nor a hub id (owner/name)";
    if (is_dir(arg)) return strdup(arg);
    const char *slash = strchr(arg, '/');
    if (!slash || strchr(slash + 1, '/') || arg[0] == '.' || arg[0] == '/' || slash == arg || !slash[1]) return NULL;
    char *out = malloc(4096 + 256);
    if (!out) return NULL;
    if (dc_hf_cache_dir(arg, out, 4096)) {
        char cfg[4096 + 32];
        snprintf(cfg, sizeof cfg, "%s/config.json", out);
        struct stat sb;
        if (stat(cfg, &sb) == 0) return out;
    }
    char hub[2048];
    const char *hf = getenv("HF_HOME"), *home = getenv("HOME");
    hub[0] = '\0';
    if (hf) snprintf(hub, sizeof hub, "%s/hub", hf);
    else if (home) snprintf(hub, sizeof hub, "%s/.cache/huggingface/hub", home);
    if (hub[0]) {
        char refs[4096], rev[128] = "";
        snprintf(refs, sizeof refs, "%s/models--%.*s--%s/refs/main", hub, (int)(slash - arg), arg, slash + 1);
        FILE *fp = fopen(refs, "r");
        if (fp) {
            if (!fgets(rev, sizeof rev, fp)) rev[0] = '\0';
            fclose(fp);
            rev[strcspn(rev, "\r\n")] = '\0';
            snprintf(out, 4096 + 256, "%s/models--%.*s--%s/snapshots/%s", hub, (int)(slash - arg), arg, slash + 1,
                     rev);
            if (rev[0] && is_dir(out)) return out;
        }
    }
    dc_hf_download_opts o = {0};
    o.quiet = !isatty(2);
    if (dc_hf_download(arg, &o, out, 4096) == DC_OK) return out;
    *why = dc_last_error();
    free(out);
    return NULL;
}

/* the library's message without its own "summarize: " prefix (the command names itself) */
static const char *errmsg(void)
{
    const char *e = dc_last_error();
    return strncmp(e, "summarize: ", 11) == 0 ? e + 11 : e;
}

typedef struct progress_ctx {
    dc_progress *p;
} progress_ctx;

static bool on_step(void *ctx, int step, int max)
{
    progress_ctx *pc = ctx;
    if (!pc->p) pc->p = dc_progress_begin(stderr, DC_PROGRESS_TTY, "summarizing", max, false);
    dc_progress_update(pc->p, step, step, NAN);
    return true;
}

int dc_cmd_summarize(int argc, char **argv)
{
    const char *model = NULL, *file = NULL;
    int method = -1, num_beams = 0, min_length = -1, max_length = -1, ngram = -1, sentences = 0;
    double length_penalty = NAN;
    bool chunk = false, json = false;
    dc_args a;
    dc_args_init(&a, CMD, argc, argv);
    while (dc_args_more(&a) && !a.failed) {
        if (dc_args_flag(&a, "--model")) model = dc_args_str(&a, "--model");
        else if (dc_args_flag(&a, "--method")) method = dc_args_choice(&a, "--method", "abstractive|extractive");
        else if (dc_args_flag(&a, "--num-beams")) num_beams = (int)dc_args_int(&a, "--num-beams", 1, 64);
        else if (dc_args_flag(&a, "--min-length")) min_length = (int)dc_args_int(&a, "--min-length", 0, 1 << 16);
        else if (dc_args_flag(&a, "--max-length")) max_length = (int)dc_args_int(&a, "--max-length", 1, 1 << 16);
        else if (dc_args_flag(&a, "--length-penalty")) length_penalty = dc_args_double(&a, "--length-penalty", -100, 100);
        else if (dc_args_flag(&a, "--no-repeat-ngram-size"))
            ngram = (int)dc_args_int(&a, "--no-repeat-ngram-size", 0, 1 << 16);
        else if (dc_args_flag(&a, "--sentences")) sentences = (int)dc_args_int(&a, "--sentences", 1, 100000);
        else if (dc_args_flag(&a, "--chunk")) chunk = true;
        else if (dc_args_flag(&a, "--json")) json = true;
        else if (dc_args_flag(&a, "--help") || dc_args_flag(&a, "-h")) {
            usage(stdout);
            return 0;
        } else {
            const char *p = (a.i < a.argc && !strcmp(a.argv[a.i], "-")) ? a.argv[a.i++] : dc_args_positional(&a);
            if (!p) dc_args_unknown(&a);
            else if (file) dc_args_error(&a, "more than one input file ('%s' and '%s')", file, p);
            else file = p;
        }
    }
    if (a.failed) return 2;
    if (method < 0) method = model ? 0 : 1;
    if (method == 0 && !model) {
        dc_args_error(&a, "--method abstractive needs --model DIR|REPO_ID");
        return 2;
    }
    if (min_length >= 0 && max_length >= 0 && min_length > max_length) {
        dc_args_error(&a, "--min-length %d is greater than --max-length %d", min_length, max_length);
        return 2;
    }

    /* the text */
    FILE *fp = stdin;
    if (file && strcmp(file, "-") != 0) {
        if (is_dir(file)) {
            fprintf(stderr, CMD ": %s is a folder, not a text file\n", file);
            return 1;
        }
        fp = fopen(file, "rb");
        if (!fp) {
            fprintf(stderr, CMD ": cannot open %s: %s\n", file, strerror(errno));
            return 1;
        }
    }
    size_t len = 0;
    char *text = read_all(fp, &len);
    if (fp != stdin) fclose(fp);
    if (!text) {
        fprintf(stderr, CMD ": out of memory reading the input\n");
        return 1;
    }
    if (memchr(text, '\0', len) || dc_text_is_binary(text, len)) {
        fprintf(stderr, CMD ": %s looks like binary data, not text\n", file && strcmp(file, "-") ? file : "the input");
        free(text);
        return 1;
    }

    int rc = 0;
    if (method == 1) {
        if (num_beams || min_length >= 0 || max_length >= 0 || !isnan(length_penalty) || ngram >= 0 || chunk)
            fprintf(stderr, CMD ": note: generation flags apply to --method abstractive only\n");
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        char *s = dc_summarize_extractive(text, len, sentences, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (!s) {
            fprintf(stderr, CMD ": %s\n", errmsg());
            rc = 1;
        } else {
            double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
            if (json) {
                int64_t words = 0;
                for (const char *p = s; *p; p++) words += (*p != ' ' && (p == s || p[-1] == ' '));
                fputs("{\"summary\":", stdout);
                json_string(stdout, s);
                printf(",\"tokens\":%lld,\"seconds\":%.3f,\"method\":\"extractive\"}\n", (long long)words, secs);
            } else {
                puts(s);
            }
            free(s);
        }
        free(text);
        return rc;
    }

    const char *why = NULL;
    char *dir = resolve_model(model, &why);
    if (!dir) {
        fprintf(stderr, CMD ": --model %s: %s\n", model, why);
        free(text);
        return 1;
    }
    dc_s2s_model *m = dc_s2s_load(dir, true);
    free(dir);
    if (!m) {
        fprintf(stderr, CMD ": %s\n", errmsg());
        free(text);
        return 1;
    }
    dc_summarize_options o;
    dc_summarize_options_for(m, &o);
    if (num_beams) o.gen.num_beams = num_beams;
    if (min_length >= 0) {
        o.gen.min_length = min_length;
        o.gen.min_new_tokens = -1;
    }
    if (max_length >= 0) {
        o.gen.max_length = max_length;
        o.gen.max_new_tokens = -1;
    }
    if (!isnan(length_penalty)) o.gen.length_penalty = (float)length_penalty;
    if (ngram >= 0) o.gen.no_repeat_ngram_size = ngram;
    o.chunk = chunk;
    progress_ctx pc = {NULL};
    if (isatty(2) && len > 2000 && dc_progress_resolve(stderr, DC_PROGRESS_AUTO) == DC_PROGRESS_TTY) {
        o.progress = on_step;
        o.progress_ctx = &pc;
    }
    dc_summary s;
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    dc_status st = dc_summarize(m, text, &o, &s);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);
    if (pc.p) dc_progress_end(pc.p, NULL);
    if (st) {
        fprintf(stderr, CMD ": %s\n", errmsg());
        rc = 1;
    } else if (json) {
        fputs("{\"summary\":", stdout);
        json_string(stdout, s.text);
        printf(",\"tokens\":%lld,\"seconds\":%.3f,\"method\":\"abstractive\",\"source_tokens\":%lld,\"chunks\":%d,"
               "\"truncated\":%s,\"cpu_seconds\":%.3f}\n",
               (long long)s.tokens, s.seconds, (long long)s.source_tokens, s.chunks, s.truncated ? "true" : "false", cpu);
    } else {
        puts(s.text);
    }
    dc_summary_free(&s);
    dc_s2s_free(m);
    free(text);
    return rc;
}
