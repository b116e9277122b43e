/* test_data.c: the data-set readers, the folder search, batching and augmentation, splits and
 * shuffles, and image files for predict.
 *
 * - The real MNIST and CIFAR-10 (partial) copies in ../shared/data load with the documented
 *   counts and first labels, and byte-exactly (the loaded arrays, put back behind their
 *   headers, hash to the official md5s). Fashion-MNIST is checked from Debian's package
 *   (/usr/share/datasets) when installed. Tests skip when a copy is absent.
 * - Corrupt files generated into a temporary folder (wrong magic, truncated, counts that
 *   disagree with the size, labels >= 10, ragged CIFAR files) each give a one-line error
 *   naming the file and what was expected.
 * - Normalization is bit-identical to torchvision's ToTensor + Normalize, the split and
 *   reshuffle reproduce torch.randperm / random_split, and the CIFAR augmentation reproduces
 *   torchvision's RandomCrop(32, 4) + RandomHorizontalFlip after torch.manual_seed
 *   (fixtures from tools/fixtures_metrics.py).
 * - Image files decode and convert to PIL's exact pixels (PNG, PGM), JPEG within a small
 *   tolerance (different decoders).
 */
#include "support/testlib.h"

#include <ftw.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cjson/cJSON.h>

#include "deepc/data.h"

/* ---------------------------------------------------------------------------------------
 * helpers
 * ------------------------------------------------------------------------------------- */

static char tmp_root[256];

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path) { nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/deepc_test_data_XXXXXX");
    return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    (void)state;
    rm_rf(tmp_root);
    return 0;
}

static void write_bytes(const char *path, const void *data, size_t n, bool gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb6");
        assert_non_null(f);
        if (n) assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        if (n) assert_int_equal(fwrite(data, 1, n, f), n);
        fclose(f);
    }
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An IDX image file image: magic, count, rows, cols, then pixels (i * 7 + p) & 255. */
static uint8_t *make_idx_images(uint32_t magic, uint32_t count, uint32_t rows, uint32_t cols,
                                uint32_t actual_images, size_t *size)
{
    size_t n = 16 + (size_t)actual_images * rows * cols;
    uint8_t *b = malloc(n);
    put_be32(b, magic);
    put_be32(b + 4, count);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    for (size_t i = 16; i < n; i++) b[i] = (uint8_t)((i - 16) * 7 + (i - 16) / 784);
    *size = n;
    return b;
}

static uint8_t *make_idx_labels(uint32_t magic, uint32_t count, uint32_t actual, uint8_t bad_at, size_t *size)
{
    size_t n = 8 + actual;
    uint8_t *b = malloc(n);
    put_be32(b, magic);
    put_be32(b + 4, count);
    for (uint32_t i = 0; i < actual; i++) b[8 + i] = (uint8_t)(i % 10);
    if (bad_at < actual) b[8 + bad_at] = 12;
    *size = n;
    return b;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open fixture %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static cJSON *load_json(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tl_fixtures_dir(), rel);
    char *s = read_text(path);
    cJSON *j = cJSON_Parse(s);
    free(s);
    if (!j) fail_msg("cannot parse %s", path);
    return j;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle)) fail_msg("expected \"%s\" in the message: %s", needle, haystack);
}

static bool shared_has(const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", tl_shared_dir(), rel);
    return access(p, R_OK) == 0;
}

/* ---------------------------------------------------------------------------------------
 * table and names
 * ------------------------------------------------------------------------------------- */

static void test_names(void **state)
{
    (void)state;
    dc_dataset_id id;
    assert_int_equal(dc_dataset_parse("mnist", &id), DC_OK);
    assert_int_equal(id, DC_DATASET_MNIST);
    assert_int_equal(dc_dataset_parse("Fashion-MNIST", &id), DC_OK);
    assert_int_equal(id, DC_DATASET_FASHION_MNIST);
    assert_int_equal(dc_dataset_parse("cifar-10", &id), DC_OK);
    assert_int_equal(id, DC_DATASET_CIFAR10);
    assert_int_equal(dc_dataset_parse("imagenet", &id), DC_ERR_ARG);
    assert_contains(dc_last_error(), "unknown dataset 'imagenet'");
    assert_contains(dc_last_error(), "mnist, fashion-mnist, cifar10");

    const dc_dataset_info *c = dc_dataset_info_of(DC_DATASET_CIFAR10);
    assert_int_equal(c->channels, 3);
    assert_int_equal(c->height, 32);
    assert_string_equal(c->class_names[0], "airplane");
    assert_string_equal(c->class_names[9], "truck");
    assert_true(c->mean[1] == 0.4822f && c->std[2] == 0.2616f);
    const dc_dataset_info *f = dc_dataset_info_of(DC_DATASET_FASHION_MNIST);
    assert_string_equal(f->class_names[0], "T-shirt/top");
    assert_string_equal(f->class_names[9], "Ankle boot");
    assert_true(f->mean[0] == 0.2860f && f->std[0] == 0.3530f);
    const dc_dataset_info *m = dc_dataset_info_of(DC_DATASET_MNIST);
    assert_true(m->mean[0] == 0.1307f && m->std[0] == 0.3081f);
    assert_null(dc_dataset_info_of(DC_DATASET_COUNT));
}

/* ---------------------------------------------------------------------------------------
 * the real data sets
 * ------------------------------------------------------------------------------------- */

/* md5 of the IDX file rebuilt from a loaded data set (header + data) */
static void idx_md5(const dc_dataset *ds, bool images, char hex[33])
{
    size_t body = images ? (size_t)(ds->count * ds->image_size) : (size_t)ds->count;
    size_t head = images ? 16 : 8;
    uint8_t *b = malloc(head + body);
    put_be32(b, images ? 2051 : 2049);
    put_be32(b + 4, (uint32_t)ds->count);
    if (images) {
        put_be32(b + 8, 28);
        put_be32(b + 12, 28);
    }
    memcpy(b + head, images ? ds->images : ds->labels, body);
    dc_md5_buffer(b, head + body, hex);
    free(b);
}

static void test_mnist_real(void **state)
{
    (void)state;
    if (!shared_has("data/mnist/train-images-idx3-ubyte.gz")) skip();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/data", tl_shared_dir());
    dc_dataset *tr = TL_CHECK(dc_dataset_load(DC_DATASET_MNIST, DC_SPLIT_TRAIN, dir));
    assert_int_equal(tr->count, 60000);
    assert_int_equal(tr->image_size, 784);
    const uint8_t first[] = {5, 0, 4, 1, 9, 2, 1, 3, 1, 4};
    assert_memory_equal(tr->labels, first, sizeof first);
    assert_non_null(strstr(tr->source, "mnist"));
    char hex[33];
    /* the uncompressed md5s from ../shared/data/README.md: the load is byte-exact */
    idx_md5(tr, true, hex);
    assert_string_equal(hex, "6bbc9ace898e44ae57da46a324031adb");
    idx_md5(tr, false, hex);
    assert_string_equal(hex, "a25bea736e30d166cdddb491f175f624");
    dc_dataset_free(tr);

    dc_dataset *te = TL_CHECK(dc_dataset_load(DC_DATASET_MNIST, DC_SPLIT_TEST, dir));
    assert_int_equal(te->count, 10000);
    const uint8_t tfirst[] = {7, 2, 1, 0, 4, 1, 4, 9, 5, 9};
    assert_memory_equal(te->labels, tfirst, sizeof tfirst);
    idx_md5(te, true, hex);
    assert_string_equal(hex, "2646ac647ad5339dbf082846283269ea");
    idx_md5(te, false, hex);
    assert_string_equal(hex, "27ae3e4e09519cfbb04c329615203637");
    dc_dataset_free(te);
}

static void test_cifar_real(void **state)
{
    (void)state;
    if (!shared_has("data/cifar-10-partial/cifar-10-batches-bin/data_batch_1.bin")) skip();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/data", tl_shared_dir());
    dc_dataset *tr = TL_CHECK(dc_dataset_load(DC_DATASET_CIFAR10, DC_SPLIT_TRAIN, dir));
    assert_int_equal(tr->count, 50000);
    assert_int_equal(tr->image_size, 3072);
    const uint8_t first[] = {6, 9, 9, 4, 1};
    assert_memory_equal(tr->labels, first, sizeof first);
    assert_non_null(strstr(tr->source, "cifar-10-partial/cifar-10-batches-bin"));
    /* data_batch_1.bin rebuilt from the first 10000 records hashes to the official md5 */
    uint8_t *rec = malloc(10000 * 3073);
    for (int i = 0; i < 10000; i++) {
        rec[i * 3073] = tr->labels[i];
        memcpy(rec + i * 3073 + 1, tr->images + (size_t)i * 3072, 3072);
    }
    char hex[33];
    dc_md5_buffer(rec, 10000 * 3073, hex);
    assert_string_equal(hex, "5dd7e06a14cb22eb9f671a540d1b7c25");
    /* and batch 5 sits at the end */
    for (int i = 0; i < 10000; i++) {
        rec[i * 3073] = tr->labels[40000 + i];
        memcpy(rec + i * 3073 + 1, tr->images + (size_t)(40000 + i) * 3072, 3072);
    }
    dc_md5_buffer(rec, 10000 * 3073, hex);
    assert_string_equal(hex, "53f37980c15c3d472c316c40844f3f0d");
    free(rec);
    int counts[10] = {0};
    for (int64_t i = 0; i < tr->count; i++) counts[tr->labels[i]]++;
    for (int c = 0; c < 10; c++) assert_int_equal(counts[c], 5000);
    dc_dataset_free(tr);

    dc_dataset *te = TL_CHECK(dc_dataset_load(DC_DATASET_CIFAR10, DC_SPLIT_TEST, dir));
    assert_int_equal(te->count, 1017);
    const uint8_t tfirst[] = {3, 8, 8, 0, 6};
    assert_memory_equal(te->labels, tfirst, sizeof tfirst);
    dc_dataset_free(te);
}

static void test_fashion_debian(void **state)
{
    (void)state;
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0) skip();
    dc_dataset *tr = TL_CHECK(dc_dataset_load(DC_DATASET_FASHION_MNIST, DC_SPLIT_TRAIN, "/usr/share/datasets"));
    assert_int_equal(tr->count, 60000);
    const uint8_t first[] = {9, 0, 0, 3, 0};
    assert_memory_equal(tr->labels, first, sizeof first);
    dc_dataset_free(tr);
    /* the data set's own folder works as --data-dir too */
    dc_dataset *te = TL_CHECK(dc_dataset_load(DC_DATASET_FASHION_MNIST, DC_SPLIT_TEST, "/usr/share/datasets/fashion-mnist"));
    assert_int_equal(te->count, 10000);
    const uint8_t tfirst[] = {9, 2, 1, 1, 6};
    assert_memory_equal(te->labels, tfirst, sizeof tfirst);
    dc_dataset_free(te);
}

/* ---------------------------------------------------------------------------------------
 * folder search
 * ------------------------------------------------------------------------------------- */

/* writes a tiny MNIST test split (n images) into dir/mnist/, gzipped or not */
static void write_tiny_mnist(const char *root, uint32_t n, bool gz, uint8_t first_label)
{
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/mnist", root);
    mkdir(root, 0755);
    mkdir(dir, 0755);
    size_t si, sl;
    uint8_t *im = make_idx_images(2051, n, 28, 28, n, &si);
    uint8_t *lb = make_idx_labels(2049, n, n, 255, &sl);
    lb[8] = first_label;
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte%s", dir, gz ? ".gz" : "");
    write_bytes(p, im, si, gz);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte%s", dir, gz ? ".gz" : "");
    write_bytes(p, lb, sl, gz);
    free(im);
    free(lb);
}

static void test_search_order(void **state)
{
    (void)state;
    char a[512], b[512], cwd[1024];
    snprintf(a, sizeof a, "%s/explicit", tmp_root);
    snprintf(b, sizeof b, "%s/env", tmp_root);
    write_tiny_mnist(a, 3, true, 7);
    write_tiny_mnist(b, 5, false, 2);
    assert_non_null(getcwd(cwd, sizeof cwd));
    /* from a folder without ./data or ../shared/data the only candidates are ours */
    char empty[512];
    snprintf(empty, sizeof empty, "%s/cwd/inner", tmp_root);
    char parent[512];
    snprintf(parent, sizeof parent, "%s/cwd", tmp_root);
    mkdir(parent, 0755);
    mkdir(empty, 0755);
    assert_int_equal(chdir(empty), 0);
    const char *old_env = getenv("DEEPC_DATA");
    char *saved = old_env ? strdup(old_env) : NULL;

    setenv("DEEPC_DATA", b, 1);
    dc_dataset *ds = TL_CHECK(dc_dataset_load(DC_DATASET_MNIST, DC_SPLIT_TEST, a)); /* --data-dir wins */
    assert_int_equal(ds->count, 3);
    assert_int_equal(ds->labels[0], 7);
    dc_dataset_free(ds);
    ds = TL_CHECK(dc_dataset_load(DC_DATASET_MNIST, DC_SPLIT_TEST, NULL)); /* then $DEEPC_DATA */
    assert_int_equal(ds->count, 5);
    assert_int_equal(ds->labels[0], 2);
    dc_dataset_free(ds);
    ds = TL_CHECK(dc_dataset_load(DC_DATASET_MNIST, DC_SPLIT_TEST, "/nonexistent/dir")); /* falls through */
    assert_int_equal(ds->count, 5);
    dc_dataset_free(ds);

    /* nothing anywhere: the message names the files, the folders searched and the fix */
    unsetenv("DEEPC_DATA");
    char missing[512];
    snprintf(missing, sizeof missing, "%s/nothing", tmp_root);
    assert_null(dc_dataset_load(DC_DATASET_MNIST, DC_SPLIT_TRAIN, missing));
    assert_int_equal(dc_last_status(), DC_ERR_IO);
    const char *msg = dc_last_error();
    assert_contains(msg, "MNIST training set not found");
    assert_contains(msg, "train-images-idx3-ubyte[.gz]");
    assert_contains(msg, "train-labels-idx1-ubyte[.gz]");
    assert_contains(msg, missing);
    assert_contains(msg, "(--data-dir)");
    assert_contains(msg, "./data");
    assert_contains(msg, "../shared/data");
    assert_contains(msg, "/usr/share/datasets");
    assert_contains(msg, "deepc download mnist");
    assert_null(strchr(msg, '\n'));
    /* a folder with only some of the files is pointed out */
    assert_null(dc_dataset_load(DC_DATASET_MNIST, DC_SPLIT_TRAIN, a));
    assert_null(strstr(dc_last_error(), "only some"));
    char half[600];
    snprintf(half, sizeof half, "%s/mnist/train-images-idx3-ubyte", a);
    write_bytes(half, "x", 1, false);
    assert_null(dc_dataset_load(DC_DATASET_MNIST, DC_SPLIT_TRAIN, a));
    assert_contains(dc_last_error(), "holds only some of them");
    /* CIFAR names its batch files */
    assert_null(dc_dataset_load(DC_DATASET_CIFAR10, DC_SPLIT_TRAIN, missing));
    assert_contains(dc_last_error(), "data_batch_1.bin");
    assert_contains(dc_last_error(), "data_batch_5.bin");
    assert_contains(dc_last_error(), "cifar-10-partial/cifar-10-batches-bin/");
    assert_contains(dc_last_error(), "deepc download cifar10");

    char dl[512];
    assert_string_equal(dc_default_download_dir("/x/y", dl, sizeof dl), "/x/y");
    assert_string_equal(dc_default_download_dir(NULL, dl, sizeof dl), "./data");
    setenv("DEEPC_DATA", b, 1);
    assert_string_equal(dc_default_download_dir(NULL, dl, sizeof dl), b);

    if (saved) setenv("DEEPC_DATA", saved, 1);
    else unsetenv("DEEPC_DATA");
    free(saved);
    assert_int_equal(chdir(cwd), 0);
}

/* ---------------------------------------------------------------------------------------
 * corrupt files
 * ------------------------------------------------------------------------------------- */

typedef struct idx_case {
    const char *what;
    uint32_t img_magic, img_count, rows, cols, img_actual;
    uint32_t lbl_magic, lbl_count, lbl_actual;
    uint8_t bad_label_at;
    bool gz;
    const char *expect[3]; /* substrings of the message */
} idx_case;

static void run_idx_case(const idx_case *c)
{
    char ip[512], lp[512];
    snprintf(ip, sizeof ip, "%s/case-images%s", tmp_root, c->gz ? ".gz" : "");
    snprintf(lp, sizeof lp, "%s/case-labels%s", tmp_root, c->gz ? ".gz" : "");
    size_t si, sl;
    uint8_t *im = make_idx_images(c->img_magic, c->img_count, c->rows, c->cols, c->img_actual, &si);
    uint8_t *lb = make_idx_labels(c->lbl_magic, c->lbl_count, c->lbl_actual, c->bad_label_at, &sl);
    write_bytes(ip, im, si, c->gz);
    write_bytes(lp, lb, sl, c->gz);
    dc_dataset *ds = dc_idx_load(DC_DATASET_MNIST, ip, lp);
    if (ds) fail_msg("%s: loaded a corrupt file", c->what);
    const char *msg = dc_last_error();
    assert_int_equal(dc_last_status(), DC_ERR_FORMAT);
    assert_null(strchr(msg, '\n'));
    for (int i = 0; i < 3 && c->expect[i]; i++)
        if (!strstr(msg, c->expect[i])) fail_msg("%s: expected \"%s\" in: %s", c->what, c->expect[i], msg);
    /* the same bytes from memory give the same verdict */
    dc_dataset *mem = dc_idx_parse(DC_DATASET_MNIST, im, si, "mem-images", lb, sl, "mem-labels");
    assert_null(mem);
    free(im);
    free(lb);
}

static void test_idx_errors(void **state)
{
    (void)state;
    const idx_case cases[] = {
        {"wrong image magic", 2049, 3, 28, 28, 3, 2049, 3, 3, 255, false,
         {"case-images", "wrong magic number 2049", "expected 2051"}},
        {"wrong label magic", 2051, 3, 28, 28, 3, 2051, 3, 3, 255, true,
         {"case-labels.gz", "wrong magic number 2051", "expected 2049"}},
        {"truncated plain", 2051, 3, 28, 28, 2, 2049, 3, 3, 255, false,
         {"case-images", "3 images of 28x28", "2368 bytes"}},
        {"truncated gz", 2051, 3, 28, 28, 2, 2049, 3, 3, 255, true,
         {"case-images.gz", "truncated", "data ends after 1584 bytes"}},
        {"too much data", 2051, 2, 28, 28, 3, 2049, 2, 2, 255, false,
         {"case-images", "2 images of 28x28", "file has 2368 bytes"}},
        {"too much data gz", 2051, 2, 28, 28, 3, 2049, 2, 2, 255, true, {"case-images.gz", "holds more data", NULL}},
        {"labels short", 2051, 3, 28, 28, 3, 2049, 3, 2, 255, false, {"case-labels", "3 labels", "file has 10 bytes"}},
        {"label >= 10", 2051, 3, 28, 28, 3, 2049, 3, 3, 1, true,
         {"case-labels.gz", "label 12 at index 1", "expected 0..9"}},
        {"count mismatch", 2051, 3, 28, 28, 3, 2049, 2, 2, 255, false,
         {"has 3 images", "has 2 labels", "must agree"}},
        {"dims", 2051, 1, 32, 32, 1, 2049, 1, 1, 255, false, {"32x32", "expected 28x28", NULL}},
        {"huge count", 2051, 0xffffffffu, 28, 28, 1, 2049, 1, 1, 255, true, {"4294967295 images", "truncated", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_idx_case(&cases[i]);

    /* files too short for a header, empty, missing, not gzip despite the name */
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/short", tmp_root);
    write_bytes(p, "\0\0\x08\x03\0\0", 6, false);
    snprintf(q, sizeof q, "%s/missing", tmp_root);
    assert_null(dc_idx_load(DC_DATASET_MNIST, p, p));
    assert_contains(dc_last_error(), "too short for an IDX header: 6 bytes");
    assert_null(dc_idx_load(DC_DATASET_MNIST, q, p));
    assert_int_equal(dc_last_status(), DC_ERR_IO);
    assert_contains(dc_last_error(), "cannot open");
    assert_contains(dc_last_error(), "missing");
    /* a gzip stream cut in the middle */
    size_t si;
    uint8_t *im = make_idx_images(2051, 50, 28, 28, 50, &si);
    uLongf clen = compressBound(si) + 32;
    uint8_t *gzbuf = malloc(clen);
    z_stream zs = {0};
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = im;
    zs.avail_in = (uInt)si;
    zs.next_out = gzbuf;
    zs.avail_out = (uInt)clen;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t glen = zs.total_out;
    deflateEnd(&zs);
    size_t sl;
    uint8_t *lb = make_idx_labels(2049, 50, 50, 255, &sl);
    /* whole: fine from memory */
    dc_dataset *ds = TL_CHECK(dc_idx_parse(DC_DATASET_MNIST, gzbuf, glen, "g", lb, sl, "l"));
    assert_int_equal(ds->count, 50);
    assert_memory_equal(ds->images, im + 16, 50 * 784);
    dc_dataset_free(ds);
    /* cut: an error, from memory and from a file */
    assert_null(dc_idx_parse(DC_DATASET_MNIST, gzbuf, glen / 2, "cut.gz", lb, sl, "l"));
    assert_contains(dc_last_error(), "cut.gz");
    snprintf(p, sizeof p, "%s/cut-images.gz", tmp_root);
    snprintf(q, sizeof q, "%s/ok-labels", tmp_root);
    write_bytes(p, gzbuf, glen / 2, false);
    write_bytes(q, lb, sl, false);
    assert_null(dc_idx_load(DC_DATASET_MNIST, p, q));
    assert_contains(dc_last_error(), "cut-images.gz");
    assert_contains(dc_last_error(), "truncated");
    /* gzip and plain files give the same set */
    write_bytes(p, gzbuf, glen, false);
    ds = TL_CHECK(dc_idx_load(DC_DATASET_FASHION_MNIST, p, q));
    assert_int_equal(ds->count, 50);
    assert_int_equal(ds->id, DC_DATASET_FASHION_MNIST);
    assert_memory_equal(ds->images, im + 16, 50 * 784);
    assert_memory_equal(ds->labels, lb + 8, 50);
    dc_dataset_free(ds);
    free(gzbuf);
    free(im);
    free(lb);
    /* IDX is not for CIFAR */
    assert_null(dc_idx_load(DC_DATASET_CIFAR10, p, q));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
}

static void test_cifar_errors(void **state)
{
    (void)state;
    uint8_t *rec = calloc(3, 3073);
    for (int i = 0; i < 3; i++) {
        rec[i * 3073] = (uint8_t)(i + 3);
        for (int p = 0; p < 3072; p++) rec[i * 3073 + 1 + p] = (uint8_t)(p + i);
    }
    dc_dataset *ds = TL_CHECK(dc_cifar10_parse(rec, 3 * 3073, "mem"));
    assert_int_equal(ds->count, 3);
    assert_int_equal(ds->labels[2], 5);
    assert_int_equal(ds->images[2 * 3072 + 10], 12);
    dc_dataset_free(ds);

    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/b1.bin", tmp_root);
    snprintf(p2, sizeof p2, "%s/b2.bin", tmp_root);
    write_bytes(p1, rec, 2 * 3073, false);
    write_bytes(p2, rec + 3073, 2 * 3073, false);
    const char *both[] = {p1, p2};
    ds = TL_CHECK(dc_cifar10_load(2, both));
    assert_int_equal(ds->count, 4);
    const uint8_t labels[] = {3, 4, 4, 5};
    assert_memory_equal(ds->labels, labels, 4);
    assert_memory_equal(ds->images + 3 * 3072, rec + 2 * 3073 + 1, 3072);
    dc_dataset_free(ds);

    /* ragged size */
    write_bytes(p2, rec, 3073 + 100, false);
    assert_null(dc_cifar10_load(2, both));
    assert_int_equal(dc_last_status(), DC_ERR_FORMAT);
    assert_contains(dc_last_error(), "b2.bin");
    assert_contains(dc_last_error(), "3173 bytes is not a whole number of 3073-byte");
    assert_contains(dc_last_error(), "100 bytes left over");
    /* empty */
    write_bytes(p2, rec, 0, false);
    assert_null(dc_cifar10_load(2, both));
    assert_contains(dc_last_error(), "empty file");
    /* label 10 in record 1 of the second file */
    rec[3073] = 10;
    write_bytes(p2, rec, 2 * 3073, false);
    assert_null(dc_cifar10_load(2, both));
    assert_contains(dc_last_error(), "b2.bin: record 1 has label 10, expected 0..9");
    assert_null(dc_cifar10_parse(rec, 2 * 3073, "mem.bin"));
    assert_contains(dc_last_error(), "mem.bin: record 1 has label 10");
    /* missing */
    snprintf(p2, sizeof p2, "%s/nope.bin", tmp_root);
    assert_null(dc_cifar10_load(2, both));
    assert_int_equal(dc_last_status(), DC_ERR_IO);
    assert_contains(dc_last_error(), "nope.bin");
    free(rec);
}

/* ---------------------------------------------------------------------------------------
 * normalization, batches, augmentation
 * ------------------------------------------------------------------------------------- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void test_normalize_matches_torchvision(void **state)
{
    (void)state;
    cJSON *j = load_json("data/normalize.json");
    const char *names[] = {"mnist", "fashion-mnist", "cifar10"};
    for (int d = 0; d < 3; d++) {
        float lut[768];
        dc_normalize_lut((dc_dataset_id)d, lut);
        cJSON *chans = cJSON_GetObjectItem(j, names[d]);
        assert_non_null(chans);
        int c = 0;
        for (cJSON *ch = chans->child; ch; ch = ch->next, c++) {
            int p = 0;
            for (cJSON *v = ch->child; v; v = v->next, p++)
                if (f32_bits(lut[c * 256 + p]) != (uint32_t)v->valuedouble)
                    fail_msg("%s channel %d pixel %d: deepc %.9g, torchvision bits 0x%08x", names[d], c, p,
                             lut[c * 256 + p], (uint32_t)v->valuedouble);
            assert_int_equal(p, 256);
        }
        assert_int_equal(c, dc_dataset_info_of((dc_dataset_id)d)->channels);
    }
    cJSON_Delete(j);
}

static void test_batch(void **state)
{
    (void)state;
    /* 6 synthetic MNIST images */
    size_t si, sl;
    uint8_t *im = make_idx_images(2051, 6, 28, 28, 6, &si);
    uint8_t *lb = make_idx_labels(2049, 6, 6, 255, &sl);
    dc_dataset *ds = TL_CHECK(dc_idx_parse(DC_DATASET_MNIST, im, si, "i", lb, sl, "l"));
    float lut[768];
    dc_normalize_lut(DC_DATASET_MNIST, lut);
    const int64_t idx[] = {5, 0, 3};
    float x[3 * 784];
    int64_t y[3];
    TL_OK(dc_dataset_batch(ds, idx, 3, NULL, NULL, x, y));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(y[i], ds->labels[idx[i]]);
        for (int p = 0; p < 784; p++) assert_true(x[i * 784 + p] == lut[ds->images[idx[i] * 784 + p]]);
    }
    /* the same through the raw-image path */
    float x2[784];
    TL_OK(dc_normalize_images(DC_DATASET_MNIST, ds->images + 5 * 784, 1, x2));
    assert_memory_equal(x2, x, sizeof x2);
    /* augmentation "auto" is off for MNIST */
    dc_augment aug = dc_augment_auto(DC_DATASET_MNIST);
    assert_false(aug.enabled);
    /* padding wider than the image is legal (mostly zeros), absurd padding is not */
    dc_augment wide = {true, 40, true};
    dc_rng rng;
    dc_rng_seed(&rng, 1);
    for (int rep = 0; rep < 20; rep++) TL_OK(dc_dataset_batch(ds, idx, 3, &wide, &rng, x, y));
    wide.crop_padding = 5000;
    assert_int_equal(dc_dataset_batch(ds, idx, 3, &wide, &rng, x, y), DC_ERR_ARG);
    /* out-of-range index */
    const int64_t bad[] = {0, 6};
    assert_int_equal(dc_dataset_batch(ds, bad, 2, NULL, NULL, x, y), DC_ERR_ARG);
    assert_contains(dc_last_error(), "index 6 (batch position 1) is outside the 6 images of MNIST");
    assert_int_equal(dc_dataset_batch(NULL, bad, 2, NULL, NULL, x, y), DC_ERR_ARG);
    dc_dataset_free(ds);
    free(im);
    free(lb);
}

/* the synthetic CIFAR images of tools/fixtures_metrics.py */
static uint8_t synth_pixel(int i, int c, int y, int x) { return (uint8_t)((i * 37 + c * 61 + y * 7 + x * 3 + (x * y) % 11) % 256); }

static void test_augment_matches_torchvision(void **state)
{
    (void)state;
    uint8_t *rec = malloc(4 * 3073);
    for (int i = 0; i < 4; i++) {
        rec[i * 3073] = (uint8_t)i;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) rec[i * 3073 + 1 + c * 1024 + y * 32 + x] = synth_pixel(i, c, y, x);
    }
    dc_dataset *ds = TL_CHECK(dc_cifar10_parse(rec, 4 * 3073, "synthetic"));
    char path[1024];
    snprintf(path, sizeof path, "%s/data/cifar_aug.f32", tl_fixtures_dir());
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    float *expect = malloc(4 * 3072 * sizeof(float));
    assert_int_equal(fread(expect, sizeof(float), 4 * 3072, f), 4 * 3072);
    fclose(f);

    dc_augment aug = dc_augment_auto(DC_DATASET_CIFAR10);
    assert_true(aug.enabled && aug.crop_padding == 4 && aug.hflip);
    const int64_t idx[] = {0, 1, 2, 3};
    float *x = malloc(4 * 3072 * sizeof(float));
    int64_t y[4];
    dc_rng rng;
    dc_rng_seed(&rng, 7); /* torch.manual_seed(7) */
    TL_OK(dc_dataset_batch(ds, idx, 4, &aug, &rng, x, y));
    for (int i = 0; i < 4 * 3072; i++)
        if (f32_bits(x[i]) != f32_bits(expect[i]))
            fail_msg("augmented image %d, element %d: deepc %.9g, torchvision %.9g", i / 3072, i % 3072, x[i], expect[i]);
    /* thread count does not change a batch */
    int threads = omp_get_max_threads();
    float *x1 = malloc(4 * 3072 * sizeof(float));
    omp_set_num_threads(1);
    dc_rng_seed(&rng, 7);
    TL_OK(dc_dataset_batch(ds, idx, 4, &aug, &rng, x1, y));
    omp_set_num_threads(threads);
    assert_memory_equal(x1, x, 4 * 3072 * sizeof(float));
    /* a different seed gives a different batch; no augmentation gives the plain images */
    dc_rng_seed(&rng, 8);
    TL_OK(dc_dataset_batch(ds, idx, 4, &aug, &rng, x1, y));
    assert_memory_not_equal(x1, x, 4 * 3072 * sizeof(float));
    dc_augment none = dc_augment_none();
    TL_OK(dc_dataset_batch(ds, idx, 4, &none, &rng, x1, y));
    float lut[768];
    dc_normalize_lut(DC_DATASET_CIFAR10, lut);
    for (int i = 0; i < 4 * 3072; i++) assert_true(x1[i] == lut[(i % 3072) / 1024 * 256 + ds->images[i]]);
    free(x);
    free(x1);
    free(expect);

    /* many crops against a naive reference with the same draws: every (top, left, flip) */
    enum { N = 600 };
    int64_t *many = malloc(N * sizeof *many);
    for (int i = 0; i < N; i++) many[i] = i % 4;
    float *xa = malloc((size_t)N * 3072 * sizeof(float));
    dc_rng_seed(&rng, 123);
    TL_OK(dc_dataset_batch(ds, many, N, &aug, &rng, xa, NULL));
    dc_rng ref;
    dc_rng_seed(&ref, 123);
    bool seen[9][9][2] = {{{false}}};
    for (int i = 0; i < N; i++) {
        int top = (int)(dc_rng_u32(&ref) % 9), left = (int)(dc_rng_u32(&ref) % 9);
        int flip = dc_rng_uniform_f32(&ref) < 0.5f;
        seen[top][left][flip] = true;
        for (int c = 0; c < 3; c++)
            for (int yy = 0; yy < 32; yy++)
                for (int xx = 0; xx < 32; xx++) {
                    int sy = yy + top - 4, sx = (flip ? 31 - xx : xx) + left - 4;
                    uint8_t v = (sy >= 0 && sy < 32 && sx >= 0 && sx < 32) ? synth_pixel(i % 4, c, sy, sx) : 0;
                    float got = xa[(size_t)i * 3072 + c * 1024 + yy * 32 + xx];
                    if (got != lut[c * 256 + v])
                        fail_msg("crop top %d left %d flip %d: channel %d (%d, %d) is %g, expected %g", top, left, flip, c,
                                 yy, xx, got, lut[c * 256 + v]);
                }
    }
    int combos = 0;
    for (int a = 0; a < 9; a++)
        for (int b = 0; b < 9; b++) combos += seen[a][b][0] + seen[a][b][1];
    assert_true(combos > 150); /* of 162 */
    free(xa);
    free(many);
    free(rec);
    dc_dataset_free(ds);
}

/* ---------------------------------------------------------------------------------------
 * permutations and splits
 * ------------------------------------------------------------------------------------- */

static void test_randperm_and_split(void **state)
{
    (void)state;
    cJSON *j = load_json("data/randperm.json");
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "perms"))
    {
        int64_t n = (int64_t)cJSON_GetObjectItem(c, "n")->valuedouble;
        dc_rng rng;
        dc_rng_seed(&rng, (uint64_t)cJSON_GetObjectItem(c, "seed")->valuedouble);
        int64_t *perm = malloc((size_t)n * sizeof *perm);
        TL_OK(dc_randperm(n, &rng, perm));
        int64_t i = 0;
        cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(c, "perm"))
        {
            if (perm[i] != (int64_t)v->valuedouble)
                fail_msg("randperm(%lld) element %lld: deepc %lld, torch %lld", (long long)n, (long long)i,
                         (long long)perm[i], (long long)v->valuedouble);
            i++;
        }
        assert_int_equal(i, n);
        free(perm);
    }
    /* two epochs' reshuffles from one generator */
    cJSON *cons = cJSON_GetObjectItem(j, "consecutive");
    dc_rng rng;
    dc_rng_seed(&rng, 42);
    int64_t idx[50], perm[50];
    for (int i = 0; i < 50; i++) idx[i] = i;
    TL_OK(dc_shuffle_indices(idx, 50, &rng));
    int k = 0;
    cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(cons, "first")) assert_int_equal(idx[k++], (int64_t)v->valuedouble);
    TL_OK(dc_randperm(50, &rng, perm));
    k = 0;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(cons, "second")) assert_int_equal(perm[k++], (int64_t)v->valuedouble);

    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "splits"))
    {
        int64_t n = (int64_t)cJSON_GetObjectItem(c, "n")->valuedouble;
        int64_t val = (int64_t)cJSON_GetObjectItem(c, "val_size")->valuedouble;
        uint64_t seed = (uint64_t)cJSON_GetObjectItem(c, "seed")->valuedouble;
        int64_t *tr, *va, ntr, nva;
        TL_OK(dc_split_train_val(n, val, seed, &tr, &ntr, &va, &nva));
        assert_int_equal(ntr, n - val);
        assert_int_equal(nva, val);
        k = 0;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(c, "train_head")) assert_int_equal(tr[k++], (int64_t)v->valuedouble);
        k = 0;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(c, "val_head")) assert_int_equal(va[k++], (int64_t)v->valuedouble);
        int64_t st = 0, sv = 0;
        for (int64_t i = 0; i < ntr; i++) st += i * tr[i];
        for (int64_t i = 0; i < nva; i++) sv += i * va[i];
        assert_int_equal(st, (int64_t)cJSON_GetObjectItem(c, "train_sum_weighted")->valuedouble);
        assert_int_equal(sv, (int64_t)cJSON_GetObjectItem(c, "val_sum_weighted")->valuedouble);
        /* a partition: every index once */
        uint8_t *seen = calloc((size_t)n, 1);
        for (int64_t i = 0; i < ntr; i++) seen[tr[i]]++;
        for (int64_t i = 0; i < nva; i++) seen[va[i]]++;
        for (int64_t i = 0; i < n; i++) assert_int_equal(seen[i], 1);
        free(seen);
        free(tr);
        free(va);
    }
    cJSON_Delete(j);

    int64_t *tr, *va, ntr, nva;
    assert_int_equal(dc_split_train_val(100, 100, 0, &tr, &ntr, &va, &nva), DC_ERR_ARG);
    assert_contains(dc_last_error(), "--val-size 100 must be between 0 and 99");
    TL_OK(dc_split_train_val(10, 0, 0, &tr, &ntr, &va, &nva));
    assert_int_equal(ntr, 10);
    assert_null(va);
    free(tr);
}

/* ---------------------------------------------------------------------------------------
 * image files
 * ------------------------------------------------------------------------------------- */

static void compare_image(const char *file, cJSON *exp, const char *key, int c, int w, int h, int tol)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/data/images/%s", tl_fixtures_dir(), file);
    int iw, ih, ic;
    uint8_t *px = dc_image_read(path, &iw, &ih, &ic);
    if (!px) fail_msg("%s: %s", file, dc_last_error());
    assert_int_equal(iw, 45);
    assert_int_equal(ih, 37);
    uint8_t *out = TL_CHECK(dc_image_convert(px, iw, ih, ic, c, w, h));
    cJSON *arr = cJSON_GetObjectItem(cJSON_GetObjectItem(exp, file), key);
    assert_non_null(arr);
    assert_int_equal(cJSON_GetArraySize(arr), c * w * h);
    int i = 0, worst = 0;
    cJSON *v;
    cJSON_ArrayForEach(v, arr)
    {
        int d = abs((int)out[i] - (int)v->valuedouble);
        if (d > worst) worst = d;
        i++;
    }
    if (worst > tol) fail_msg("%s %s: max difference from PIL %d > %d", file, key, worst, tol);
    free(px);
    free(out);
}

static void test_images(void **state)
{
    (void)state;
    cJSON *exp = load_json("data/images/images.json");
    /* PNG (RGBA, palette) and PGM: Pillow's exact pixels */
    compare_image("photo.png", exp, "gray28", 1, 28, 28, 0);
    compare_image("photo.png", exp, "rgb32", 3, 32, 32, 0);
    compare_image("palette.png", exp, "gray28", 1, 28, 28, 0);
    compare_image("palette.png", exp, "rgb32", 3, 32, 32, 0);
    compare_image("photo.pgm", exp, "gray28", 1, 28, 28, 0);
    compare_image("photo.pgm", exp, "rgb32", 3, 32, 32, 0);
#if defined(__has_include)
#if __has_include(<stb/stb_image.h>)
    /* JPEG: stb_image and libjpeg round their IDCTs differently */
    compare_image("photo.jpg", exp, "gray28", 1, 28, 28, 3);
    compare_image("photo.jpg", exp, "rgb32", 3, 32, 32, 4);
#endif
#endif
    /* the normalized path equals the LUT applied to PIL's pixels */
    char path[1024];
    snprintf(path, sizeof path, "%s/data/images/photo.png", tl_fixtures_dir());
    float x[784], lut[768];
    TL_OK(dc_image_load_normalized(path, DC_DATASET_MNIST, false, x));
    dc_normalize_lut(DC_DATASET_MNIST, lut);
    cJSON *g = cJSON_GetObjectItem(cJSON_GetObjectItem(exp, "photo.png"), "gray28");
    int i = 0;
    cJSON *v;
    cJSON_ArrayForEach(v, g)
    {
        assert_true(x[i] == lut[(int)v->valuedouble]);
        i++;
    }
    TL_OK(dc_image_load_normalized(path, DC_DATASET_MNIST, true, x));
    i = 0;
    cJSON_ArrayForEach(v, g)
    {
        assert_true(x[i] == lut[255 - (int)v->valuedouble]);
        i++;
    }
    cJSON_Delete(exp);

    /* an ASCII PGM with maxval 15, and errors */
    char p[512];
    snprintf(p, sizeof p, "%s/tiny.pgm", tmp_root);
    const char *pgm = "P2\n# a comment\n3 2\n15\n0 15 7\n 8 1 15\n";
    write_bytes(p, pgm, strlen(pgm), false);
    int w, h, c;
    uint8_t *px = TL_CHECK(dc_image_read(p, &w, &h, &c));
    assert_int_equal(w, 3);
    assert_int_equal(h, 2);
    assert_int_equal(c, 1);
    const uint8_t want[] = {0, 255, 119, 136, 17, 255};
    assert_memory_equal(px, want, 6);
    free(px);
    /* 3x2 → 28x28 upscaling works too (no antialias widening) */
    uint8_t *up = TL_CHECK(dc_image_convert(want, 3, 2, 1, 1, 28, 28));
    free(up);
    write_bytes(p, "P5\n3 2\n255\n\1\2", 13, false);
    assert_null(dc_image_read(p, &w, &h, &c));
    assert_contains(dc_last_error(), "truncated");
    write_bytes(p, "hello world", 11, false);
    assert_null(dc_image_read(p, &w, &h, &c));
    assert_contains(dc_last_error(), "not a PNG, JPEG or PGM/PPM image");
    /* a PNG cut short */
    char src[1024];
    snprintf(src, sizeof src, "%s/data/images/photo.png", tl_fixtures_dir());
    FILE *f = fopen(src, "rb");
    uint8_t buf[200];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_bytes(p, buf, n / 2, false);
    assert_null(dc_image_read(p, &w, &h, &c));
    assert_contains(dc_last_error(), "cannot decode PNG");
    snprintf(p, sizeof p, "%s/does-not-exist.png", tmp_root);
    assert_null(dc_image_read(p, &w, &h, &c));
    assert_int_equal(dc_last_status(), DC_ERR_IO);
    assert_contains(dc_last_error(), "does-not-exist.png");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_mnist_real),
        cmocka_unit_test(test_cifar_real),
        cmocka_unit_test(test_fashion_debian),
        cmocka_unit_test_setup_teardown(test_search_order, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_idx_errors, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_cifar_errors, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_normalize_matches_torchvision),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_augment_matches_torchvision),
        cmocka_unit_test(test_randperm_and_split),
        cmocka_unit_test_setup_teardown(test_images, setup_tmp, teardown_tmp),
    };
    return TL_RUN(tests);
}
