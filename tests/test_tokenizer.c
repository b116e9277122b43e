/* test_tokenizer.c: the tokenizer API beyond HF parity (test_tokenizer_hf.c): errors on bad
 * files and ids, batch padding and truncation, offsets, lookups, invalid UTF-8, and linear
 * time on a 10 MB single line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "deepc/tokenizer.h"

#define MODELS DEEPC_SHARED "/models/"

static const char tiny_json[] =
    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"c\":3,\"abc\":4,\"<unk>\":5,\"<pad>\":6,\"<s>\":7,\"</s>\":8,\" \":9},"
    "\"merges\":[\"a b\",\"ab c\"],\"unk_token\":\"<unk>\"},"
    "\"added_tokens\":[{\"id\":6,\"content\":\"<pad>\",\"special\":true},{\"id\":7,\"content\":\"<s>\",\"special\":true},"
    "{\"id\":8,\"content\":\"</s>\",\"special\":true}],"
    "\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},"
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"</s>\",\"type_id\":0}}],"
    "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[7]},\"</s>\":{\"id\":\"</s>\",\"ids\":[8]}}}}";

static void need_shared(void)
{
    FILE *f = fopen(MODELS "README.md", "r");
    if (!f) fail_msg("the shared model files are missing: expected %s (the ../shared folder beside the checkout)", MODELS);
    fclose(f);
}

static void test_tiny_json(void **state)
{
    (void)state;
    dc_tokenizer *t = dc_tokenizer_from_json(tiny_json, sizeof tiny_json - 1, "tiny");
    assert_non_null(t);
    assert_int_equal(dc_tokenizer_vocab_size(t), 10);
    assert_int_equal(dc_tokenizer_token_to_id(t, "abc"), 4);
    assert_int_equal(dc_tokenizer_token_to_id(t, "zzz"), -1);
    assert_string_equal(dc_tokenizer_id_to_token(t, 2), "ab");
    assert_null(dc_tokenizer_id_to_token(t, 99));
    assert_true(dc_tokenizer_is_special(t, 7));
    assert_int_equal(dc_tokenizer_pad_id(t), 6);
    dc_encoding e;
    assert_int_equal(dc_tokenizer_encode(t, "abc ab xa", (size_t)-1, true, true, &e), DC_OK);
    int32_t want[] = {7, 4, 2, 5, 0, 8};
    assert_int_equal(e.n, 6);
    for (int i = 0; i < 6; i++) assert_int_equal(e.ids[i], want[i]);
    /* offsets: abc [0,3), ab [4,6), x [7,8), a [8,9) */
    assert_int_equal(e.offsets[2], 0);
    assert_int_equal(e.offsets[3], 3);
    assert_int_equal(e.offsets[4], 4);
    assert_int_equal(e.offsets[5], 6);
    assert_int_equal(e.offsets[6], 7);
    assert_int_equal(e.offsets[9], 9);
    assert_int_equal(e.special_mask[0], 1);
    assert_int_equal(e.special_mask[1], 0);
    dc_encoding_free(&e);
    /* decode: no decoder joins with spaces */
    int32_t ids[] = {7, 4, 2, 8};
    char *s = dc_tokenizer_decode(t, ids, 4, true);
    assert_string_equal(s, "abc ab");
    free(s);
    /* unknown id */
    int32_t bad[] = {1, 1000};
    assert_null(dc_tokenizer_decode(t, bad, 2, false));
    assert_non_null(strstr(dc_last_error(), "1000"));
    dc_tokenizer_free(t);
}

static void test_batch(void **state)
{
    (void)state;
    dc_tokenizer *t = dc_tokenizer_from_json(tiny_json, sizeof tiny_json - 1, "tiny");
    assert_non_null(t);
    const char *texts[] = {"abc", "ab ab ab ab", ""};
    dc_encoding out[3];
    dc_batch_options o = dc_batch_options_default();
    o.padding = DC_PAD_LONGEST;
    assert_int_equal(dc_tokenizer_encode_batch(t, texts, 3, &o, out), DC_OK);
    for (int i = 0; i < 3; i++) assert_int_equal(out[i].n, 6);
    assert_int_equal(out[0].ids[2], 8);
    assert_int_equal(out[0].ids[3], 6);
    assert_int_equal(out[0].attention_mask[2], 1);
    assert_int_equal(out[0].attention_mask[3], 0);
    assert_int_equal(out[2].ids[0], 7);
    assert_int_equal(out[2].ids[1], 8);
    for (int i = 0; i < 3; i++) dc_encoding_free(&out[i]);
    /* truncation to 4 with specials kept; left padding to max_length */
    o.padding = DC_PAD_MAX_LENGTH;
    o.max_length = 4;
    o.pad_left = true;
    assert_int_equal(dc_tokenizer_encode_batch(t, texts, 3, &o, out), DC_OK);
    int32_t want1[] = {7, 2, 2, 8}, want0[] = {6, 7, 4, 8};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(out[1].ids[k], want1[k]);
        assert_int_equal(out[0].ids[k], want0[k]);
    }
    for (int i = 0; i < 3; i++) dc_encoding_free(&out[i]);
    o.max_length = 1; /* shorter than the two special tokens */
    assert_int_not_equal(dc_tokenizer_encode_batch(t, texts, 3, &o, out), DC_OK);
    dc_tokenizer_free(t);
}

static void write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
}

static void test_bad_files(void **state)
{
    (void)state;
    assert_null(dc_tokenizer_load("/nonexistent/tokenizer.json"));
    assert_non_null(strstr(dc_last_error(), "/nonexistent/tokenizer.json"));
    char dir[] = "/tmp/deepc_tok_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[256];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    write_file(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, ");
    assert_null(dc_tokenizer_load(p));
    assert_non_null(strstr(dc_last_error(), "not valid JSON"));
    assert_non_null(strstr(dc_last_error(), p));
    write_file(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}");
    assert_null(dc_tokenizer_load(p));
    assert_non_null(strstr(dc_last_error(), "not in the vocab"));
    write_file(p, "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {}}}");
    assert_null(dc_tokenizer_load(p));
    assert_non_null(strstr(dc_last_error(), "WordLevel"));
    write_file(p, "[1, 2]");
    assert_null(dc_tokenizer_load(p));
    snprintf(p, sizeof p, "%s/x.model", dir);
    write_file(p, "this is not a protobuf \xff\xff\xff");
    assert_null(dc_tokenizer_load(p));
    assert_non_null(strstr(dc_last_error(), "x.model"));
    snprintf(p, sizeof p, "%s/x.txt.gz", dir);
    write_file(p, "not gzip at all");
    dc_tokenizer *t = dc_tokenizer_load(p); /* gzread passes plain files through: no merges */
    assert_null(t);
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    write_file(p, "{\"a\": 0, \"b\": 1}");
    snprintf(p, sizeof p, "%s/merges.txt", dir);
    write_file(p, "#version: 0.2\na b c\n");
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    remove(p);
    assert_null(dc_tokenizer_load(dir));
    assert_non_null(strstr(dc_last_error(), "merges.txt"));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_invalid_utf8_and_offsets(void **state)
{
    (void)state;
    need_shared();
    dc_tokenizer *g = dc_tokenizer_load(MODELS "gpt2-tokenizer");
    assert_non_null(g);
    /* byte-level: any bytes encode, and decode back (lossily) */
    const char bytes[] = "ab\xff\xfe cd\xc3";
    dc_encoding e;
    assert_int_equal(dc_tokenizer_encode(g, bytes, sizeof bytes - 1, true, true, &e), DC_OK);
    assert_true(e.n > 0);
    char *s = dc_tokenizer_decode(g, e.ids, e.n, false);
    assert_string_equal(s, "ab\xef\xbf\xbd\xef\xbf\xbd cd\xef\xbf\xbd");
    free(s);
    dc_encoding_free(&e);
    /* offsets of "Hello world": Hello [0,5), Ġworld [5,11) */
    assert_int_equal(dc_tokenizer_encode(g, "Hello world", (size_t)-1, true, true, &e), DC_OK);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.offsets[1], 5);
    assert_int_equal(e.offsets[2], 5);
    assert_int_equal(e.offsets[3], 11);
    dc_encoding_free(&e);
    dc_tokenizer_free(g);
    /* non-byte-level: invalid bytes are read as U+FFFD */
    dc_tokenizer *t5 = dc_tokenizer_load(MODELS "t5-tokenizer");
    assert_non_null(t5);
    dc_encoding a, b;
    assert_int_equal(dc_tokenizer_encode(t5, "x\xff y", (size_t)-1, true, true, &a), DC_OK);
    assert_int_equal(dc_tokenizer_encode(t5, "x\xef\xbf\xbd y", (size_t)-1, true, false, &b), DC_OK);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) assert_int_equal(a.ids[i], b.ids[i]);
    dc_encoding_free(&a);
    dc_encoding_free(&b);
    dc_tokenizer_free(t5);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_linear_time(void **state)
{
    (void)state;
    need_shared();
    const char *paths[] = {MODELS "gpt2-tokenizer", MODELS "t5-tokenizer", MODELS "stories260K/tok512.model"};
    size_t big = 10u << 20;
    char *text = malloc(big + 1);
    assert_non_null(text);
    for (int k = 0; k < 3; k++) {
        dc_tokenizer *t = dc_tokenizer_load(paths[k]);
        assert_non_null(t);
        /* 1 MB and 10 MB single lines: the time must grow about linearly */
        double el[2];
        size_t sizes[2] = {1u << 20, big};
        for (int r = 0; r < 2; r++) {
            for (size_t i = 0; i < sizes[r]; i++) text[i] = "abcdefgh ij, KLM 0123\t"[(i * 7 + i / 13) % 22];
            dc_encoding e;
            double s = now();
            assert_int_equal(dc_tokenizer_encode(t, text, sizes[r], true, false, &e), DC_OK);
            el[r] = now() - s;
            assert_true(e.n > sizes[r] / 20);
            dc_encoding_free(&e);
        }
        fprintf(stderr, "%s: 1 MB %.3f s, 10 MB %.3f s\n", paths[k], el[0], el[1]);
        assert_true(el[1] < 40 * el[0] + 0.5); /* linear is ~10x; quadratic would be ~100x */
        /* one 1 MB word without spaces */
        memset(text, 'x', 1u << 20);
        dc_encoding e;
        double s = now();
        assert_int_equal(dc_tokenizer_encode(t, text, 1u << 20, false, false, &e), DC_OK);
        fprintf(stderr, "%s: one 1 MB word %.3f s, %zu tokens\n", paths[k], now() - s, e.n);
        dc_encoding_free(&e);
        dc_tokenizer_free(t);
    }
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_json),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_invalid_utf8_and_offsets),
        cmocka_unit_test(test_linear_time),
    };
    return cmocka_run_group_tests_name("tokenizer", tests, NULL, NULL);
}
