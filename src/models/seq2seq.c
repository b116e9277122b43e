/* seq2seq.c: the Seq2SeqWithAttention model of deepc/seq2seq.h: construction with PyTorch's
 * names, the training loss (teacher forcing), greedy decoding, beam search, evaluation, and
 * the config stored in checkpoints.
 *
 * The decoder loop is many small steps (batch 32, hidden 64): each step is five ops
 * (attention, cat, cell, cat, linear), each of them one fused kernel and one autograd node,
 * so per-step overhead stays a few microseconds. */
#include <math.h>

#include "core/internal.h"
#include "deepc/ops.h"
#include "deepc/seq2seq.h"

typedef struct s2s_mod {
    dc_module base;
    dc_s2s_config cfg;
    int64_t out_dim;
    dc_module *src_embed, *tgt_embed, *encoder, *attention, *decoder, *fc_out;
    dc_tensor *src_w, *tgt_w, *fc_w, *fc_b;
} s2s_mod;

static dc_tensor *s2s_forward_unsupported(dc_module *m, dc_tensor *x)
{
    (void)m, (void)x;
    dc_set_error(DC_ERR_UNSUPPORTED, "Seq2SeqWithAttention: use dc_seq2seq_loss / dc_seq2seq_greedy (it takes a batch)");
    return NULL;
}

static const dc_module_vtable s2s_vt = {"Seq2SeqWithAttention", s2s_forward_unsupported, NULL, NULL};

static s2s_mod *as_s2s(const dc_module *m, const char *op)
{
    if (!m || m->vt != &s2s_vt) {
        dc_set_error(DC_ERR_ARG, "%s: module is %s, not a seq2seq model", op, m ? dc_module_type(m) : "NULL");
        return NULL;
    }
    return (s2s_mod *)m;
}

const dc_s2s_config *dc_seq2seq_config(const dc_module *m)
{
    return m && m->vt == &s2s_vt ? &((const s2s_mod *)m)->cfg : NULL;
}

dc_module *dc_seq2seq_new(const dc_s2s_config *cfg)
{
    if (!cfg || (cfg->task != DC_S2S_REVERSE && cfg->task != DC_S2S_DATES) ||
        (cfg->cell != DC_RNN_TANH && cfg->cell != DC_GRU && cfg->cell != DC_LSTM) ||
        (unsigned)cfg->attention > DC_ATTN_ADDITIVE || cfg->hidden < 1 || cfg->hidden > 4096 || cfg->embed < 0) {
        dc_set_error(DC_ERR_ARG, "seq2seq_new: bad config");
        return NULL;
    }
    s2s_mod *s = (s2s_mod *)dc_module_new(&s2s_vt, sizeof *s);
    if (!s) return NULL;
    s->cfg = *cfg;
    const int64_t H = cfg->hidden;
    const bool tok = cfg->task == DC_S2S_DATES;
    if (tok && !s->cfg.embed) s->cfg.embed = H;
    const int64_t E = s->cfg.embed;
    s->out_dim = tok ? dc_s2s_tgt_vocab(cfg->task) : 1;
    /* registration order = PyTorch's (tools/seq2seq_reference.py), so seeds draw alike */
    if (tok) {
        s->src_embed = dc_module_add_child(&s->base, "src_embed", dc_embedding_new(dc_s2s_src_vocab(cfg->task), E, DC_S2S_PAD));
        s->tgt_embed = dc_module_add_child(&s->base, "tgt_embed", dc_embedding_new(dc_s2s_tgt_vocab(cfg->task), E, DC_S2S_PAD));
    }
    s->encoder = dc_module_add_child(&s->base, "encoder", dc_rnn_new(cfg->cell, tok ? E : 1, H, 1, true, true));
    s->attention = dc_module_add_child(&s->base, "attention", dc_attention_new(cfg->attention, H));
    s->decoder = dc_module_add_child(&s->base, "decoder", dc_rnn_cell_new(cfg->cell, (tok ? E : 1) + H, H, true));
    s->fc_out = dc_module_add_child(&s->base, "fc_out", dc_linear_new(2 * H, s->out_dim, true));
    dc_module *done = dc_module_finish(&s->base);
    if (!done) return NULL;
    s->fc_w = dc_module_tensor(s->fc_out, "weight");
    s->fc_b = dc_module_tensor(s->fc_out, "bias");
    if (tok) {
        s->src_w = dc_module_tensor(s->src_embed, "weight");
        s->tgt_w = dc_module_tensor(s->tgt_embed, "weight");
    }
    return done;
}

/* ---------------------------------------------------------------------------------------
 * Config <-> checkpoint metadata
 * ------------------------------------------------------------------------------------- */

static const char *cell_name(dc_rnn_mode m) { return m == DC_GRU ? "gru" : m == DC_LSTM ? "lstm" : "rnn"; }

const char *const *dc_s2s_config_metadata(const dc_s2s_config *cfg)
{
    static char vals[6][32];
    static const char *md[17];
    snprintf(vals[0], 32, "%lld", (long long)cfg->hidden);
    snprintf(vals[1], 32, "%lld", (long long)cfg->embed);
    snprintf(vals[2], 32, "%d", cfg->min_len);
    snprintf(vals[3], 32, "%d", cfg->max_len);
    const char *list[] = {"deepc.model", "seq2seq", "task", dc_s2s_task_name(cfg->task), "cell", cell_name(cfg->cell),
                          "attention", dc_attention_kind_name(cfg->attention), "hidden", vals[0], "embed", vals[1],
                          "min_len", vals[2], "max_len", vals[3], NULL};
    memcpy(md, list, sizeof list);
    return md;
}

static bool parse_int(const char *s, long long lo, long long hi, long long *out)
{
    if (!s || !*s) return false;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

dc_status dc_s2s_config_from_file(dc_safetensors *st, dc_s2s_config *cfg)
{
    const char *path = dc_safetensors_path(st);
    const char *model = dc_safetensors_metadata(st, "deepc.model");
    if (!model || strcmp(model, "seq2seq"))
        return dc_set_error(DC_ERR_FORMAT, "%s: not a deepc seq2seq checkpoint (metadata deepc.model is %s)", path,
                            model ? model : "missing");
    const char *task = dc_safetensors_metadata(st, "task"), *cell = dc_safetensors_metadata(st, "cell");
    const char *att = dc_safetensors_metadata(st, "attention");
    long long hidden, embed, mn, mx;
    int t = dc_s2s_task_parse(task), a = dc_attention_kind_parse(att);
    int c = cell && !strcmp(cell, "rnn") ? DC_RNN_TANH : cell && !strcmp(cell, "gru") ? DC_GRU
                                                         : cell && !strcmp(cell, "lstm") ? DC_LSTM : -1;
    if (t < 0 || a < 0 || c < 0 || !parse_int(dc_safetensors_metadata(st, "hidden"), 1, 4096, &hidden) ||
        !parse_int(dc_safetensors_metadata(st, "embed"), 0, 4096, &embed) ||
        !parse_int(dc_safetensors_metadata(st, "min_len"), 0, 1 << 20, &mn) ||
        !parse_int(dc_safetensors_metadata(st, "max_len"), 0, 1 << 20, &mx))
        return dc_set_error(DC_ERR_FORMAT, "%s: seq2seq metadata is incomplete or invalid (task %s, cell %s, attention %s)",
                            path, task ? task : "?", cell ? cell : "?", att ? att : "?");
    *cfg = (dc_s2s_config){(dc_s2s_task)t, (dc_rnn_mode)c, (dc_attention_kind)a, hidden, embed, (int)mn, (int)mx};
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * The encoder-decoder run
 * ------------------------------------------------------------------------------------- */

typedef struct run_opts {
    int64_t T;        /* decoder steps */
    double tf;        /* teacher forcing probability */
    dc_rng *rng;
    float *attn;      /* [B][T][S] or NULL */
    int64_t *tokens;  /* [T][B] greedy tokens (dates) or NULL */
} run_opts;

/* Encoder state for a batch: outputs (contiguous [B, S, H]), keys, initial h (and c). */
typedef struct enc_state {
    dc_tensor *enc, *keys, *h, *c;
} enc_state;

static dc_status encode(s2s_mod *s, dc_tensor *src, dc_tensor *src_len, enc_state *e)
{
    dc_tensor *x = s->cfg.task == DC_S2S_DATES ? dc_embedding(s->src_w, src) : src;
    dc_rnn_out r;
    dc_status st = dc_rnn_forward(s->encoder, x, NULL, NULL, src_len, &r);
    if (st) return st;
    /* contiguous once, so every decoder step's attention reads it without a copy */
    e->enc = dc_contiguous(r.output);
    e->keys = dc_attention_keys(s->attention, e->enc);
    e->h = dc_select(r.h_n, 0, 0);
    e->c = s->cfg.cell == DC_LSTM ? dc_select(r.c_n, 0, 0) : NULL;
    if (!e->enc || !e->keys || !e->h || (s->cfg.cell == DC_LSTM && !e->c)) return dc_last_status();
    return DC_OK;
}

/* One decoder step from state (h, c) and input embedding/value prev: updates h, c and returns
 * the output [B, out]; w receives the attention weights when not NULL. */
static dc_tensor *decode_step(s2s_mod *s, const enc_state *e, dc_tensor *src_len, dc_tensor *prev, dc_tensor **h,
                              dc_tensor **c, dc_tensor **w)
{
    dc_tensor *ctx = dc_attention_forward(s->attention, *h, e->keys, e->enc, src_len, w);
    dc_tensor *xin = dc_cat(2, (dc_tensor *[]){prev, ctx}, 1);
    dc_tensor *h1 = NULL, *c1 = NULL;
    if (dc_rnn_cell_forward(s->decoder, xin, *h, *c, &h1, &c1)) return NULL;
    *h = h1;
    *c = c1;
    return dc_linear(dc_cat(2, (dc_tensor *[]){h1, ctx}, 1), s->fc_w, s->fc_b);
}

/* Target-side embedding of a [B] token tensor. PyTorch's padding row gets no gradient; the
 * Embedding module does that with a few extra ops, needed only when a padding token is
 * actually looked up (teacher-forced steps past a row's EOS), so the plain op is used
 * otherwise. */
static dc_tensor *embed_target(s2s_mod *s, dc_tensor *idx)
{
    if (!idx) return NULL;
    const int64_t *p = dc_data(idx);
    for (int64_t i = 0; i < idx->shape[0]; i++)
        if (p[i * idx->stride[0]] == DC_S2S_PAD) return dc_module_forward(s->tgt_embed, idx);
    return dc_embedding(s->tgt_w, idx);
}

/* Runs the model over a batch; returns the stacked outputs [T, B, out]. */
static dc_tensor *run(s2s_mod *s, const dc_s2s_batch *b, const run_opts *o)
{
    const int64_t B = b->B, S = b->S, T = o->T;
    const bool tok = s->cfg.task == DC_S2S_DATES;
    if (o->tf > 0 && T > b->T) {
        dc_set_error(DC_ERR_ARG, "seq2seq: %lld decoder steps with teacher forcing but targets of %lld", (long long)T,
                     (long long)b->T);
        return NULL;
    }
    enc_state e;
    if (encode(s, b->src, b->src_len, &e)) return NULL;
    dc_tensor *h = e.h, *c = e.c;
    dc_tensor *prev;
    if (tok) {
        dc_tensor *sos = dc_full(DC_I64, 1, (int64_t[]){B}, DC_S2S_SOS);
        prev = dc_embedding(s->tgt_w, sos);
    } else {
        prev = dc_zeros(DC_F32, 2, (int64_t[]){B, 1});
    }
    dc_tensor **outs = dc__malloc((size_t)T * sizeof *outs);
    if (!outs || !prev) {
        free(outs);
        return NULL;
    }
    dc_tensor *result = NULL;
    for (int64_t t = 0; t < T; t++) {
        dc_tensor *w = NULL;
        dc_tensor *out = decode_step(s, &e, b->src_len, prev, &h, &c, o->attn ? &w : NULL);
        if (!out) goto done;
        outs[t] = out;
        if (o->attn) {
            const float *wp = dc_data_f32(w);
            for (int64_t i = 0; i < B; i++) memcpy(o->attn + (i * T + t) * S, wp + i * S, (size_t)S * sizeof(float));
        }
        if (t + 1 == T) break;
        bool teacher = o->tf >= 1.0 || (o->tf > 0 && dc_rng_uniform_f64(o->rng) < o->tf);
        if (tok) {
            dc_tensor *idx = teacher ? dc_select(b->tgt, 0, t) : dc_argmax(out, 1, false);
            if (!idx) goto done;
            if (o->tokens && !teacher) memcpy(o->tokens + t * B, dc_data(idx), (size_t)B * sizeof(int64_t));
            prev = embed_target(s, idx);
        } else {
            prev = teacher ? dc_select(b->tgt, 0, t) : out;
        }
        if (!prev) goto done;
    }
    if (o->tokens) { /* the last step's tokens */
        dc_tensor *idx = dc_argmax(outs[T - 1], 1, false);
        if (!idx) goto done;
        memcpy(o->tokens + (T - 1) * B, dc_data(idx), (size_t)B * sizeof(int64_t));
    }
    result = dc_stack((int)T, outs, 0);
done:
    free(outs);
    return result;
}

static dc_tensor *batch_loss(s2s_mod *s, const dc_s2s_batch *b, dc_tensor *pred)
{
    if (!pred) return NULL;
    if (s->cfg.task == DC_S2S_DATES) {
        int64_t V = s->out_dim;
        return dc_cross_entropy(dc_reshape(pred, 2, (int64_t[]){b->T * b->B, V}),
                                dc_reshape(b->tgt, 1, (int64_t[]){b->T * b->B}), DC_REDUCE_MEAN, DC_S2S_PAD, 0.0f);
    }
    /* MSE over the real positions: sum(mask * (pred - tgt)^2) / count */
    dc_tensor *d = dc_sub(pred, b->tgt);
    return dc_mul_scalar(dc_sum_all(dc_mul(dc_mul(d, d), b->mask)), 1.0f / (float)b->n_real);
}

dc_tensor *dc_seq2seq_loss(dc_module *m, const dc_s2s_batch *b, double teacher_forcing, dc_rng *rng)
{
    s2s_mod *s = as_s2s(m, "seq2seq_loss");
    if (!s) return NULL;
    if (!b || !b->src || b->task != s->cfg.task) {
        dc_set_error(DC_ERR_ARG, "seq2seq_loss: batch of another task");
        return NULL;
    }
    if (teacher_forcing > 0 && teacher_forcing < 1 && !rng) rng = dc_default_rng();
    run_opts o = {b->T, teacher_forcing, rng, NULL, NULL};
    return batch_loss(s, b, run(s, b, &o));
}

dc_status dc_seq2seq_greedy(dc_module *m, const dc_s2s_batch *b, int64_t T, float *values, int64_t *tokens,
                            float *attn)
{
    s2s_mod *s = as_s2s(m, "seq2seq_greedy");
    if (!s) return dc_last_status();
    if (!b || b->task != s->cfg.task) return dc_set_error(DC_ERR_ARG, "seq2seq_greedy: batch of another task");
    if (T <= 0) T = b->T;
    bool prev = dc_set_grad_enabled(false);
    dc_pool_mark mark = dc_pool_push();
    run_opts o = {T, 0.0, NULL, attn, s->cfg.task == DC_S2S_DATES ? tokens : NULL};
    dc_tensor *pred = run(s, b, &o);
    dc_status st = pred ? DC_OK : dc_last_status();
    if (pred && values && s->cfg.task == DC_S2S_REVERSE) memcpy(values, dc_data_f32(pred), (size_t)(T * b->B) * sizeof(float));
    dc_pool_pop(mark);
    dc_set_grad_enabled(prev);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Beam search (dates): K hypotheses decoded as one batch of K rows
 * ------------------------------------------------------------------------------------- */

/* rows[i] of t (a [K, H] tensor) for each i: a fresh tensor (grad is off) */
static dc_tensor *gather_rows(dc_tensor *t, const int *rows, int K)
{
    dc_tensor *tc = dc_contiguous(t);
    if (!tc) return NULL;
    int64_t H = tc->shape[1];
    dc_tensor *out = dc_empty(DC_F32, 2, (int64_t[]){K, H});
    if (!out) return NULL;
    for (int i = 0; i < K; i++)
        memcpy(dc_data_f32(out) + i * H, dc_data_f32(tc) + rows[i] * H, (size_t)H * sizeof(float));
    return out;
}

int64_t dc_seq2seq_beam(dc_module *m, const int64_t *src, int64_t src_len, int beam, int64_t max_out, int64_t *out)
{
    s2s_mod *s = as_s2s(m, "seq2seq_beam");
    if (!s) return -1;
    if (s->cfg.task != DC_S2S_DATES || !src || src_len < 1 || beam < 1 || beam > 64 || max_out < 1 || max_out > 256) {
        dc_set_error(DC_ERR_ARG, "seq2seq_beam: needs a token model, a non-empty source, beam 1..64, max_out 1..256");
        return -1;
    }
    const int K = beam;
    const int64_t V = s->out_dim, H = s->cfg.hidden;
    bool prev_grad = dc_set_grad_enabled(false);
    dc_pool_mark mark = dc_pool_push();
    int64_t result = -1;
    int64_t *seqs = calloc((size_t)(K * max_out), sizeof(int64_t)), *nseqs = calloc((size_t)(K * max_out), sizeof(int64_t));
    int64_t *best = calloc((size_t)max_out, sizeof(int64_t));
    double *cand = malloc((size_t)(K * V) * sizeof(double));
    if (!seqs || !nseqs || !best || !cand) goto done;
    /* encode once, then repeat the encoder state for the K rows */
    dc_tensor *srct = dc_from_data(DC_I64, 2, (int64_t[]){1, src_len}, src);
    dc_tensor *lent = dc_from_data(DC_I64, 1, (int64_t[]){1}, &src_len);
    enc_state e1;
    if (!srct || !lent || encode(s, srct, lent, &e1)) goto done;
    enc_state e;
    int64_t S = src_len;
    e.enc = dc_contiguous(dc_expand(e1.enc, 3, (int64_t[]){K, S, H}));
    e.keys = dc_contiguous(dc_expand(e1.keys, 3, (int64_t[]){K, S, H}));
    dc_tensor *lens = dc_full(DC_I64, 1, (int64_t[]){K}, (double)src_len);
    dc_tensor *h = dc_contiguous(dc_expand(e1.h, 2, (int64_t[]){K, H}));
    dc_tensor *c = e1.c ? dc_contiguous(dc_expand(e1.c, 2, (int64_t[]){K, H})) : NULL;
    if (!e.enc || !e.keys || !lens || !h || (e1.c && !c)) goto done;
    double score[64], nscore[64];
    int live = 1;
    score[0] = 0;
    double best_score = -INFINITY;
    int64_t best_len = -1;
    dc_tensor *prev_tok = dc_full(DC_I64, 1, (int64_t[]){K}, DC_S2S_SOS);
    for (int64_t t = 0; t <= max_out && live > 0; t++) {
        dc_tensor *prev = dc_embedding(s->tgt_w, prev_tok);
        dc_tensor *logits = prev ? decode_step(s, &e, lens, prev, &h, &c, NULL) : NULL;
        dc_tensor *logp = dc_log_softmax(logits, 1);
        if (!logp) goto done;
        const float *lp = dc_data_f32(logp);
        for (int k = 0; k < K; k++)
            for (int64_t v = 0; v < V; v++)
                cand[k * V + v] = k < live && v > DC_S2S_SOS ? score[k] + lp[k * V + v] : -INFINITY;
        /* take candidates best first: EOS ones finish, the others fill the next beam */
        int parents[64], nlive = 0;
        int64_t toks[64];
        for (int picks = 0; picks < 2 * K && nlive < K; picks++) {
            int64_t bi = 0;
            for (int64_t i = 1; i < K * V; i++)
                if (cand[i] > cand[bi]) bi = i;
            double sc = cand[bi];
            if (sc == -INFINITY) break;
            cand[bi] = -INFINITY;
            int k = (int)(bi / V);
            int64_t v = bi % V;
            if (v == DC_S2S_EOS || t == max_out) {
                if (v == DC_S2S_EOS && sc > best_score) {
                    best_score = sc;
                    best_len = t;
                    memcpy(best, seqs + k * max_out, (size_t)t * sizeof(int64_t));
                }
                continue;
            }
            memcpy(nseqs + nlive * max_out, seqs + k * max_out, (size_t)t * sizeof(int64_t));
            nseqs[nlive * max_out + t] = v;
            nscore[nlive] = sc;
            parents[nlive] = k;
            toks[nlive] = v;
            nlive++;
        }
        /* scores only fall, so a finished hypothesis better than every live one is final */
        if (nlive == 0 || (best_len >= 0 && best_score >= nscore[0])) break;
        for (int k = nlive; k < K; k++) parents[k] = parents[0], toks[k] = toks[0]; /* padding rows */
        memcpy(seqs, nseqs, (size_t)(K * max_out) * sizeof(int64_t));
        memcpy(score, nscore, (size_t)nlive * sizeof(double));
        live = nlive;
        h = gather_rows(h, parents, K);
        if (c) c = gather_rows(c, parents, K);
        prev_tok = dc_from_data(DC_I64, 1, (int64_t[]){K}, toks);
        if (!h || (c == NULL) != (e1.c == NULL) || !prev_tok) goto done;
    }
    if (best_len < 0) { /* nothing finished within max_out: the best live hypothesis */
        best_len = DC_MIN(max_out, max_out);
        memcpy(best, seqs, (size_t)best_len * sizeof(int64_t));
    }
    memcpy(out, best, (size_t)best_len * sizeof(int64_t));
    result = best_len;
done:
    free(seqs);
    free(nseqs);
    free(best);
    free(cand);
    dc_pool_pop(mark);
    dc_set_grad_enabled(prev_grad);
    return result;
}

/* ---------------------------------------------------------------------------------------
 * Evaluation
 * ------------------------------------------------------------------------------------- */

dc_status dc_seq2seq_evaluate(dc_module *m, const dc_s2s_dataset *d, int64_t batch_size, int beam, dc_s2s_eval *out)
{
    s2s_mod *s = as_s2s(m, "seq2seq_evaluate");
    if (!s) return dc_last_status();
    if (!d || d->task != s->cfg.task || batch_size < 1 || !out)
        return dc_set_error(DC_ERR_ARG, "seq2seq_evaluate: dataset of another task, or bad batch size");
    *out = (dc_s2s_eval){0, NAN, NAN, NAN, NAN};
    const bool tok = s->cfg.task == DC_S2S_DATES;
    bool prev = dc_set_grad_enabled(false);
    int64_t *idx = malloc((size_t)batch_size * sizeof(int64_t));
    int64_t cap = 0;
    float *values = NULL;
    int64_t *tokens = NULL;
    double sq = 0, loss_sum = 0;
    int64_t n_real = 0, exact = 0, beam_exact = 0, tok_ok = 0, tok_n = 0;
    dc_status st = idx ? DC_OK : dc_set_error(DC_ERR_OOM, "seq2seq_evaluate: out of memory");
    for (int64_t start = 0; start < d->n && !st; start += batch_size) {
        int64_t n = DC_MIN(batch_size, d->n - start);
        for (int64_t i = 0; i < n; i++) idx[i] = start + i;
        dc_s2s_batch b;
        if ((st = dc_s2s_collate(d, idx, n, &b))) break;
        dc_pool_mark mark = dc_pool_push();
        if (b.T * b.B > cap) {
            cap = b.T * b.B;
            free(values);
            free(tokens);
            values = malloc((size_t)cap * sizeof(float));
            tokens = malloc((size_t)cap * sizeof(int64_t));
            if (!values || !tokens) st = dc_set_error(DC_ERR_OOM, "seq2seq_evaluate: out of memory");
        }
        if (!st) {
            run_opts o = {b.T, 0.0, NULL, NULL, tok ? tokens : NULL};
            dc_tensor *pred = run(s, &b, &o);
            dc_tensor *loss = batch_loss(s, &b, pred);
            if (!loss) st = dc_last_status();
            else {
                /* the batch loss is a mean over its real positions: weight it back to a sum */
                int64_t real = b.n_real;
                if (tok) {
                    real = 0;
                    const int64_t *tg = dc_data(b.tgt);
                    for (int64_t i = 0; i < b.T * b.B; i++) real += tg[i] != DC_S2S_PAD;
                }
                loss_sum += dc_item(loss) * (double)real;
                n_real += real;
                if (!tok) {
                    const float *p = dc_data_f32(pred), *tg = dc_data_f32(b.tgt), *mk = dc_data_f32(b.mask);
                    for (int64_t i = 0; i < b.T * b.B; i++) {
                        double e = (double)p[i] - tg[i];
                        sq += mk[i] * e * e;
                    }
                } else {
                    const int64_t *tg = dc_data(b.tgt);
                    for (int64_t i = 0; i < b.B; i++) {
                        bool ok = true;
                        for (int64_t t = 0; t < b.T; t++) {
                            int64_t want = tg[t * b.B + i];
                            if (want == DC_S2S_PAD) break;
                            bool same = tokens[t * b.B + i] == want;
                            ok = ok && same;
                            tok_ok += same;
                            tok_n++;
                        }
                        exact += ok;
                        if (beam > 1) {
                            int64_t got[DC_S2S_DATES_TGT + 4];
                            int64_t k = idx[i];
                            int64_t len = dc_seq2seq_beam(m, d->src_t + d->src_off[k], dc_s2s_src_len(d, k), beam,
                                                          DC_S2S_DATES_TGT + 2, got);
                            if (len < 0) {
                                st = dc_last_status();
                                break;
                            }
                            int64_t tl = dc_s2s_tgt_len(d, k) - 1; /* without EOS */
                            bool same = len == tl;
                            for (int64_t t = 0; same && t < tl; t++) same = got[t] == d->tgt_t[d->tgt_off[k] + t];
                            beam_exact += same;
                        }
                    }
                }
            }
        }
        dc_pool_pop(mark);
        dc_s2s_batch_free(&b);
    }
    free(idx);
    free(values);
    free(tokens);
    dc_set_grad_enabled(prev);
    if (st) return st;
    out->loss = n_real ? loss_sum / (double)n_real : NAN;
    if (!tok) {
        out->mse = n_real ? sq / (double)n_real : NAN;
    } else {
        out->exact_match = (double)exact / (double)d->n;
        out->token_accuracy = tok_n ? (double)tok_ok / (double)tok_n : NAN;
        if (beam > 1) out->beam_exact = (double)beam_exact / (double)d->n;
    }
    return DC_OK;
}
