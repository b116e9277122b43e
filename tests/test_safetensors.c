/* test_safetensors.c: safetensors reading and writing (src/io/safetensors.c), atomic writes,
 * and a few self-checks of the shared test helpers (tests/support/testlib.c).
 *
 * Fixtures come from tools/fixtures_io.py: io/torch_dtypes (written from PyTorch tensors),
 * io/unaligned and io/f64 (hand-made valid files), and the malformed corpus in
 * tests/fixtures/safetensors_bad/, every file of which must be refused with DC_ERR_FORMAT (or
 * DC_ERR_IO) and a message naming the file.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "support/testlib.h"

/* A fresh temporary folder per test, removed (with its files) at the end. */
static char g_tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[512];
    if (!g_tmpdir[0]) {
        snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/deepc_test_st_XXXXXX");
        assert_non_null(mkdtemp(g_tmpdir));
    }
    snprintf(buf, sizeof buf, "%s/%s", g_tmpdir, name);
    return buf;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void rm_tmpdir(void)
{
    if (!g_tmpdir[0]) return;
    DIR *d = opendir(g_tmpdir);
    if (d) {
        struct dirent *e;
        char p[768];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", g_tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(g_tmpdir);
    g_tmpdir[0] = '\0';
}

static int teardown_tmp(void **state)
{
    (void)state;
    rm_tmpdir();
    if (dc_pool_active()) dc_pool_pop((dc_pool_mark){0});
    return 0;
}

/* Byte-exact comparison of two tensors' logical contents (same dtype and shape). */
static void assert_same_bytes(const dc_tensor *a, const dc_tensor *b, const char *what)
{
    if (a->dtype != b->dtype || !dc_same_shape(a, b)) {
        char sa[DC_SHAPE_STR_MAX], sb[DC_SHAPE_STR_MAX];
        fail_msg("%s: %s %s vs %s %s", what, dc_dtype_name(a->dtype), dc_shape_str(a, sa, sizeof sa),
                 dc_dtype_name(b->dtype), dc_shape_str(b, sb, sizeof sb));
    }
    dc_tensor *ca = dc_clone((dc_tensor *)a), *cb = dc_clone((dc_tensor *)b);
    assert_non_null(ca);
    assert_non_null(cb);
    size_t n = (size_t)dc_numel(a) * dc_dtype_size(a->dtype);
    if (n && memcmp(dc_data(ca), dc_data(cb), n) != 0) fail_msg("%s: contents differ", what);
}

/* A tensor of each dtype with distinctive bit patterns (incl. NaN, -0, subnormal halves). */
static dc_tensor *make_tensor(dc_dtype dt)
{
    switch (dt) {
    case DC_F32: {
        float v[6] = {1.5f, -0.0f, NAN, INFINITY, 1e-40f, -3.25e10f};
        return dc_from_data(DC_F32, DC_SHAPE(2, 3), v);
    }
    case DC_F16: {
        uint16_t v[5] = {0x3c00, 0x8001, 0x7bff, 0xfc00, 0x7e00};
        return dc_from_data(DC_F16, DC_SHAPE(5), v);
    }
    case DC_BF16: {
        uint16_t v[4] = {0x3f80, 0xc2f7, 0x0001, 0x7fc0};
        return dc_from_data(DC_BF16, DC_SHAPE(2, 1, 2), v);
    }
    case DC_I64: {
        int64_t v[3] = {INT64_MIN, -1, INT64_MAX};
        return dc_from_data(DC_I64, DC_SHAPE(3), v);
    }
    case DC_I32: {
        int32_t v[4] = {INT32_MIN, 0, 7, INT32_MAX};
        return dc_from_data(DC_I32, DC_SHAPE(1, 4), v);
    }
    case DC_U8: {
        uint8_t v[3] = {0, 128, 255};
        return dc_from_data(DC_U8, DC_SHAPE(3), v);
    }
    case DC_BOOL: {
        uint8_t v[3] = {1, 0, 1};
        return dc_from_data(DC_BOOL, DC_SHAPE(3, 1), v);
    }
    default: return NULL;
    }
}

/* ---------------------------------------------------------------------------------------
 * Round trips
 * ------------------------------------------------------------------------------------- */

static void test_roundtrip_all_dtypes(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *src[DC_DTYPE_COUNT];
    dc_named_tensor items[DC_DTYPE_COUNT + 4];
    int n = 0;
    /* an odd-sized 1-byte tensor first, so a naive layout would misalign the rest */
    for (int d = DC_DTYPE_COUNT - 1; d >= 0; d--) {
        src[d] = TL_CHECK(make_tensor((dc_dtype)d));
        items[n++] = (dc_named_tensor){dc_dtype_name((dc_dtype)d), src[d]};
    }
    /* non-contiguous inputs: a transpose of a [3, 4] F32 and a strided I64 slice */
    dc_tensor *base = TL_CHECK(dc_arange(DC_F32, 0, 12, 1));
    dc_tensor *t = TL_CHECK(dc__view(base, 2, (int64_t[]){4, 3}, (int64_t[]){1, 4}, 0));
    dc_tensor *lbase = TL_CHECK(dc_arange(DC_I64, 100, 110, 1));
    dc_tensor *l = TL_CHECK(dc__view(lbase, 1, (int64_t[]){4}, (int64_t[]){2}, 1)); /* 101,103,105,107 */
    dc_tensor *scalar = TL_CHECK(dc_scalar(-7.5f));
    dc_tensor *empty = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(0, 3)));
    items[n++] = (dc_named_tensor){"transposed", t};
    items[n++] = (dc_named_tensor){"strided.i64", l};
    items[n++] = (dc_named_tensor){"scalar", scalar};
    items[n++] = (dc_named_tensor){"empty", empty};
    const char *meta[] = {"epoch", "12", "note", "quote \" and \\ and ünïcode", NULL};
    const char *path = tmp_path("all.safetensors");
    TL_OK(dc_safetensors_save(path, n, items, meta));
    assert_int_equal(count_files(g_tmpdir), 1); /* no temporary left behind */

    /* the header is padded so the data area is 8-byte aligned, and every tensor aligned */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t hl[8];
    assert_int_equal(fread(hl, 1, 8, f), 8);
    fclose(f);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | hl[i];
    assert_int_equal(hlen % 8, 0);

    for (int pass = 0; pass < 2; pass++) {
        dc_safetensors *st;
        if (pass == 0) {
            st = TL_CHECK(dc_safetensors_open(path));
        } else { /* the same bytes through open_memory */
            f = fopen(path, "rb");
            assert_non_null(f);
            fseek(f, 0, SEEK_END);
            long size = ftell(f);
            fseek(f, 0, SEEK_SET);
            char *buf = malloc((size_t)size);
            assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
            fclose(f);
            st = TL_CHECK(dc_safetensors_open_memory(buf, (size_t)size, "mem.safetensors"));
            free(buf); /* the buffer is copied */
            assert_string_equal(dc_safetensors_path(st), "mem.safetensors");
        }
        assert_int_equal(dc_safetensors_count(st), n);
        assert_string_equal(dc_safetensors_metadata(st, "epoch"), "12");
        assert_string_equal(dc_safetensors_metadata(st, "note"), "quote \" and \\ and ünïcode");
        assert_null(dc_safetensors_metadata(st, "missing"));
        /* every saved name exactly once (file order is by alignment, then save order) */
        for (int i = 0; i < n; i++) {
            int found = 0;
            for (int j = 0; j < n; j++) found += strcmp(dc_safetensors_name(st, j), items[i].name) == 0;
            assert_int_equal(found, 1);
        }
        assert_null(dc_safetensors_name(st, n));
        assert_null(dc_safetensors_name(st, -1));
        for (int i = 0; i < n; i++) {
            dc_tensor *got = TL_CHECK(dc_safetensors_get(st, items[i].name));
            assert_true(dc_is_contiguous(got));
            assert_int_equal((uintptr_t)dc_data(got) % dc_dtype_size(got->dtype), 0);
            assert_same_bytes(got, items[i].tensor, items[i].name);
            dc_dtype dt;
            int nd;
            int64_t sh[DC_MAX_DIMS];
            assert_true(dc_safetensors_info(st, items[i].name, &dt, &nd, sh));
            assert_int_equal(dt, items[i].tensor->dtype);
            assert_int_equal(nd, items[i].tensor->ndim);
            for (int k = 0; k < nd; k++) assert_int_equal(sh[k], items[i].tensor->shape[k]);
        }
        dc_tensor *tr = TL_CHECK(dc_safetensors_get(st, "transposed"));
        float expect_t[12] = {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11};
        assert_memory_equal(dc_data(tr), expect_t, sizeof expect_t);
        dc_safetensors_close(st);
    }
    dc_pool_pop(m);
}

/* Tensors taken from a checkpoint stay valid after it is closed (they hold the mapping),
 * with and without a pool, and can be modified in place without touching the file. */
static void test_close_then_use(void **state)
{
    (void)state;
    float v[4] = {1, 2, 3, 4};
    dc_tensor *w = TL_CHECK(dc_from_data(DC_F32, DC_SHAPE(2, 2), v)); /* no pool: owned */
    const char *path = tmp_path("w.safetensors");
    TL_OK(dc_safetensors_save(path, 1, &(dc_named_tensor){"w", w}, NULL));
    dc_tensor_release(w);

    dc_safetensors *st = TL_CHECK(dc_safetensors_open(path));
    dc_tensor *a = TL_CHECK(dc_safetensors_get(st, "w"));
    dc_tensor *b = TL_CHECK(dc_safetensors_get(st, "w"));
    dc_safetensors_close(st);
    assert_float_equal(dc_data_f32(a)[3], 4.0f, 0);
    dc_data_f32(a)[0] = 42.0f; /* copy-on-write mapping: a and b share it, the file does not */
    assert_float_equal(dc_data_f32(b)[0], 42.0f, 0);
    dc_tensor_release(a);
    assert_float_equal(dc_data_f32(b)[1], 2.0f, 0);
    dc_tensor_release(b);

    st = TL_CHECK(dc_safetensors_open(path));
    dc_pool_mark m = dc_pool_push();
    dc_tensor *c = TL_CHECK(dc_safetensors_get(st, "w"));
    dc_safetensors_close(st);
    assert_float_equal(dc_data_f32(c)[0], 1.0f, 0); /* the file is unchanged */

    /* saving over the file while tensors still view its old mapping: the rename gives the
     * path a new file, the old one lives on until the last tensor goes */
    dc_tensor *z = TL_CHECK(dc_full(DC_F32, DC_SHAPE(3), 9.0));
    TL_OK(dc_safetensors_save(path, 1, &(dc_named_tensor){"w", z}, NULL));
    assert_float_equal(dc_data_f32(c)[3], 4.0f, 0);
    st = TL_CHECK(dc_safetensors_open(path));
    dc_tensor *d = TL_CHECK(dc_safetensors_get(st, "w"));
    dc_safetensors_close(st);
    assert_int_equal(dc_numel(d), 3);
    assert_float_equal(dc_data_f32(d)[2], 9.0f, 0);
    dc_pool_pop(m);
}

static void test_save_errors(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *a = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(2)));
    const char *path = tmp_path("dup.safetensors");
    dc_named_tensor dup[] = {{"x", a}, {"y", a}, {"x", a}};
    assert_int_equal(dc_safetensors_save(path, 3, dup, NULL), DC_ERR_ARG);
    assert_non_null(strstr(dc_last_error(), "'x'"));
    assert_int_equal(count_files(g_tmpdir), 0);

    dc_named_tensor reserved[] = {{"__metadata__", a}};
    assert_int_equal(dc_safetensors_save(path, 1, reserved, NULL), DC_ERR_ARG);
    dc_named_tensor null_t[] = {{"x", NULL}};
    assert_int_equal(dc_safetensors_save(path, 1, null_t, NULL), DC_ERR_ARG);
    const char *dup_meta[] = {"k", "1", "j", "2", "k", "3", NULL};
    assert_int_equal(dc_safetensors_save(path, 1, &(dc_named_tensor){"x", a}, dup_meta), DC_ERR_ARG);
    const char *odd_meta[] = {"k", NULL}; /* a key without a value */
    assert_int_equal(dc_safetensors_save(path, 1, &(dc_named_tensor){"x", a}, odd_meta), DC_ERR_ARG);
    assert_int_equal(dc_safetensors_save("/nonexistent-dir-deepc/x.safetensors", 1, &(dc_named_tensor){"x", a},
                                         NULL),
                     DC_ERR_IO);
    assert_non_null(strstr(dc_last_error(), "/nonexistent-dir-deepc/x.safetensors"));
    assert_int_equal(count_files(g_tmpdir), 0);

    /* zero tensors is a valid file */
    const char *p0 = tmp_path("none.safetensors");
    TL_OK(dc_safetensors_save(p0, 0, NULL, NULL));
    dc_safetensors *st = TL_CHECK(dc_safetensors_open(p0));
    assert_int_equal(dc_safetensors_count(st), 0);
    assert_false(dc_safetensors_has(st, "x"));
    assert_null(dc_safetensors_get(st, "x"));
    assert_non_null(strstr(dc_last_error(), "none.safetensors"));
    assert_non_null(strstr(dc_last_error(), "'x'"));
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_write_file_atomic(void **state)
{
    (void)state;
    const char *path = tmp_path("report.json");
    TL_OK(dc_write_file_atomic(path, "{\"a\": 1}", 8));
    TL_OK(dc_write_file_atomic(path, "{}", 2)); /* replaces */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[16] = {0};
    assert_int_equal(fread(buf, 1, sizeof buf, f), 2);
    fclose(f);
    assert_string_equal(buf, "{}");
    TL_OK(dc_write_file_atomic(tmp_path("empty"), NULL, 0));
    assert_int_equal(count_files(g_tmpdir), 2);
    assert_int_equal(dc_write_file_atomic("/nonexistent-dir-deepc/r.json", "x", 1), DC_ERR_IO);
    /* relative path in the current folder (no slash): fsync of "." */
    char rel[64];
    snprintf(rel, sizeof rel, "deepc_atomic_%ld.tmpfile", (long)getpid());
    TL_OK(dc_write_file_atomic(rel, "x", 1));
    unlink(rel);
}

/* ---------------------------------------------------------------------------------------
 * Files written by PyTorch (tools/fixtures_io.py)
 * ------------------------------------------------------------------------------------- */

static void expect_values(dc_safetensors *st, const char *name, dc_dtype dtype, int ndim, const int64_t *shape,
                          double (*fn)(int64_t))
{
    dc_tensor *t = TL_CHECK(dc_safetensors_get(st, name));
    if (t->dtype != dtype) fail_msg("%s: dtype %s, expected %s", name, dc_dtype_name(t->dtype), dc_dtype_name(dtype));
    assert_int_equal(t->ndim, ndim);
    for (int i = 0; i < ndim; i++) assert_int_equal(t->shape[i], shape[i]);
    int64_t n = dc_numel(t);
    dc_tensor *f = TL_CHECK(dc_to_dtype(t, DC_F32));
    for (int64_t i = 0; i < n; i++) {
        double want = fn(i), got = dc_data_f32(f)[i];
        if (dtype == DC_I64) got = (double)((int64_t *)dc_data(t))[i]; /* beyond F32's range */
        if (got != want) fail_msg("%s[%lld] = %.17g, expected %.17g", name, (long long)i, got, want);
    }
}

static double v_f32(int64_t i) { return (double)i * 0.5 - 3.0; }
static double v_f16(int64_t i) { return (double)i * 0.25 - 2.0; }
static double v_bf16(int64_t i) { return (double)i * 2.0 - 7.0; }
static double v_i64(int64_t i) { return (double)((i - 3) * 1000000000000LL); }
static double v_i32(int64_t i) { return (double)(i * 7 - 20); }
static double v_u8(int64_t i) { return (double)(i * 17); }
static double v_bool(int64_t i) { return i % 2 == 0 ? 1.0 : 0.0; }
static double v_scalar(int64_t i) { return (void)i, 2.5; }
static double v_transposed(int64_t i) { return (double)((i % 3) * 4 + i / 3); }

static void test_read_pytorch_fixture(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = tl_fixture("io/torch_dtypes.safetensors");
    assert_int_equal(dc_safetensors_count(st), 10);
    expect_values(st, "f32", DC_F32, 3, (int64_t[]){2, 3, 4}, v_f32);
    expect_values(st, "f16", DC_F16, 2, (int64_t[]){4, 6}, v_f16);
    expect_values(st, "bf16", DC_BF16, 1, (int64_t[]){24}, v_bf16);
    expect_values(st, "i64", DC_I64, 1, (int64_t[]){6}, v_i64);
    expect_values(st, "i32", DC_I32, 2, (int64_t[]){3, 2}, v_i32);
    expect_values(st, "u8", DC_U8, 1, (int64_t[]){16}, v_u8);
    expect_values(st, "bool", DC_BOOL, 1, (int64_t[]){5}, v_bool);
    expect_values(st, "scalar", DC_F32, 0, NULL, v_scalar);
    expect_values(st, "empty", DC_F32, 2, (int64_t[]){0, 3}, v_scalar);
    expect_values(st, "transposed", DC_F32, 2, (int64_t[]){4, 3}, v_transposed);
    assert_string_equal(dc_safetensors_metadata(st, "format"), "pt");
    /* the test helpers on the same file */
    assert_true(tl_meta_num(st, "epoch") == 3.0);
    assert_true(tl_meta_num(st, "lr") == 0.001);
    assert_true(tl_meta_num(st, "flag") == 1.0);
    dc_tensor *h = tl_get(st, "f16");
    assert_int_equal(h->dtype, DC_F32);
    assert_float_equal(dc_data_f32(h)[23], 23 * 0.25 - 2.0, 0);
    dc_tensor *l = tl_get_i64(st, "i32");
    assert_int_equal(l->dtype, DC_I64);
    assert_int_equal(((int64_t *)dc_data(l))[0], -20);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

/* Unpadded header: data not aligned in the mapping; deepc must hand out aligned copies. */
static void test_unaligned_file(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = tl_fixture("io/unaligned.safetensors");
    dc_tensor *a = TL_CHECK(dc_safetensors_get(st, "a"));
    dc_tensor *b = TL_CHECK(dc_safetensors_get(st, "b"));
    dc_tensor *c = TL_CHECK(dc_safetensors_get(st, "c"));
    dc_safetensors_close(st);
    assert_int_equal((uintptr_t)dc_data(a) % 4, 0);
    assert_int_equal((uintptr_t)dc_data(b) % 8, 0);
    assert_float_equal(dc_data_f32(a)[2], 3.25f, 0);
    assert_int_equal(((int64_t *)dc_data(b))[0], -7);
    assert_int_equal(((int64_t *)dc_data(b))[1], (int64_t)1 << 40);
    assert_float_equal(dc_item(c), 0.5, 0);
    dc_pool_pop(m);
}

static void test_f64_unsupported(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/io/f64.safetensors", tl_fixtures_dir());
    assert_null(dc_safetensors_open(path));
    assert_int_equal(dc_last_status(), DC_ERR_UNSUPPORTED);
    assert_non_null(strstr(dc_last_error(), "F64"));
    assert_non_null(strstr(dc_last_error(), "f64.safetensors"));
}

/* ---------------------------------------------------------------------------------------
 * Malformed files
 * ------------------------------------------------------------------------------------- */

static void test_malformed_corpus(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/safetensors_bad", tl_fixtures_dir());
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot open %s (run tools/fixtures_io.py)", dir);
    int checked = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".safetensors")) continue;
        char path[1536];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        dc_clear_error();
        dc_safetensors *st = dc_safetensors_open(path);
        if (st) {
            closedir(d);
            dc_safetensors_close(st);
            fail_msg("%s: opened, but the file is malformed", e->d_name);
        }
        dc_status s = dc_last_status();
        if (s != DC_ERR_FORMAT && s != DC_ERR_IO) {
            closedir(d);
            fail_msg("%s: status %s (%s), expected malformed file", e->d_name, dc_status_name(s), dc_last_error());
        }
        if (!strstr(dc_last_error(), e->d_name)) {
            closedir(d);
            fail_msg("%s: message does not name the file: %s", e->d_name, dc_last_error());
        }
        /* the same bytes from memory: same verdict, named by the given name */
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        st = dc_safetensors_open_memory(buf, n, e->d_name);
        if (st || (dc_last_status() != DC_ERR_FORMAT) || !strstr(dc_last_error(), e->d_name)) {
            closedir(d);
            dc_safetensors_close(st);
            fail_msg("%s (memory): expected a malformed-file error naming it, got %s", e->d_name,
                     st ? "success" : dc_last_error());
        }
        checked++;
    }
    closedir(d);
    print_message("checked %d malformed files\n", checked);
    assert_true(checked >= 30);
}

/* Every truncation of a valid file is refused (or, if the cut is after the data, read
 * correctly): no crash, no read past the end (ASan). */
static void test_every_truncation(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *a = TL_CHECK(dc_arange(DC_F32, 0, 6, 1));
    dc_tensor *b = TL_CHECK(dc_arange(DC_I64, 0, 3, 1));
    const char *path = tmp_path("t.safetensors");
    TL_OK(dc_safetensors_save(path, 2, (dc_named_tensor[]){{"a", a}, {"b", b}}, (const char *[]){"k", "v", NULL}));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t buf[4096];
    size_t size = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t cut = 0; cut < size; cut++) {
        dc_safetensors *st = dc_safetensors_open_memory(buf, cut, "cut");
        if (st) fail_msg("truncated to %zu of %zu bytes but opened", cut, size);
        assert_int_equal(dc_last_status(), DC_ERR_FORMAT);
    }
    /* single-byte corruptions of the header must never crash either */
    for (size_t i = 0; i < size; i++) {
        uint8_t save = buf[i];
        for (int v = 0; v < 256; v += 37) {
            buf[i] = (uint8_t)v;
            dc_safetensors *st = dc_safetensors_open_memory(buf, size, "flip");
            if (st) {
                for (int k = 0; k < dc_safetensors_count(st); k++)
                    dc_safetensors_get(st, dc_safetensors_name(st, k));
                dc_safetensors_close(st);
            }
        }
        buf[i] = save;
    }
    dc_pool_pop(m);
}

static void test_open_errors(void **state)
{
    (void)state;
    assert_null(dc_safetensors_open("/nonexistent-dir-deepc/none.safetensors"));
    assert_int_equal(dc_last_status(), DC_ERR_IO);
    assert_non_null(strstr(dc_last_error(), "none.safetensors"));
    assert_null(dc_safetensors_open(tl_fixtures_dir())); /* a folder */
    assert_int_equal(dc_last_status(), DC_ERR_IO);
    assert_null(dc_safetensors_open(NULL));
    assert_null(dc_safetensors_open_memory(NULL, 0, NULL));
    assert_int_equal(dc_last_status(), DC_ERR_FORMAT);
    /* header length past the end, and over the 100 MB limit, refused without allocating */
    uint8_t huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    assert_null(dc_safetensors_open_memory(huge, sizeof huge, "huge"));
    assert_non_null(strstr(dc_last_error(), "huge"));
    /* NULL-safe queries */
    assert_int_equal(dc_safetensors_count(NULL), 0);
    assert_false(dc_safetensors_has(NULL, "x"));
    assert_false(dc_safetensors_info(NULL, "x", NULL, NULL, NULL));
    assert_null(dc_safetensors_metadata(NULL, "x"));
    dc_safetensors_close(NULL);
}

/* ---------------------------------------------------------------------------------------
 * testlib self-checks (helpers every other test relies on)
 * ------------------------------------------------------------------------------------- */

static dc_tensor *clone_fn(dc_tensor **in, void *ctx)
{
    (void)ctx;
    return dc_clone(in[0]);
}

static void test_testlib_helpers(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    float ev[4] = {1, -2, 3, 100};
    float av[4] = {1, -2, 3.0005f, 100};
    dc_tensor *e = TL_CHECK(dc_from_data(DC_F32, DC_SHAPE(2, 2), ev));
    dc_tensor *a = TL_CHECK(dc_from_data(DC_F32, DC_SHAPE(2, 2), av));
    /* 5e-4 / 100 = 5e-6 relative to the scale */
    tl_assert_close(a, e, TL_RTOL, "close");
    assert_true(fabs(tl_max_rel_error(a, e) - 5e-6) < 1e-7);
    tl_assert_close_abs(a, e, 1e-3, "close abs");
    dc_tensor *nan1 = TL_CHECK(dc_full(DC_F32, DC_SHAPE(2), NAN));
    tl_assert_close(nan1, nan1, TL_RTOL, "nan == nan");
    dc_tensor *flat = TL_CHECK(dc_from_data(DC_F32, DC_SHAPE(4), ev));
    assert_true(isinf(tl_max_rel_error(flat, e))); /* shapes differ */
    /* a strided actual against a contiguous expected */
    dc_tensor *t = TL_CHECK(dc__view(e, 2, (int64_t[]){2, 2}, (int64_t[]){1, 2}, 0));
    float tv[4] = {1, 3, -2, 100};
    tl_assert_close(t, TL_CHECK(dc_from_data(DC_F32, DC_SHAPE(2, 2), tv)), 0, "transpose");

    /* gradcheck of a differentiable core op (clone: gradient of sum is ones) */
    dc_tensor *x = TL_CHECK(dc_from_data(DC_F32, DC_SHAPE(2, 2), ev));
    TL_OK(dc_set_requires_grad(x, true));
    tl_gradcheck("clone", clone_fn, 1, &x, NULL, 1e-2, 1e-3, 1e-2);
    assert_null(x->grad); /* gradcheck leaves no gradient behind */
    assert_float_equal(dc_data_f32(x)[3], 100.0f, 0); /* and the input unchanged */
    dc_pool_pop(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_roundtrip_all_dtypes, teardown_tmp),
        cmocka_unit_test_teardown(test_close_then_use, teardown_tmp),
        cmocka_unit_test_teardown(test_save_errors, teardown_tmp),
        cmocka_unit_test_teardown(test_write_file_atomic, teardown_tmp),
        cmocka_unit_test(test_read_pytorch_fixture),
        cmocka_unit_test(test_unaligned_file),
        cmocka_unit_test(test_f64_unsupported),
        cmocka_unit_test(test_malformed_corpus),
        cmocka_unit_test_teardown(test_every_truncation, teardown_tmp),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_testlib_helpers),
    };
    return TL_RUN(tests);
}
