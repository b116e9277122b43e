/* test_plot.c: the charts (line, bar, heat map, confusion matrix) produce valid PNG / SVG /
 * PDF files of sensible size, atomically (no temporary files left behind, nothing written
 * on failure), and refuse bad arguments with a message; and the progress display: in-place
 * redraws on a terminal, plain lines otherwise. (How the charts look was checked by eye:
 * see the report of the change that added them.) */
#include "support/testlib.h"

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deepc/data.h"
#include "deepc/plot.h"
#include "deepc/progress.h"

static char tmp_root[256];

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/deepc_test_plot_XXXXXX");
    return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    (void)state;
    nftw(tmp_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static const char *out_path(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp_root, name);
    return p;
}

/* checks the file's signature and size, and that no temporary file was left beside it */
static void check_file(const char *name, long min_size)
{
    const char *p = out_path(name);
    FILE *f = fopen(p, "rb");
    if (!f) fail_msg("%s was not written", p);
    unsigned char head[8] = {0};
    size_t n = fread(head, 1, 8, f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    if (size < min_size) fail_msg("%s: only %ld bytes", name, size);
    const char *dot = strrchr(name, '.');
    if (!strcmp(dot, ".png")) {
        static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        assert_int_equal(n, 8);
        assert_memory_equal(head, sig, 8);
    } else if (!strcmp(dot, ".svg")) {
        assert_memory_equal(head, "<?xml", 5);
    } else if (!strcmp(dot, ".pdf")) {
        assert_memory_equal(head, "%PDF", 4);
    }
    DIR *d = opendir(tmp_root);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp-")) fail_msg("temporary file left behind: %s", e->d_name);
    closedir(d);
}

static void test_lines(void **state)
{
    (void)state;
    double tr[10], va[10];
    for (int i = 0; i < 10; i++) {
        tr[i] = 0.35 * exp(-0.45 * i) + 0.02;
        va[i] = 0.12 * exp(-0.3 * i) + 0.035;
    }
    va[4] = NAN; /* a gap */
    dc_series s[] = {{"train", NULL, tr, 10}, {"validation", NULL, va, 10}};
    dc_line_chart c = {.title = "LeNet-5 on MNIST", .xlabel = "epoch", .ylabel = "loss", .series = s,
                       .nseries = 2, .integer_x = true};
    TL_OK(dc_plot_lines(out_path("loss.png"), &c));
    check_file("loss.png", 5000);
    TL_OK(dc_plot_lines(out_path("loss.svg"), &c));
    check_file("loss.svg", 2000);
    TL_OK(dc_plot_lines(out_path("loss.pdf"), &c));
    check_file("loss.pdf", 1000);
    c.log_y = true;
    TL_OK(dc_plot_lines(out_path("loss_log.png"), &c));
    check_file("loss_log.png", 5000);
    /* one epoch, explicit x, no names, no data at all */
    double x1[] = {1}, y1[] = {0.3};
    dc_series one = {NULL, x1, y1, 1};
    dc_line_chart c1 = {.title = "one point", .series = &one, .nseries = 1, .integer_x = true};
    TL_OK(dc_plot_lines(out_path("one.png"), &c1));
    check_file("one.png", 1000);
    dc_line_chart c0 = {.title = "empty"};
    TL_OK(dc_plot_lines(out_path("empty.png"), &c0));
    check_file("empty.png", 1000);
    /* overwriting an existing file works (rename over it) */
    TL_OK(dc_plot_lines(out_path("loss.png"), &c));
    check_file("loss.png", 5000);
}

static void test_bars(void **state)
{
    (void)state;
    const char *models[] = {"lenet5", "alexnet", "vgg11", "resnet18"};
    double acc[] = {99.05, 92.3, 93.41, 94.87};
    dc_bar_chart b = {.title = "Test accuracy", .ylabel = "accuracy (%)", .ngroups = 4, .group_names = models,
                      .nseries = 1, .values = acc, .value_format = "%.2f%%"};
    TL_OK(dc_plot_bars(out_path("acc.png"), &b));
    check_file("acc.png", 3000);
    TL_OK(dc_plot_bars(out_path("acc.svg"), &b));
    check_file("acc.svg", 1000);
    const dc_dataset_info *fi = dc_dataset_info_of(DC_DATASET_FASHION_MNIST);
    double f1[40];
    for (int k = 0; k < 4; k++)
        for (int g = 0; g < 10; g++) f1[k * 10 + g] = 0.7 + 0.03 * k + 0.02 * ((g * 7) % 10);
    dc_bar_chart g = {.title = "Per-class F1", .ylabel = "F1", .xlabel = "class", .ngroups = 10,
                      .group_names = fi->class_names, .nseries = 4, .series_names = models, .values = f1,
                      .y_min = 0, .y_max = 1};
    TL_OK(dc_plot_bars(out_path("f1.png"), &g));
    check_file("f1.png", 5000);
}

static void test_heatmaps(void **state)
{
    (void)state;
    int64_t conf[100];
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++) conf[i * 10 + j] = i == j ? 900 + i : (i + j) % 5;
    const dc_dataset_info *ci = dc_dataset_info_of(DC_DATASET_CIFAR10);
    TL_OK(dc_plot_confusion(out_path("confusion.png"), "Confusion matrix", 10, conf, ci->class_names));
    check_file("confusion.png", 5000);
    TL_OK(dc_plot_confusion(out_path("confusion.svg"), "Confusion matrix", 10, conf, NULL));
    check_file("confusion.svg", 2000);
    /* a row with no samples stays white, no division by zero */
    memset(conf + 30, 0, 10 * sizeof(int64_t));
    TL_OK(dc_plot_confusion(out_path("confusion0.png"), NULL, 10, conf, NULL));
    check_file("confusion0.png", 3000);

    float att[6 * 9];
    for (int i = 0; i < 6 * 9; i++) att[i] = (float)((i * 37) % 11) / 10.0f;
    const char *tok[] = {"The", "cat", "sat", "on", "the", "mat", ".", "<eos>", "<pad>"};
    dc_heatmap h = {.title = "Attention", .xlabel = "key", .ylabel = "query", .rows = 6, .cols = 9, .values = att,
                    .row_labels = tok, .col_labels = tok, .cell_format = "%.2f", .colorbar = true};
    TL_OK(dc_plot_heatmap(out_path("attention.png"), &h));
    check_file("attention.png", 3000);
    /* many cells: labels thin out, cell text is dropped */
    static float big[200 * 150];
    for (int i = 0; i < 200 * 150; i++) big[i] = sinf((float)i * 0.01f);
    dc_heatmap hb = {.title = "big", .rows = 200, .cols = 150, .values = big, .cell_format = "%.1f", .colorbar = true};
    TL_OK(dc_plot_heatmap(out_path("big.png"), &hb));
    check_file("big.png", 3000);
    /* constant matrix, explicit size */
    float flat[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    dc_heatmap hf = {.rows = 2, .cols = 2, .values = flat, .width = 300, .height = 300, .colormap = DC_CMAP_BLUES};
    TL_OK(dc_plot_heatmap(out_path("flat.png"), &hf));
    check_file("flat.png", 500);
}

static void test_errors(void **state)
{
    (void)state;
    double y[] = {1, 2};
    dc_series s = {"a", NULL, y, 2};
    dc_line_chart c = {.series = &s, .nseries = 1};
    /* a folder that does not exist: an error naming the path, no file anywhere */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/loss.png", tmp_root);
    assert_int_not_equal(dc_plot_lines(bad, &c), DC_OK);
    assert_non_null(strstr(dc_last_error(), "loss.png"));
    snprintf(bad, sizeof bad, "%s/no/such/dir/loss.svg", tmp_root);
    assert_int_not_equal(dc_plot_lines(bad, &c), DC_OK);
    assert_int_equal(dc_plot_lines(out_path("x.png"), NULL), DC_ERR_ARG);
    dc_series nodata = {"a", NULL, NULL, 3};
    dc_line_chart cn = {.series = &nodata, .nseries = 1};
    assert_int_equal(dc_plot_lines(out_path("x.png"), &cn), DC_ERR_ARG);
    dc_line_chart tiny = {.series = &s, .nseries = 1, .width = 10, .height = 10};
    assert_int_equal(dc_plot_lines(out_path("x.png"), &tiny), DC_ERR_ARG);
    dc_bar_chart b = {.ngroups = 0};
    assert_int_equal(dc_plot_bars(out_path("x.png"), &b), DC_ERR_ARG);
    dc_heatmap h = {.rows = 0};
    assert_int_equal(dc_plot_heatmap(out_path("x.png"), &h), DC_ERR_ARG);
    assert_int_equal(dc_plot_confusion(out_path("x.png"), "t", 0, NULL, NULL), DC_ERR_ARG);
    /* nothing was left in the folder: no output, no temporary file */
    DIR *d = opendir(tmp_root);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) fail_msg("unexpected file after failures: %s", e->d_name);
    closedir(d);
}

/* ---------------------------------------------------------------------------------------
 * progress display
 * ------------------------------------------------------------------------------------- */

static char *capture(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    rewind(f);
    char *s = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    return s;
}

static void test_progress(void **state)
{
    (void)state;
    /* plain, final line only */
    FILE *f = tmpfile();
    dc_progress *p = dc_progress_begin(f, DC_PROGRESS_PLAIN, "epoch 1/3", 100, false);
    for (int i = 1; i <= 100; i++) dc_progress_update(p, i, i * 64, 0.5 / i);
    dc_progress_end(p, "val_loss 0.0456");
    char *s = capture(f);
    assert_non_null(strstr(s, "epoch 1/3  100/100  loss 0.0050"));
    assert_non_null(strstr(s, "img/s"));
    assert_non_null(strstr(s, "val_loss 0.0456\n"));
    assert_null(strchr(s, '\r'));
    int lines = 0;
    for (char *c = s; *c; c++) lines += *c == '\n';
    assert_int_equal(lines, 1);
    free(s);
    fclose(f);

    /* plain with a line per 10% */
    f = tmpfile();
    p = dc_progress_begin(f, DC_PROGRESS_PLAIN, "epoch 2/3", 50, true);
    for (int i = 1; i <= 50; i++) dc_progress_update(p, i, i * 64, 0.25);
    dc_progress_end(p, NULL);
    s = capture(f);
    lines = 0;
    for (char *c = s; *c; c++) lines += *c == '\n';
    assert_int_equal(lines, 10); /* 10%..90% and the final line */
    assert_non_null(strstr(s, " 50%  25/50"));
    assert_non_null(strstr(s, "ETA"));
    free(s);
    fclose(f);

    /* terminal: in-place redraws with a bar, the last one cleared by the final line */
    f = tmpfile();
    p = dc_progress_begin(f, DC_PROGRESS_TTY, "epoch 3/3", 20, false);
    dc_progress_update(p, 1, 64, 1.0);
    dc_progress_update(p, 2, 128, 0.9); /* within 0.1 s: not redrawn */
    dc_progress_update(p, 20, 1280, 0.1);
    dc_progress_end(p, "done");
    s = capture(f);
    assert_non_null(strstr(s, "\repoch 3/3  ["));
    assert_non_null(strstr(s, "1/20  loss 1.0000"));
    assert_non_null(strstr(s, "ETA"));
    assert_null(strstr(s, "2/20"));
    assert_non_null(strstr(s, "20/20"));
    assert_non_null(strstr(s, "\r\033[Kepoch 3/3  20/20  loss 0.1000"));
    free(s);
    fclose(f);

    /* quiet and NULL are silent no-ops */
    f = tmpfile();
    p = dc_progress_begin(f, DC_PROGRESS_QUIET, "x", 10, true);
    dc_progress_update(p, 5, 5, 1);
    dc_progress_end(p, "y");
    assert_int_equal(ftell(f), 0);
    fclose(f);
    dc_progress_update(NULL, 1, 1, 1);
    dc_progress_end(NULL, NULL);

    /* AUTO: a file is not a terminal; $DEEPC_PROGRESS overrides */
    f = tmpfile();
    assert_int_equal(dc_progress_resolve(f, DC_PROGRESS_AUTO), DC_PROGRESS_PLAIN);
    setenv("DEEPC_PROGRESS", "tty", 1);
    assert_int_equal(dc_progress_resolve(f, DC_PROGRESS_AUTO), DC_PROGRESS_TTY);
    setenv("DEEPC_PROGRESS", "quiet", 1);
    assert_int_equal(dc_progress_resolve(f, DC_PROGRESS_AUTO), DC_PROGRESS_QUIET);
    unsetenv("DEEPC_PROGRESS");
    fclose(f);

    char buf[32];
    assert_string_equal(dc_format_duration(12.34, buf, sizeof buf), "12.3s");
    assert_string_equal(dc_format_duration(123, buf, sizeof buf), "2:03");
    assert_string_equal(dc_format_duration(3723, buf, sizeof buf), "1:02:03");
    assert_string_equal(dc_format_duration(NAN, buf, sizeof buf), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lines, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_bars, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_heatmaps, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_errors, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_progress),
    };
    return TL_RUN(tests);
}
