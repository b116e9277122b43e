/* pool.c: per-thread autorelease pools (see the ownership rules in deepc/core.h).
 *
 * A pool is a stretch of one per-thread array of references: dc_pool_push records where the
 * stretch starts, every tensor created while it is innermost is appended, and dc_pool_pop
 * releases the stretch. One array serves all depths, so a push/pop costs nothing but a
 * bounds check, and a training step reuses the same array every time. */
#include "internal.h"

typedef struct pool_state {
    dc_tensor **items;
    int64_t count, capacity;
    int64_t *starts; /* starts[d] = index of the first item of depth d */
    int depth, depth_capacity;
} pool_state;

static _Thread_local pool_state tls_pool;

bool dc_pool_active(void) { return tls_pool.depth > 0; }

dc_pool_mark dc_pool_push(void)
{
    pool_state *p = &tls_pool;
    if (p->depth == p->depth_capacity) {
        int cap = p->depth_capacity ? p->depth_capacity * 2 : 16;
        int64_t *s = realloc(p->starts, (size_t)cap * sizeof *s);
        if (!s) {
            /* cannot track a new level: fold it into the current one */
            dc_set_error(DC_ERR_OOM, "pool_push: out of memory");
            return (dc_pool_mark){p->depth};
        }
        p->starts = s;
        p->depth_capacity = cap;
    }
    p->starts[p->depth] = p->count;
    return (dc_pool_mark){p->depth++};
}

void dc_pool_pop(dc_pool_mark mark)
{
    pool_state *p = &tls_pool;
    if (mark.depth < 0 || mark.depth >= p->depth) return;
    int64_t start = p->starts[mark.depth];
    /* release newest first: views die before their bases, results before their inputs */
    for (int64_t i = p->count - 1; i >= start; i--) dc_tensor_release(p->items[i]);
    p->count = start;
    p->depth = mark.depth;
    if (p->depth == 0) { /* thread done with pools: give the memory back */
        free(p->items);
        free(p->starts);
        *p = (pool_state){0};
    }
}

dc_tensor *dc__register(dc_tensor *t)
{
    pool_state *p = &tls_pool;
    if (!t || p->depth == 0) return t;
    if (p->count == p->capacity) {
        int64_t cap = p->capacity ? p->capacity * 2 : 256;
        dc_tensor **items = realloc(p->items, (size_t)cap * sizeof *items);
        if (!items) {
            dc_set_error(DC_ERR_OOM, "pool: out of memory registering a tensor");
            dc_tensor_release(t);
            return NULL;
        }
        p->items = items;
        p->capacity = cap;
    }
    p->items[p->count++] = t;
    return t;
}

dc_tensor *dc_autorelease(dc_tensor *t) { return dc__register(t); }

void dc__discard(dc_tensor *t)
{
    if (!dc_pool_active()) dc_tensor_release(t);
}
