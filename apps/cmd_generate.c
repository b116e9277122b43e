/* cmd_generate.c: `deepc complete` (next-word prediction), `deepc generate` (text
 * continuation, streamed) with GPT-2 / Llama models from Hugging Face folders, and
 * dc_hf_download_main, the `deepc download REPO_ID` part of `deepc download`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "deepc/deepc.h"
#include "deepc/llm.h"

/* The model used when --model is not given: $DEEPC_MODEL, else the TinyStories Llama that
 * ships beside the checkout (offline, small, real). */
static const char *default_model(void)
{
    const char *e = getenv("DEEPC_MODEL");
    if (e && *e) return e;
    return "../shared/models/stories260K/hf";
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

/* The positional words joined by spaces ("-" alone: standard input). malloc'd. */
static char *join_text(int n, char **words)
{
    if (n == 1 && !strcmp(words[0], "-")) {
        size_t cap = 4096, len = 0;
        char *s = malloc(cap);
        size_t k;
        while (s && (k = fread(s + len, 1, cap - len - 1, stdin)) > 0) {
            len += k;
            if (len + 1 == cap) {
                char *t = realloc(s, cap *= 2);
                if (!t) {
                    free(s);
                    return NULL;
                }
                s = t;
            }
        }
        if (s) {
            s[len] = '\0';
            while (len && (s[len - 1] == '\n' || s[len - 1] == '\r')) s[--len] = '\0';
        }
        return s;
    }
    size_t total = 1;
    for (int i = 0; i < n; i++) total += strlen(words[i]) + 1;
    char *s = malloc(total);
    if (!s) return NULL;
    s[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i) strcat(s, " ");
        strcat(s, words[i]);
    }
    return s;
}

/* ---------------------------------------------------------------------------------------
 * complete
 * ------------------------------------------------------------------------------------- */

static void complete_usage(FILE *out)
{
    fprintf(out,
            "usage: deepc complete [--model DIR|REPO_ID] [--top-k 5] [--json] [--keep-16bit] TEXT...\n"
            "\n"
            "Predicts the next words of TEXT ('-': standard input) with a causal language model (GPT-2\n"
            "or Llama in a Hugging Face folder, or a repo downloaded with 'deepc download'; default:\n"
            "$DEEPC_MODEL, else ../shared/models/stories260K/hf). Prints the K most likely next words,\n"
            "each the most likely continuation of a top token up to the next word boundary, with its\n"
            "probability, and the K most likely next tokens. --json prints\n"
            "{\"tokens\":[{\"id\":..,\"text\":..,\"prob\":..}...],\"words\":[{\"text\":..,\"prob\":..}...]}.\n");
}

int dc_cmd_complete(int argc, char **argv)
{
    dc_args a;
    dc_args_init(&a, "deepc complete", argc, argv);
    const char *model = NULL;
    int k = 5;
    bool json = false, keep16 = false;
    char **words = calloc((size_t)argc + 1, sizeof *words);
    int nw = 0;
    if (!words) return 1;
    while (dc_args_more(&a)) {
        if (dc_args_flag(&a, "--help") || dc_args_flag(&a, "-h")) {
            complete_usage(stdout);
            free(words);
            return 0;
        }
        if (dc_args_flag(&a, "--model")) model = dc_args_str(&a, "--model");
        else if (dc_args_flag(&a, "--top-k")) k = (int)dc_args_int(&a, "--top-k", 1, 100);
        else if (dc_args_flag(&a, "--json")) json = true;
        else if (dc_args_flag(&a, "--keep-16bit")) keep16 = true;
        else {
            const char *p = dc_args_positional(&a);
            if (p) words[nw++] = (char *)p;
            else dc_args_unknown(&a);
        }
    }
    if (!a.failed && !nw) dc_args_error(&a, "no TEXT given (see --help)");
    if (a.failed) {
        free(words);
        return 2;
    }
    char *text = join_text(nw, words);
    free(words);
    if (!text) return 1;
    dc_llm_options opt = {.keep_16bit = keep16};
    dc_llm *m = dc_llm_load(model ? model : default_model(), &opt);
    if (!m) {
        fprintf(stderr, "deepc complete: %s\n", dc_last_error());
        free(text);
        return 1;
    }
    dc_completion c;
    int rc = 0;
    if (dc_llm_complete(m, text, k, &c)) {
        fprintf(stderr, "deepc complete: %s\n", dc_last_error());
        rc = 1;
    } else if (json) {
        fputs("{\"tokens\":[", stdout);
        for (int i = 0; i < c.n_tokens; i++) {
            printf("%s{\"id\":%d,\"text\":", i ? "," : "", c.tokens[i].id);
            json_string(stdout, c.tokens[i].text);
            printf(",\"prob\":%.6g}", c.tokens[i].prob);
        }
        fputs("],\"words\":[", stdout);
        for (int i = 0; i < c.n_words; i++) {
            fputs(i ? ",{\"text\":" : "{\"text\":", stdout);
            json_string(stdout, c.words[i].text);
            printf(",\"prob\":%.6g}", c.words[i].prob);
        }
        fputs("]}\n", stdout);
    } else {
        printf("next words after \"%s\":\n", text);
        for (int i = 0; i < c.n_words; i++) {
            printf("  %5.1f%%  ", 100.0 * c.words[i].prob);
            json_string(stdout, c.words[i].text);
            fputc('\n', stdout);
        }
        printf("next tokens:\n");
        for (int i = 0; i < c.n_tokens; i++) {
            printf("  %5.1f%%  %6d  ", 100.0 * c.tokens[i].prob, c.tokens[i].id);
            json_string(stdout, c.tokens[i].text);
            fputc('\n', stdout);
        }
    }
    if (!rc) dc_completion_free(&c);
    dc_llm_free(m);
    free(text);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * generate
 * ------------------------------------------------------------------------------------- */

static void generate_usage(FILE *out)
{
    fprintf(out,
            "usage: deepc generate [--model DIR|REPO_ID] [--max-new-tokens 50] [--max-length N]\n"
            "                      [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R]\n"
            "                      [--seed 0] [--greedy | --sample] [--min-new-tokens N] [--stop STR]...\n"
            "                      [--no-cache] [--keep-16bit] [--stats] [--json] TEXT...\n"
            "\n"
            "Continues TEXT ('-': standard input) with a causal language model (GPT-2 or Llama; default\n"
            "model: $DEEPC_MODEL, else ../shared/models/stories260K/hf) and prints the prompt and its\n"
            "continuation as the tokens come. Decoding follows Hugging Face generate() and the model's\n"
            "generation_config.json (and config.json's text-generation pipeline settings): greedy\n"
            "unless the model samples by default. --temperature 0 or --greedy: greedy; --temperature\n"
            "T > 0, --top-k, --top-p or --sample: sampling with that seed. Generation stops at EOS, at\n"
            "a --stop string (kept in the output), or after --max-new-tokens. A prompt too long for\n"
            "the context is cut from the left, with a warning. --stats prints speeds to stderr;\n"
            "--json prints {\"prompt\":..,\"text\":..,\"ids\":[..],\"stop\":..} at the end instead.\n");
}

typedef struct gen_io {
    bool json;
} gen_io;

static bool print_piece(const char *text, size_t len, void *ctx)
{
    gen_io *io = ctx;
    if (io->json) return true;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

int dc_cmd_generate(int argc, char **argv)
{
    dc_args a;
    dc_args_init(&a, "deepc generate", argc, argv);
    const char *model = NULL;
    int64_t max_new = 50, max_len = -1, min_new = -1, seed = 0;
    double temperature = -1, top_p = -1, rep = -1;
    int64_t top_k = -1;
    int force = 0; /* 1 greedy, 2 sample */
    bool seed_given = false, no_cache = false, keep16 = false, stats = false, json = false, max_new_given = false;
    char **words = calloc((size_t)argc + 1, sizeof *words), **stops = calloc((size_t)argc + 1, sizeof *stops);
    int nw = 0, ns = 0;
    if (!words || !stops) {
        free(words);
        free(stops);
        return 1;
    }
    while (dc_args_more(&a)) {
        if (dc_args_flag(&a, "--help") || dc_args_flag(&a, "-h")) {
            generate_usage(stdout);
            free(words);
            free(stops);
            return 0;
        }
        if (dc_args_flag(&a, "--model")) model = dc_args_str(&a, "--model");
        else if (dc_args_flag(&a, "--max-new-tokens")) {
            max_new = dc_args_int(&a, "--max-new-tokens", 0, 1 << 20);
            max_new_given = true;
        } else if (dc_args_flag(&a, "--max-length")) max_len = dc_args_int(&a, "--max-length", 1, 1 << 20);
        else if (dc_args_flag(&a, "--min-new-tokens")) min_new = dc_args_int(&a, "--min-new-tokens", 0, 1 << 20);
        else if (dc_args_flag(&a, "--temperature")) temperature = dc_args_double(&a, "--temperature", 0, 100);
        else if (dc_args_flag(&a, "--top-k")) top_k = dc_args_int(&a, "--top-k", 0, 1 << 24);
        else if (dc_args_flag(&a, "--top-p")) top_p = dc_args_double(&a, "--top-p", 1e-6, 1);
        else if (dc_args_flag(&a, "--repetition-penalty")) rep = dc_args_double(&a, "--repetition-penalty", 1e-3, 100);
        else if (dc_args_flag(&a, "--seed")) {
            seed = dc_args_int(&a, "--seed", 0, INT64_MAX);
            seed_given = true;
        } else if (dc_args_flag(&a, "--greedy")) force = 1;
        else if (dc_args_flag(&a, "--sample")) force = 2;
        else if (dc_args_flag(&a, "--stop")) {
            const char *s = dc_args_str(&a, "--stop");
            if (s && *s) stops[ns++] = (char *)s;
        } else if (dc_args_flag(&a, "--no-cache")) no_cache = true;
        else if (dc_args_flag(&a, "--keep-16bit")) keep16 = true;
        else if (dc_args_flag(&a, "--stats")) stats = true;
        else if (dc_args_flag(&a, "--json")) json = true;
        else {
            const char *p = dc_args_positional(&a);
            if (p) words[nw++] = (char *)p;
            else dc_args_unknown(&a);
        }
    }
    if (!a.failed && !nw) dc_args_error(&a, "no TEXT given (see --help; \"\" starts from the BOS token)");
    if (a.failed) {
        free(words);
        free(stops);
        return 2;
    }
    char *text = join_text(nw, words);
    free(words);
    if (!text) {
        free(stops);
        return 1;
    }
    int rc = 0;
    dc_llm_options opt = {.keep_16bit = keep16};
    dc_llm *m = dc_llm_load(model ? model : default_model(), &opt);
    int32_t *ids = NULL;
    size_t n = 0;
    if (!m || dc_llm_encode(m, text, &ids, &n)) {
        fprintf(stderr, "deepc generate: %s\n", dc_last_error());
        dc_llm_free(m);
        free(text);
        free(stops);
        return 1;
    }
    dc_generation_config g = dc_llm_generation_config(m);
    dc_llm_apply_pipeline_params(m, &g);
    if (max_len > 0 && !max_new_given) {
        g.max_length = max_len;
        g.max_new_tokens = -1;
    } else g.max_new_tokens = max_new;
    if (min_new >= 0) g.min_new_tokens = min_new;
    if (temperature >= 0) {
        g.temperature = (float)temperature;
        g.do_sample = temperature > 0;
    }
    if (top_k >= 0) {
        g.top_k = (int)top_k;
        g.do_sample = true;
    }
    if (top_p > 0) {
        g.top_p = (float)top_p;
        g.do_sample = true;
    }
    if (temperature == 0) g.do_sample = false;
    if (rep > 0) g.repetition_penalty = (float)rep;
    if (force == 1) g.do_sample = false;
    if (force == 2) g.do_sample = true;
    if (g.do_sample && g.temperature <= 0) g.temperature = 1.0f;
    (void)seed_given;
    g.seed = (uint64_t)seed;
    g.use_cache = !no_cache;
    g.stop_strings = (const char *const *)stops;
    g.n_stop_strings = ns;

    gen_io io = {json};
    if (!json) {
        fputs(text, stdout);
        fflush(stdout);
    }
    dc_generation out;
    if (dc_llm_generate(m, ids, n, &g, print_piece, &io, &out)) {
        if (!json) fputc('\n', stdout);
        fprintf(stderr, "deepc generate: %s\n", dc_last_error());
        rc = 1;
    } else {
        static const char *const reasons[] = {"length", "eos", "stop_string", "callback"};
        if (out.truncated)
            fprintf(stderr, "deepc generate: warning: the prompt (%zu tokens) is longer than the context allows; "
                    "its first %lld tokens were dropped\n", n, (long long)out.truncated);
        if (json) {
            fputs("{\"prompt\":", stdout);
            json_string(stdout, text);
            fputs(",\"text\":", stdout);
            json_string(stdout, out.text);
            fputs(",\"ids\":[", stdout);
            for (size_t i = out.n_prompt; i < out.n; i++) printf("%s%d", i > out.n_prompt ? "," : "", out.ids[i]);
            printf("],\"stop\":\"%s\"}\n", reasons[out.reason]);
        } else {
            fputc('\n', stdout);
        }
        if (stats) {
            size_t gen = out.n - out.n_prompt;
            fprintf(stderr, "prompt: %zu tokens in %.3f s (%.1f tokens/s); generated: %zu tokens in %.3f s (%.1f tokens/s); stop: %s\n",
                    out.n_prompt, out.prompt_seconds, out.prompt_seconds > 0 ? (double)out.n_prompt / out.prompt_seconds : 0.0,
                    gen, out.prompt_seconds + out.decode_seconds,
                    gen > 1 && out.decode_seconds > 0 ? (double)(gen - 1) / out.decode_seconds : 0.0, reasons[out.reason]);
        }
        dc_generation_free(&out);
    }
    free(ids);
    dc_llm_free(m);
    free(text);
    free(stops);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * download REPO_ID (called by dc_cmd_download for arguments that are not data sets)
 * ------------------------------------------------------------------------------------- */

int dc_hf_download_main(int argc, char **argv)
{
    dc_args a;
    dc_args_init(&a, "deepc download", argc, argv);
    const char *repo = NULL;
    dc_hf_download_opts o = {0};
    while (dc_args_more(&a)) {
        if (dc_args_flag(&a, "--help") || dc_args_flag(&a, "-h")) {
            printf("usage: deepc download REPO_ID [--revision main] [--variant fp16] [--dir DIR] [--quiet]\n"
                   "\n"
                   "Downloads a model from the Hugging Face hub: config.json, generation_config.json, the\n"
                   "tokenizer files and the safetensors weights, into ~/.cache/deepc/models/<org>--<name>/\n"
                   "($DEEPC_CACHE_DIR/models/... when set) or DIR. Diffusers repos (model_index.json) get\n"
                   "scheduler/, text_encoder/, tokenizer/, unet/ and vae/ (F32 weights, or the fp16 variant\n"
                   "when that is all there is or --variant fp16 asks for it). Honours HF_ENDPOINT, HF_TOKEN\n"
                   "and HF_HUB_OFFLINE; resumes partial files; checks sha256. Then: deepc generate --model\n"
                   "REPO_ID, or deepc imagine --model REPO_ID.\n");
            return 0;
        }
        if (dc_args_flag(&a, "--revision")) o.revision = dc_args_str(&a, "--revision");
        else if (dc_args_flag(&a, "--variant")) o.variant = dc_args_str(&a, "--variant");
        else if (dc_args_flag(&a, "--dir")) o.dir = dc_args_str(&a, "--dir");
        else if (dc_args_flag(&a, "--quiet")) o.quiet = true;
        else {
            const char *p = dc_args_positional(&a);
            if (!p) dc_args_unknown(&a);
            else if (repo) dc_args_error(&a, "one repo per call ('%s' and '%s')", repo, p);
            else repo = p;
        }
    }
    if (!a.failed && !repo) dc_args_error(&a, "which repo? (e.g. openai-community/gpt2)");
    if (a.failed) return 2;
    char dir[4096];
    if (dc_hf_download(repo, &o, dir, sizeof dir)) {
        fprintf(stderr, "deepc download: %s\n", dc_last_error());
        return 1;
    }
    return 0;
}
