/* autograd.c: recording ops into a graph and running reverse-mode backward over it.
 *
 * Every op result that needs grad points (grad_fn) at a node holding its inputs and the
 * tensors its backward needs. backward() orders the tensors reachable from the root
 * topologically (iteratively, so deep graphs cannot overflow the stack), then walks them
 * from the root down: each node turns its output's gradient into its inputs' gradients,
 * which accumulate in input->grad. Non-leaf gradients are dropped as soon as their node has
 * run; leaf gradients persist (and accumulate across backward calls) until zero_grad. */
#include "internal.h"

#include "deepc/ops.h"

static _Thread_local bool tls_grad_disabled = false;
static uint64_t visit_generation = 0;

bool dc_set_grad_enabled(bool enabled)
{
    bool prev = !tls_grad_disabled;
    tls_grad_disabled = !enabled;
    return prev;
}

bool dc_grad_enabled(void) { return !tls_grad_disabled; }

bool dc_needs_grad(const dc_tensor *t) { return t && (t->requires_grad || t->grad_fn); }

dc_status dc_set_requires_grad(dc_tensor *t, bool requires_grad)
{
    if (!t) return dc_set_error(DC_ERR_ARG, "set_requires_grad: NULL tensor");
    if (t->grad_fn && !requires_grad)
        return dc_set_error(DC_ERR_STATE, "set_requires_grad: cannot turn grad off on a non-leaf (%s result); use detach",
                            t->grad_fn->op);
    if (requires_grad && t->dtype != DC_F32 && t->dtype != DC_F16 && t->dtype != DC_BF16)
        return dc_set_error(DC_ERR_DTYPE, "set_requires_grad: only floating tensors can require grad, got %s",
                            dc_dtype_name(t->dtype));
    t->requires_grad = requires_grad;
    return DC_OK;
}

bool dc__any_needs_grad(int n, dc_tensor *const *ts)
{
    if (tls_grad_disabled) return false;
    for (int i = 0; i < n; i++)
        if (ts[i] && dc_needs_grad(ts[i])) return true;
    return false;
}

dc_node *dc__record(dc_tensor *out, const char *op, dc_backward_fn backward, int n_inputs,
                    dc_tensor *const *inputs)
{
    if (!out || !dc__any_needs_grad(n_inputs, inputs)) return NULL;
    if (n_inputs > DC_NODE_MAX_INPUTS) {
        dc_set_error(DC_ERR_ARG, "%s: %d inputs exceed the autograd limit of %d", op, n_inputs,
                     DC_NODE_MAX_INPUTS);
        return NULL;
    }
    dc_node *node = dc__calloc(1, sizeof *node);
    if (!node) return NULL;
    node->op = op;
    node->refcount = 1;
    node->backward = backward;
    node->n_inputs = n_inputs;
    for (int i = 0; i < n_inputs; i++) node->inputs[i] = dc_tensor_retain(inputs[i]);
    if (out->grad_fn) dc__node_release(out->grad_fn);
    out->grad_fn = node;
    out->requires_grad = true;
    return node;
}

int dc__save(dc_node *node, dc_tensor *t)
{
    if (!node) return -1;
    if (node->n_saved >= DC_NODE_MAX_SAVED) {
        /* a programming error in an op: make it loud in the error slot, not a crash */
        dc_set_error(DC_ERR_STATE, "%s: more than %d saved tensors", node->op, DC_NODE_MAX_SAVED);
        return -1;
    }
    node->saved[node->n_saved] = dc_tensor_retain(t);
    return node->n_saved++;
}

bool dc_node_wants(const dc_node *node, int i)
{
    return i < node->n_inputs && node->inputs[i] && dc_needs_grad(node->inputs[i]);
}

static void node_free_saved(dc_node *node)
{
    for (int i = 0; i < node->n_saved; i++) {
        dc_tensor_release(node->saved[i]);
        node->saved[i] = NULL;
    }
    node->released = true;
}

/* After a backward that does not retain the graph, a node has no further use for its inputs:
 * dropping them lets each activation die as soon as the backward has passed it (its own
 * node has run), as PyTorch frees saved variables, instead of the whole forward pass staying
 * resident until the loss is released. n_inputs is kept: the node still says what it was. */
static void node_drop_inputs(dc_node *node)
{
    for (int i = 0; i < node->n_inputs; i++) {
        dc_tensor_release(node->inputs[i]);
        node->inputs[i] = NULL;
    }
}

void dc__node_release(dc_node *node)
{
    if (!node || --node->refcount > 0) return;
    node_free_saved(node);
    for (int i = 0; i < node->n_inputs; i++) dc_tensor_release(node->inputs[i]);
    if (node->ctx) {
        if (node->ctx_free)
            node->ctx_free(node->ctx);
        else
            free(node->ctx);
    }
    free(node);
}

/* ---------------------------------------------------------------------------------------
 * Gradient accumulation
 * ------------------------------------------------------------------------------------- */

/* t->grad holds a gradient that may be shared with another tensor (a backward can hand the
 * same tensor to two inputs); t->grad_owned says whether autograd may add into it in place. */
static dc_status accumulate(dc_tensor *t, dc_tensor *g)
{
    if (!t->grad) {
        t->grad = dc_tensor_retain(g);
        t->grad_owned = false;
        return DC_OK;
    }
    const dc_backend *be = dc_backend_of(t);
    if (!t->grad_owned || !dc_is_contiguous(t->grad)) {
        /* new exclusive buffer = old + g */
        dc_tensor *sum = dc__new(DC_F32, t->ndim, t->shape, t->storage->device);
        if (!sum) return dc_last_status();
        dc_status st = be->copy_strided(dc_data(sum), DC_F32, sum->stride, dc_data(t->grad), DC_F32,
                                        t->grad->stride, t->ndim, t->shape);
        dc_tensor_retain(sum);  /* keep beyond the backward step's pool */
        dc_tensor_release(t->grad);
        t->grad = sum;
        t->grad_owned = true;
        if (st) return st;
    }
    return dc_add_inplace_(t->grad, g);
}

/* Leaves keep an exclusive contiguous gradient so later backwards can add into it. */
static dc_status own_leaf_grad(dc_tensor *t)
{
    if (t->grad_owned && dc_is_contiguous(t->grad) && t->grad->offset == 0 &&
        t->grad->storage->nbytes == (size_t)dc_numel(t) * 4)
        return DC_OK;
    dc_tensor *copy = dc__new(DC_F32, t->ndim, t->shape, t->storage->device);
    if (!copy) return dc_last_status();
    dc_status st = dc_backend_of(t)->copy_strided(dc_data(copy), DC_F32, copy->stride,
                                                  dc_data(t->grad), DC_F32, t->grad->stride,
                                                  t->ndim, t->shape);
    dc_tensor_retain(copy);
    dc_tensor_release(t->grad);
    t->grad = copy;
    t->grad_owned = true;
    return st;
}

/* ---------------------------------------------------------------------------------------
 * backward
 * ------------------------------------------------------------------------------------- */

typedef struct tensor_list {
    dc_tensor **items;
    int64_t count, capacity;
} tensor_list;

static dc_status list_push(tensor_list *l, dc_tensor *t)
{
    if (l->count == l->capacity) {
        int64_t cap = l->capacity ? l->capacity * 2 : 64;
        dc_tensor **items = dc__realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) return dc_last_status();
        l->items = items;
        l->capacity = cap;
    }
    l->items[l->count++] = t;
    return DC_OK;
}

/* Post-order DFS over grad_fn edges without recursion. */
static dc_status topo_sort(dc_tensor *root, uint64_t gen, tensor_list *order)
{
    typedef struct frame {
        dc_tensor *t;
        int next_input;
    } frame;
    frame *stack = NULL;
    int64_t depth = 0, cap = 0;
    dc_status st = DC_OK;
#define PUSH(x)                                                                     \
    do {                                                                            \
        if (depth == cap) {                                                         \
            cap = cap ? cap * 2 : 64;                                               \
            frame *ns = dc__realloc(stack, (size_t)cap * sizeof *ns);               \
            if (!ns) {                                                              \
                st = dc_last_status();                                              \
                goto done;                                                          \
            }                                                                       \
            stack = ns;                                                             \
        }                                                                           \
        stack[depth++] = (frame){(x), 0};                                           \
        (x)->visit = gen;                                                           \
    } while (0)
    PUSH(root);
    while (depth > 0) {
        frame *f = &stack[depth - 1];
        dc_node *node = f->t->grad_fn;
        if (node && f->next_input < node->n_inputs) {
            dc_tensor *in = node->inputs[f->next_input++];
            if (in && dc_needs_grad(in) && in->visit != gen) PUSH(in);
            continue;
        }
        if ((st = list_push(order, f->t))) goto done;
        dc_tensor_retain(f->t); /* the order keeps its tensors alive while nodes drop inputs */
        depth--;
    }
#undef PUSH
done:
    free(stack);
    return st;
}

dc_status dc_backward(dc_tensor *root, const dc_tensor *grad, bool retain_graph)
{
    if (!root) {
        if (dc_last_status() == DC_OK) dc_set_error(DC_ERR_ARG, "backward: root is NULL");
        return dc_last_status();
    }
    if (!dc_needs_grad(root))
        return dc_set_error(DC_ERR_STATE, "backward: the tensor does not require grad and has no grad_fn");
    if (!grad && dc_numel(root) != 1) {
        char s[DC_SHAPE_STR_MAX];
        return dc_set_error(DC_ERR_SHAPE, "backward: grad can be implicitly created only for one-element outputs, root has shape %s",
                            dc_shape_str(root, s, sizeof s));
    }
    if (grad && dc_numel(grad) != dc_numel(root)) {
        char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
        return dc_set_error(DC_ERR_SHAPE, "backward: grad of shape %s for root of shape %s",
                            dc_shape_str(grad, a, sizeof a), dc_shape_str(root, b, sizeof b));
    }

    bool prev_mode = dc_set_grad_enabled(false);
    dc_pool_mark outer = dc_pool_push();
    tensor_list order = {0};
    dc_status st = topo_sort(root, __atomic_add_fetch(&visit_generation, 1, __ATOMIC_RELAXED), &order);
    if (st) goto done;

    /* seed */
    {
        dc_tensor *seed;
        if (grad && grad->dtype == DC_F32 && dc_same_shape(grad, root) &&
            grad->storage->device == root->storage->device) {
            /* used as it is: accumulate() only borrows it (grad_owned false), so nothing
             * ever adds into the caller's tensor; copying would cost a pass over it */
            seed = (dc_tensor *)grad;
        } else if (grad) {
            seed = dc__new(DC_F32, root->ndim, root->shape, root->storage->device);
            if (seed) st = dc_copy_(seed, grad);
        } else {
            seed = dc__new(DC_F32, root->ndim, root->shape, root->storage->device);
            if (seed) st = dc_fill_(seed, 1.0);
        }
        if (!seed) {
            st = dc_last_status();
            goto done;
        }
        if (st) goto done;
        if ((st = accumulate(root, seed))) goto done;
    }

    for (int64_t k = order.count - 1; k >= 0; k--) {
        dc_tensor *t = order.items[k];
        dc_node *node = t->grad_fn;
        if (!node) continue; /* a leaf: its gradient is final */
        if (!t->grad) continue;  /* nothing flowed here */
        if (node->released) {
            st = dc_set_error(DC_ERR_STATE, "backward: trying to backward through the graph a second time (%s); its saved tensors were freed: pass retain_graph",
                              node->op);
            goto done;
        }
        dc_pool_mark step = dc_pool_push();
        dc_tensor *grad_in[DC_NODE_MAX_INPUTS] = {0};
        st = node->backward(node, t->grad, grad_in);
        if (!st) {
            for (int i = 0; i < node->n_inputs && !st; i++) {
                dc_tensor *in = node->inputs[i];
                if (!grad_in[i] || !in || !dc_needs_grad(in)) continue;
                if (!dc_same_shape(grad_in[i], in)) {
                    char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
                    st = dc_set_error(DC_ERR_STATE, "backward of %s: gradient %s for input %d of shape %s",
                                      node->op, dc_shape_str(grad_in[i], a, sizeof a), i,
                                      dc_shape_str(in, b, sizeof b));
                    break;
                }
                st = accumulate(in, grad_in[i]);
            }
        }
        if (!t->retain_grad && t != root) {
            dc_tensor_release(t->grad);
            t->grad = NULL;
        }
        if (!retain_graph) {
            node_free_saved(node);
            node_drop_inputs(node);
            /* every consumer of t came earlier in this loop: nothing reads t again */
            if (t != root) {
                dc_tensor_release(t);
                order.items[k] = NULL;
            }
        }
        dc_pool_pop(step);
        if (st) goto done;
    }
    /* leaves: make their gradients exclusive, contiguous buffers */
    for (int64_t k = 0; k < order.count && !st; k++) {
        dc_tensor *t = order.items[k];
        if (t && !t->grad_fn && t->grad) st = own_leaf_grad(t);
    }
    if (!root->retain_grad && root->grad_fn) {
        dc_tensor_release(root->grad);
        root->grad = NULL;
    }
done:
    for (int64_t k = 0; k < order.count; k++) dc_tensor_release(order.items[k]);
    free(order.items);
    dc_pool_pop(outer);
    dc_set_grad_enabled(prev_mode);
    return st;
}

void dc_zero_grad(dc_tensor *t)
{
    if (!t) return;
    dc_tensor_release(t->grad);
    t->grad = NULL;
}

dc_tensor *dc_detach(dc_tensor *t)
{
    if (!t) return NULL;
    return dc__view(t, t->ndim, t->shape, t->stride, t->offset);
}
