/* layers.c: the parametrised layers (Linear, Conv2d, ConvTranspose2d, Embedding) and the
 * parameter-free ones (Dropout, activations, pooling, Flatten, Identity) of deepc/nn.h.
 *
 * Each layer is a struct that starts with dc_module; its parameters are registered under
 * PyTorch's names and also kept as borrowed pointers for the forward. Constructors build
 * their tensors inside a private pool so nothing leaks into the caller's pool, and draw their
 * initial values from dc_default_rng() in the order of PyTorch's reset_parameters. */
#include <math.h>

#include "core/internal.h"
#include "deepc/nn.h"

/* A new zero-filled F32 parameter registered on m (the module keeps the only reference). */
static dc_tensor *new_param(dc_module *m, const char *name, int ndim, const int64_t *shape)
{
    dc_pool_mark mark = dc_pool_push();
    dc_tensor *t = dc_module_add_parameter(m, name, dc_zeros(DC_F32, ndim, shape));
    dc_pool_pop(mark);
    return t;
}

/* PyTorch's _ConvNd / Linear reset_parameters: kaiming_uniform_(a=sqrt(5)) on the weight,
 * then bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in from the weight's shape. */
static dc_status reset_kaiming_with_bias(dc_tensor *weight, dc_tensor *bias, dc_rng *rng)
{
    dc_status st = dc_init_kaiming_uniform_(weight, sqrt(5.0), DC_FAN_IN, "leaky_relu", rng);
    if (st || !bias) return st;
    int64_t fan_in;
    if (dc_init_fans(weight, &fan_in, NULL)) return dc_last_status();
    if (fan_in <= 0) return DC_OK;
    double bound = 1 / sqrt((double)fan_in);
    return dc_init_uniform_(bias, -bound, bound, rng);
}

/* ---------------------------------------------------------------------------------------
 * Linear
 * ------------------------------------------------------------------------------------- */

typedef struct linear_mod {
    dc_module base;
    int64_t in_features, out_features;
    dc_tensor *weight, *bias;
} linear_mod;

static dc_tensor *linear_forward(dc_module *m, dc_tensor *x)
{
    linear_mod *l = (linear_mod *)m;
    if (x->ndim < 1 || x->shape[x->ndim - 1] != l->in_features) {
        char s[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "Linear(%lld, %lld): input %s must end in %lld features",
                     (long long)l->in_features, (long long)l->out_features,
                     dc_shape_str(x, s, sizeof s), (long long)l->in_features);
        return NULL;
    }
    return dc_linear(x, l->weight, l->bias);
}

static dc_status linear_reset(dc_module *m, dc_rng *rng)
{
    linear_mod *l = (linear_mod *)m;
    return reset_kaiming_with_bias(l->weight, l->bias, rng);
}

static const dc_module_vtable linear_vt = {"Linear", linear_forward, linear_reset, NULL};

dc_module *dc_linear_new(int64_t in_features, int64_t out_features, bool bias)
{
    if (in_features < 0 || out_features < 0) {
        dc_set_error(DC_ERR_ARG, "linear_new: negative size (in %lld, out %lld)",
                     (long long)in_features, (long long)out_features);
        return NULL;
    }
    linear_mod *l = (linear_mod *)dc_module_new(&linear_vt, sizeof *l);
    if (!l) return NULL;
    l->in_features = in_features;
    l->out_features = out_features;
    l->weight = new_param(&l->base, "weight", DC_SHAPE(out_features, in_features));
    if (bias) l->bias = new_param(&l->base, "bias", DC_SHAPE(out_features));
    if (!l->base.failed && linear_reset(&l->base, dc_default_rng())) l->base.failed = true;
    return dc_module_finish(&l->base);
}

/* ---------------------------------------------------------------------------------------
 * Conv2d and ConvTranspose2d
 * ------------------------------------------------------------------------------------- */

typedef struct conv_mod {
    dc_module base;
    int64_t in_channels, out_channels;
    dc_conv2d_args args;
    dc_conv_transpose2d_args targs;
    dc_tensor *weight, *bias;
} conv_mod;

static dc_status conv_reset(dc_module *m, dc_rng *rng)
{
    conv_mod *c = (conv_mod *)m;
    return reset_kaiming_with_bias(c->weight, c->bias, rng);
}

static dc_status check_nchw(const char *what, const dc_tensor *x, int64_t channels)
{
    if (x->ndim != 4 || x->shape[1] != channels) {
        char s[DC_SHAPE_STR_MAX];
        return dc_set_error(DC_ERR_SHAPE, "%s: expects input [N, %lld, H, W], got %s", what,
                            (long long)channels, dc_shape_str(x, s, sizeof s));
    }
    return DC_OK;
}

static dc_tensor *conv_forward(dc_module *m, dc_tensor *x)
{
    conv_mod *c = (conv_mod *)m;
    if (check_nchw("Conv2d", x, c->in_channels)) return NULL;
    return dc_conv2d(x, c->weight, c->bias, c->args);
}

static dc_tensor *conv_t_forward(dc_module *m, dc_tensor *x)
{
    conv_mod *c = (conv_mod *)m;
    if (check_nchw("ConvTranspose2d", x, c->in_channels)) return NULL;
    return dc_conv_transpose2d(x, c->weight, c->bias, c->targs);
}

static const dc_module_vtable conv_vt = {"Conv2d", conv_forward, conv_reset, NULL};
static const dc_module_vtable conv_t_vt = {"ConvTranspose2d", conv_t_forward, conv_reset, NULL};

static dc_status check_conv_args(const char *op, int64_t in, int64_t out, int kh, int kw, int groups)
{
    int g = groups ? groups : 1;
    if (in <= 0 || out <= 0 || kh <= 0 || kw <= 0 || g <= 0)
        return dc_set_error(DC_ERR_ARG, "%s: bad sizes (in %lld, out %lld, kernel %dx%d, groups %d)",
                            op, (long long)in, (long long)out, kh, kw, groups);
    if (in % g || out % g)
        return dc_set_error(DC_ERR_ARG, "%s: in_channels %lld and out_channels %lld must be divisible by groups %d",
                            op, (long long)in, (long long)out, g);
    return DC_OK;
}

dc_module *dc_conv2d_new(int64_t in_channels, int64_t out_channels, int kernel_h, int kernel_w,
                         dc_conv2d_args args, bool bias)
{
    if (check_conv_args("conv2d_new", in_channels, out_channels, kernel_h, kernel_w, args.groups))
        return NULL;
    conv_mod *c = (conv_mod *)dc_module_new(&conv_vt, sizeof *c);
    if (!c) return NULL;
    int g = args.groups ? args.groups : 1;
    c->in_channels = in_channels;
    c->out_channels = out_channels;
    c->args = args;
    c->weight = new_param(&c->base, "weight", DC_SHAPE(out_channels, in_channels / g, kernel_h, kernel_w));
    if (bias) c->bias = new_param(&c->base, "bias", DC_SHAPE(out_channels));
    if (!c->base.failed && conv_reset(&c->base, dc_default_rng())) c->base.failed = true;
    return dc_module_finish(&c->base);
}

dc_module *dc_conv_transpose2d_new(int64_t in_channels, int64_t out_channels, int kernel_h,
                                   int kernel_w, dc_conv_transpose2d_args args, bool bias)
{
    if (check_conv_args("conv_transpose2d_new", in_channels, out_channels, kernel_h, kernel_w, args.groups))
        return NULL;
    conv_mod *c = (conv_mod *)dc_module_new(&conv_t_vt, sizeof *c);
    if (!c) return NULL;
    int g = args.groups ? args.groups : 1;
    c->in_channels = in_channels;
    c->out_channels = out_channels;
    c->targs = args;
    c->weight = new_param(&c->base, "weight", DC_SHAPE(in_channels, out_channels / g, kernel_h, kernel_w));
    if (bias) c->bias = new_param(&c->base, "bias", DC_SHAPE(out_channels));
    if (!c->base.failed && conv_reset(&c->base, dc_default_rng())) c->base.failed = true;
    return dc_module_finish(&c->base);
}

/* ---------------------------------------------------------------------------------------
 * Embedding
 * ------------------------------------------------------------------------------------- */

typedef struct embedding_mod {
    dc_module base;
    int64_t num, dim;
    int64_t padding_idx; /* normalised to [0, num), or -1 for none */
    dc_tensor *weight;
} embedding_mod;

/* The padding row gets no gradient (PyTorch's embedding backward skips it). The op has no
 * padding_idx, so positions that look the padding row up take their value through a
 * detached copy: same forward values, zero gradient into that row. */
static dc_tensor *embedding_forward(dc_module *m, dc_tensor *idx)
{
    embedding_mod *e = (embedding_mod *)m;
    dc_tensor *out = dc_embedding(e->weight, idx);
    if (!out || e->padding_idx < 0 || !dc_needs_grad(out)) return out;
    dc_tensor *idx_f = dc_to_dtype(idx, DC_F32);
    dc_tensor *pad = dc_full(DC_F32, 0, NULL, (double)e->padding_idx);
    dc_tensor *keep = dc_unsqueeze(dc_gt_scalar(dc_abs(dc_sub(idx_f, pad)), 0.5f), -1);
    return dc_where(keep, out, dc_detach(out));
}

static dc_status embedding_reset(dc_module *m, dc_rng *rng)
{
    embedding_mod *e = (embedding_mod *)m;
    dc_status st = dc_init_normal_(e->weight, 0, 1, rng);
    if (st || e->padding_idx < 0) return st;
    float *w = dc_data_f32(e->weight);
    memset(w + e->padding_idx * e->dim, 0, (size_t)e->dim * sizeof(float));
    return DC_OK;
}

static const dc_module_vtable embedding_vt = {"Embedding", embedding_forward, embedding_reset, NULL};

dc_module *dc_embedding_new(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx)
{
    if (num_embeddings < 0 || embedding_dim < 0) {
        dc_set_error(DC_ERR_ARG, "embedding_new: negative size (%lld, %lld)",
                     (long long)num_embeddings, (long long)embedding_dim);
        return NULL;
    }
    int64_t pad = -1;
    if (padding_idx != DC_EMBEDDING_NO_PADDING) {
        if (padding_idx >= num_embeddings || padding_idx < -num_embeddings) {
            dc_set_error(DC_ERR_ARG, "embedding_new: padding_idx %lld must be within num_embeddings %lld",
                         (long long)padding_idx, (long long)num_embeddings);
            return NULL;
        }
        pad = padding_idx < 0 ? padding_idx + num_embeddings : padding_idx;
    }
    embedding_mod *e = (embedding_mod *)dc_module_new(&embedding_vt, sizeof *e);
    if (!e) return NULL;
    e->num = num_embeddings;
    e->dim = embedding_dim;
    e->padding_idx = pad;
    e->weight = new_param(&e->base, "weight", DC_SHAPE(num_embeddings, embedding_dim));
    if (!e->base.failed && embedding_reset(&e->base, dc_default_rng())) e->base.failed = true;
    return dc_module_finish(&e->base);
}

/* ---------------------------------------------------------------------------------------
 * Dropout
 * ------------------------------------------------------------------------------------- */

typedef struct dropout_mod {
    dc_module base;
    float p;
    dc_rng *rng; /* NULL: the default generator at forward time */
} dropout_mod;

static dc_tensor *dropout_forward(dc_module *m, dc_tensor *x)
{
    dropout_mod *d = (dropout_mod *)m;
    return dc_dropout(x, d->p, m->training, d->rng ? d->rng : dc_default_rng());
}

static const dc_module_vtable dropout_vt = {"Dropout", dropout_forward, NULL, NULL};

dc_module *dc_dropout_new_rng(float p, dc_rng *rng)
{
    if (!(p >= 0 && p <= 1)) {
        dc_set_error(DC_ERR_ARG, "dropout_new: probability has to be between 0 and 1, but got %g", p);
        return NULL;
    }
    dropout_mod *d = (dropout_mod *)dc_module_new(&dropout_vt, sizeof *d);
    if (!d) return NULL;
    d->p = p;
    d->rng = rng;
    return &d->base;
}

dc_module *dc_dropout_new(float p) { return dc_dropout_new_rng(p, NULL); }

/* ---------------------------------------------------------------------------------------
 * Activations
 * ------------------------------------------------------------------------------------- */

typedef struct act_mod {
    dc_module base;
    float slope;
    dc_gelu_approx approx;
} act_mod;

static dc_tensor *relu_fwd(dc_module *m, dc_tensor *x) { DC_UNUSED(m); return dc_relu(x); }
static dc_tensor *relu_inplace_fwd(dc_module *m, dc_tensor *x) { DC_UNUSED(m); return dc_relu_(x); }
static dc_tensor *leaky_fwd(dc_module *m, dc_tensor *x) { return dc_leaky_relu(x, ((act_mod *)m)->slope); }
static dc_tensor *gelu_fwd(dc_module *m, dc_tensor *x) { return dc_gelu(x, ((act_mod *)m)->approx); }
static dc_tensor *silu_fwd(dc_module *m, dc_tensor *x) { DC_UNUSED(m); return dc_silu(x); }
static dc_tensor *tanh_fwd(dc_module *m, dc_tensor *x) { DC_UNUSED(m); return dc_tanh(x); }
static dc_tensor *sigmoid_fwd(dc_module *m, dc_tensor *x) { DC_UNUSED(m); return dc_sigmoid(x); }
/* Identity returns a new reference to its input, as an op would return a new tensor */
static dc_tensor *identity_fwd(dc_module *m, dc_tensor *x) { DC_UNUSED(m); return dc_autorelease(dc_tensor_retain(x)); }

static const dc_module_vtable relu_vt = {"ReLU", relu_fwd, NULL, NULL};
static const dc_module_vtable relu_inplace_vt = {"ReLU", relu_inplace_fwd, NULL, NULL};
static const dc_module_vtable leaky_vt = {"LeakyReLU", leaky_fwd, NULL, NULL};
static const dc_module_vtable gelu_vt = {"GELU", gelu_fwd, NULL, NULL};
static const dc_module_vtable silu_vt = {"SiLU", silu_fwd, NULL, NULL};
static const dc_module_vtable tanh_vt = {"Tanh", tanh_fwd, NULL, NULL};
static const dc_module_vtable sigmoid_vt = {"Sigmoid", sigmoid_fwd, NULL, NULL};
static const dc_module_vtable identity_vt = {"Identity", identity_fwd, NULL, NULL};

static dc_module *act_new(const dc_module_vtable *vt, float slope, dc_gelu_approx approx)
{
    act_mod *a = (act_mod *)dc_module_new(vt, sizeof *a);
    if (!a) return NULL;
    a->slope = slope;
    a->approx = approx;
    return &a->base;
}

dc_module *dc_relu_new(void) { return act_new(&relu_vt, 0, DC_GELU_NONE); }
dc_module *dc_relu_inplace_new(void) { return act_new(&relu_inplace_vt, 0, DC_GELU_NONE); }
dc_module *dc_leaky_relu_new(float negative_slope) { return act_new(&leaky_vt, negative_slope, DC_GELU_NONE); }
dc_module *dc_silu_new(void) { return act_new(&silu_vt, 0, DC_GELU_NONE); }
dc_module *dc_tanh_new(void) { return act_new(&tanh_vt, 0, DC_GELU_NONE); }
dc_module *dc_sigmoid_new(void) { return act_new(&sigmoid_vt, 0, DC_GELU_NONE); }
dc_module *dc_identity_new(void) { return act_new(&identity_vt, 0, DC_GELU_NONE); }

dc_module *dc_gelu_new(dc_gelu_approx approximate)
{
    if (approximate != DC_GELU_NONE && approximate != DC_GELU_TANH) {
        dc_set_error(DC_ERR_ARG, "gelu_new: unknown approximation %d", (int)approximate);
        return NULL;
    }
    return act_new(&gelu_vt, 0, approximate);
}

/* ---------------------------------------------------------------------------------------
 * Pooling and Flatten
 * ------------------------------------------------------------------------------------- */

typedef struct pool_mod {
    dc_module base;
    dc_pool2d_args args;
    int out_h, out_w;
    int start_dim, end_dim;
} pool_mod;

static dc_tensor *max_pool_fwd(dc_module *m, dc_tensor *x) { return dc_max_pool2d(x, ((pool_mod *)m)->args); }
static dc_tensor *avg_pool_fwd(dc_module *m, dc_tensor *x) { return dc_avg_pool2d(x, ((pool_mod *)m)->args); }
static dc_tensor *adaptive_fwd(dc_module *m, dc_tensor *x)
{
    pool_mod *p = (pool_mod *)m;
    return dc_adaptive_avg_pool2d(x, p->out_h, p->out_w);
}
static dc_tensor *flatten_fwd(dc_module *m, dc_tensor *x)
{
    pool_mod *p = (pool_mod *)m;
    return dc_flatten(x, p->start_dim, p->end_dim);
}

static const dc_module_vtable max_pool_vt = {"MaxPool2d", max_pool_fwd, NULL, NULL};
static const dc_module_vtable avg_pool_vt = {"AvgPool2d", avg_pool_fwd, NULL, NULL};
static const dc_module_vtable adaptive_vt = {"AdaptiveAvgPool2d", adaptive_fwd, NULL, NULL};
static const dc_module_vtable flatten_vt = {"Flatten", flatten_fwd, NULL, NULL};

static dc_module *pool_new(const dc_module_vtable *vt, dc_pool2d_args args)
{
    if (args.kernel[0] <= 0 || args.kernel[1] <= 0) {
        dc_set_error(DC_ERR_ARG, "%s: kernel size must be positive, got %dx%d", vt->type,
                     args.kernel[0], args.kernel[1]);
        return NULL;
    }
    pool_mod *p = (pool_mod *)dc_module_new(vt, sizeof *p);
    if (!p) return NULL;
    p->args = args;
    return &p->base;
}

dc_module *dc_max_pool2d_new(dc_pool2d_args args) { return pool_new(&max_pool_vt, args); }
dc_module *dc_avg_pool2d_new(dc_pool2d_args args) { return pool_new(&avg_pool_vt, args); }

dc_module *dc_adaptive_avg_pool2d_new(int out_h, int out_w)
{
    if (out_h <= 0 || out_w <= 0) {
        dc_set_error(DC_ERR_ARG, "adaptive_avg_pool2d_new: output size must be positive, got %dx%d", out_h, out_w);
        return NULL;
    }
    pool_mod *p = (pool_mod *)dc_module_new(&adaptive_vt, sizeof *p);
    if (!p) return NULL;
    p->out_h = out_h;
    p->out_w = out_w;
    return &p->base;
}

dc_module *dc_flatten_new(int start_dim, int end_dim)
{
    pool_mod *p = (pool_mod *)dc_module_new(&flatten_vt, sizeof *p);
    if (!p) return NULL;
    p->start_dim = start_dim;
    p->end_dim = end_dim;
    return &p->base;
}
