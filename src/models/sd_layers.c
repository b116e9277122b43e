/* sd_layers.c: the named weight store behind every diffusion component (mmap'd safetensors,
 * 16-bit weights kept 16-bit and widened per use, or trainable parameters created on first
 * use), config.json helpers, and the pool-based layers diffusers' models are built from: conv,
 * linear, group/layer norm, sliced multi-head attention, ResnetBlock2D, Transformer2DModel,
 * Down/Upsample2D and the sinusoidal timestep embedding. These serve training (grad on), the
 * CLIP text encoder and the first forward of a new model; inference of the UNet and VAE runs
 * on sd_infer.c's versions. Each layer takes diffusers' module path as its prefix, so weights
 * are found by their state_dict names. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../core/internal.h"
#include "../util/util.h"
#include "deepc/nn.h"
#include "sd_internal.h"

/* ---- store ------------------------------------------------------------------------------ */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

sd_store *sd_store_new(const char *what)
{
    sd_store *s = dc__calloc(1, sizeof *s);
    if (!s) return NULL;
    dc__strlcpy(s->what, sizeof s->what, what);
    s->weight_dtype = DC_F32;
    return s;
}

void sd_store_free(sd_store *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        free(s->names[i]);
        dc_tensor_release(s->tensors[i]);
    }
    free(s->names);
    free(s->tensors);
    free(s->slots);
    for (int i = 0; i < s->n_files; i++) dc_safetensors_close(s->files[i]);
    free(s);
}

static int find_index(const sd_store *s, const char *name)
{
    if (!s->slots) return -1;
    size_t nslots = (size_t)s->cap * 2;
    for (size_t h = hash_str(name) % nslots;; h = (h + 1) % nslots) {
        int i = s->slots[h];
        if (i < 0) return -1;
        if (!strcmp(s->names[i], name)) return i;
    }
}

static dc_status rehash(sd_store *s, int cap)
{
    int *slots = dc__malloc(sizeof(int) * (size_t)cap * 2);
    char **names = dc__realloc(s->names, sizeof(char *) * (size_t)cap);
    if (names) s->names = names;
    dc_tensor **ts = dc__realloc(s->tensors, sizeof(dc_tensor *) * (size_t)cap);
    if (ts) s->tensors = ts;
    if (!slots || !names || !ts) {
        free(slots);
        return dc_last_status();
    }
    for (int i = 0; i < cap * 2; i++) slots[i] = -1;
    for (int i = 0; i < s->n; i++) {
        size_t h = hash_str(s->names[i]) % ((size_t)cap * 2);
        while (slots[h] >= 0) h = (h + 1) % ((size_t)cap * 2);
        slots[h] = i;
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return DC_OK;
}

dc_status sd_store_put(sd_store *s, const char *name, dc_tensor *t)
{
    if (s->n + 1 > s->cap && rehash(s, s->cap ? s->cap * 2 : 256)) return dc_last_status();
    int i = find_index(s, name);
    if (i >= 0) {
        dc_tensor_retain(t);
        dc_tensor_release(s->tensors[i]);
        s->tensors[i] = t;
        return DC_OK;
    }
    char *copy = dc__malloc(strlen(name) + 1);
    if (!copy) return dc_last_status();
    strcpy(copy, name);
    s->names[s->n] = copy;
    s->tensors[s->n] = dc_tensor_retain(t);
    size_t nslots = (size_t)s->cap * 2;
    size_t h = hash_str(name) % nslots;
    while (s->slots[h] >= 0) h = (h + 1) % nslots;
    s->slots[h] = s->n++;
    return DC_OK;
}

/* Old diffusers checkpoints name the VAE attention projections query/key/value/proj_attn. */
static const char *const legacy_names[][2] = {
    {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}};

/* The index of `name` (or of its legacy spelling), -1 if absent. */
static int find_any(const sd_store *s, const char *name)
{
    int i = find_index(s, name);
    if (i >= 0) return i;
    for (size_t k = 0; k < sizeof legacy_names / sizeof legacy_names[0]; k++) {
        const char *p = strstr(name, legacy_names[k][0]);
        if (!p) continue;
        char alt[512];
        snprintf(alt, sizeof alt, "%.*s%s%s", (int)(p - name), name, legacy_names[k][1],
                 p + strlen(legacy_names[k][0]));
        if ((i = find_index(s, alt)) >= 0) return i;
    }
    return -1;
}

dc_tensor *sd_store_find(sd_store *s, const char *name)
{
    int i = find_any(s, name);
    return i >= 0 ? s->tensors[i] : NULL;
}

dc_status sd_store_load_dir(sd_store *s, const char *dir, const char *const *bases, dc_dtype weight_dtype)
{
    char path[2048];
    bool found = false;
    s->weight_dtype = weight_dtype;
    for (int b = 0; bases[b] && !found; b++) {
        const char *variants[] = {"%s/%s.safetensors", "%s/%s.fp16.safetensors", NULL};
        for (int v = 0; variants[v] && !found; v++) {
            snprintf(path, sizeof path, variants[v], dir, bases[b]);
            if (dc__is_file(path)) found = true;
        }
    }
    if (!found)
        return dc_set_error(DC_ERR_IO, "%s: no weights in %s (expected %s.safetensors or %s.fp16.safetensors; .bin "
                                       "checkpoints are not supported, convert them to safetensors)",
                            s->what, dir, bases[0], bases[0]);
    dc_safetensors *st = dc_safetensors_open(path);
    if (!st) return dc_last_status();
    if (s->n_files >= 8) {
        dc_safetensors_close(st);
        return dc_set_error(DC_ERR_ARG, "%s: too many weight files", s->what);
    }
    s->files[s->n_files++] = st;
    int n = dc_safetensors_count(st);
    /* every tensor made here belongs to this pool; the store keeps its own references.
     * Nothing is read yet: F32 tensors are views of the mapping, and a 16-bit weight_dtype
     * converts each one when it is first used (sd_wt), so weights a model never runs (the
     * VAE encoder when only decoding) cost no memory. */
    dc_pool_mark m = dc_pool_push();
    dc_status status = DC_OK;
    for (int i = 0; i < n && !status; i++) {
        const char *name = dc_safetensors_name(st, i);
        dc_tensor *t = dc_safetensors_get(st, name);
        if (!t) {
            status = dc_last_status();
            break;
        }
        /* position_ids and other integer buffers are not weights */
        if (t->dtype != DC_F32 && t->dtype != DC_F16 && t->dtype != DC_BF16) continue;
        status = sd_store_put(s, name, t);
    }
    dc_pool_pop(m);
    return status;
}

static const char *shape_fmt(int ndim, const int64_t *shape, char *buf, size_t size)
{
    return dc__shape_fmt(ndim, shape, buf, size);
}

/* Gives the pages of a file-backed tensor back to the page cache once it has been converted:
 * the private mapping is never written, so dropping them loses nothing, and the process's
 * resident memory then holds only the 16-bit copy. */
static void drop_file_pages(const dc_tensor *t)
{
    if (!t->storage->release) return; /* backend memory (an unaligned file's copy): freed with t */
    const long page = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)dc_data(t), e = a + (uintptr_t)dc_numel(t) * dc_dtype_size(t->dtype);
    a = (a + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
    e &= ~(uintptr_t)(page - 1);
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

dc_tensor *sd_wt(sd_store *s, const char *name, int ndim, const int64_t *shape)
{
    int i = find_any(s, name);
    if (i < 0) {
        char buf[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_FORMAT, "%s: weight %s %s is missing from the checkpoint", s->what, name,
                     shape_fmt(ndim, shape, buf, sizeof buf));
        return NULL;
    }
    dc_tensor *t = s->tensors[i];
    bool ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    /* 1x1 convs stored as linear weights ([O, I] for [O, I, 1, 1]) in old VAE checkpoints */
    if (!ok && ndim == 2 && t->ndim == 4 && t->shape[0] == shape[0] && t->shape[1] == shape[1] && t->shape[2] == 1 &&
        t->shape[3] == 1)
        ok = true;
    if (!ok && ndim == 4 && t->ndim == 2 && shape[2] == 1 && shape[3] == 1 && t->shape[0] == shape[0] &&
        t->shape[1] == shape[1])
        ok = true;
    if (!ok) {
        char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "%s: weight %s is %s in the checkpoint, the config expects %s", s->what, name,
                     dc_shape_str(t, a, sizeof a), shape_fmt(ndim, shape, b, sizeof b));
        return NULL;
    }
    if (s->weight_dtype != DC_F32 && t->dtype == DC_F32 && !t->requires_grad) {
        /* the first use of an F32 weight in a 16-bit store: keep it 16-bit from now on */
        dc_pool_mark m = dc_pool_push();
        dc_tensor *c = dc_contiguous(dc_to_dtype(t, s->weight_dtype));
        if (c) {
            dc_tensor_retain(c);
            drop_file_pages(t);
            dc_tensor_release(t);
            s->tensors[i] = t = c;
        }
        dc_pool_pop(m);
        if (!c) return NULL;
    }
    return t;
}

const float *sd_row_f32(const dc_tensor *w, int64_t r, float *buf)
{
    const int64_t n = w->shape[1];
    if (w->dtype == DC_F32) return dc_data_f32(w) + r * n;
    const uint16_t *src = (const uint16_t *)dc_data(w) + r * n;
    for (int64_t j = 0; j < n; j++) buf[j] = w->dtype == DC_F16 ? dc__f16_to_f32(src[j]) : dc__bf16_to_f32(src[j]);
    return buf;
}

dc_tensor *sd_w(sd_store *s, const char *name, int ndim, const int64_t *shape, sd_init init, int64_t fan_in)
{
    if (s->create && !sd_store_find(s, name)) {
        dc_tensor *p = dc_empty(DC_F32, ndim, shape); /* pool-owned when a pool is active */
        if (!p) return NULL;
        dc_status st = DC_OK;
        double bound = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0;
        switch (init) {
        case SD_INIT_KAIMING:
            st = dc_init_kaiming_uniform_(p, sqrt(5.0), DC_FAN_IN, "leaky_relu", s->rng);
            break;
        case SD_INIT_BIAS: st = dc_init_uniform_(p, -bound, bound, s->rng); break;
        case SD_INIT_ONES: st = dc_fill_(p, 1.0); break;
        case SD_INIT_ZEROS: st = dc_fill_(p, 0.0); break;
        case SD_INIT_NORMAL: st = dc_init_normal_(p, 0, 1, s->rng); break;
        }
        if (!st) st = dc_set_requires_grad(p, true);
        if (!st) st = sd_store_put(s, name, p); /* the store keeps its own reference */
        if (!dc_pool_active()) dc_tensor_release(p);
        return st ? NULL : sd_store_find(s, name);
    }
    dc_tensor *t = sd_wt(s, name, ndim, shape);
    if (!t) return NULL;
    /* F32: borrowed from the store; 16-bit: converted into a pool temporary per use */
    dc_tensor *r = t->dtype != DC_F32 ? dc_to_dtype(t, DC_F32) : t;
    if (r && r->ndim != ndim) r = dc_reshape(r, ndim, shape);
    return r;
}

int sd_store_params(sd_store *s, dc_tensor ***out)
{
    *out = s->tensors;
    return s->n;
}

/* ---- json ------------------------------------------------------------------------------- */

cJSON *sd_json_load(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        dc_set_error(DC_ERR_IO, "cannot open %s", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        dc_set_error(DC_ERR_IO, "cannot read %s", path);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    if (!j) dc_set_error(DC_ERR_FORMAT, "%s: not valid JSON", path);
    return j;
}

int sd_json_int(const cJSON *o, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : dflt;
}

double sd_json_num(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

bool sd_json_bool(const cJSON *o, const char *key, bool dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

const char *sd_json_str(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

int sd_json_ints(const cJSON *o, const char *key, int *out, int max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsNumber(v)) {
        out[0] = (int)v->valuedouble;
        return 1;
    }
    if (!cJSON_IsArray(v)) return -1;
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        if (!cJSON_IsNumber(e) || n >= max) return -1;
        out[n++] = (int)e->valuedouble;
    }
    return n;
}

int sd_json_strs(const cJSON *o, const char *key, const char **out, int max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsArray(v)) return -1;
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        if (!cJSON_IsString(e) || n >= max) return -1;
        out[n++] = e->valuestring;
    }
    return n;
}

const char *sd_name(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

/* ---- scopes ----------------------------------------------------------------------------- */

dc_tensor *sd_keep(dc_pool_mark m, dc_tensor *r)
{
    if (r) dc_tensor_retain(r);
    dc_pool_pop(m);
    return r ? dc_autorelease(r) : NULL;
}

/* ---- layers ----------------------------------------------------------------------------- */


dc_tensor *sd_conv(sd_store *s, const char *prefix, dc_tensor *x, int64_t out, int k, int stride, int pad)
{
    if (!x) return NULL;
    char n[512];
    int64_t in = x->shape[1];
    dc_tensor *w = sd_w(s, NAME(n, "%s.weight", prefix), 4, (int64_t[]){out, in, k, k}, SD_INIT_KAIMING, 0);
    dc_tensor *b = sd_w(s, NAME(n, "%s.bias", prefix), 1, (int64_t[]){out}, SD_INIT_BIAS, in * k * k);
    if (!w || !b) return NULL;
    return dc_conv2d(x, w, b, (dc_conv2d_args){.stride = {stride, stride}, .padding = {pad, pad}});
}

dc_tensor *sd_linear(sd_store *s, const char *prefix, dc_tensor *x, int64_t out, bool bias)
{
    if (!x) return NULL;
    char n[512];
    int64_t in = x->shape[x->ndim - 1];
    dc_tensor *w = sd_w(s, NAME(n, "%s.weight", prefix), 2, (int64_t[]){out, in}, SD_INIT_KAIMING, 0);
    dc_tensor *b = bias ? sd_w(s, NAME(n, "%s.bias", prefix), 1, (int64_t[]){out}, SD_INIT_BIAS, in) : NULL;
    if (!w || (bias && !b)) return NULL;
    return dc_linear(x, w, b);
}

dc_tensor *sd_group_norm(sd_store *s, const char *prefix, dc_tensor *x, int groups, float eps, bool silu)
{
    if (!x) return NULL;
    char n[512];
    int64_t C = x->shape[1];
    if (groups <= 0 || C % groups) {
        dc_set_error(DC_ERR_SHAPE, "%s: %s: %lld channels do not split into %d groups", s->what, prefix,
                     (long long)C, groups);
        return NULL;
    }
    dc_tensor *w = sd_w(s, NAME(n, "%s.weight", prefix), 1, (int64_t[]){C}, SD_INIT_ONES, 0);
    dc_tensor *b = sd_w(s, NAME(n, "%s.bias", prefix), 1, (int64_t[]){C}, SD_INIT_ZEROS, 0);
    if (!w || !b) return NULL;
    if (!dc__any_needs_grad(3, (dc_tensor *[]){x, w, b}) && x->dtype == DC_F32) {
        /* inference: statistics and the affine (+SiLU) in one kernel */
        dc_tensor *xc = dc_contiguous(x), *y = xc ? dc_empty_like(xc) : NULL;
        if (!y) return NULL;
        sd_group_norm_kernel(dc_data_f32(xc), dc_data_f32(y), xc->shape[0], C, dc_numel(xc) / (xc->shape[0] * C),
                             groups, dc_data_f32(w), dc_data_f32(b), eps, silu);
        return y;
    }
    dc_tensor *y = dc_group_norm(x, groups, w, b, eps);
    return silu ? dc_silu(y) : y;
}

dc_tensor *sd_layer_norm(sd_store *s, const char *prefix, dc_tensor *x, float eps)
{
    if (!x) return NULL;
    char n[512];
    int64_t D = x->shape[x->ndim - 1];
    dc_tensor *w = sd_w(s, NAME(n, "%s.weight", prefix), 1, (int64_t[]){D}, SD_INIT_ONES, 0);
    dc_tensor *b = sd_w(s, NAME(n, "%s.bias", prefix), 1, (int64_t[]){D}, SD_INIT_ZEROS, 0);
    if (!w || !b) return NULL;
    return dc_layer_norm(x, 1, w, b, eps);
}

dc_tensor *sd_silu(dc_tensor *x) { return dc_silu(x); }

/* Inference attention: sliced by query rows with bounded scratch (sd_attention; diffusers
 * materialises [B*H, L, S]: 1 GB at 512x512) and no head transposes. */
static dc_tensor *mha_sliced(dc_tensor *q, dc_tensor *k, dc_tensor *v, int heads, bool causal)
{
    q = dc_contiguous(q);
    k = dc_contiguous(k);
    v = dc_contiguous(v);
    if (!q || !k || !v) return NULL;
    const int64_t B = q->shape[0], L = q->shape[1], C = q->shape[2], S = k->shape[1];
    dc_tensor *out = dc_empty(DC_F32, 3, (int64_t[]){B, L, C});
    if (!out) return NULL;
    if (sd_attention(dc_data_f32(q), C, dc_data_f32(k), C, dc_data_f32(v), C, dc_data_f32(out), C, B, L, S, heads,
                     C / heads, causal))
        return NULL;
    return out;
}

dc_tensor *sd_mha(dc_tensor *q, dc_tensor *k, dc_tensor *v, int heads, bool causal)
{
    if (!q || !k || !v) return NULL;
    if (!dc__any_needs_grad(3, (dc_tensor *[]){q, k, v})) return mha_sliced(q, k, v, heads, causal);
    const int64_t B = q->shape[0], L = q->shape[1], C = q->shape[2], S = k->shape[1], D = C / heads;
    static const int perm[4] = {0, 2, 1, 3};
    dc_tensor *qh = dc_permute(dc_view(q, 4, (int64_t[]){B, L, heads, D}), perm);
    dc_tensor *kh = dc_permute(dc_view(dc_contiguous(k), 4, (int64_t[]){B, S, heads, D}), perm);
    dc_tensor *vh = dc_permute(dc_view(dc_contiguous(v), 4, (int64_t[]){B, S, heads, D}), perm);
    dc_tensor *o = dc_scaled_dot_product_attention(qh, kh, vh, NULL, causal, 0);
    return dc_reshape(dc_permute(o, perm), 3, (int64_t[]){B, L, C});
}

dc_tensor *sd_resnet(sd_store *s, const char *prefix, dc_tensor *x, dc_tensor *temb, int64_t out_ch, int groups,
                     float eps, float output_scale)
{
    if (!x) return NULL;
    char n[512];
    dc_pool_mark m = dc_pool_push();
    dc_tensor *h = sd_group_norm(s, NAME(n, "%s.norm1", prefix), x, groups, eps, true);
    h = sd_conv(s, NAME(n, "%s.conv1", prefix), h, out_ch, 3, 1, 1);
    if (temb && h) {
        dc_tensor *t = sd_linear(s, NAME(n, "%s.time_emb_proj", prefix), dc_silu(temb), out_ch, true);
        h = dc_add(h, dc_view(t, 4, (int64_t[]){t ? t->shape[0] : 0, out_ch, 1, 1}));
    }
    h = sd_group_norm(s, NAME(n, "%s.norm2", prefix), h, groups, eps, true);
    h = sd_conv(s, NAME(n, "%s.conv2", prefix), h, out_ch, 3, 1, 1);
    dc_tensor *sc = x;
    if (x->shape[1] != out_ch) sc = sd_conv(s, NAME(n, "%s.conv_shortcut", prefix), x, out_ch, 1, 1, 0);
    dc_tensor *r = dc_add(sc, h);
    if (r && output_scale != 1.0f) r = dc_mul_scalar(r, 1.0f / output_scale);
    return sd_keep(m, r);
}

/* [B, C, H, W] <-> [B, H*W, C] */
static dc_tensor *to_tokens(dc_tensor *x)
{
    if (!x) return NULL;
    int64_t B = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3];
    return dc_contiguous(dc_permute(dc_view(dc_contiguous(x), 3, (int64_t[]){B, C, HW}), (int[]){0, 2, 1}));
}

static dc_tensor *from_tokens(dc_tensor *t, int64_t H, int64_t W)
{
    if (!t) return NULL;
    int64_t B = t->shape[0], C = t->shape[2];
    return dc_contiguous(dc_view(dc_contiguous(dc_permute(t, (int[]){0, 2, 1})), 4, (int64_t[]){B, C, H, W}));
}

dc_tensor *sd_attn_block(sd_store *s, const char *prefix, dc_tensor *x, int heads, int groups, float eps)
{
    if (!x) return NULL;
    char n[512];
    dc_pool_mark m = dc_pool_push();
    int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3];
    dc_tensor *h = sd_group_norm(s, NAME(n, "%s.group_norm", prefix), x, groups, eps, false);
    h = to_tokens(h);
    dc_tensor *q = sd_linear(s, NAME(n, "%s.to_q", prefix), h, C, true);
    dc_tensor *k = sd_linear(s, NAME(n, "%s.to_k", prefix), h, C, true);
    dc_tensor *v = sd_linear(s, NAME(n, "%s.to_v", prefix), h, C, true);
    dc_tensor *o = sd_mha(q, k, v, heads, false);
    o = sd_linear(s, NAME(n, "%s.to_out.0", prefix), o, C, true);
    dc_tensor *r = dc_add(from_tokens(o, H, W), x);
    return sd_keep(m, r);
}

static dc_tensor *cross_attention(sd_store *s, const char *prefix, dc_tensor *x, dc_tensor *ctx, int heads)
{
    char n[512];
    int64_t C = x->shape[2];
    dc_tensor *c = ctx ? ctx : x;
    dc_tensor *q = sd_linear(s, NAME(n, "%s.to_q", prefix), x, C, false);
    dc_tensor *k = sd_linear(s, NAME(n, "%s.to_k", prefix), c, C, false);
    dc_tensor *v = sd_linear(s, NAME(n, "%s.to_v", prefix), c, C, false);
    dc_tensor *o = sd_mha(q, k, v, heads, false);
    return sd_linear(s, NAME(n, "%s.to_out.0", prefix), o, C, true);
}

/* GEGLU feed-forward: proj -> (h, gate) -> h * gelu(gate) -> net.2 */
static dc_tensor *geglu_ff(sd_store *s, const char *prefix, dc_tensor *x)
{
    char n[512];
    int64_t C = x->shape[2], inner = 4 * C;
    dc_tensor *p = sd_linear(s, NAME(n, "%s.net.0.proj", prefix), x, 2 * inner, true);
    if (!p) return NULL;
    dc_tensor *parts[2];
    if (dc_chunk(p, 2, -1, parts, 2) != 2) return NULL;
    dc_tensor *g = dc_mul(parts[0], dc_gelu(parts[1], DC_GELU_NONE));
    return sd_linear(s, NAME(n, "%s.net.2", prefix), g, C, true);
}

dc_tensor *sd_transformer2d(sd_store *s, const char *prefix, dc_tensor *x, dc_tensor *ctx, int heads, int groups,
                            int layers, bool linear_proj)
{
    if (!x) return NULL;
    char n[512];
    dc_pool_mark m = dc_pool_push();
    int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3];
    dc_tensor *h = sd_group_norm(s, NAME(n, "%s.norm", prefix), x, groups, 1e-6f, false);
    if (!linear_proj) {
        h = sd_conv(s, NAME(n, "%s.proj_in", prefix), h, C, 1, 1, 0);
        h = to_tokens(h);
    } else {
        h = sd_linear(s, NAME(n, "%s.proj_in", prefix), to_tokens(h), C, true);
    }
    for (int l = 0; l < layers && h; l++) {
        dc_pool_mark lm = dc_pool_push();
        char p[400];
        snprintf(p, sizeof p, "%s.transformer_blocks.%d", prefix, l);
        dc_tensor *a = sd_layer_norm(s, NAME(n, "%s.norm1", p), h, 1e-5f);
        h = a ? dc_add(cross_attention(s, NAME(n, "%s.attn1", p), a, NULL, heads), h) : NULL;
        a = sd_layer_norm(s, NAME(n, "%s.norm2", p), h, 1e-5f);
        h = a ? dc_add(cross_attention(s, NAME(n, "%s.attn2", p), a, ctx, heads), h) : NULL;
        a = sd_layer_norm(s, NAME(n, "%s.norm3", p), h, 1e-5f);
        h = a ? dc_add(geglu_ff(s, NAME(n, "%s.ff", p), a), h) : NULL;
        h = sd_keep(lm, h);
    }
    if (!linear_proj) {
        h = sd_conv(s, NAME(n, "%s.proj_out", prefix), from_tokens(h, H, W), C, 1, 1, 0);
    } else {
        h = from_tokens(sd_linear(s, NAME(n, "%s.proj_out", prefix), h, C, true), H, W);
    }
    return sd_keep(m, dc_add(h, x));
}

dc_tensor *sd_downsample(sd_store *s, const char *prefix, dc_tensor *x, int padding)
{
    if (!x) return NULL;
    char n[512];
    if (padding == 0) {
        x = dc_pad2d(x, (int[]){0, 1, 0, 1}, 0.0f);
        return sd_conv(s, NAME(n, "%s.conv", prefix), x, x ? x->shape[1] : 0, 3, 2, 0);
    }
    return sd_conv(s, NAME(n, "%s.conv", prefix), x, x->shape[1], 3, 2, padding);
}

/* nearest resize to an explicit size: torch's F.interpolate(size=...) picks
 * src = floor(dst * in / out) */
static dc_tensor *resize_nearest(dc_tensor *x, int64_t oh, int64_t ow)
{
    x = dc_contiguous(x);
    if (!x) return NULL;
    int64_t NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    dc_tensor *y = dc_empty(DC_F32, 4, (int64_t[]){x->shape[0], x->shape[1], oh, ow});
    if (!y) return NULL;
    const float *xp = dc_data_f32(x);
    float *yp = dc_data_f32(y);
    float sh = (float)H / (float)oh, sw = (float)W / (float)ow;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < NC; c++)
        for (int64_t i = 0; i < oh; i++) {
            int64_t si = DC_MIN((int64_t)floorf((float)i * sh), H - 1);
            for (int64_t j = 0; j < ow; j++) {
                int64_t sj = DC_MIN((int64_t)floorf((float)j * sw), W - 1);
                yp[(c * oh + i) * ow + j] = xp[(c * H + si) * W + sj];
            }
        }
    return y;
}

dc_tensor *sd_upsample(sd_store *s, const char *prefix, dc_tensor *x, int64_t out_h, int64_t out_w)
{
    if (!x) return NULL;
    char n[512];
    dc_tensor *u;
    if (out_h > 0 && (out_h != 2 * x->shape[2] || out_w != 2 * x->shape[3])) {
        if (dc__any_needs_grad(1, &x)) {
            dc_set_error(DC_ERR_UNSUPPORTED, "%s: %s: training needs sizes divisible by the downsampling", s->what,
                         prefix);
            return NULL;
        }
        u = resize_nearest(x, out_h, out_w);
    } else {
        u = dc_upsample_nearest2d(x, 2, 2);
    }
    return sd_conv(s, NAME(n, "%s.conv", prefix), u, x->shape[1], 3, 1, 1);
}

dc_tensor *sd_timestep_embedding(const float *t, int64_t n, int64_t dim, bool flip_sin_to_cos, float shift)
{
    int64_t half = dim / 2;
    dc_tensor *e = dc_zeros(DC_F32, 2, (int64_t[]){n, dim});
    if (!e) return NULL;
    float *p = dc_data_f32(e);
    const float lg = (float)-log(10000.0);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < half; j++) {
            /* float32 throughout, in diffusers' order of operations */
            float ex = ((float)j * lg) / ((float)half - shift);
            float a = t[i] * expf(ex);
            float sn = sinf(a), cs = cosf(a);
            if (flip_sin_to_cos) {
                p[i * dim + j] = cs;
                p[i * dim + half + j] = sn;
            } else {
                p[i * dim + j] = sn;
                p[i * dim + half + j] = cs;
            }
        }
    return e;
}

/* ---- noise ------------------------------------------------------------------------------ */

void dc_noise_init(dc_noise *n, uint64_t seed, bool torch_compatible)
{
    dc_rng_seed(&n->rng, seed);
    n->torch = torch_compatible;
}

dc_status sd_randn_fill(dc_tensor *t, dc_noise *noise)
{
    if (noise->torch) return dc_init_normal_(t, 0.0, 1.0, &noise->rng);
    return dc_normal_(t, 0.0, 1.0, &noise->rng);
}

dc_tensor *dc_noise_randn(dc_noise *n, int ndim, const int64_t *shape)
{
    dc_tensor *t = dc_empty(DC_F32, ndim, shape);
    if (!t) return NULL;
    if (sd_randn_fill(t, n)) {
        dc__discard(t);
        return NULL;
    }
    return t;
}
