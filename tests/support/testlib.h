/* testlib.h: what every cmocka test of deepc shares: fixture loading, tolerance checks
 * against PyTorch's numbers, finite-difference gradient checks, and leak accounting.
 *
 * Fixtures are safetensors files written by tools/fixtures_*.py under tests/fixtures/ (see
 * tools/fixturelib.py). Tolerances are stated at each call; the default for F32 results is
 * TL_RTOL = 1e-5 relative to the expected tensor's scale:
 *     max |actual - expected| <= rtol * max(1e-6, max |expected|)
 */
#ifndef DEEPC_TESTLIB_H
#define DEEPC_TESTLIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "deepc/deepc.h"

#define TL_RTOL 1e-5

/* Opens tests/fixtures/<relpath>; fails the test (with the path) if it cannot. */
dc_safetensors *tl_fixture(const char *relpath);
/* A fixture tensor converted to a contiguous F32 tensor (pool-owned if a pool is active);
 * fails the test if missing. */
dc_tensor *tl_get(dc_safetensors *st, const char *name);
/* The same for integer tensors (converted to I64). */
dc_tensor *tl_get_i64(dc_safetensors *st, const char *name);
/* A metadata value parsed as a number (fails the test if missing). */
double tl_meta_num(dc_safetensors *st, const char *key);

/* Max |a - e| / max(|e|) over all elements; fails the test with `what`, both shapes and the
 * worst element when above rtol, or when shapes differ. */
void tl_assert_close(const dc_tensor *actual, const dc_tensor *expected, double rtol, const char *what);
/* Same with an absolute tolerance: max |a - e| <= atol. */
void tl_assert_close_abs(const dc_tensor *actual, const dc_tensor *expected, double atol, const char *what);
/* The measured error (for reports). */
double tl_max_rel_error(const dc_tensor *actual, const dc_tensor *expected);

/* Fails the test with dc_last_error() when t is NULL / st is not DC_OK. */
#define TL_CHECK(expr) tl_check_ptr_((expr), #expr, __FILE__, __LINE__)
#define TL_OK(expr) tl_check_status_((expr), #expr, __FILE__, __LINE__)
void *tl_check_ptr_(void *p, const char *expr, const char *file, int line);
void tl_check_status_(dc_status st, const char *expr, const char *file, int line);

/* Checks against a PyTorch fixture at TL_RTOL and remembers the largest relative error seen
 * (and what it was), which tl_report_worst prints at the end of a test program. */
void tl_check(const dc_tensor *actual, const dc_tensor *expected, const char *what);
/* t->grad against fixture tensor `name` ("grad.x", ...), through tl_check. */
void tl_check_grad(dc_tensor *t, dc_safetensors *st, const char *name, const char *what);
/* A fixture tensor as a leaf that requires grad. */
dc_tensor *tl_leaf(dc_safetensors *st, const char *name);
/* "<program>: largest relative error vs PyTorch E (what)" */
void tl_report_worst(const char *program);

/* Finite-difference gradient check. f builds a scalar (or any tensor: its sum is used) from
 * the inputs; inputs that require grad are checked. Central differences with step eps on a
 * copy of each element; passes when |analytic - numeric| <= atol + rtol * |numeric| for every
 * element. In F32 use eps ~1e-2..1e-3 and rtol ~1e-2. */
typedef dc_tensor *(*tl_fn)(dc_tensor **inputs, void *ctx);
void tl_gradcheck(const char *what, tl_fn f, int n_inputs, dc_tensor **inputs, void *ctx,
                  double eps, double atol, double rtol);

/* Runs cmocka's group and then checks that no tensor is alive (leak accounting). */
int tl_run(const char *name, const struct CMUnitTest *tests, size_t count);
#define TL_RUN(tests) tl_run(__FILE__, tests, sizeof(tests) / sizeof((tests)[0]))

/* Path helpers: fixtures dir, shared dir (../shared), the deepc CLI. */
const char *tl_fixtures_dir(void);
const char *tl_shared_dir(void);

#endif /* DEEPC_TESTLIB_H */
