/* test_llm.c: GPT-2 and Llama inference against transformers (fixtures written by
 * tools/make_llm_fixtures.py from small random-weight models, F32 and BF16, GQA, untied and
 * tied heads, one sharded), the real stories260K model, generation semantics (greedy,
 * repetition penalty, EOS, min_new_tokens, no cache, stop strings, streaming), sampling
 * distributions, next-word prediction and bad input.
 *
 * Tolerances: logits within 1e-4 max abs of transformers' (measured errors are printed);
 * greedy token ids identical, with and without the KV cache. */
#include "support/testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deepc/llm.h"

#define LOGIT_ATOL 1e-4

static char *model_dir(const char *name)
{
    static char p[4096];
    snprintf(p, sizeof p, "%s/llm/%s", tl_fixtures_dir(), name);
    return p;
}

static dc_llm *load(const char *name, bool keep16)
{
    dc_llm_options o = {.keep_16bit = keep16};
    dc_llm *m = dc_llm_load(model_dir(name), &o);
    if (!m) fail_msg("loading %s: %s", name, dc_last_error());
    return m;
}

/* ids of a fixture I64 tensor as int32 (malloc'd) */
static int32_t *ids_of(dc_safetensors *st, const char *name, size_t *n)
{
    dc_tensor *t = tl_get_i64(st, name);
    *n = (size_t)dc_numel(t);
    int32_t *ids = malloc(*n * sizeof *ids);
    const int64_t *d = dc_data(t);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)d[i];
    return ids;
}

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

/* logits of every prompt: all positions at once, one token at a time through the cache, and
 * in two blocks (a cached prefix then several positions) */
static void check_logits(const char *name, bool keep16)
{
    dc_pool_mark mk = dc_pool_push();
    char ref[256];
    snprintf(ref, sizeof ref, "llm/%s_ref", name);
    dc_safetensors *st = tl_fixture(ref);
    dc_llm *m = load(name, keep16);
    int np = (int)tl_meta_num(st, "n_prompts");
    int64_t V = dc_llm_get_config(m)->vocab_size;
    double worst = 0;
    for (int i = 0; i < np; i++) {
        char key[64];
        size_t n;
        snprintf(key, sizeof key, "ids.%d", i);
        int32_t *ids = ids_of(st, key, &n);
        snprintf(key, sizeof key, "logits.%d", i);
        dc_tensor *want = tl_get(st, key);
        assert_int_equal(dc_numel(want), (int64_t)n * V);
        const float *w = dc_data_f32(want);
        float *all = malloc(n * (size_t)V * sizeof *all);
        TL_OK(dc_llm_truncate(m, 0));
        const float *last = dc_llm_forward(m, ids, (int64_t)n, all);
        assert_non_null(last);
        double e = max_abs_diff(all, w, (int64_t)n * V);
        worst = e > worst ? e : worst;
        assert_true(max_abs_diff(last, w + (n - 1) * V, V) <= LOGIT_ATOL);
        /* incremental, one position at a time (the decode path) */
        TL_OK(dc_llm_truncate(m, 0));
        for (size_t p = 0; p < n; p++) {
            const float *l = dc_llm_forward(m, ids + p, 1, NULL);
            assert_non_null(l);
            double ep = max_abs_diff(l, w + p * V, V);
            worst = ep > worst ? ep : worst;
        }
        /* a cached prefix, then the rest as one block */
        if (n >= 3) {
            TL_OK(dc_llm_truncate(m, 1));
            const float *l = dc_llm_forward(m, ids + 1, (int64_t)n - 1, all);
            assert_non_null(l);
            double eb = max_abs_diff(all, w + V, (int64_t)(n - 1) * V);
            worst = eb > worst ? eb : worst;
        }
        free(all);
        free(ids);
    }
    printf("  %s%s: max |logits - transformers| = %.3g\n", name, keep16 ? " (16-bit weights kept)" : "", worst);
    assert_true(worst <= LOGIT_ATOL);
    dc_llm_free(m);
    dc_safetensors_close(st);
    dc_pool_pop(mk);
}

static void gen_expect(dc_llm *m, dc_safetensors *st, const char *prompt_key, const char *want_key,
                       const dc_generation_config *g, dc_stop_reason reason)
{
    size_t n, nw;
    int32_t *ids = ids_of(st, prompt_key, &n);
    int32_t *want = ids_of(st, want_key, &nw);
    dc_generation out;
    TL_OK(dc_llm_generate(m, ids, n, g, NULL, NULL, &out));
    if (out.n != nw || memcmp(out.ids, want, nw * sizeof *want)) {
        printf("  %s: got %zu ids, want %zu:\n   ", want_key, out.n, nw);
        for (size_t i = 0; i < out.n; i++) printf(" %d", out.ids[i]);
        printf("\n   ");
        for (size_t i = 0; i < nw; i++) printf(" %d", want[i]);
        printf("\n");
        fail_msg("%s: generated ids differ from transformers'", want_key);
    }
    assert_int_equal(out.reason, reason);
    dc_generation_free(&out);
    free(ids);
    free(want);
}

static void check_generate(const char *name, bool keep16)
{
    dc_pool_mark mk = dc_pool_push();
    char ref[256];
    snprintf(ref, sizeof ref, "llm/%s_ref", name);
    dc_safetensors *st = tl_fixture(ref);
    dc_llm *m = load(name, keep16);
    int np = (int)tl_meta_num(st, "n_prompts");
    dc_generation_config g = dc_llm_generation_config(m);
    g.max_new_tokens = (int64_t)tl_meta_num(st, "new_tokens");
    g.n_eos = 0;
    g.do_sample = false;
    for (int i = 0; i < np; i++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "ids.%d", i);
        snprintf(b, sizeof b, "greedy.%d", i);
        gen_expect(m, st, a, b, &g, DC_STOP_LENGTH);
    }
    dc_generation_config nc = g;
    nc.use_cache = false;
    gen_expect(m, st, "ids.0", "greedy_nocache.0", &nc, DC_STOP_LENGTH);
    gen_expect(m, st, "ids.0", "greedy.0", &nc, DC_STOP_LENGTH);
    dc_generation_config rep = g;
    rep.repetition_penalty = 1.5f;
    gen_expect(m, st, "ids.0", "rep.0", &rep, DC_STOP_LENGTH);
    dc_generation_config eos = g;
    eos.n_eos = 1;
    eos.eos_ids[0] = (int32_t)tl_meta_num(st, "eos");
    gen_expect(m, st, "ids.0", "eos.0", &eos, DC_STOP_EOS);
    eos.min_new_tokens = 10;
    dc_generation_config eos_nc = eos;
    eos_nc.use_cache = false;
    size_t nw;
    int32_t *w = ids_of(st, "mineos.0", &nw);
    size_t n0;
    int32_t *p0 = ids_of(st, "ids.0", &n0);
    dc_stop_reason r = w[nw - 1] == eos.eos_ids[0] ? DC_STOP_EOS : DC_STOP_LENGTH;
    gen_expect(m, st, "ids.0", "mineos.0", &eos, r);
    gen_expect(m, st, "ids.0", "mineos.0", &eos_nc, r);
    free(w);
    free(p0);
    printf("  %s%s: greedy ids identical to transformers (with and without the cache, repetition penalty, eos, "
           "min_new_tokens)\n", name, keep16 ? " (16-bit weights kept)" : "");
    dc_llm_free(m);
    dc_safetensors_close(st);
    dc_pool_pop(mk);
}

static void test_gpt2_logits(void **s) { (void)s; check_logits("gpt2_tiny", false); }
static void test_gpt2_generate(void **s) { (void)s; check_generate("gpt2_tiny", false); }
static void test_llama_gqa_logits(void **s) { (void)s; check_logits("llama_gqa", false); }
static void test_llama_gqa_generate(void **s) { (void)s; check_generate("llama_gqa", false); }
static void test_llama_bf16_logits(void **s)
{
    (void)s;
    check_logits("llama_bf16", false);
    check_logits("llama_bf16", true);
}
static void test_llama_bf16_generate(void **s)
{
    (void)s;
    check_generate("llama_bf16", false);
    check_generate("llama_bf16", true);
}

/* ---- sampling ------------------------------------------------------------------------- */

static void test_sampling_probs(void **s)
{
    (void)s;
    dc_pool_mark mk = dc_pool_push();
    dc_safetensors *st = tl_fixture("llm/sampling");
    dc_tensor *logits = tl_get(st, "logits");
    size_t np;
    int32_t *prev = ids_of(st, "prev", &np);
    int64_t V = dc_numel(logits);
    int nc = (int)tl_meta_num(st, "n_cases");
    float *probs = malloc((size_t)V * sizeof *probs), *scratch = malloc((size_t)V * 3 * sizeof *scratch);
    int32_t *is = malloc((size_t)V * sizeof *is);
    double worst = 0;
    for (int c = 0; c < nc; c++) {
        char key[32];
        snprintf(key, sizeof key, "case.%d", c);
        const char *spec = dc_safetensors_metadata(st, key);
        assert_non_null(spec);
        double rep, temp, p;
        int k;
        assert_int_equal(sscanf(spec, "%lf,%lf,%d,%lf", &rep, &temp, &k, &p), 4);
        dc_generation_config g = {.do_sample = true, .temperature = (float)temp, .top_k = k, .top_p = (float)p,
                                  .repetition_penalty = (float)rep, .max_new_tokens = 1, .use_cache = true};
        dc_llm_next_token_probs(dc_data_f32(logits), V, prev, np, &g, probs, scratch, is);
        snprintf(key, sizeof key, "probs.%d", c);
        dc_tensor *want = tl_get(st, key);
        double e = max_abs_diff(probs, dc_data_f32(want), V);
        worst = e > worst ? e : worst;
        /* the same support: what HF removes has probability exactly 0 here too */
        for (int64_t i = 0; i < V; i++) assert_true((probs[i] == 0) == (dc_data_f32(want)[i] == 0));
    }
    printf("  sampling distributions (repetition penalty, temperature, top-k, top-p): max abs error %.3g\n", worst);
    assert_true(worst < 1e-6);
    free(probs);
    free(scratch);
    free(is);
    free(prev);
    dc_safetensors_close(st);
    dc_pool_pop(mk);
}

/* The first sampled token over many seeds follows the processed distribution. */
static void test_sampling_frequencies(void **s)
{
    (void)s;
    dc_pool_mark mk = dc_pool_push();
    dc_llm *m = load("gpt2_tiny", false);
    int32_t *ids;
    size_t n;
    TL_OK(dc_llm_encode(m, "Hello world", &ids, &n));
    int64_t V = dc_llm_get_config(m)->vocab_size;
    dc_generation_config g = dc_llm_generation_config(m);
    g.do_sample = true;
    g.temperature = 0.8f;
    g.top_k = 10;
    g.top_p = 0.95f;
    g.max_new_tokens = 1;
    g.n_eos = 0;
    float *probs = malloc((size_t)V * sizeof *probs), *scratch = malloc((size_t)V * 3 * sizeof *scratch);
    int32_t *is = malloc((size_t)V * sizeof *is);
    float *logits = malloc((size_t)V * sizeof *logits);
    TL_OK(dc_llm_truncate(m, 0));
    memcpy(logits, dc_llm_forward(m, ids, (int64_t)n, NULL), (size_t)V * sizeof *logits);
    dc_llm_next_token_probs(logits, V, ids, n, &g, probs, scratch, is);
    int N = getenv("DEEPC_TEST_QUICK") ? 800 : 3000;
    int *count = calloc((size_t)V, sizeof *count);
    for (int i = 0; i < N; i++) {
        g.seed = (uint64_t)i;
        dc_generation out;
        TL_OK(dc_llm_generate(m, ids, n, &g, NULL, NULL, &out));
        count[out.ids[n]]++;
        dc_generation_free(&out);
    }
    double worst = 0;
    for (int64_t t = 0; t < V; t++) {
        double f = (double)count[t] / N, p = probs[t];
        if (p == 0) assert_int_equal(count[t], 0);
        double sd = sqrt(p * (1 - p) / N) + 1e-9;
        double z = fabs(f - p) / sd;
        worst = z > worst ? z : worst;
    }
    printf("  sampling frequencies over %d seeds: worst |freq - p| = %.2f standard deviations\n", N, worst);
    assert_true(worst < 5.0);
    /* a seed reproduces its draw */
    g.max_new_tokens = 8;
    g.seed = 1234;
    dc_generation a, b;
    TL_OK(dc_llm_generate(m, ids, n, &g, NULL, NULL, &a));
    TL_OK(dc_llm_generate(m, ids, n, &g, NULL, NULL, &b));
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.ids, b.ids, a.n * sizeof *a.ids);
    dc_generation_free(&a);
    dc_generation_free(&b);
    free(count);
    free(probs);
    free(scratch);
    free(is);
    free(logits);
    free(ids);
    dc_llm_free(m);
    dc_pool_pop(mk);
}

/* ---- stories260K: a real model ---------------------------------------------------------- */

static dc_llm *load_stories(void)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/models/stories260K/hf", tl_shared_dir());
    if (access(p, R_OK)) {
        printf("  (skipped: %s is not there)\n", p);
        return NULL;
    }
    dc_llm *m = dc_llm_load(p, NULL);
    if (!m) fail_msg("loading %s: %s", p, dc_last_error());
    return m;
}

static void test_stories_parity(void **s)
{
    (void)s;
    dc_pool_mark mk = dc_pool_push();
    dc_llm *m = load_stories();
    if (!m) {
        dc_pool_pop(mk);
        return;
    }
    dc_safetensors *st = tl_fixture("llm/stories260K");
    int32_t *ids;
    size_t n, nw, ni;
    TL_OK(dc_llm_encode(m, "Once upon a time", &ids, &n));
    int32_t *want_ids = ids_of(st, "ids", &ni);
    assert_int_equal(n, ni);
    assert_memory_equal(ids, want_ids, n * sizeof *ids);
    int64_t V = dc_llm_get_config(m)->vocab_size;
    float *all = malloc(n * (size_t)V * sizeof *all);
    TL_OK(dc_llm_truncate(m, 0));
    assert_non_null(dc_llm_forward(m, ids, (int64_t)n, all));
    dc_tensor *want = tl_get(st, "logits");
    double e = max_abs_diff(all, dc_data_f32(want), (int64_t)n * V);
    printf("  stories260K: max |logits - transformers| after \"Once upon a time\" = %.3g\n", e);
    assert_true(e <= LOGIT_ATOL);
    dc_generation_config g = dc_llm_generation_config(m);
    g.max_new_tokens = 200;
    g.min_new_tokens = 200;
    dc_generation out;
    TL_OK(dc_llm_generate(m, ids, n, &g, NULL, NULL, &out));
    int32_t *greedy = ids_of(st, "greedy", &nw);
    assert_int_equal(out.n, nw);
    assert_memory_equal(out.ids, greedy, nw * sizeof *greedy);
    assert_non_null(strstr(out.text, "Lily"));
    printf("  stories260K: greedy 200-token continuation identical to transformers': \"%.60s...\"\n", out.text);
    dc_generation_free(&out);
    free(greedy);
    free(want_ids);
    free(all);
    free(ids);
    dc_safetensors_close(st);
    dc_llm_free(m);
    dc_pool_pop(mk);
}

typedef struct collect {
    char buf[8192];
    size_t n;
    int pieces;
    bool utf8_ok;
} collect;

static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return false;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80) return false;
        i += len;
    }
    return true;
}

static bool on_piece(const char *text, size_t len, void *ctx)
{
    collect *c = ctx;
    if (!valid_utf8((const unsigned char *)text, len)) c->utf8_ok = false;
    if (c->n + len < sizeof c->buf) {
        memcpy(c->buf + c->n, text, len);
        c->n += len;
        c->buf[c->n] = '\0';
    }
    c->pieces++;
    return true;
}

static void test_stories_stream_stop(void **s)
{
    (void)s;
    dc_pool_mark mk = dc_pool_push();
    dc_llm *m = load_stories();
    if (!m) {
        dc_pool_pop(mk);
        return;
    }
    int32_t *ids;
    size_t n;
    TL_OK(dc_llm_encode(m, "Once upon a time", &ids, &n));
    dc_generation_config g = dc_llm_generation_config(m);
    g.max_new_tokens = 60;
    collect c = {.utf8_ok = true};
    dc_generation out;
    TL_OK(dc_llm_generate(m, ids, n, &g, on_piece, &c, &out));
    assert_true(c.utf8_ok);
    assert_true(c.pieces > 10);
    assert_string_equal(c.buf, out.text);
    assert_true(!strncmp(out.text, ", there was", 11));
    dc_generation_free(&out);
    /* stop strings: generation ends on the token that completes one (it is kept) */
    const char *stops[] = {"named Lily"};
    g.stop_strings = stops;
    g.n_stop_strings = 1;
    TL_OK(dc_llm_generate(m, ids, n, &g, NULL, NULL, &out));
    assert_int_equal(out.reason, DC_STOP_STRING);
    size_t L = strlen(out.text);
    assert_true(L >= 10 && strstr(out.text, "named Lily") && strstr(out.text, "named Lily") + 10 >= out.text + L - 4);
    dc_generation_free(&out);
    /* a stream callback can stop generation */
    free(ids);
    dc_llm_free(m);
    dc_pool_pop(mk);
}

static void test_stories_complete(void **s)
{
    (void)s;
    dc_pool_mark mk = dc_pool_push();
    dc_llm *m = load_stories();
    if (!m) {
        dc_pool_pop(mk);
        return;
    }
    dc_completion c;
    TL_OK(dc_llm_complete(m, "Once upon a", 5, &c));
    assert_int_equal(c.n_tokens, 5);
    assert_true(c.n_words >= 1 && c.n_words <= 5);
    for (int i = 1; i < c.n_tokens; i++) assert_true(c.tokens[i - 1].prob >= c.tokens[i].prob);
    for (int i = 1; i < c.n_words; i++) assert_true(c.words[i - 1].prob >= c.words[i].prob);
    assert_string_equal(c.words[0].text, "time");
    assert_true(c.tokens[0].prob > 0.5 && c.tokens[0].prob <= 1.0);
    printf("  complete(\"Once upon a\"): \"%s\" %.3f, token \"%s\" %.3f\n", c.words[0].text, c.words[0].prob,
           c.tokens[0].text, c.tokens[0].prob);
    dc_completion_free(&c);
    /* a word made of several tokens: "Once upon a time, there was a little girl named" */
    TL_OK(dc_llm_complete(m, "Once upon a time, there was a little girl named", 3, &c));
    assert_string_equal(c.words[0].text, "Lily");
    dc_completion_free(&c);
    dc_llm_free(m);
    dc_pool_pop(mk);
}

/* Streaming random bytes from the byte-level tiny GPT-2: every piece is whole UTF-8
 * characters (incomplete sequences are held back), and the pieces add up to the text. */
static void test_stream_utf8(void **s)
{
    (void)s;
    dc_pool_mark mk = dc_pool_push();
    dc_llm *m = load("gpt2_tiny", false);
    int32_t *ids;
    size_t n;
    TL_OK(dc_llm_encode(m, "caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd", &ids, &n));
    dc_generation_config g = dc_llm_generation_config(m);
    g.do_sample = true;
    g.temperature = 2.0f;
    g.top_k = 0;
    g.max_new_tokens = 40;
    g.n_eos = 0;
    for (uint64_t seed = 0; seed < 8; seed++) {
        g.seed = seed;
        collect c = {.utf8_ok = true};
        dc_generation out;
        TL_OK(dc_llm_generate(m, ids, n, &g, on_piece, &c, &out));
        assert_true(c.utf8_ok);
        assert_string_equal(c.buf, out.text);
        dc_generation_free(&out);
    }
    free(ids);
    dc_llm_free(m);
    dc_pool_pop(mk);
}

/* ---- bad input -------------------------------------------------------------------------- */

/* a temporary copy of a fixture model folder (files symlinked) with config.json replaced */
static char *temp_model(const char *from, const char *config)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "/tmp/deepc-test-llm-XXXXXX");
    if (!mkdtemp(dir)) fail_msg("mkdtemp failed");
    const char *names[] = {"model.safetensors", "vocab.json", "merges.txt", "tokenizer.model", "generation_config.json"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char a[8300], b[4096];
        snprintf(a, sizeof a, "%s/%s", model_dir(from), names[i]);
        snprintf(b, sizeof b, "%s/%s", dir, names[i]);
        if (!access(a, R_OK) && symlink(a, b)) fail_msg("symlink failed");
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    fputs(config, f);
    fclose(f);
    return dir;
}

static void remove_temp(const char *dir)
{
    const char *names[] = {"model.safetensors", "vocab.json", "merges.txt", "tokenizer.model", "generation_config.json",
                           "config.json"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void expect_load_error(const char *from, const char *config, const char *needle)
{
    char *dir = temp_model(from, config);
    dc_llm *m = dc_llm_load(dir, NULL);
    if (m) fail_msg("loading a bad model (%s) succeeded", needle);
    if (!strstr(dc_last_error(), needle)) fail_msg("error '%s' does not mention '%s'", dc_last_error(), needle);
    printf("  bad model: %s\n", dc_last_error());
    remove_temp(dir);
}

static const char *gpt2_cfg =
    "{\"model_type\": \"gpt2\", \"vocab_size\": 300, \"n_embd\": %d, \"n_layer\": %d, \"n_head\": 4, "
    "\"n_positions\": 64%s}";

static void test_bad_models(void **s)
{
    (void)s;
    dc_pool_mark mk = dc_pool_push();
    expect_load_error("gpt2_tiny", "{\"model_type\": \"bert\"}", "supported: gpt2, llama");
    expect_load_error("gpt2_tiny", "{\"model_type\": ", "not valid JSON");
    char cfg[512];
    snprintf(cfg, sizeof cfg, gpt2_cfg, 32, 3, "");
    expect_load_error("gpt2_tiny", cfg, "h.2.ln_1.weight");
    snprintf(cfg, sizeof cfg, gpt2_cfg, 64, 2, "");
    expect_load_error("gpt2_tiny", cfg, "wte.weight");
    /* a folder of another architecture */
    expect_load_error("gpt2_tiny",
                      "{\"model_type\": \"llama\", \"vocab_size\": 300, \"hidden_size\": 32, \"intermediate_size\": 64, "
                      "\"num_hidden_layers\": 2, \"num_attention_heads\": 4}",
                      "model.embed_tokens.weight");
    expect_load_error("gpt2_tiny", "{\"model_type\": \"gpt2\", \"n_embd\": 30, \"n_head\": 4}", "inconsistent sizes");
    dc_llm *m = dc_llm_load("/nonexistent/model", NULL);
    assert_null(m);
    assert_non_null(strstr(dc_last_error(), "neither a model folder"));

    /* prompts: empty without BOS, invalid UTF-8, too long, bad ids */
    snprintf(cfg, sizeof cfg, gpt2_cfg, 32, 2, "");
    char *dir = temp_model("gpt2_tiny", cfg);
    m = dc_llm_load(dir, NULL);
    assert_non_null(m);
    int32_t *ids;
    size_t n;
    assert_int_not_equal(dc_llm_encode(m, "", &ids, &n), DC_OK);
    assert_non_null(strstr(dc_last_error(), "no BOS"));
    assert_int_not_equal(dc_llm_encode(m, "caf\xc3 au lait", &ids, &n), DC_OK);
    assert_non_null(strstr(dc_last_error(), "UTF-8"));
    int32_t bad = 300;
    assert_null(dc_llm_forward(m, &bad, 1, NULL));
    assert_non_null(strstr(dc_last_error(), "outside the vocabulary"));
    char longp[2000] = "";
    for (int i = 0; i < 100; i++) strcat(longp, "Hello world ");
    TL_OK(dc_llm_encode(m, longp, &ids, &n));
    assert_true(n > 64);
    dc_generation_config g = dc_llm_generation_config(m);
    g.max_new_tokens = 10;
    dc_generation out;
    TL_OK(dc_llm_generate(m, ids, n, &g, NULL, NULL, &out));
    assert_true(out.truncated > 0);
    assert_true(out.n <= 64);
    assert_int_equal(out.n - out.n_prompt, 10);
    dc_generation_free(&out);
    g.max_new_tokens = 1000; /* more than the context: stops at its end */
    TL_OK(dc_llm_generate(m, ids, n, &g, NULL, NULL, &out));
    assert_int_equal(out.n, 64);
    dc_generation_free(&out);
    free(ids);
    dc_llm_free(m);
    remove_temp(dir);

    /* an empty prompt starts from BOS where there is one */
    m = load("llama_gqa", false);
    TL_OK(dc_llm_encode(m, "", &ids, &n));
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    free(ids);
    dc_llm_free(m);
    dc_pool_pop(mk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_logits),         cmocka_unit_test(test_gpt2_generate),
        cmocka_unit_test(test_llama_gqa_logits),    cmocka_unit_test(test_llama_gqa_generate),
        cmocka_unit_test(test_llama_bf16_logits),   cmocka_unit_test(test_llama_bf16_generate),
        cmocka_unit_test(test_sampling_probs),      cmocka_unit_test(test_sampling_frequencies),
        cmocka_unit_test(test_stories_parity),      cmocka_unit_test(test_stories_stream_stop),
        cmocka_unit_test(test_stories_complete),    cmocka_unit_test(test_stream_utf8),
        cmocka_unit_test(test_bad_models),
    };
    return TL_RUN(tests);
}
