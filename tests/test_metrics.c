/* test_metrics.c: accuracy, per-class precision / recall / F1 / support, macro averages and
 * the confusion matrix against scikit-learn's definitions (tests/fixtures/data/metrics.json,
 * from tools/fixtures_metrics.py), including classes that never occur (zero_division = 0),
 * batch-by-batch accumulation, argmax and the metrics.json "test" object. */
#include "support/testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "deepc/data.h"

static cJSON *load_json(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tl_fixtures_dir(), rel);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    cJSON *j = cJSON_Parse(s);
    free(s);
    if (!j) fail_msg("cannot parse %s", path);
    return j;
}

static int64_t *int_array(cJSON *arr, int *n)
{
    *n = cJSON_GetArraySize(arr);
    int64_t *v = malloc(sizeof(int64_t) * (size_t)(*n > 0 ? *n : 1));
    int i = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, arr) v[i++] = (int64_t)e->valuedouble;
    return v;
}

static double num(cJSON *o, const char *key)
{
    cJSON *v = cJSON_GetObjectItem(o, key);
    if (!v) fail_msg("fixture misses %s", key);
    return v->valuedouble;
}

static void check_close(double got, double want, const char *what, const char *name)
{
    if (fabs(got - want) > 1e-12) fail_msg("%s: %s = %.15g, sklearn %.15g", name, what, got, want);
}

static void check_case(const dc_metrics *m, cJSON *exp, const char *name)
{
    check_close(m->accuracy, num(exp, "accuracy"), "accuracy", name);
    check_close(m->precision, num(exp, "precision"), "macro precision", name);
    check_close(m->recall, num(exp, "recall"), "macro recall", name);
    check_close(m->f1, num(exp, "f1"), "macro f1", name);
    int c = 0;
    cJSON *pc;
    cJSON_ArrayForEach(pc, cJSON_GetObjectItem(exp, "per_class"))
    {
        char what[64];
        snprintf(what, sizeof what, "class %d precision", c);
        check_close(m->per_class[c].precision, num(pc, "precision"), what, name);
        snprintf(what, sizeof what, "class %d recall", c);
        check_close(m->per_class[c].recall, num(pc, "recall"), what, name);
        snprintf(what, sizeof what, "class %d f1", c);
        check_close(m->per_class[c].f1, num(pc, "f1"), what, name);
        assert_int_equal(m->per_class[c].support, (int64_t)num(pc, "support"));
        c++;
    }
    assert_int_equal(c, m->num_classes);
    int r = 0;
    cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(exp, "confusion"))
    {
        int k = 0;
        cJSON *v;
        cJSON_ArrayForEach(v, row)
        {
            if (m->confusion[r][k] != (int64_t)v->valuedouble)
                fail_msg("%s: confusion[%d][%d] = %lld, sklearn %lld", name, r, k, (long long)m->confusion[r][k],
                         (long long)v->valuedouble);
            k++;
        }
        r++;
    }
    assert_int_equal(r, m->num_classes);
}

static void test_against_sklearn(void **state)
{
    (void)state;
    cJSON *j = load_json("data/metrics.json");
    int ncases = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "cases"))
    {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        int k = (int)num(c, "num_classes"), nt, np;
        int64_t *yt = int_array(cJSON_GetObjectItem(c, "y_true"), &nt);
        int64_t *yp = int_array(cJSON_GetObjectItem(c, "y_pred"), &np);
        assert_int_equal(nt, np);
        cJSON *exp = cJSON_GetObjectItem(c, "expected");

        dc_metrics m;
        TL_OK(dc_metrics_compute(&m, k, yt, yp, nt));
        assert_int_equal(m.total, nt);
        check_case(&m, exp, name);

        /* the same, fed in uneven batches (evaluation accumulates batch by batch) */
        dc_metrics b;
        TL_OK(dc_metrics_init(&b, k));
        for (int at = 0, step = 1; at < nt; at += step, step = step * 2 + 1) {
            int take = nt - at < step ? nt - at : step;
            TL_OK(dc_metrics_update(&b, yt + at, yp + at, take));
        }
        dc_metrics_finalize(&b);
        check_case(&b, exp, name);
        free(yt);
        free(yp);
        ncases++;
    }
    assert_true(ncases >= 6);
    cJSON_Delete(j);
}

static void test_edge_cases(void **state)
{
    (void)state;
    dc_metrics m;
    /* nothing at all: zeros, no division by zero */
    TL_OK(dc_metrics_compute(&m, 10, NULL, NULL, 0));
    assert_true(m.accuracy == 0 && m.precision == 0 && m.f1 == 0);
    /* bad arguments */
    assert_int_equal(dc_metrics_init(&m, 0), DC_ERR_ARG);
    assert_int_equal(dc_metrics_init(&m, DC_MAX_CLASSES + 1), DC_ERR_ARG);
    TL_OK(dc_metrics_init(&m, 10));
    const int64_t yt[] = {1, 10}, yp[] = {1, 2};
    assert_int_equal(dc_metrics_update(&m, yt, yp, 2), DC_ERR_ARG);
    assert_non_null(strstr(dc_last_error(), "pair 1 (true 10, predicted 2)"));
    assert_int_equal(m.total, 0); /* a rejected batch adds nothing */
    const int64_t neg[] = {-1};
    assert_int_equal(dc_metrics_update(&m, yt, neg, 1), DC_ERR_ARG);
}

static void test_argmax(void **state)
{
    (void)state;
    const float logits[] = {0.1f, 2.0f, -1.0f, /**/ 3.0f, 3.0f, 1.0f, /**/ -5.0f, -4.0f, -4.5f};
    int64_t out[3];
    dc_argmax_rows(logits, 3, 3, out);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 0); /* ties: the first, as torch.argmax */
    assert_int_equal(out[2], 1);
}

static void test_json(void **state)
{
    (void)state;
    const int64_t yt[] = {0, 0, 1, 2, 2, 2}, yp[] = {0, 1, 1, 2, 2, 0};
    dc_metrics m;
    TL_OK(dc_metrics_compute(&m, 3, yt, yp, 6));
    const char *names[] = {"cat", "dog", "bird"};
    char *s = dc_metrics_json(&m, 0.25, names);
    assert_non_null(s);
    cJSON *j = cJSON_Parse(s);
    free(s);
    assert_non_null(j);
    assert_true(fabs(cJSON_GetObjectItem(j, "loss")->valuedouble - 0.25) < 1e-12);
    assert_true(fabs(cJSON_GetObjectItem(j, "accuracy")->valuedouble - 4.0 / 6.0) < 1e-12);
    assert_true(fabs(cJSON_GetObjectItem(j, "f1")->valuedouble - m.f1) < 1e-12);
    cJSON *pcs = cJSON_GetObjectItem(j, "per_class");
    assert_int_equal(cJSON_GetArraySize(pcs), 3);
    cJSON *bird = cJSON_GetArrayItem(pcs, 2);
    assert_string_equal(cJSON_GetObjectItem(bird, "class")->valuestring, "bird");
    assert_int_equal((int)cJSON_GetObjectItem(bird, "support")->valuedouble, 3);
    assert_true(fabs(cJSON_GetObjectItem(bird, "recall")->valuedouble - 2.0 / 3.0) < 1e-12);
    cJSON *conf = cJSON_GetObjectItem(j, "confusion");
    assert_int_equal((int)cJSON_GetArrayItem(cJSON_GetArrayItem(conf, 2), 0)->valuedouble, 1);
    assert_int_equal((int)cJSON_GetArrayItem(cJSON_GetArrayItem(conf, 0), 1)->valuedouble, 1);
    cJSON_Delete(j);
    /* no class names: numbers; a NaN loss: null */
    s = dc_metrics_json(&m, NAN, NULL);
    j = cJSON_Parse(s);
    free(s);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "loss")));
    assert_int_equal((int)cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "per_class"), 1), "class")->valuedouble, 1);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_sklearn),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_argmax),
        cmocka_unit_test(test_json),
    };
    return TL_RUN(tests);
}
