/* test_summarize.c: BART and T5 against transformers (tools/make_seq2seq_lm_fixtures.py):
 * encoder outputs and teacher-forced decoder logits within 1e-4 (max abs) for small
 * random-weight models (BART with layernorm_embedding / scale_embedding on and off, T5 v1.0 and
 * v1.1), and generate() token ids identical for greedy search and beam search (4 beams with
 * length_penalty 2.0, no_repeat_ngram_size 3, min/max lengths, early_stopping on and off, and
 * the *_new_tokens forms); the summarization pipeline end to end (prefix, tokenizer, the
 * model's task_specific_params, decode) against pipeline("summarization") on full-vocabulary
 * BF16 models; truncation and chunking; TextRank; and the bad inputs (empty, binary, a folder
 * without a decoder, a non-folder). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "deepc/deepc.h"
#include "deepc/summarize.h"
#include "support/testlib.h"

#define SUMDIR DEEPC_FIXTURES "/summarize/"

static const char *meta(dc_safetensors *st, const char *key) { return dc_safetensors_metadata(st, key); }

/* ids of an I64 fixture tensor as int32 (malloc'd) */
static int32_t *ids_of(dc_safetensors *st, const char *name, int64_t *n)
{
    dc_tensor *t = dc_safetensors_get(st, name);
    if (!t) fail_msg("fixture tensor %s missing", name);
    *n = dc_numel(t);
    int32_t *ids = malloc((size_t)*n * sizeof *ids);
    const int64_t *p = dc_data(t);
    for (int64_t i = 0; i < *n; i++) ids[i] = (int32_t)p[i];
    dc_tensor_release(t);
    return ids;
}

static double max_abs_diff(const float *a, dc_safetensors *st, const char *name, int64_t expect_n)
{
    dc_tensor *t = dc_safetensors_get(st, name);
    if (!t) fail_msg("fixture tensor %s missing", name);
    assert_int_equal(dc_numel(t), expect_n);
    const float *e = dc_data_f32(t);
    double mx = 0;
    for (int64_t i = 0; i < expect_n; i++) mx = fmax(mx, fabs((double)a[i] - (double)e[i]));
    dc_tensor_release(t);
    return mx;
}

/* generation settings of a fixture case: the model's own, then the case's keys */
static dc_generate_config case_config(dc_s2s_model *m, dc_safetensors *st, const char *c)
{
    dc_generate_config g;
    assert_int_equal(dc_s2s_generation_config(m, NULL, &g), DC_OK);
    char key[128];
#define GET(field, name, conv)                                   \
    snprintf(key, sizeof key, "%s.%s", c, name);                 \
    if (meta(st, key)) g.field = conv(meta(st, key));
    GET(num_beams, "num_beams", atoi);
    GET(max_length, "max_length", atoi);
    GET(min_length, "min_length", atoi);
    GET(max_new_tokens, "max_new_tokens", atoi);
    GET(min_new_tokens, "min_new_tokens", atoi);
    GET(length_penalty, "length_penalty", (float)atof);
    GET(no_repeat_ngram_size, "no_repeat_ngram_size", atoi);
    GET(do_sample, "do_sample", atoi);
    GET(early_stopping, "early_stopping", (dc_early_stopping)atoi);
#undef GET
    return g;
}

static void check_variant(const char *variant)
{
    char path[512];
    snprintf(path, sizeof path, SUMDIR "%s", variant);
    dc_s2s_model *m = dc_s2s_load(path, false);
    if (!m) fail_msg("load %s: %s", path, dc_last_error());
    snprintf(path, sizeof path, "summarize/%s_ref.safetensors", variant);
    dc_safetensors *st = tl_fixture(path);
    int pairs = atoi(meta(st, "pairs"));
    const int64_t d = dc_s2s_d_model(m), V = dc_s2s_vocab_size(m);
    double worst_enc = 0, worst_logit = 0;
    int n_cases = 0;
    for (int i = 0; i < pairs; i++) {
        char name[64];
        int64_t ns, nd;
        snprintf(name, sizeof name, "src%d", i);
        int32_t *src = ids_of(st, name, &ns);
        snprintf(name, sizeof name, "dec_in%d", i);
        int32_t *dec = ids_of(st, name, &nd);
        float *enc = malloc((size_t)(ns * d) * sizeof(float));
        float *logits = malloc((size_t)(nd * V) * sizeof(float));
        assert_int_equal(dc_s2s_encode(m, src, ns, enc), DC_OK);
        snprintf(name, sizeof name, "enc%d", i);
        double e = max_abs_diff(enc, st, name, ns * d);
        assert_int_equal(dc_s2s_decoder_logits(m, src, ns, dec, nd, logits), DC_OK);
        snprintf(name, sizeof name, "logits%d", i);
        double l = max_abs_diff(logits, st, name, nd * V);
        worst_enc = fmax(worst_enc, e);
        worst_logit = fmax(worst_logit, l);
        if (e > 1e-4 || l > 1e-4) fail_msg("%s pair %d: encoder max abs error %.3g, logits %.3g (> 1e-4)", variant, i, e, l);

        /* generate(): every case, identical ids */
        char cases[256];
        snprintf(cases, sizeof cases, "%s", meta(st, "cases"));
        for (char *c = strtok(cases, ","); c; c = strtok(NULL, ",")) {
            dc_generate_config g = case_config(m, st, c);
            int32_t *out = NULL;
            int64_t n = 0;
            if (dc_s2s_generate(m, src, ns, &g, NULL, NULL, &out, &n)) fail_msg("%s: %s", c, dc_last_error());
            snprintf(name, sizeof name, "gen%d.%s", i, c);
            int64_t ne;
            int32_t *exp = ids_of(st, name, &ne);
            bool same = n == ne && memcmp(out, exp, (size_t)n * sizeof *out) == 0;
            if (!same) {
                char got[1024] = "", want[1024] = "";
                for (int64_t k = 0; k < n && strlen(got) < 1000; k++) snprintf(got + strlen(got), 1024 - strlen(got), "%d ", out[k]);
                for (int64_t k = 0; k < ne && strlen(want) < 1000; k++) snprintf(want + strlen(want), 1024 - strlen(want), "%d ", exp[k]);
                fail_msg("%s src%d %s: generate() ids differ\n  deepc:        %s\n  transformers: %s", variant, i, c, got, want);
            }
            n_cases++;
            free(out);
            free(exp);
        }
        free(src);
        free(dec);
        free(enc);
        free(logits);
    }
    printf("  %-10s encoder max abs err %.2e, logits %.2e, %d generate() cases identical\n", variant, worst_enc,
           worst_logit, n_cases);
    dc_safetensors_close(st);
    dc_s2s_free(m);
}

static void test_bart(void **s) { (void)s; check_variant("bart"); }
static void test_bart_scale_noln(void **s) { (void)s; check_variant("bart_scale"); }
static void test_t5_v10(void **s) { (void)s; check_variant("t5"); }
static void test_t5_v11(void **s) { (void)s; check_variant("t5_v11"); }

/* ---- the pipeline on full-vocabulary models --------------------------------------------- */

static char tmp_root[256];

/* A model folder: the fixture's config and weights beside the shared tokenizer files. */
static void make_folder(const char *name, const char *tokdir, const char **tokfiles, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", tmp_root, name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && ln -sf '%s%s'/* '%s/'", out, SUMDIR, name, out);
    assert_int_equal(system(cmd), 0);
    for (int i = 0; tokfiles[i]; i++) {
        snprintf(cmd, sizeof cmd, "ln -sf '%s/models/%s/%s' '%s/'", tl_shared_dir(), tokdir, tokfiles[i], out);
        assert_int_equal(system(cmd), 0);
    }
}

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("cannot open %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return strdup(buf);
}

static void strip_nl(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
}

static void check_pipeline(const char *name, const char *tokdir, const char **tokfiles)
{
    char dir[512];
    make_folder(name, tokdir, tokfiles, dir, sizeof dir);
    dc_s2s_model *m = dc_s2s_load(dir, true);
    if (!m) fail_msg("%s", dc_last_error());
    char *text = read_file(SUMDIR "cli_text.txt");
    char exp_path[512];
    snprintf(exp_path, sizeof exp_path, SUMDIR "%s_expected.txt", name);
    char *expected = read_file(exp_path);
    strip_nl(text);
    strip_nl(expected);
    dc_summarize_options o;
    assert_int_equal(dc_summarize_options_for(m, &o), DC_OK);
    dc_summary s;
    if (dc_summarize(m, text, &o, &s)) fail_msg("%s", dc_last_error());
    if (strcmp(s.text, expected) != 0) fail_msg("%s: pipeline output differs\n  deepc:        '%s'\n  transformers: '%s'", name, s.text, expected);
    assert_false(s.truncated);
    assert_int_equal(s.chunks, 1);
    dc_summary_free(&s);

    /* a long input: truncated with a warning, or chunked */
    size_t tl = strlen(text), reps = 14;
    char *longtext = malloc(reps * (tl + 1) + 1);
    for (size_t i = 0; i < reps; i++) {
        memcpy(longtext + i * (tl + 1), text, tl);
        longtext[i * (tl + 1) + tl] = ' ';
    }
    longtext[reps * (tl + 1)] = '\0';
    FILE *warn = tmpfile();
    o.warn = warn;
    if (dc_summarize(m, longtext, &o, &s)) fail_msg("%s", dc_last_error());
    assert_true(s.truncated);
    assert_int_equal(s.source_tokens, dc_s2s_max_source_length(m));
    rewind(warn);
    char line[512] = "";
    assert_non_null(fgets(line, sizeof line, warn));
    assert_non_null(strstr(line, "truncated"));
    fclose(warn);
    dc_summary_free(&s);
    o.chunk = true;
    o.warn = NULL;
    if (dc_summarize(m, longtext, &o, &s)) fail_msg("%s", dc_last_error());
    assert_true(s.chunks >= 2);
    assert_false(s.truncated);
    assert_true(strlen(s.text) > 0);
    dc_summary_free(&s);

    /* bad text */
    o.chunk = false;
    assert_int_not_equal(dc_summarize(m, "   \n\t ", &o, &s), DC_OK);
    assert_non_null(strstr(dc_last_error(), "empty"));
    assert_int_not_equal(dc_summarize(m, "\x01\x02\x03\xff\xfe\x80\x81 binary", &o, &s), DC_OK);
    assert_non_null(strstr(dc_last_error(), "binary"));
    free(longtext);
    free(text);
    free(expected);
    dc_s2s_free(m);
}

static void test_pipeline_bart(void **s)
{
    (void)s;
    const char *files[] = {"vocab.json", "merges.txt", NULL};
    check_pipeline("bart_cli", "bart-tokenizer", files);
}

static void test_pipeline_t5(void **s)
{
    (void)s;
    const char *files[] = {"tokenizer.json", "tokenizer_config.json", NULL};
    check_pipeline("t5_cli", "t5-tokenizer", files);
}

/* ---- generation settings as the pipeline resolves them ------------------------------------ */

static void test_generation_defaults(void **s)
{
    (void)s;
    dc_s2s_model *m = dc_s2s_load(SUMDIR "bart_cli", false);
    assert_non_null(m);
    dc_generate_config g;
    assert_int_equal(dc_s2s_generation_config(m, "summarization", &g), DC_OK);
    assert_int_equal(g.num_beams, 2);
    assert_int_equal(g.max_length, 12);
    assert_int_equal(g.min_length, 4);
    assert_int_equal(g.no_repeat_ngram_size, 3);
    assert_true(g.length_penalty == 2.0f);
    assert_int_equal(g.early_stopping, DC_EARLY_STOP_TRUE);
    assert_int_equal(g.decoder_start_token_id, 2);
    assert_int_equal(g.forced_bos_token_id, 0);
    assert_int_equal(g.forced_eos_token_id, 2);
    assert_int_equal(g.n_eos, 1);
    assert_int_equal(g.eos_token_id[0], 2);
    assert_int_equal(g.pad_token_id, 1);
    /* without the task: generation_config.json over HF's defaults */
    assert_int_equal(dc_s2s_generation_config(m, NULL, &g), DC_OK);
    assert_int_equal(g.num_beams, 1);
    assert_int_equal(g.max_length, 20);
    dc_s2s_free(m);
}

/* ---- sampling: top_k 1 is greedy; a seed repeats ------------------------------------------- */

static void test_sampling(void **s)
{
    (void)s;
    dc_s2s_model *m = dc_s2s_load(SUMDIR "t5_v11", false);
    assert_non_null(m);
    int32_t src[6] = {5, 17, 33, 8, 60, 1};
    dc_generate_config g;
    assert_int_equal(dc_s2s_generation_config(m, NULL, &g), DC_OK);
    g.max_length = 12;
    int32_t *a, *b, *c;
    int64_t na, nb, nc;
    assert_int_equal(dc_s2s_generate(m, src, 6, &g, NULL, NULL, &a, &na), DC_OK);
    g.do_sample = true;
    g.top_k = 1;
    g.seed = 7;
    assert_int_equal(dc_s2s_generate(m, src, 6, &g, NULL, NULL, &b, &nb), DC_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na * sizeof *a);
    g.top_k = 0;
    g.top_p = 0.9f;
    g.temperature = 1.5f;
    free(b);
    assert_int_equal(dc_s2s_generate(m, src, 6, &g, NULL, NULL, &b, &nb), DC_OK);
    assert_int_equal(dc_s2s_generate(m, src, 6, &g, NULL, NULL, &c, &nc), DC_OK);
    assert_int_equal(nb, nc);
    assert_memory_equal(b, c, (size_t)nb * sizeof *b);
    g.num_beams = 2; /* beam sampling is refused, with a message */
    free(c);
    c = NULL;
    assert_int_not_equal(dc_s2s_generate(m, src, 6, &g, NULL, NULL, &c, &nc), DC_OK);
    assert_non_null(strstr(dc_last_error(), "beam sampling"));
    free(a);
    free(b);
    dc_s2s_free(m);
}

/* ---- bad model folders --------------------------------------------------------------------- */

static void test_bad_folders(void **s)
{
    (void)s;
    assert_null(dc_s2s_load(tmp_root, false)); /* no config.json */
    assert_non_null(strstr(dc_last_error(), "config.json"));
    assert_null(dc_s2s_load(SUMDIR "cli_text.txt", false));

    /* an encoder-only checkpoint: the fixture's weights without the decoder */
    char dir[512], cmd[1200], path[1100];
    snprintf(dir, sizeof dir, "%s/encoder_only", tmp_root);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%st5/config.json' '%s/'", dir, SUMDIR, dir);
    assert_int_equal(system(cmd), 0);
    dc_safetensors *st = dc_safetensors_open(SUMDIR "t5/model.safetensors");
    assert_non_null(st);
    int n = dc_safetensors_count(st), k = 0;
    dc_named_tensor *items = calloc((size_t)n, sizeof *items);
    dc_tensor **ts = calloc((size_t)n, sizeof *ts);
    for (int i = 0; i < n; i++) {
        const char *name = dc_safetensors_name(st, i);
        if (strncmp(name, "decoder.", 8) == 0 || strcmp(name, "lm_head.weight") == 0) continue;
        ts[k] = dc_safetensors_get(st, name);
        items[k].name = name;
        items[k].tensor = ts[k];
        k++;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(dc_safetensors_save(path, k, items, NULL), DC_OK);
    for (int i = 0; i < k; i++) dc_tensor_release(ts[i]);
    free(ts);
    free(items);
    dc_safetensors_close(st);
    assert_null(dc_s2s_load(dir, false));
    assert_non_null(strstr(dc_last_error(), "no decoder"));

    /* a config of another architecture */
    snprintf(cmd, sizeof cmd, "sed -i 's/\"model_type\": \"t5\"/\"model_type\": \"gpt2\"/' '%s/config.json'", dir);
    assert_int_equal(system(cmd), 0);
    assert_null(dc_s2s_load(dir, false));
    assert_non_null(strstr(dc_last_error(), "gpt2"));

    /* ids outside the vocabulary */
    dc_s2s_model *m = dc_s2s_load(SUMDIR "t5", false);
    assert_non_null(m);
    int32_t bad[2] = {5, 100000};
    float out[64];
    assert_int_not_equal(dc_s2s_encode(m, bad, 2, out), DC_OK);
    assert_non_null(strstr(dc_last_error(), "outside the vocabulary"));
    dc_s2s_free(m);
}

/* ---- extractive ------------------------------------------------------------------------------ */

static const char *ARTICLE =
    "The Eiffel Tower is a wrought-iron lattice tower in Paris. It is named after the engineer Gustave "
    "Eiffel, whose company designed and built the tower. Locally nicknamed the Iron Lady, the tower was "
    "built for the 1889 World's Fair. The tower is 330 metres tall, about the same height as an 81-storey "
    "building. It was the tallest man-made structure in the world until 1930. Mr. Eiffel's company "
    "also built bridges.\n\nThe weather was pleasant yesterday. Paris receives millions of visitors, and the "
    "tower is the most visited paid monument in the world.";

static void test_sentences(void **s)
{
    (void)s;
    size_t *st, *en;
    int64_t n = dc_split_sentences(ARTICLE, strlen(ARTICLE), &st, &en);
    assert_int_equal(n, 8);
    /* "Mr. Eiffel's" does not end a sentence; the blank line does */
    assert_memory_equal(ARTICLE + st[5], "Mr. Eiffel", 10);
    assert_memory_equal(ARTICLE + en[5] - 14, "built bridges.", 14);
    assert_memory_equal(ARTICLE + st[6], "The weather", 11);
    free(st);
    free(en);
}

static void test_extractive(void **s)
{
    (void)s;
    char *sum = dc_summarize_extractive(ARTICLE, (size_t)-1, 2, NULL);
    assert_non_null(sum);
    /* the sentences about the tower rank above the off-topic one, and come in document order */
    assert_null(strstr(sum, "weather"));
    assert_non_null(strstr(sum, "tower"));
    char *again = dc_summarize_extractive(ARTICLE, (size_t)-1, 2, NULL);
    assert_string_equal(sum, again); /* deterministic */
    free(again);
    free(sum);
    sum = dc_summarize_extractive("Only one sentence here", (size_t)-1, 3, NULL);
    assert_string_equal(sum, "Only one sentence here");
    free(sum);
    assert_null(dc_summarize_extractive("  \n ", (size_t)-1, 3, NULL));
    assert_non_null(strstr(dc_last_error(), "empty"));
    const char bin[] = {'a', 0, 'b', 'c'};
    assert_null(dc_summarize_extractive(bin, sizeof bin, 3, NULL));
    assert_non_null(strstr(dc_last_error(), "binary"));
}

static int setup(void **s)
{
    (void)s;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/deepc_sum_XXXXXX");
    return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown(void **s)
{
    (void)s;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bart),
        cmocka_unit_test(test_bart_scale_noln),
        cmocka_unit_test(test_t5_v10),
        cmocka_unit_test(test_t5_v11),
        cmocka_unit_test(test_generation_defaults),
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_pipeline_bart),
        cmocka_unit_test(test_pipeline_t5),
        cmocka_unit_test(test_bad_folders),
        cmocka_unit_test(test_sentences),
        cmocka_unit_test(test_extractive),
    };
    if (setup(NULL)) return 1;
    int rc = TL_RUN(tests);
    teardown(NULL);
    return rc;
}
