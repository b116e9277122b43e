/* rnn_modules.c: the recurrent modules of deepc/rnn.h (RNN/GRU/LSTM layers, the three cells)
 * and the attention module (dot, Luong general, Bahdanau additive), with PyTorch's parameter
 * names and default initialisation. The computation is the ops of src/ops/rnn.c. */
#include <math.h>

#include "core/internal.h"
#include "deepc/nn.h"
#include "deepc/ops.h"
#include "deepc/rnn.h"

#define MAX_LAYERS 16

static dc_tensor *new_param(dc_module *m, const char *name, int ndim, const int64_t *shape)
{
    dc_pool_mark mark = dc_pool_push();
    dc_tensor *t = dc_module_add_parameter(m, name, dc_zeros(DC_F32, ndim, shape));
    dc_pool_pop(mark);
    return t;
}

/* PyTorch's RNNBase / RNNCellBase reset_parameters: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)),
 * in registration order. */
static dc_status reset_all_uniform(dc_module *m, int64_t hidden, dc_rng *rng)
{
    double bound = hidden > 0 ? 1.0 / sqrt((double)hidden) : 0.0;
    for (int i = 0; i < m->n_params; i++) {
        dc_status st = dc_init_uniform_(m->params[i].tensor, -bound, bound, rng);
        if (st) return st;
    }
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * RNN / GRU / LSTM
 * ------------------------------------------------------------------------------------- */

typedef struct rnn_mod {
    dc_module base;
    dc_rnn_mode mode;
    int64_t input_size, hidden_size;
    int num_layers;
    bool bias, batch_first;
    dc_tensor *params[4 * MAX_LAYERS];
} rnn_mod;

static dc_tensor *rnn_module_forward(dc_module *m, dc_tensor *x)
{
    dc_rnn_out out;
    if (dc_rnn_forward(m, x, NULL, NULL, NULL, &out)) return NULL;
    return out.output;
}

static dc_status rnn_reset(dc_module *m, dc_rng *rng)
{
    return reset_all_uniform(m, ((rnn_mod *)m)->hidden_size, rng);
}

static const char *rnn_type(dc_rnn_mode mode)
{
    return mode == DC_GRU ? "GRU" : mode == DC_LSTM ? "LSTM" : "RNN";
}

static const dc_module_vtable rnn_vts[4] = {
    {"RNN", rnn_module_forward, rnn_reset, NULL},
    {"RNN", rnn_module_forward, rnn_reset, NULL},
    {"GRU", rnn_module_forward, rnn_reset, NULL},
    {"LSTM", rnn_module_forward, rnn_reset, NULL},
};

static bool is_rnn(const dc_module *m)
{
    return m && m->vt >= rnn_vts && m->vt < rnn_vts + 4;
}

dc_module *dc_rnn_new(dc_rnn_mode mode, int64_t input_size, int64_t hidden_size, int num_layers, bool bias,
                      bool batch_first)
{
    if ((unsigned)mode > DC_LSTM || input_size <= 0 || hidden_size <= 0 || num_layers < 1 || num_layers > MAX_LAYERS) {
        dc_set_error(DC_ERR_ARG, "rnn_new: bad arguments (mode %d, input %lld, hidden %lld, layers %d: sizes must be >= 1, layers 1..%d)",
                     (int)mode, (long long)input_size, (long long)hidden_size, num_layers, MAX_LAYERS);
        return NULL;
    }
    rnn_mod *r = (rnn_mod *)dc_module_new(&rnn_vts[mode], sizeof *r);
    if (!r) return NULL;
    r->mode = mode;
    r->input_size = input_size;
    r->hidden_size = hidden_size;
    r->num_layers = num_layers;
    r->bias = bias;
    r->batch_first = batch_first;
    const int64_t GH = dc_rnn_num_gates(mode) * hidden_size;
    int per = bias ? 4 : 2;
    for (int l = 0; l < num_layers; l++) {
        char name[32];
        int64_t in = l == 0 ? input_size : hidden_size;
        snprintf(name, sizeof name, "weight_ih_l%d", l);
        r->params[l * per + 0] = new_param(&r->base, name, DC_SHAPE(GH, in));
        snprintf(name, sizeof name, "weight_hh_l%d", l);
        r->params[l * per + 1] = new_param(&r->base, name, DC_SHAPE(GH, hidden_size));
        if (bias) {
            snprintf(name, sizeof name, "bias_ih_l%d", l);
            r->params[l * per + 2] = new_param(&r->base, name, DC_SHAPE(GH));
            snprintf(name, sizeof name, "bias_hh_l%d", l);
            r->params[l * per + 3] = new_param(&r->base, name, DC_SHAPE(GH));
        }
    }
    if (!r->base.failed && rnn_reset(&r->base, dc_default_rng())) r->base.failed = true;
    return dc_module_finish(&r->base);
}

dc_status dc_rnn_forward(dc_module *m, dc_tensor *x, dc_tensor *h0, dc_tensor *c0, const dc_tensor *lengths,
                         dc_rnn_out *out)
{
    if (!out) return dc_set_error(DC_ERR_ARG, "rnn_forward: out is NULL");
    *out = (dc_rnn_out){NULL, NULL, NULL};
    if (!is_rnn(m)) return dc_set_error(DC_ERR_ARG, "rnn_forward: module is %s, not RNN/GRU/LSTM", m ? dc_module_type(m) : "NULL");
    rnn_mod *r = (rnn_mod *)m;
    if (!x) return dc_last_status() ? dc_last_status() : dc_set_error(DC_ERR_ARG, "%s: input is NULL", rnn_type(r->mode));
    if (x->ndim != 3 || x->shape[2] != r->input_size) {
        char s[DC_SHAPE_STR_MAX];
        return dc_set_error(DC_ERR_SHAPE, "%s(%lld, %lld): input %s must be %s with %lld features", rnn_type(r->mode),
                            (long long)r->input_size, (long long)r->hidden_size, dc_shape_str(x, s, sizeof s),
                            r->batch_first ? "[B, T, I]" : "[T, B, I]", (long long)r->input_size);
    }
    return dc_rnn(r->mode, x, h0, c0, r->num_layers, r->params, r->bias, lengths, r->batch_first, &out->output,
                  &out->h_n, r->mode == DC_LSTM ? &out->c_n : NULL);
}

/* ---------------------------------------------------------------------------------------
 * Cells
 * ------------------------------------------------------------------------------------- */

typedef struct cell_mod {
    dc_module base;
    dc_rnn_mode mode;
    int64_t input_size, hidden_size;
    dc_tensor *w_ih, *w_hh, *b_ih, *b_hh;
} cell_mod;

static dc_tensor *cell_module_forward(dc_module *m, dc_tensor *x)
{
    dc_tensor *h = NULL, *c = NULL;
    if (dc_rnn_cell_forward(m, x, NULL, NULL, &h, &c)) return NULL;
    return h;
}

static dc_status cell_reset(dc_module *m, dc_rng *rng)
{
    return reset_all_uniform(m, ((cell_mod *)m)->hidden_size, rng);
}

static const dc_module_vtable cell_vts[4] = {
    {"RNNCell", cell_module_forward, cell_reset, NULL},
    {"RNNCell", cell_module_forward, cell_reset, NULL},
    {"GRUCell", cell_module_forward, cell_reset, NULL},
    {"LSTMCell", cell_module_forward, cell_reset, NULL},
};

dc_module *dc_rnn_cell_new(dc_rnn_mode mode, int64_t input_size, int64_t hidden_size, bool bias)
{
    if ((unsigned)mode > DC_LSTM || input_size <= 0 || hidden_size <= 0) {
        dc_set_error(DC_ERR_ARG, "rnn_cell_new: bad arguments (mode %d, input %lld, hidden %lld: sizes must be >= 1)",
                     (int)mode, (long long)input_size, (long long)hidden_size);
        return NULL;
    }
    cell_mod *c = (cell_mod *)dc_module_new(&cell_vts[mode], sizeof *c);
    if (!c) return NULL;
    c->mode = mode;
    c->input_size = input_size;
    c->hidden_size = hidden_size;
    const int64_t GH = dc_rnn_num_gates(mode) * hidden_size;
    c->w_ih = new_param(&c->base, "weight_ih", DC_SHAPE(GH, input_size));
    c->w_hh = new_param(&c->base, "weight_hh", DC_SHAPE(GH, hidden_size));
    if (bias) {
        c->b_ih = new_param(&c->base, "bias_ih", DC_SHAPE(GH));
        c->b_hh = new_param(&c->base, "bias_hh", DC_SHAPE(GH));
    }
    if (!c->base.failed && cell_reset(&c->base, dc_default_rng())) c->base.failed = true;
    return dc_module_finish(&c->base);
}

dc_status dc_rnn_cell_forward(dc_module *m, dc_tensor *x, dc_tensor *h, dc_tensor *c, dc_tensor **h_out,
                              dc_tensor **c_out)
{
    if (!h_out) return dc_set_error(DC_ERR_ARG, "rnn_cell_forward: h_out is NULL");
    *h_out = NULL;
    if (c_out) *c_out = NULL;
    if (!m || m->vt < cell_vts || m->vt >= cell_vts + 4)
        return dc_set_error(DC_ERR_ARG, "rnn_cell_forward: module is %s, not a cell", m ? dc_module_type(m) : "NULL");
    cell_mod *cm = (cell_mod *)m;
    if (cm->mode == DC_LSTM) return dc_lstm_cell(x, h, c, cm->w_ih, cm->w_hh, cm->b_ih, cm->b_hh, h_out, c_out);
    if (c) return dc_set_error(DC_ERR_ARG, "%s: a cell state was given, but only LSTMCell has one", dc_module_type(m));
    *h_out = dc_rnn_cell(cm->mode, x, h, cm->w_ih, cm->w_hh, cm->b_ih, cm->b_hh);
    return *h_out ? DC_OK : dc_last_status();
}

/* ---------------------------------------------------------------------------------------
 * Attention
 * ------------------------------------------------------------------------------------- */

typedef struct attn_mod {
    dc_module base;
    dc_attention_kind kind;
    int64_t hidden;
    dc_module *W;                 /* general */
    dc_module *query, *key, *v;   /* additive */
} attn_mod;

static const dc_module_vtable attn_vt = {"Attention", NULL, NULL, NULL};

const char *dc_attention_kind_name(dc_attention_kind kind)
{
    switch (kind) {
    case DC_ATTN_DOT: return "dot";
    case DC_ATTN_GENERAL: return "general";
    case DC_ATTN_ADDITIVE: return "additive";
    }
    return "?";
}

int dc_attention_kind_parse(const char *name)
{
    if (!name) return -1;
    for (int k = DC_ATTN_DOT; k <= DC_ATTN_ADDITIVE; k++)
        if (!strcmp(name, dc_attention_kind_name((dc_attention_kind)k))) return k;
    return -1;
}

dc_module *dc_attention_new(dc_attention_kind kind, int64_t hidden)
{
    if ((unsigned)kind > DC_ATTN_ADDITIVE || hidden <= 0) {
        dc_set_error(DC_ERR_ARG, "attention_new: bad kind %d or hidden %lld", (int)kind, (long long)hidden);
        return NULL;
    }
    attn_mod *a = (attn_mod *)dc_module_new(&attn_vt, sizeof *a);
    if (!a) return NULL;
    a->kind = kind;
    a->hidden = hidden;
    if (kind == DC_ATTN_GENERAL) a->W = dc_module_add_child(&a->base, "W", dc_linear_new(hidden, hidden, false));
    if (kind == DC_ATTN_ADDITIVE) {
        a->query = dc_module_add_child(&a->base, "query", dc_linear_new(hidden, hidden, false));
        a->key = dc_module_add_child(&a->base, "key", dc_linear_new(hidden, hidden, true));
        a->v = dc_module_add_child(&a->base, "v", dc_linear_new(hidden, 1, false));
    }
    return dc_module_finish(&a->base);
}

static attn_mod *as_attn(const dc_module *m, const char *op)
{
    if (!m || m->vt != &attn_vt) {
        dc_set_error(DC_ERR_ARG, "%s: module is %s, not Attention", op, m ? dc_module_type(m) : "NULL");
        return NULL;
    }
    return (attn_mod *)m;
}

dc_attention_kind dc_attention_module_kind(const dc_module *m)
{
    attn_mod *a = as_attn(m, "attention_module_kind");
    return a ? a->kind : DC_ATTN_DOT;
}

dc_tensor *dc_attention_keys(dc_module *m, dc_tensor *enc)
{
    attn_mod *a = as_attn(m, "attention_keys");
    if (!a || !enc) return NULL;
    switch (a->kind) {
    case DC_ATTN_DOT: return dc_tensor_retain(enc) ? dc_autorelease(enc) : NULL;
    case DC_ATTN_GENERAL: return dc_module_forward(a->W, enc);
    case DC_ATTN_ADDITIVE: return dc_module_forward(a->key, enc);
    }
    return NULL;
}

dc_tensor *dc_attention_forward(dc_module *m, dc_tensor *h, dc_tensor *keys, dc_tensor *values,
                                const dc_tensor *lengths, dc_tensor **weights)
{
    attn_mod *a = as_attn(m, "attention_forward");
    if (weights) *weights = NULL;
    if (!a) return NULL;
    if (a->kind != DC_ATTN_ADDITIVE) return dc_dot_attention(h, keys, values, lengths, weights);
    dc_tensor *q = dc_module_forward(a->query, h);
    return dc_additive_attention(q, keys, values, dc_module_tensor(a->v, "weight"), lengths, weights);
}
