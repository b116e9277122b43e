/* parallel.h: OpenMP loops that cost nothing when they stay on one thread.
 *
 * `#pragma omp parallel for if (cond)` still enters libgomp when cond is false: GOMP_parallel
 * builds a one-thread team (a malloc and a free) and wakes the pool's docked threads through
 * a futex, about 0.5 us per loop on a 2-core machine. A batch-1 forward of a small network
 * runs a dozen such loops on tensors of a few thousand elements, so that overhead was a
 * fifth of LeNet-5's inference time. DC_PAR_FOR tests the condition itself and runs the
 * plain loop when the work is too small (or only one thread is allowed, or we are already
 * inside a parallel region, where a nested region would get one thread anyway).
 *
 * The loop is expanded twice, once under `omp parallel for schedule(static)` and once plain.
 * Both run every iteration with the same code, so the results do not depend on which one
 * ran; iterations must be independent (as every `parallel for` requires).
 *
 *   DC_PAR_FOR(n * c > PAR_MIN,
 *              for (int64_t i = 0; i < n; i++) { ... });
 */
#ifndef DEEPC_CPU_PARALLEL_H
#define DEEPC_CPU_PARALLEL_H

#include <stdbool.h>

#include <omp.h>

/* True when a parallel region would get more than one thread. */
static inline bool dc__par_available(void) { return !omp_in_parallel() && omp_get_max_threads() > 1; }

#define DC_PAR_FOR(cond, ...)                                    \
    do {                                                         \
        if ((cond) && dc__par_available()) {                     \
            _Pragma("omp parallel for schedule(static)")         \
            __VA_ARGS__                                          \
        } else {                                                 \
            __VA_ARGS__                                          \
        }                                                        \
    } while (0)

#endif /* DEEPC_CPU_PARALLEL_H */
