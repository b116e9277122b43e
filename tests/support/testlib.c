/* testlib.c: the helpers every cmocka test of deepc shares (see testlib.h): fixture loading,
 * comparisons against PyTorch's numbers, finite-difference gradient checks and the leak check.
 *
 * How a test is written:
 *
 *     static void test_relu(void **state)
 *     {
 *         (void)state;
 *         dc_pool_mark m = dc_pool_push();   // every test body runs inside its own pool:
 *         dc_safetensors *st = tl_fixture("ops/act/relu.safetensors");
 *         dc_tensor *x = tl_get(st, "x");    // pool-owned, contiguous F32, a private copy
 *         tl_assert_close(TL_CHECK(dc_relu(x)), tl_get(st, "out"), TL_RTOL, "relu forward");
 *         dc_safetensors_close(st);
 *         dc_pool_pop(m);                    // ... so everything it made is released here
 *     }
 *     int main(void)
 *     {
 *         const struct CMUnitTest tests[] = {cmocka_unit_test(test_relu)};
 *         return TL_RUN(tests);              // runs them, then fails if any tensor leaked
 *     }
 *
 * Wrapping each body in dc_pool_push/dc_pool_pop is the test writer's job (so tests of the
 * no-pool ownership rules stay possible). A failing assertion longjmps out of the body and
 * skips its dc_pool_pop: tl_run gives every test without a teardown of its own one that
 * drops such leftover pools, so one failure does not show up as leaks in the tests after it.
 * The leak check at the end counts live dc_tensor objects (dc_live_tensors()).
 */
#include "support/testlib.h"

#include "core/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef DEEPC_FIXTURES
#error "DEEPC_FIXTURES (absolute path of tests/fixtures) must be defined by the build"
#endif
#ifndef DEEPC_SHARED
#error "DEEPC_SHARED (absolute path of the shared data folder) must be defined by the build"
#endif

/* ---------------------------------------------------------------------------------------
 * Failing with a location
 * ------------------------------------------------------------------------------------- */

/* print_error + _fail at the caller's location (cmocka's fail_msg uses its own). _fail
 * longjmps back into cmocka's runner, so this never returns. */
static _Noreturn void tl_fail_at(const char *file, int line, const char *fmt, ...) CMOCKA_PRINTF_ATTRIBUTE(3, 4);
static _Noreturn void tl_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_error("ERROR: %s\n", msg);
    _fail(file, line);
    abort(); /* not reached: _fail does not return inside a cmocka test */
}

#define TL_FAIL(...) tl_fail_at(__FILE__, __LINE__, __VA_ARGS__)

void *tl_check_ptr_(void *p, const char *expr, const char *file, int line)
{
    if (!p)
        tl_fail_at(file, line, "%s returned NULL: [%s] %s", expr, dc_status_name(dc_last_status()),
                   dc_last_error());
    return p;
}

void tl_check_status_(dc_status st, const char *expr, const char *file, int line)
{
    if (st != DC_OK)
        tl_fail_at(file, line, "%s failed (%s): %s", expr, dc_status_name(st), dc_last_error());
}

/* ---------------------------------------------------------------------------------------
 * Paths and fixtures
 * ------------------------------------------------------------------------------------- */

const char *tl_fixtures_dir(void) { return DEEPC_FIXTURES; }
const char *tl_shared_dir(void) { return DEEPC_SHARED; }

/* Accepts "ops/conv/basic.safetensors" and "ops/conv/basic" (the name save_case was given). */
dc_safetensors *tl_fixture(const char *relpath)
{
    char path[4096];
    if (!relpath) TL_FAIL("tl_fixture: NULL path");
    snprintf(path, sizeof path, "%s/%s", DEEPC_FIXTURES, relpath);
    size_t len = strlen(relpath);
    const char *ext = ".safetensors";
    if ((len < strlen(ext) || strcmp(relpath + len - strlen(ext), ext) != 0) && access(path, F_OK) != 0)
        snprintf(path, sizeof path, "%s/%s%s", DEEPC_FIXTURES, relpath, ext);
    dc_safetensors *st = dc_safetensors_open(path);
    if (!st)
        TL_FAIL("cannot load fixture %s: %s (regenerate it with the tools/fixtures_*.py script that writes it)",
                path, dc_last_error());
    return st;
}

static dc_tensor *get_as(dc_safetensors *st, const char *name, dc_dtype dtype)
{
    if (!st) TL_FAIL("tl_get('%s'): no fixture", name ? name : "(null)");
    dc_tensor *raw = dc_safetensors_get(st, name);
    if (!raw) TL_FAIL("fixture %s: %s", dc_safetensors_path(st), dc_last_error());
    /* always a private contiguous copy: tests may modify it (gradcheck perturbs it in place)
     * without touching the mapping, and it does not depend on the fixture staying open */
    dc_tensor *out = dc_empty(dtype, raw->ndim, raw->shape);
    if (!out || dc_copy_(out, raw) != DC_OK) {
        if (!dc_pool_active()) {
            dc_tensor_release(raw);
            dc_tensor_release(out);
        }
        TL_FAIL("fixture %s: converting '%s' to %s: %s", dc_safetensors_path(st), name, dc_dtype_name(dtype),
                dc_last_error());
    }
    if (!dc_pool_active()) dc_tensor_release(raw);
    return out;
}

dc_tensor *tl_get(dc_safetensors *st, const char *name) { return get_as(st, name, DC_F32); }

dc_tensor *tl_get_i64(dc_safetensors *st, const char *name) { return get_as(st, name, DC_I64); }

double tl_meta_num(dc_safetensors *st, const char *key)
{
    if (!st) TL_FAIL("tl_meta_num('%s'): no fixture", key ? key : "(null)");
    const char *v = dc_safetensors_metadata(st, key);
    if (!v) TL_FAIL("fixture %s: no metadata '%s'", dc_safetensors_path(st), key);
    /* Python writes str(True) / str(False) for booleans */
    if (strcmp(v, "True") == 0 || strcmp(v, "true") == 0) return 1.0;
    if (strcmp(v, "False") == 0 || strcmp(v, "false") == 0) return 0.0;
    if (strcmp(v, "None") == 0) TL_FAIL("fixture %s: metadata '%s' is None", dc_safetensors_path(st), key);
    char *end = NULL;
    double d = strtod(v, &end);
    while (end && (*end == ' ' || *end == '\n')) end++;
    if (end == v || (end && *end))
        TL_FAIL("fixture %s: metadata '%s' = \"%s\" is not a number", dc_safetensors_path(st), key, v);
    return d;
}

/* ---------------------------------------------------------------------------------------
 * Comparisons
 * ------------------------------------------------------------------------------------- */

typedef struct cmp_result {
    bool shape_ok;
    double max_diff;  /* max |a - e| (INFINITY when a NaN/inf mismatch occurs) */
    double max_abs_e; /* max |e| over finite elements */
    int64_t worst;    /* flat index of the worst element, -1 if none */
    float worst_a, worst_e;
} cmp_result;

static void flat_to_index(const dc_tensor *t, int64_t flat, char *buf, size_t size)
{
    int64_t idx[DC_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t s = t->shape[d] > 0 ? t->shape[d] : 1;
        idx[d] = flat % s;
        flat /= s;
    }
    dc__shape_fmt(t->ndim, idx, buf, size);
}

/* Compares element by element in F32 (logical row-major order, any strides and dtypes). Equal
 * non-finite values (NaN vs NaN, +inf vs +inf) count as matching; any other non-finite
 * mismatch makes max_diff infinite. */
static bool compare(const dc_tensor *a, const dc_tensor *e, cmp_result *r)
{
    *r = (cmp_result){.shape_ok = dc_same_shape(a, e), .worst = -1};
    if (!r->shape_ok) return true;
    int64_t n = dc_numel(a);
    float *fa = malloc((size_t)(n ? n : 1) * sizeof *fa), *fe = malloc((size_t)(n ? n : 1) * sizeof *fe);
    if (!fa || !fe || dc_copy_to_f32(a, fa, n) || dc_copy_to_f32(e, fe, n)) {
        free(fa);
        free(fe);
        return false;
    }
    for (int64_t i = 0; i < n; i++) {
        double x = fa[i], y = fe[i], d;
        if (isfinite(y)) r->max_abs_e = fmax(r->max_abs_e, fabs(y));
        if (isnan(x) && isnan(y))
            d = 0;
        else if (!isfinite(x) || !isfinite(y))
            d = (x == y) ? 0 : INFINITY;
        else
            d = fabs(x - y);
        if (d > r->max_diff || (r->worst < 0 && d == r->max_diff)) {
            r->max_diff = d;
            r->worst = i;
            r->worst_a = fa[i];
            r->worst_e = fe[i];
        }
    }
    free(fa);
    free(fe);
    return true;
}

static double rel_of(const cmp_result *r) { return r->max_diff / fmax(1e-6, r->max_abs_e); }

double tl_max_rel_error(const dc_tensor *actual, const dc_tensor *expected)
{
    cmp_result r;
    if (!actual || !expected || !compare(actual, expected, &r) || !r.shape_ok) return INFINITY;
    return rel_of(&r);
}

static void assert_close(const dc_tensor *actual, const dc_tensor *expected, double tol, bool relative,
                         const char *what)
{
    if (!what) what = "tensor";
    if (!actual) TL_FAIL("%s: actual is NULL: [%s] %s", what, dc_status_name(dc_last_status()), dc_last_error());
    if (!expected) TL_FAIL("%s: expected is NULL: %s", what, dc_last_error());
    char sa[DC_SHAPE_STR_MAX], se[DC_SHAPE_STR_MAX], si[DC_SHAPE_STR_MAX];
    cmp_result r;
    if (!compare(actual, expected, &r)) TL_FAIL("%s: cannot compare: %s", what, dc_last_error());
    if (!r.shape_ok)
        TL_FAIL("%s: shape %s, expected %s", what, dc_shape_str(actual, sa, sizeof sa),
                dc_shape_str(expected, se, sizeof se));
    double err = relative ? rel_of(&r) : r.max_diff;
    if (!(err <= tol)) {
        flat_to_index(expected, r.worst < 0 ? 0 : r.worst, si, sizeof si);
        TL_FAIL("%s: %s error %.3g > %.3g (shape %s; worst at %s: actual %.9g, expected %.9g; "
                "max |expected| = %.6g)", what, relative ? "relative" : "absolute", err, tol,
                dc_shape_str(expected, se, sizeof se), si, (double)r.worst_a, (double)r.worst_e,
                r.max_abs_e);
    }
}

void tl_assert_close(const dc_tensor *actual, const dc_tensor *expected, double rtol, const char *what)
{
    assert_close(actual, expected, rtol, true, what);
}

void tl_assert_close_abs(const dc_tensor *actual, const dc_tensor *expected, double atol, const char *what)
{
    assert_close(actual, expected, atol, false, what);
}

/* ---------------------------------------------------------------------------------------
 * Finite-difference gradient check
 * ------------------------------------------------------------------------------------- */

/* Sum of all elements of f(inputs) in double, with grad mode off; fails the test if f fails. */
static double eval_sum(const char *what, tl_fn f, dc_tensor **inputs, void *ctx)
{
    dc_pool_mark m = dc_pool_push();
    bool prev = dc_set_grad_enabled(false);
    dc_tensor *out = f(inputs, ctx);
    dc_set_grad_enabled(prev);
    if (!out) {
        dc_pool_pop(m);
        TL_FAIL("%s: gradcheck: f failed: %s", what, dc_last_error());
    }
    int64_t n = dc_numel(out);
    float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v || dc_copy_to_f32(out, v, n)) {
        free(v);
        dc_pool_pop(m);
        TL_FAIL("%s: gradcheck: cannot read f's output: %s", what, dc_last_error());
    }
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    free(v);
    dc_pool_pop(m);
    return s;
}

void tl_gradcheck(const char *what, tl_fn f, int n_inputs, dc_tensor **inputs, void *ctx, double eps,
                  double atol, double rtol)
{
    if (!what) what = "gradcheck";
    for (int i = 0; i < n_inputs; i++) {
        dc_tensor *x = inputs[i];
        if (!x || !x->requires_grad) continue;
        if (x->dtype != DC_F32 || !dc_is_contiguous(x) || x->grad_fn)
            TL_FAIL("%s: gradcheck input %d must be a contiguous F32 leaf (it is perturbed in place)", what, i);
        dc_zero_grad(x);
    }

    /* analytic: backward of sum(f) = backward of f with a gradient of ones */
    float **analytic = calloc((size_t)(n_inputs > 0 ? n_inputs : 1), sizeof *analytic);
    if (!analytic) TL_FAIL("%s: out of memory", what);
    {
        dc_pool_mark m = dc_pool_push();
        bool prev = dc_set_grad_enabled(true);
        dc_tensor *out = f(inputs, ctx);
        dc_set_grad_enabled(prev);
        if (!out) {
            dc_pool_pop(m);
            free(analytic);
            TL_FAIL("%s: gradcheck: f failed: %s", what, dc_last_error());
        }
        if (!dc_needs_grad(out)) {
            dc_pool_pop(m);
            free(analytic);
            TL_FAIL("%s: gradcheck: f's output does not require grad (no input requires grad, or the op "
                    "does not record autograd)", what);
        }
        dc_tensor *ones = dc_ones(DC_F32, out->ndim, out->shape);
        dc_status st = ones ? dc_backward(out, ones, false) : dc_last_status();
        dc_pool_pop(m);
        if (st) {
            free(analytic);
            TL_FAIL("%s: gradcheck: backward failed: %s", what, dc_last_error());
        }
        for (int i = 0; i < n_inputs; i++) {
            dc_tensor *x = inputs[i];
            if (!x || !x->requires_grad) continue;
            int64_t n = dc_numel(x);
            analytic[i] = calloc((size_t)(n ? n : 1), sizeof(float));
            if (!analytic[i]) break;
            if (x->grad) { /* no gradient at all means zero (the input did not reach the output) */
                if (!dc_same_shape(x->grad, x)) {
                    char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
                    dc_shape_str(x->grad, a, sizeof a);
                    dc_shape_str(x, b, sizeof b);
                    for (int j = 0; j <= i; j++) free(analytic[j]);
                    free(analytic);
                    TL_FAIL("%s: gradcheck: grad of input %d has shape %s, input is %s", what, i, a, b);
                }
                dc_copy_to_f32(x->grad, analytic[i], n);
            }
            dc_zero_grad(x);
        }
    }

    /* numeric: central differences on each element, using the step actually representable in
     * F32 ((x+eps) - (x-eps) after rounding) rather than the nominal 2*eps */
    char failure[1024] = "";
    double worst_excess = 0;
    for (int i = 0; i < n_inputs && !failure[0]; i++) {
        dc_tensor *x = inputs[i];
        if (!x || !x->requires_grad) continue;
        if (!analytic[i]) {
            snprintf(failure, sizeof failure, "%s: out of memory", what);
            break;
        }
        float *data = dc_data_f32(x);
        int64_t n = dc_numel(x);
        for (int64_t j = 0; j < n; j++) {
            float orig = data[j];
            float hp = (float)(orig + eps), hm = (float)(orig - eps);
            data[j] = hp;
            double fp = eval_sum(what, f, inputs, ctx);
            data[j] = hm;
            double fm = eval_sum(what, f, inputs, ctx);
            data[j] = orig;
            double num = (fp - fm) / ((double)hp - (double)hm);
            double ana = analytic[i][j];
            double excess = fabs(ana - num) - (atol + rtol * fabs(num));
            if (!(excess <= 0) && (failure[0] == '\0' || excess > worst_excess || isnan(excess))) {
                char idx[DC_SHAPE_STR_MAX];
                flat_to_index(x, j, idx, sizeof idx);
                worst_excess = excess;
                snprintf(failure, sizeof failure,
                         "%s: gradcheck input %d element %s: analytic %.7g, numeric %.7g (|diff| %.3g > "
                         "atol %.3g + rtol %.3g * |numeric|)", what, i, idx, ana, num, fabs(ana - num), atol,
                         rtol);
            }
        }
    }
    for (int i = 0; i < n_inputs; i++) free(analytic[i]);
    free(analytic);
    if (failure[0]) TL_FAIL("%s", failure);
}

/* ---------------------------------------------------------------------------------------
 * Running a group with leak accounting
 * ------------------------------------------------------------------------------------- */

/* Drops pools a failed test left behind (its longjmp skipped dc_pool_pop). */
static int tl_teardown(void **state)
{
    (void)state;
    if (dc_pool_active()) {
        fprintf(stderr, "testlib: a test left an autorelease pool active (failed, or no dc_pool_pop); "
                        "releasing it\n");
        dc_pool_pop((dc_pool_mark){0});
    }
    dc_set_grad_enabled(true);
    return 0;
}

int tl_run(const char *name, const struct CMUnitTest *tests, size_t count)
{
    struct CMUnitTest *copy = malloc((count ? count : 1) * sizeof *copy);
    if (!copy) {
        fprintf(stderr, "testlib: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < count; i++) {
        copy[i] = tests[i];
        if (!copy[i].teardown_func) copy[i].teardown_func = tl_teardown;
    }
    /* test names are relative to the repo root in messages; CTest runs from there */
    const char *base = strrchr(name, '/');
    int failed = _cmocka_run_group_tests(base ? base + 1 : name, copy, count, NULL, NULL);
    free(copy);
    if (dc_pool_active()) dc_pool_pop((dc_pool_mark){0});
    int64_t live = dc_live_tensors();
    if (live != 0) {
        fprintf(stdout, "\n*** LEAK: %lld tensor(s) still alive after %s%s ***\n", (long long)live, name,
                failed ? " (a failed test may have skipped its cleanup)" : "");
        fprintf(stderr, "\n*** LEAK: %lld tensor(s) still alive after %s ***\n", (long long)live, name);
        fflush(stdout);
        return failed ? failed : 1;
    }
    return failed;
}

/* ---------------------------------------------------------------------------------------
 * Fixture comparisons that keep the largest error for the summary line
 * ------------------------------------------------------------------------------------- */

static double tl_worst_err = 0;
static char tl_worst_what[160] = "";

void tl_check(const dc_tensor *actual, const dc_tensor *expected, const char *what)
{
    double e = tl_max_rel_error(actual, expected);
    if (e > tl_worst_err || !tl_worst_what[0]) {
        tl_worst_err = e;
        snprintf(tl_worst_what, sizeof tl_worst_what, "%s", what);
    }
    tl_assert_close(actual, expected, TL_RTOL, what);
}

void tl_check_grad(dc_tensor *t, dc_safetensors *st, const char *name, const char *what)
{
    char buf[160];
    snprintf(buf, sizeof buf, "%s %s", what, name);
    if (!t->grad) fail_msg("%s: no gradient", buf);
    tl_check(t->grad, tl_get(st, name), buf);
}

dc_tensor *tl_leaf(dc_safetensors *st, const char *name)
{
    dc_tensor *t = tl_get(st, name);
    TL_OK(dc_set_requires_grad(t, true));
    return t;
}

void tl_report_worst(const char *program)
{
    printf("%s: largest relative error vs PyTorch %.3g (%s)\n", program, tl_worst_err, tl_worst_what);
}
