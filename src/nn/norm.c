/* norm.c: normalisation modules of deepc/nn.h: BatchNorm1d/2d, LayerNorm, GroupNorm, with
 * PyTorch's parameter and buffer names (weight, bias, running_mean, running_var,
 * num_batches_tracked) and defaults.
 *
 * BatchNorm follows torch.nn.modules.batchnorm._BatchNorm.forward:
 *   - training with tracked stats: num_batches_tracked += 1, and the running statistics are
 *     updated with factor = momentum, or 1/num_batches_tracked when momentum is None
 *     (a cumulative moving average);
 *   - batch statistics are used when training, or when no running statistics are kept;
 *   - eval with tracked stats uses the running statistics.
 */
#include <math.h>

#include "core/internal.h"
#include "deepc/nn.h"

typedef struct bn_mod {
    dc_module base;
    int dims; /* 1 or 2 */
    int64_t num_features;
    float eps, momentum; /* momentum < 0: None */
    bool affine, track;
    dc_tensor *weight, *bias, *running_mean, *running_var, *num_batches_tracked;
} bn_mod;

static dc_tensor *bn_forward(dc_module *m, dc_tensor *x)
{
    bn_mod *b = (bn_mod *)m;
    bool shape_ok = b->dims == 1 ? (x->ndim == 2 || x->ndim == 3) : x->ndim == 4;
    if (!shape_ok || x->shape[1] != b->num_features) {
        char s[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "BatchNorm%dd(%lld): expected input %s with %lld channels, got %s",
                     b->dims, (long long)b->num_features,
                     b->dims == 1 ? "[N, C] or [N, C, L]" : "[N, C, H, W]",
                     (long long)b->num_features, dc_shape_str(x, s, sizeof s));
        return NULL;
    }
    float factor = b->momentum < 0 ? 0.0f : b->momentum;
    if (m->training && b->track) {
        int64_t *nbt = (int64_t *)dc_data(b->num_batches_tracked);
        *nbt += 1;
        if (b->momentum < 0) factor = (float)(1.0 / (double)*nbt);
    }
    bool use_batch_stats = m->training || !b->track;
    /* running stats are passed when they are to be updated (training) or used (eval) */
    return dc_batch_norm(x, b->track ? b->running_mean : NULL, b->track ? b->running_var : NULL,
                         b->weight, b->bias, use_batch_stats, factor, b->eps);
}

static dc_status bn_reset(dc_module *m, dc_rng *rng)
{
    DC_UNUSED(rng);
    bn_mod *b = (bn_mod *)m;
    dc_status st = DC_OK;
    if (b->track) {
        if (!st) st = dc_fill_(b->running_mean, 0);
        if (!st) st = dc_fill_(b->running_var, 1);
        if (!st) st = dc_fill_(b->num_batches_tracked, 0);
    }
    if (b->affine) {
        if (!st) st = dc_fill_(b->weight, 1);
        if (!st) st = dc_fill_(b->bias, 0);
    }
    return st;
}

static const dc_module_vtable bn1_vt = {"BatchNorm1d", bn_forward, bn_reset, NULL};
static const dc_module_vtable bn2_vt = {"BatchNorm2d", bn_forward, bn_reset, NULL};

/* Registers t on m as a parameter or persistent buffer (callers build t in a private pool). */
static dc_tensor *reg(dc_module *m, const char *name, bool param, dc_tensor *t)
{
    return param ? dc_module_add_parameter(m, name, t) : dc_module_add_buffer(m, name, t, true);
}

static dc_module *bn_new(int dims, int64_t c, float eps, float momentum, bool affine, bool track)
{
    if (c <= 0 || !(eps >= 0) || !(momentum >= 0 || momentum == DC_BN_MOMENTUM_NONE)) {
        dc_set_error(DC_ERR_ARG, "batch_norm%dd_new: bad arguments (num_features %lld, eps %g, momentum %g)",
                     dims, (long long)c, eps, momentum);
        return NULL;
    }
    bn_mod *b = (bn_mod *)dc_module_new(dims == 1 ? &bn1_vt : &bn2_vt, sizeof *b);
    if (!b) return NULL;
    b->dims = dims;
    b->num_features = c;
    b->eps = eps;
    b->momentum = momentum;
    b->affine = affine;
    b->track = track;
    dc_pool_mark mark = dc_pool_push();
    /* PyTorch's registration order: weight, bias, running_mean, running_var, num_batches_tracked */
    if (affine) {
        b->weight = reg(&b->base, "weight", true, dc_ones(DC_F32, DC_SHAPE(c)));
        b->bias = reg(&b->base, "bias", true, dc_zeros(DC_F32, DC_SHAPE(c)));
    }
    if (track) {
        b->running_mean = reg(&b->base, "running_mean", false, dc_zeros(DC_F32, DC_SHAPE(c)));
        b->running_var = reg(&b->base, "running_var", false, dc_ones(DC_F32, DC_SHAPE(c)));
        b->num_batches_tracked = reg(&b->base, "num_batches_tracked", false, dc_zeros(DC_I64, 0, NULL));
    }
    dc_pool_pop(mark);
    return dc_module_finish(&b->base);
}

dc_module *dc_batch_norm1d_new(int64_t n) { return bn_new(1, n, 1e-5f, 0.1f, true, true); }
dc_module *dc_batch_norm2d_new(int64_t n) { return bn_new(2, n, 1e-5f, 0.1f, true, true); }

dc_module *dc_batch_norm1d_new_ex(int64_t n, float eps, float momentum, bool affine, bool track)
{
    return bn_new(1, n, eps, momentum, affine, track);
}

dc_module *dc_batch_norm2d_new_ex(int64_t n, float eps, float momentum, bool affine, bool track)
{
    return bn_new(2, n, eps, momentum, affine, track);
}

/* ---------------------------------------------------------------------------------------
 * LayerNorm
 * ------------------------------------------------------------------------------------- */

typedef struct ln_mod {
    dc_module base;
    int n;
    int64_t shape[DC_MAX_DIMS];
    float eps;
    dc_tensor *weight, *bias;
} ln_mod;

static dc_tensor *ln_forward(dc_module *m, dc_tensor *x)
{
    ln_mod *l = (ln_mod *)m;
    bool ok = x->ndim >= l->n;
    for (int i = 0; ok && i < l->n; i++) ok = x->shape[x->ndim - l->n + i] == l->shape[i];
    if (!ok) {
        char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "LayerNorm(%s): input %s does not end in the normalized shape",
                     dc__shape_fmt(l->n, l->shape, a, sizeof a), dc_shape_str(x, b, sizeof b));
        return NULL;
    }
    return dc_layer_norm(x, l->n, l->weight, l->bias, l->eps);
}

static dc_status ln_reset(dc_module *m, dc_rng *rng)
{
    DC_UNUSED(rng);
    ln_mod *l = (ln_mod *)m;
    if (!l->weight) return DC_OK;
    dc_status st = dc_fill_(l->weight, 1);
    return st ? st : dc_fill_(l->bias, 0);
}

static const dc_module_vtable ln_vt = {"LayerNorm", ln_forward, ln_reset, NULL};

dc_module *dc_layer_norm_new(int n, const int64_t *normalized_shape, float eps, bool affine)
{
    if (n < 1 || n > DC_MAX_DIMS || !normalized_shape || !(eps >= 0)) {
        dc_set_error(DC_ERR_ARG, "layer_norm_new: bad arguments (%d dims, eps %g)", n, eps);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (normalized_shape[i] <= 0) {
            dc_set_error(DC_ERR_ARG, "layer_norm_new: normalized_shape[%d] = %lld", i,
                         (long long)normalized_shape[i]);
            return NULL;
        }
    ln_mod *l = (ln_mod *)dc_module_new(&ln_vt, sizeof *l);
    if (!l) return NULL;
    l->n = n;
    memcpy(l->shape, normalized_shape, (size_t)n * sizeof(int64_t));
    l->eps = eps;
    if (affine) {
        dc_pool_mark mark = dc_pool_push();
        l->weight = reg(&l->base, "weight", true, dc_ones(DC_F32, n, normalized_shape));
        l->bias = reg(&l->base, "bias", true, dc_zeros(DC_F32, n, normalized_shape));
        dc_pool_pop(mark);
    }
    return dc_module_finish(&l->base);
}

/* ---------------------------------------------------------------------------------------
 * GroupNorm
 * ------------------------------------------------------------------------------------- */

typedef struct gn_mod {
    dc_module base;
    int groups;
    int64_t channels;
    float eps;
    dc_tensor *weight, *bias;
} gn_mod;

static dc_tensor *gn_forward(dc_module *m, dc_tensor *x)
{
    gn_mod *g = (gn_mod *)m;
    if (x->ndim < 2 || x->shape[1] != g->channels) {
        char s[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "GroupNorm(%d, %lld): expected input [N, %lld, ...], got %s",
                     g->groups, (long long)g->channels, (long long)g->channels,
                     dc_shape_str(x, s, sizeof s));
        return NULL;
    }
    return dc_group_norm(x, g->groups, g->weight, g->bias, g->eps);
}

static dc_status gn_reset(dc_module *m, dc_rng *rng)
{
    DC_UNUSED(rng);
    gn_mod *g = (gn_mod *)m;
    if (!g->weight) return DC_OK;
    dc_status st = dc_fill_(g->weight, 1);
    return st ? st : dc_fill_(g->bias, 0);
}

static const dc_module_vtable gn_vt = {"GroupNorm", gn_forward, gn_reset, NULL};

dc_module *dc_group_norm_new(int num_groups, int64_t num_channels, float eps, bool affine)
{
    if (num_groups <= 0 || num_channels <= 0 || num_channels % num_groups || !(eps >= 0)) {
        dc_set_error(DC_ERR_ARG, "group_norm_new: num_channels %lld must be divisible by num_groups %d (eps %g)",
                     (long long)num_channels, num_groups, eps);
        return NULL;
    }
    gn_mod *g = (gn_mod *)dc_module_new(&gn_vt, sizeof *g);
    if (!g) return NULL;
    g->groups = num_groups;
    g->channels = num_channels;
    g->eps = eps;
    if (affine) {
        dc_pool_mark mark = dc_pool_push();
        g->weight = reg(&g->base, "weight", true, dc_ones(DC_F32, DC_SHAPE(num_channels)));
        g->bias = reg(&g->base, "bias", true, dc_zeros(DC_F32, DC_SHAPE(num_channels)));
        dc_pool_pop(mark);
    }
    return dc_module_finish(&g->base);
}
