/* test_tokenizer_hf.c: deepc's tokenizers against the ids and decodes that Hugging Face
 * transformers / tokenizers recorded (tools/gen_tokenizer_fixtures.py) for a corpus of 5,000+
 * strings: GPT-2, BART, CLIP (SD 1.5 folder and the .txt.gz), T5 and the stories260K Llama
 * SentencePiece tokenizer, loaded from the shared files and from tokenizer.json files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <zlib.h>

#include "deepc/tokenizer.h"

#define FIX DEEPC_FIXTURES "/tokenizers/"
#define MODELS DEEPC_SHARED "/models/"

/* Reads a gzip JSONL file into an array of parsed lines. */
static cJSON **read_jsonl(const char *path, size_t *n)
{
    gzFile f = gzopen(path, "rb");
    if (!f) fail_msg("cannot open fixture %s (run tools/gen_tokenizer_fixtures.py)", path);
    size_t cap = 0, len = 0;
    char *data = NULL;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            data = realloc(data, cap);
            assert_non_null(data);
        }
        int got = gzread(f, data + len, 65536);
        assert_true(got >= 0);
        if (!got) break;
        len += (size_t)got;
    }
    gzclose(f);
    data[len] = '\0';
    cJSON **rows = NULL;
    size_t m = 0, rcap = 0;
    for (char *p = data; *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = '\0';
        if (*p) {
            if (m == rcap) {
                rcap = rcap ? rcap * 2 : 1024;
                rows = realloc(rows, rcap * sizeof *rows);
                assert_non_null(rows);
            }
            rows[m] = cJSON_Parse(p);
            if (!rows[m]) fail_msg("%s: line %zu is not JSON", path, m + 1);
            m++;
        }
        if (!e) break;
        p = e + 1;
    }
    free(data);
    *n = m;
    return rows;
}

static void free_rows(cJSON **rows, size_t n)
{
    for (size_t i = 0; i < n; i++) cJSON_Delete(rows[i]);
    free(rows);
}

static void need_shared(void)
{
    FILE *f = fopen(MODELS "README.md", "r");
    if (!f) fail_msg("the shared model files are missing: expected %s (the ../shared folder beside the checkout)", MODELS);
    fclose(f);
}

static bool ids_equal(const dc_encoding *e, const cJSON *ids, size_t a, size_t b)
{
    size_t n = (size_t)cJSON_GetArraySize(ids);
    if (a + b > n || e->n != n - a - b) return false;
    for (size_t i = 0; i < e->n; i++)
        if (e->ids[i] != (int32_t)cJSON_GetArrayItem(ids, (int)(i + a))->valuedouble) return false;
    return true;
}

static void print_ids(const char *what, const int32_t *ids, size_t n)
{
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "%s\n", n > 40 ? " ..." : "");
}

/* Compares a loaded tokenizer with one fixture file; returns the number of strings checked. */
static size_t check(dc_tokenizer *tok, const char *label, const char *fixture, bool check_decode, bool check_ns)
{
    if (!tok) fail_msg("%s: load failed: %s", label, dc_last_error());
    size_t nc, nr;
    cJSON **corpus = read_jsonl(FIX "corpus.jsonl.gz", &nc);
    cJSON **rows = read_jsonl(fixture, &nr);
    assert_int_equal(nc, nr);
    size_t bad_ids = 0, bad_dec = 0;
    for (size_t i = 0; i < nc; i++) {
        const char *text = cJSON_GetStringValue(corpus[i]);
        assert_non_null(text);
        const cJSON *ids = cJSON_GetObjectItem(rows[i], "ids");
        const cJSON *ids_ns = cJSON_GetObjectItem(rows[i], "ids_ns");
        const cJSON *slice = cJSON_GetObjectItem(rows[i], "ns_slice");
        dc_encoding e;
        assert_int_equal(dc_tokenizer_encode(tok, text, strlen(text), true, true, &e), DC_OK);
        if (!ids_equal(&e, ids, 0, 0)) {
            if (bad_ids++ < 5) {
                fprintf(stderr, "%s: string %zu differs: \"%.200s\"\n", label, i, text);
                print_ids("deepc", e.ids, e.n);
                char *hf = cJSON_PrintUnformatted(ids);
                fprintf(stderr, "  HF:    %.300s\n", hf);
                free(hf);
            }
        }
        if (!check_ns) {
        } else if (!cJSON_IsArray(ids_ns)) {
            /* no-special ids equal to ids, or a slice of them */
            dc_encoding f;
            assert_int_equal(dc_tokenizer_encode(tok, text, strlen(text), false, false, &f), DC_OK);
            size_t a = slice ? (size_t)cJSON_GetArrayItem(slice, 0)->valuedouble : 0;
            size_t b = slice ? (size_t)cJSON_GetArrayItem(slice, 1)->valuedouble : 0;
            if (!ids_equal(&f, ids, a, b) && bad_ids++ < 5) fprintf(stderr, "%s: string %zu (no special) differs\n", label, i);
            dc_encoding_free(&f);
        } else {
            dc_encoding f;
            assert_int_equal(dc_tokenizer_encode(tok, text, strlen(text), false, false, &f), DC_OK);
            if (!ids_equal(&f, ids_ns, 0, 0) && bad_ids++ < 5) fprintf(stderr, "%s: string %zu (no special) differs\n", label, i);
            dc_encoding_free(&f);
        }
        if (check_decode) {
            for (int skip = 0; skip < 2; skip++) {
                const cJSON *d = cJSON_GetObjectItem(rows[i], skip ? "dec_skip" : "dec");
                const char *want = cJSON_IsString(d) ? d->valuestring : text;
                char *got = dc_tokenizer_decode(tok, e.ids, e.n, skip);
                assert_non_null(got);
                if (strcmp(got, want) && bad_dec++ < 5)
                    fprintf(stderr, "%s: decode%s of string %zu differs:\n  deepc: \"%.200s\"\n  HF:    \"%.200s\"\n", label,
                            skip ? " (skip special)" : "", i, got, want);
                free(got);
            }
        }
        dc_encoding_free(&e);
    }
    fprintf(stderr, "%s: %zu strings, %zu with different ids, %zu with different decodes\n", label, nc, bad_ids, bad_dec);
    free_rows(corpus, nc);
    free_rows(rows, nr);
    dc_tokenizer_free(tok);
    assert_int_equal(bad_ids, 0);
    assert_int_equal(bad_dec, 0);
    return nc;
}

static char *gunzip_file(const char *path, size_t *len)
{
    gzFile f = gzopen(path, "rb");
    if (!f) fail_msg("cannot open fixture %s", path);
    size_t cap = 1 << 20, n = 0;
    char *d = malloc(cap);
    assert_non_null(d);
    int got;
    while ((got = gzread(f, d + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)got;
        if (n == cap) {
            cap *= 2;
            d = realloc(d, cap);
            assert_non_null(d);
        }
    }
    gzclose(f);
    *len = n;
    return d;
}

static void test_gpt2(void **state)
{
    (void)state;
    need_shared();
    assert_true(check(dc_tokenizer_load(MODELS "gpt2-tokenizer"), "gpt2 (vocab.json + merges.txt)", FIX "gpt2.jsonl.gz", true, true) >= 5000);
}

static void test_bart(void **state)
{
    (void)state;
    need_shared();
    check(dc_tokenizer_load(MODELS "bart-tokenizer"), "bart (vocab.json + merges.txt)", FIX "bart.jsonl.gz", true, true);
    size_t len;
    char *json = gunzip_file(FIX "bart.tokenizer.json.gz", &len);
    check(dc_tokenizer_from_json(json, len, "bart tokenizer.json"), "bart (tokenizer.json)", FIX "bart.jsonl.gz", true, true);
    free(json);
}

static void test_clip(void **state)
{
    (void)state;
    need_shared();
    check(dc_tokenizer_load(MODELS "stable-diffusion-v1-5-configs/tokenizer"), "clip (SD 1.5 folder)", FIX "clip.jsonl.gz", true, true);
    check(dc_tokenizer_load(MODELS "clip-tokenizer/bpe_simple_vocab_16e6.txt.gz"), "clip (bpe_simple_vocab_16e6.txt.gz)",
          FIX "clip.jsonl.gz", true, true);
}

static void test_t5(void **state)
{
    (void)state;
    need_shared();
    check(dc_tokenizer_load(MODELS "t5-tokenizer"), "t5 (folder, transformers)", FIX "t5.jsonl.gz", true, true);
    check(dc_tokenizer_load(MODELS "t5-tokenizer/tokenizer.json"), "t5 (tokenizer.json, transformers)", FIX "t5.jsonl.gz", true, true);
    /* the same file through the tokenizers library alone (no tokenizer_config.json) */
    char *json;
    size_t len;
    FILE *f = fopen(MODELS "t5-tokenizer/tokenizer.json", "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    json = malloc(len);
    assert_non_null(json);
    assert_int_equal(fread(json, 1, len, f), len);
    fclose(f);
    check(dc_tokenizer_from_json(json, len, "t5 tokenizer.json"), "t5 (tokenizers library)", FIX "t5_rawlib.jsonl.gz", false, false);
    free(json);
}

static void test_llama(void **state)
{
    (void)state;
    need_shared();
    check(dc_tokenizer_load(MODELS "stories260K/tok512.model"), "llama (tok512.model)", FIX "llama.jsonl.gz", true, true);
    check(dc_tokenizer_load(FIX "llama.tokenizer.json"), "llama (tokenizer.json)", FIX "llama.jsonl.gz", true, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2), cmocka_unit_test(test_bart), cmocka_unit_test(test_clip),
        cmocka_unit_test(test_t5),   cmocka_unit_test(test_llama),
    };
    return cmocka_run_group_tests_name("tokenizer_hf", tests, NULL, NULL);
}
