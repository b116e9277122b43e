/* llm_load.c: Hugging Face causal-LM folders: config.json, generation_config.json, the
 * safetensors weights (one file or shards named by model.safetensors.index.json), the
 * tokenizer; the KV cache and scratch buffers allocated once; and the forward pass driver
 * (dc_llm_forward) that runs prompt blocks and single tokens through the per-architecture
 * blocks of llm_gpt2.c and llm_llama.c. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "llm_internal.h"
#include "util/util.h"

/* ---------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------- */

static char *read_text(const char *path, bool quiet_missing)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (!quiet_missing) dc_set_error(DC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (1L << 30)) {
        fclose(f);
        dc_set_error(DC_ERR_IO, "%s: unreadable or too large", path);
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s || fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        fclose(f);
        dc_set_error(DC_ERR_IO, "cannot read %s", path);
        return NULL;
    }
    s[n] = '\0';
    fclose(f);
    return s;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static bool json_num(const cJSON *o, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) return false;
    *out = v->valuedouble;
    return true;
}

static int64_t json_int(const cJSON *o, const char *key, int64_t def)
{
    double v;
    return json_num(o, key, &v) ? (int64_t)v : def;
}

static bool json_bool(const cJSON *o, const char *key, bool def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

/* eos_token_id: an int or a list of ints */
static void json_ids(const cJSON *o, const char *key, int32_t *ids, int *n, int max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsNumber(v)) {
        ids[0] = (int32_t)v->valuedouble;
        *n = 1;
    } else if (cJSON_IsArray(v)) {
        int k = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) if (cJSON_IsNumber(e) && k < max) ids[k++] = (int32_t)e->valuedouble;
        *n = k;
    }
}

void dc__llm_parse_ids(const char *json, const char *key, int32_t *ids, int *n, int max)
{
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    if (o) json_ids(o, key, ids, n, max);
    cJSON_Delete(o);
}

static bool hold(dc_llm *m, dc_tensor *t)
{
    if (m->n_held == m->cap_held) {
        int cap = m->cap_held ? 2 * m->cap_held : 64;
        dc_tensor **p = realloc(m->held, (size_t)cap * sizeof *p);
        if (!p) return false;
        m->held = p;
        m->cap_held = cap;
    }
    m->held[m->n_held++] = t;
    return true;
}

static void *own(dc_llm *m, size_t nbytes)
{
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **p = realloc(m->owned, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        m->owned = p;
        m->cap_owned = cap;
    }
    void *q = NULL;
    if (posix_memalign(&q, 64, nbytes ? nbytes : 64)) return NULL;
    m->owned[m->n_owned++] = q;
    return q;
}

/* ---------------------------------------------------------------------------------------
 * Finding tensors
 * ------------------------------------------------------------------------------------- */

static const char *shape_fmt(int nd, const int64_t *s, char *buf, size_t size)
{
    return dc__shape_fmt(nd, s, buf, size);
}

/* The stored tensor `name` (GPT-2 checkpoints from the hub have no "transformer." prefix;
 * save_pretrained writes one: both are accepted). Checks the shape. */
static dc_tensor *find(dc_llm *m, const char *name, int nd, const int64_t *shape, bool required)
{
    char alt[256];
    const char *names[2] = {name, NULL};
    if (m->cfg.arch == DC_LLM_GPT2 && strncmp(name, "lm_head", 7)) {
        snprintf(alt, sizeof alt, "transformer.%s", name);
        names[1] = alt;
    }
    for (int k = 0; k < 2 && names[k]; k++)
        for (int f = 0; f < m->n_files; f++) {
            if (!dc_safetensors_has(m->files[f], names[k])) continue;
            dc_dtype dt;
            int snd;
            int64_t sh[DC_MAX_DIMS];
            dc_safetensors_info(m->files[f], names[k], &dt, &snd, sh);
            bool ok = snd == nd;
            for (int i = 0; ok && i < nd; i++) ok = sh[i] == shape[i];
            if (!ok) {
                char a[96], b[96];
                dc_set_error(DC_ERR_SHAPE, "%s: tensor '%s' is %s, config.json implies %s",
                             base_name(dc_safetensors_path(m->files[f])), names[k], shape_fmt(snd, sh, a, sizeof a),
                             shape_fmt(nd, shape, b, sizeof b));
                return NULL;
            }
            if (dt != DC_F32 && dt != DC_F16 && dt != DC_BF16) {
                dc_set_error(DC_ERR_DTYPE, "%s: tensor '%s' is %s (F32, F16 or BF16 expected)",
                             base_name(dc_safetensors_path(m->files[f])), names[k], dc_dtype_name(dt));
                return NULL;
            }
            /* dc_llm_load runs inside its own pool, which owns this reference: keep another */
            dc_tensor *t = dc_safetensors_get(m->files[f], names[k]);
            if (!t) return NULL;
            dc_tensor_retain(t);
            if (!hold(m, t)) {
                dc_tensor_release(t);
                dc_set_error(DC_ERR_OOM, "llm: out of memory");
                return NULL;
            }
            return t;
        }
    if (required)
        dc_set_error(DC_ERR_FORMAT, "%s: missing tensor '%s' (a %s model needs it)", m->path, name, m->cfg.model_type);
    else dc_clear_error();
    return NULL;
}

/* A vector (norm weight, bias) as F32 (converted when stored 16-bit). */
static const float *vec(dc_llm *m, const char *name, int64_t n, bool required, bool *failed)
{
    dc_tensor *t = find(m, name, 1, (int64_t[]){n}, required);
    if (!t) {
        if (required || dc_last_status() != DC_OK) *failed = true;
        return NULL;
    }
    if (t->dtype == DC_F32) return dc_data(t);
    float *f = own(m, (size_t)n * 4);
    if (!f) {
        *failed = true;
        dc_set_error(DC_ERR_OOM, "llm: out of memory");
        return NULL;
    }
    dc__llm_to_f32(dc_data(t), t->dtype, n, f);
    return f;
}

/* Memory for a weight matrix: anonymous, 2 MB aligned and marked for transparent huge pages.
 * Streaming a matrix through 4 KB pages costs a TLB miss every 4 KB and stops the hardware
 * prefetchers at each page boundary; with 2 MB pages the decode GEMVs run about twice as fast
 * (22 vs 11 GB/s measured on one core here). */
static void *own_huge(dc_llm *m, size_t nbytes)
{
    const size_t huge = (size_t)2 << 20;
    size_t len = (nbytes + huge - 1) / huge * huge + huge;
    void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return NULL;
    if (m->n_maps == m->cap_maps) {
        int cap = m->cap_maps ? 2 * m->cap_maps : 64;
        llm_map *p = realloc(m->maps, (size_t)cap * sizeof *p);
        if (!p) {
            munmap(base, len);
            return NULL;
        }
        m->maps = p;
        m->cap_maps = cap;
    }
    m->maps[m->n_maps++] = (llm_map){base, len};
    char *a = (char *)(((uintptr_t)base + huge - 1) & ~(uintptr_t)(huge - 1));
    madvise(a, len - (size_t)(a - (char *)base), MADV_HUGEPAGE);
    return a;
}

/* Drops the file pages of a tensor already copied out of the mapping from this process's
 * memory (they stay in the page cache, and a later read would fault them back in from the
 * unchanged file), so the process holds one copy of the weights, not two. */
static void drop_pages(const void *p, size_t n)
{
    uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095, e = ((uintptr_t)p + n) & ~(uintptr_t)4095;
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

static void copy_parallel(void *dst, const void *src, size_t n)
{
    const size_t block = (size_t)1 << 20;
    int64_t nb = (int64_t)((n + block - 1) / block);
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < nb; b++) {
        size_t o = (size_t)b * block, len = n - o < block ? n - o : block;
        memcpy((char *)dst + o, (const char *)src + o, len);
    }
}

/* A weight matrix stored [rows, cols]; in_major says rows are the inputs (Conv1D). It is
 * copied (F32, or F16/BF16 with keep16) or converted to F32 into huge-page memory. */
static bool mat(dc_llm *m, dc__llm_weight *w, const char *name, int64_t rows, int64_t cols, bool in_major,
                bool keep16, bool required)
{
    dc_tensor *t = find(m, name, 2, (int64_t[]){rows, cols}, required);
    if (!t) return !required && dc_last_status() == DC_OK;
    w->in_major = in_major;
    w->in = in_major ? rows : cols;
    w->out = in_major ? cols : rows;
    size_t n = (size_t)(rows * cols);
    const void *src = dc_data(t);
    bool convert = t->dtype != DC_F32 && !keep16;
    w->dtype = convert ? DC_F32 : t->dtype;
    size_t bytes = n * dc_dtype_size(w->dtype);
    void *dst = own_huge(m, bytes);
    if (!dst) {
        dc_set_error(DC_ERR_OOM, "llm: out of memory for '%s' (%zu bytes)", name, bytes);
        return false;
    }
    if (convert) dc__llm_to_f32(src, t->dtype, (int64_t)n, dst);
    else copy_parallel(dst, src, bytes);
    drop_pages(src, n * dc_dtype_size(t->dtype));
    w->data = dst;
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Config
 * ------------------------------------------------------------------------------------- */

static dc_status parse_config(dc_llm *m, const cJSON *c, const char *where)
{
    dc_llm_config *g = &m->cfg;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(c, "model_type");
    if (!cJSON_IsString(mt))
        return dc_set_error(DC_ERR_FORMAT, "%s: no \"model_type\" (supported: gpt2, llama)", where);
    snprintf(g->model_type, sizeof g->model_type, "%s", mt->valuestring);
    g->bos_id = g->pad_id = -1;
    g->bos_id = (int32_t)json_int(c, "bos_token_id", -1);
    g->pad_id = (int32_t)json_int(c, "pad_token_id", -1);
    json_ids(c, "eos_token_id", g->eos_ids, &g->n_eos, 8);
    if (!strcmp(mt->valuestring, "gpt2")) {
        g->arch = DC_LLM_GPT2;
        g->vocab_size = json_int(c, "vocab_size", 50257);
        g->hidden_size = json_int(c, "n_embd", 768);
        g->n_layers = json_int(c, "n_layer", 12);
        g->n_heads = json_int(c, "n_head", 12);
        g->n_kv_heads = g->n_heads;
        g->max_positions = json_int(c, "n_positions", 1024);
        g->intermediate_size = json_int(c, "n_inner", 4 * g->hidden_size);
        g->norm_eps = 1e-5;
        json_num(c, "layer_norm_epsilon", &g->norm_eps);
        g->tie_word_embeddings = json_bool(c, "tie_word_embeddings", true);
        m->scale_weights = json_bool(c, "scale_attn_weights", true);
        m->scale_by_layer = json_bool(c, "scale_attn_by_inverse_layer_idx", false);
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(c, "activation_function");
        const char *a = cJSON_IsString(act) ? act->valuestring : "gelu_new";
        if (!strcmp(a, "gelu_new") || !strcmp(a, "gelu_pytorch_tanh") || !strcmp(a, "gelu_fast")) m->act = LLM_ACT_GELU_TANH;
        else if (!strcmp(a, "gelu")) m->act = LLM_ACT_GELU;
        else if (!strcmp(a, "relu")) m->act = LLM_ACT_RELU;
        else return dc_set_error(DC_ERR_UNSUPPORTED, "%s: activation_function '%s' is not supported (gelu_new, gelu, relu)", where, a);
    } else if (!strcmp(mt->valuestring, "llama")) {
        g->arch = DC_LLM_LLAMA;
        g->vocab_size = json_int(c, "vocab_size", 32000);
        g->hidden_size = json_int(c, "hidden_size", 4096);
        g->intermediate_size = json_int(c, "intermediate_size", 11008);
        g->n_layers = json_int(c, "num_hidden_layers", 32);
        g->n_heads = json_int(c, "num_attention_heads", 32);
        g->n_kv_heads = json_int(c, "num_key_value_heads", g->n_heads);
        g->max_positions = json_int(c, "max_position_embeddings", 2048);
        g->norm_eps = 1e-6;
        json_num(c, "rms_norm_eps", &g->norm_eps);
        g->rope_theta = 10000.0;
        json_num(c, "rope_theta", &g->rope_theta);
        g->tie_word_embeddings = json_bool(c, "tie_word_embeddings", false);
        g->attention_bias = json_bool(c, "attention_bias", false);
        g->mlp_bias = json_bool(c, "mlp_bias", false);
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(c, "hidden_act");
        if (cJSON_IsString(act) && strcmp(act->valuestring, "silu"))
            return dc_set_error(DC_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not supported (silu)", where, act->valuestring);
        m->act = LLM_ACT_SILU;
    } else {
        return dc_set_error(DC_ERR_UNSUPPORTED, "%s: model_type '%s' is not supported (supported: gpt2, llama)", where,
                            mt->valuestring);
    }
    g->head_dim = g->n_heads > 0 ? g->hidden_size / g->n_heads : 0;
    if (g->arch == DC_LLM_LLAMA) g->head_dim = json_int(c, "head_dim", g->head_dim);
    if (g->vocab_size <= 0 || g->hidden_size <= 0 || g->n_layers <= 0 || g->n_heads <= 0 || g->n_kv_heads <= 0 ||
        g->head_dim <= 0 || g->intermediate_size <= 0 || g->max_positions <= 0 || g->n_heads % g->n_kv_heads ||
        (g->arch == DC_LLM_GPT2 && g->hidden_size % g->n_heads) || (g->arch == DC_LLM_LLAMA && g->head_dim % 2) ||
        g->vocab_size > (1 << 24) || g->hidden_size > (1 << 16) || g->n_layers > 1024)
        return dc_set_error(DC_ERR_FORMAT,
                            "%s: inconsistent sizes (vocab %lld, hidden %lld, layers %lld, heads %lld, kv heads %lld, "
                            "head_dim %lld, intermediate %lld, positions %lld)",
                            where, (long long)g->vocab_size, (long long)g->hidden_size, (long long)g->n_layers,
                            (long long)g->n_heads, (long long)g->n_kv_heads, (long long)g->head_dim,
                            (long long)g->intermediate_size, (long long)g->max_positions);
    return DC_OK;
}

/* Rotary tables as transformers builds them: inv_freq = 1 / theta^(2i/d) in float32 (with the
 * "linear" or "llama3" rope_scaling adjustments), angle = pos * inv_freq in float32. */
static dc_status build_rope(dc_llm *m, const cJSON *c, const char *where)
{
    int64_t hd = m->cfg.head_dim, half = hd / 2;
    float *inv = own(m, (size_t)half * 4);
    m->rope_cos = own(m, (size_t)(m->ctx * half) * 4);
    m->rope_sin = own(m, (size_t)(m->ctx * half) * 4);
    if (!inv || !m->rope_cos || !m->rope_sin) return dc_set_error(DC_ERR_OOM, "llm: out of memory (rope tables)");
    for (int64_t i = 0; i < half; i++)
        inv[i] = 1.0f / powf((float)m->cfg.rope_theta, (float)(2 * i) / (float)hd);
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(c, "rope_scaling");
    if (cJSON_IsObject(rs)) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
        if (!cJSON_IsString(ty)) ty = cJSON_GetObjectItemCaseSensitive(rs, "type");
        const char *type = cJSON_IsString(ty) ? ty->valuestring : "default";
        double factor = 1.0;
        json_num(rs, "factor", &factor);
        if (!strcmp(type, "linear")) {
            for (int64_t i = 0; i < half; i++) inv[i] /= (float)factor;
        } else if (!strcmp(type, "llama3")) {
            double lo = 1.0, hi = 4.0, old = 8192.0;
            json_num(rs, "low_freq_factor", &lo);
            json_num(rs, "high_freq_factor", &hi);
            json_num(rs, "original_max_position_embeddings", &old);
            float lo_wl = (float)(old / lo), hi_wl = (float)(old / hi);
            for (int64_t i = 0; i < half; i++) {
                float wl = 2.0f * (float)M_PI / inv[i];
                float f = wl > lo_wl ? inv[i] / (float)factor : inv[i];
                float smooth = ((float)old / wl - (float)lo) / (float)(hi - lo);
                float sm = (1.0f - smooth) * f / (float)factor + smooth * f;
                if (!(wl < hi_wl) && !(wl > lo_wl)) f = sm;
                inv[i] = f;
            }
        } else if (strcmp(type, "default")) {
            return dc_set_error(DC_ERR_UNSUPPORTED, "%s: rope_scaling type '%s' is not supported (linear, llama3)", where, type);
        }
    }
    for (int64_t p = 0; p < m->ctx; p++)
        for (int64_t i = 0; i < half; i++) {
            float a = (float)p * inv[i];
            m->rope_cos[p * half + i] = cosf(a);
            m->rope_sin[p * half + i] = sinf(a);
        }
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Weights
 * ------------------------------------------------------------------------------------- */

static dc_status open_weights(dc_llm *m)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", m->path);
    char *idx = read_text(p, true);
    if (idx) {
        cJSON *j = cJSON_Parse(idx);
        free(idx);
        const cJSON *wm = j ? cJSON_GetObjectItemCaseSensitive(j, "weight_map") : NULL;
        if (!cJSON_IsObject(wm)) {
            cJSON_Delete(j);
            return dc_set_error(DC_ERR_FORMAT, "%s: no \"weight_map\" object", p);
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, wm)
        {
            if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || !strcmp(e->valuestring, "..")) {
                cJSON_Delete(j);
                return dc_set_error(DC_ERR_FORMAT, "%s: bad shard name for '%s'", p, e->string ? e->string : "?");
            }
            bool seen = false;
            for (int f = 0; f < m->n_files && !seen; f++)
                seen = !strcmp(base_name(dc_safetensors_path(m->files[f])), e->valuestring);
            if (seen) continue;
            if (m->n_files == (int)(sizeof m->files / sizeof *m->files)) {
                cJSON_Delete(j);
                return dc_set_error(DC_ERR_FORMAT, "%s: more than 64 shards", p);
            }
            char sp[4200];
            snprintf(sp, sizeof sp, "%s/%s", m->path, e->valuestring);
            m->files[m->n_files] = dc_safetensors_open(sp);
            if (!m->files[m->n_files]) {
                cJSON_Delete(j);
                return dc_last_status();
            }
            m->n_files++;
        }
        cJSON_Delete(j);
        return DC_OK;
    }
    snprintf(p, sizeof p, "%s/model.safetensors", m->path);
    if (!dc__is_file(p)) {
        char bin[4200];
        snprintf(bin, sizeof bin, "%s/pytorch_model.bin", m->path);
        if (dc__is_file(bin))
            return dc_set_error(DC_ERR_UNSUPPORTED,
                                "%s: only pytorch_model.bin (pickle) weights; deepc reads safetensors (model.safetensors)", m->path);
        return dc_set_error(DC_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json", m->path);
    }
    m->files[0] = dc_safetensors_open(p);
    if (!m->files[0]) return dc_last_status();
    m->n_files = 1;
    return DC_OK;
}

static dc_status load_gpt2(dc_llm *m, bool k16)
{
    dc_llm_config *g = &m->cfg;
    int64_t d = g->hidden_size, I = g->intermediate_size;
    bool bad = false;
    if (!mat(m, &m->embed, "wte.weight", g->vocab_size, d, false, k16, true)) return dc_last_status();
    dc_tensor *wpe = find(m, "wpe.weight", 2, (int64_t[]){g->max_positions, d}, true);
    if (!wpe) return dc_last_status();
    if (wpe->dtype == DC_F32) m->wpe = dc_data(wpe);
    else {
        float *f = own(m, (size_t)(g->max_positions * d) * 4);
        if (!f) return dc_set_error(DC_ERR_OOM, "llm: out of memory");
        dc__llm_to_f32(dc_data(wpe), wpe->dtype, g->max_positions * d, f);
        m->wpe = f;
    }
    char n[256];
    for (int64_t l = 0; l < g->n_layers; l++) {
        llm_layer *L = &m->layers[l];
#define V(field, suffix, len)                                                    \
    snprintf(n, sizeof n, "h.%lld." suffix, (long long)l);                      \
    L->field = vec(m, n, len, true, &bad);                                      \
    if (bad) return dc_last_status();
#define M(field, suffix, rows, cols)                                             \
    snprintf(n, sizeof n, "h.%lld." suffix, (long long)l);                      \
    if (!mat(m, &L->field, n, rows, cols, true, k16, true)) return dc_last_status();
        V(ln1_w, "ln_1.weight", d) V(ln1_b, "ln_1.bias", d) V(ln2_w, "ln_2.weight", d) V(ln2_b, "ln_2.bias", d)
        M(c_attn, "attn.c_attn.weight", d, 3 * d) V(c_attn_b, "attn.c_attn.bias", 3 * d)
        M(attn_proj, "attn.c_proj.weight", d, d) V(attn_proj_b, "attn.c_proj.bias", d)
        M(c_fc, "mlp.c_fc.weight", d, I) V(c_fc_b, "mlp.c_fc.bias", I)
        M(mlp_proj, "mlp.c_proj.weight", I, d) V(mlp_proj_b, "mlp.c_proj.bias", d)
#undef V
#undef M
    }
    m->lnf_w = vec(m, "ln_f.weight", d, true, &bad);
    if (!bad) m->lnf_b = vec(m, "ln_f.bias", d, true, &bad);
    if (bad) return dc_last_status();
    if (g->tie_word_embeddings) m->head = m->embed;
    else if (!mat(m, &m->head, "lm_head.weight", g->vocab_size, d, false, k16, true)) return dc_last_status();
    return DC_OK;
}

static dc_status load_llama(dc_llm *m, bool k16)
{
    dc_llm_config *g = &m->cfg;
    int64_t d = g->hidden_size, I = g->intermediate_size, qd = g->n_heads * g->head_dim, kd = g->n_kv_heads * g->head_dim;
    bool bad = false;
    if (!mat(m, &m->embed, "model.embed_tokens.weight", g->vocab_size, d, false, k16, true)) return dc_last_status();
    char n[256];
    for (int64_t l = 0; l < g->n_layers; l++) {
        llm_layer *L = &m->layers[l];
#define V(field, suffix, len, req)                                               \
    snprintf(n, sizeof n, "model.layers.%lld." suffix, (long long)l);           \
    L->field = vec(m, n, len, req, &bad);                                       \
    if (bad) return dc_last_status();
#define M(field, suffix, rows, cols)                                             \
    snprintf(n, sizeof n, "model.layers.%lld." suffix, (long long)l);           \
    if (!mat(m, &L->field, n, rows, cols, false, k16, true)) return dc_last_status();
        V(in_norm, "input_layernorm.weight", d, true) V(post_norm, "post_attention_layernorm.weight", d, true)
        M(wq, "self_attn.q_proj.weight", qd, d) M(wk, "self_attn.k_proj.weight", kd, d)
        M(wv, "self_attn.v_proj.weight", kd, d) M(wo, "self_attn.o_proj.weight", d, qd)
        M(gate, "mlp.gate_proj.weight", I, d) M(up, "mlp.up_proj.weight", I, d) M(down, "mlp.down_proj.weight", d, I)
        if (g->attention_bias) {
            V(bq, "self_attn.q_proj.bias", qd, true) V(bk, "self_attn.k_proj.bias", kd, true)
            V(bv, "self_attn.v_proj.bias", kd, true) V(bo, "self_attn.o_proj.bias", d, false)
        }
        if (g->mlp_bias) {
            V(gate_b, "mlp.gate_proj.bias", I, true) V(up_b, "mlp.up_proj.bias", I, true) V(down_b, "mlp.down_proj.bias", d, true)
        }
#undef V
#undef M
    }
    m->lnf_w = vec(m, "model.norm.weight", d, true, &bad);
    if (bad) return dc_last_status();
    if (g->tie_word_embeddings) m->head = m->embed;
    else if (!mat(m, &m->head, "lm_head.weight", g->vocab_size, d, false, k16, true)) return dc_last_status();
    return DC_OK;
}

static int64_t count_params(const dc_llm *m)
{
    const dc_llm_config *g = &m->cfg;
    int64_t d = g->hidden_size, I = g->intermediate_size, n = g->vocab_size * d;
    if (g->arch == DC_LLM_GPT2) {
        n += g->max_positions * d + 2 * d;
        n += g->n_layers * (4 * d + 3 * d * d + 3 * d + d * d + d + d * I + I + I * d + d);
    } else {
        int64_t qd = g->n_heads * g->head_dim, kd = g->n_kv_heads * g->head_dim;
        n += d + g->n_layers * (2 * d + qd * d + 2 * kd * d + d * qd + 3 * d * I);
    }
    if (!g->tie_word_embeddings) n += g->vocab_size * d;
    return n;
}

/* ---------------------------------------------------------------------------------------
 * Load / free
 * ------------------------------------------------------------------------------------- */

static bool resolve_path(const char *path, char *out, size_t size)
{
    if (dc__is_dir(path)) {
        dc__strlcpy(out, size, path);
        return true;
    }
    /* a repo id downloaded into the cache */
    if (strlen(path) < 200 && !strstr(path, "..") && path[0] != '/' && path[0] != '.' && dc_hf_cache_dir(path, out, size) &&
        dc__is_dir(out))
        return true;
    dc_set_error(DC_ERR_IO, "'%s' is neither a model folder nor a downloaded model (try: deepc download %s)", path, path);
    return false;
}

dc_llm *dc_llm_load(const char *path, const dc_llm_options *opt)
{
    if (!path) {
        dc_set_error(DC_ERR_ARG, "llm: NULL model path");
        return NULL;
    }
    if (dc_init()) return NULL;
    dc_llm_options o = opt ? *opt : (dc_llm_options){0};
    dc_llm *m = calloc(1, sizeof *m);
    if (!m) {
        dc_set_error(DC_ERR_OOM, "llm: out of memory");
        return NULL;
    }
    dc_pool_mark mark = dc_pool_push();
    char p[4200];
    if (!resolve_path(path, m->path, sizeof m->path)) goto fail;
    snprintf(p, sizeof p, "%s/config.json", m->path);
    m->config_json = read_text(p, false);
    if (!m->config_json) goto fail;
    cJSON *c = cJSON_Parse(m->config_json);
    if (!c) {
        dc_set_error(DC_ERR_FORMAT, "%s: not valid JSON", p);
        goto fail;
    }
    if (parse_config(m, c, p)) {
        cJSON_Delete(c);
        goto fail;
    }
    snprintf(p, sizeof p, "%s/generation_config.json", m->path);
    m->gen_config_json = read_text(p, true);
    dc_clear_error();

    dc_llm_config *g = &m->cfg;
    m->ctx = o.max_context > 0 ? o.max_context : g->max_positions < 4096 ? g->max_positions : 4096;
    if (m->ctx > g->max_positions && g->arch == DC_LLM_GPT2) m->ctx = g->max_positions; /* learned positions */
    m->layers = calloc((size_t)g->n_layers, sizeof *m->layers);
    if (!m->layers) {
        cJSON_Delete(c);
        dc_set_error(DC_ERR_OOM, "llm: out of memory");
        goto fail;
    }
    dc_status st = open_weights(m);
    if (!st) st = g->arch == DC_LLM_GPT2 ? load_gpt2(m, o.keep_16bit) : load_llama(m, o.keep_16bit);
    if (!st && g->arch == DC_LLM_LLAMA) st = build_rope(m, c, "config.json");
    cJSON_Delete(c);
    if (st) goto fail;
    g->weight_dtype = ((dc_tensor *)m->held[0])->dtype;
    g->n_params = count_params(m);

    m->tok = dc_tokenizer_load(m->path);
    if (!m->tok) goto fail;

    /* the KV cache: calloc'd so untouched positions cost no memory */
    int64_t d = g->hidden_size, hd = g->head_dim, H = g->n_heads, KV = g->n_kv_heads, I = g->intermediate_size;
    m->kv = calloc((size_t)(g->n_layers * 2 * KV * m->ctx * hd), sizeof(float));
    int64_t C = m->ctx < LLM_CHUNK ? m->ctx : LLM_CHUNK;
    int64_t qkvw = H * hd + 2 * KV * hd;
    int64_t maxout = 3 * d > I ? 3 * d : I;
    if (qkvw > maxout) maxout = qkvw;
    if (H * hd > maxout) maxout = H * hd;
    int T = dc__llm_threads();
    m->threads = T;
    bool any16 = o.keep_16bit;
    m->panel_floats = any16 ? (1 << 20) : 0;
    if (any16 && m->panel_floats < 2 * (d > I ? d : I)) m->panel_floats = 2 * (d > I ? d : I);
    m->x = calloc((size_t)(C * d), 4);
    m->a = calloc((size_t)(C * (d > H * hd ? d : H * hd)), 4);
    m->qkv = calloc((size_t)(C * qkvw), 4);
    m->att = calloc((size_t)(C * H * hd), 4);
    m->mlp = calloc((size_t)(C * I), 4);
    m->mlp2 = calloc((size_t)(C * I), 4);
    m->scores = calloc((size_t)(m->ctx * (C > H ? C : H)), 4);
    m->partials = calloc((size_t)(T * maxout), 4);
    m->partials_floats = maxout;
    m->panel = any16 ? calloc((size_t)m->panel_floats, 4) : NULL;
    m->logits = calloc((size_t)g->vocab_size, 4);
    m->embed_row = calloc((size_t)d, 4);
    if (!m->kv || !m->x || !m->a || !m->qkv || !m->att || !m->mlp || !m->mlp2 || !m->scores || !m->partials ||
        (any16 && !m->panel) || !m->logits || !m->embed_row) {
        dc_set_error(DC_ERR_OOM, "llm: out of memory for the KV cache (%lld positions) and buffers", (long long)m->ctx);
        goto fail;
    }
    dc_pool_pop(mark);
    return m;
fail:
    dc_pool_pop(mark);
    dc_llm_free(m);
    return NULL;
}

void dc_llm_free(dc_llm *m)
{
    if (!m) return;
    dc_status keep = dc_last_status();
    char msg[512];
    dc__strlcpy(msg, sizeof msg, dc_last_error());
    for (int i = 0; i < m->n_held; i++) dc_tensor_release(m->held[i]);
    free(m->held);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    for (int f = 0; f < m->n_files; f++) dc_safetensors_close(m->files[f]);
    for (int i = 0; i < m->n_maps; i++) munmap(m->maps[i].base, m->maps[i].len);
    free(m->maps);
    dc_tokenizer_free(m->tok);
    free(m->config_json);
    free(m->gen_config_json);
    free(m->layers);
    free(m->kv);
    free(m->x);
    free(m->a);
    free(m->qkv);
    free(m->att);
    free(m->mlp);
    free(m->mlp2);
    free(m->scores);
    free(m->partials);
    free(m->panel);
    free(m->logits);
    free(m->embed_row);
    free(m);
    if (keep) dc_set_error(keep, "%s", msg);
}

const dc_llm_config *dc_llm_get_config(const dc_llm *m) { return m ? &m->cfg : NULL; }
dc_tokenizer *dc_llm_tokenizer(dc_llm *m) { return m ? m->tok : NULL; }
const char *dc_llm_path(const dc_llm *m) { return m ? m->path : NULL; }
int64_t dc_llm_context(const dc_llm *m) { return m ? m->ctx : 0; }
int64_t dc_llm_cache_len(const dc_llm *m) { return m ? m->pos : 0; }

dc_status dc_llm_truncate(dc_llm *m, int64_t n)
{
    if (!m) return dc_set_error(DC_ERR_ARG, "llm_truncate: NULL model");
    if (n < 0 || n > m->pos)
        return dc_set_error(DC_ERR_ARG, "llm_truncate: %lld outside the cache (0..%lld)", (long long)n, (long long)m->pos);
    m->pos = n;
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Forward
 * ------------------------------------------------------------------------------------- */

void dc__llm_embed_row(const dc_llm *m, int32_t id, float *out)
{
    int64_t d = m->cfg.hidden_size;
    size_t es = dc_dtype_size(m->embed.dtype);
    dc__llm_to_f32((const char *)m->embed.data + (size_t)id * (size_t)d * es, m->embed.dtype, d, out);
}

void dc__llm_store_kv(dc_llm *m, int64_t l, const float *k, const float *v, int64_t ldk, int64_t n, int64_t pos0)
{
    int64_t hd = m->cfg.head_dim, KV = m->cfg.n_kv_heads;
    float *kc = llm_kcache(m, l), *vc = llm_vcache(m, l);
    for (int64_t r = 0; r < n; r++)
        for (int64_t h = 0; h < KV; h++) {
            memcpy(kc + (h * m->ctx + pos0 + r) * hd, k + r * ldk + h * hd, (size_t)hd * 4);
            memcpy(vc + (h * m->ctx + pos0 + r) * hd, v + r * ldk + h * hd, (size_t)hd * 4);
        }
}

const float *dc_llm_forward(dc_llm *m, const int32_t *ids, int64_t n, float *all_logits)
{
    if (!m || !ids || n <= 0) {
        dc_set_error(DC_ERR_ARG, "llm_forward: %s", !m ? "NULL model" : !ids ? "NULL ids" : "no tokens");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size) {
            dc_set_error(DC_ERR_ARG, "llm_forward: token id %d at %lld is outside the vocabulary [0, %lld)", ids[i],
                         (long long)i, (long long)m->cfg.vocab_size);
            return NULL;
        }
    if (m->pos + n > m->ctx) {
        dc_set_error(DC_ERR_ARG, "llm_forward: %lld cached + %lld new tokens exceed the context of %lld", (long long)m->pos,
                     (long long)n, (long long)m->ctx);
        return NULL;
    }
    /* the thread count may have grown since load: the GEMV partials need one row per thread */
    int T = dc__llm_threads();
    if (T > m->threads) {
        float *p = calloc((size_t)(T * m->partials_floats), 4);
        if (!p) {
            dc_set_error(DC_ERR_OOM, "llm: out of memory");
            return NULL;
        }
        free(m->partials);
        m->partials = p;
        m->threads = T;
    }
    bool prev = dc_set_grad_enabled(false);
    int64_t V = m->cfg.vocab_size, d = m->cfg.hidden_size, C = m->ctx < LLM_CHUNK ? m->ctx : LLM_CHUNK;
    const float *result = NULL;
    for (int64_t s = 0; s < n; s += C) {
        int64_t c = n - s < C ? n - s : C;
        dc_status st = m->cfg.arch == DC_LLM_GPT2 ? dc__llm_gpt2_block(m, ids + s, c) : dc__llm_llama_block(m, ids + s, c);
        if (st) goto done;
        m->pos += c;
        if (all_logits) {
            if (dc__llm_matmul(&m->head, m->a, c, NULL, all_logits + s * V, m->panel, m->panel_floats, m->partials)) goto done;
            if (s + c == n) memcpy(m->logits, all_logits + (n - 1) * V, (size_t)V * 4);
        } else if (s + c == n) {
            dc__llm_gemv(&m->head, m->a + (c - 1) * d, NULL, m->logits, m->partials);
        }
    }
    result = m->logits;
done:
    dc_set_grad_enabled(prev);
    return result;
}

/* ---------------------------------------------------------------------------------------
 * Prompts
 * ------------------------------------------------------------------------------------- */

static int64_t utf8_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n || (len == 2 && c < 0xc2)) return (int64_t)i;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return (int64_t)i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return (int64_t)i;
        i += len;
    }
    return -1;
}

dc_status dc_llm_encode(dc_llm *m, const char *text, int32_t **ids, size_t *n)
{
    if (!m || !text || !ids || !n) return dc_set_error(DC_ERR_ARG, "llm_encode: NULL argument");
    *ids = NULL;
    *n = 0;
    size_t len = strlen(text);
    int64_t bad = utf8_invalid_at((const unsigned char *)text, len);
    if (bad >= 0) return dc_set_error(DC_ERR_ARG, "the prompt is not valid UTF-8 (byte %lld)", (long long)bad);
    dc_encoding enc;
    if (dc_tokenizer_encode(m->tok, text, len, true, false, &enc)) return dc_last_status();
    size_t k = enc.n;
    int32_t *out = malloc((k ? k : 1) * sizeof *out);
    if (!out) {
        dc_encoding_free(&enc);
        return dc_set_error(DC_ERR_OOM, "llm_encode: out of memory");
    }
    if (k) memcpy(out, enc.ids, k * sizeof *out);
    dc_encoding_free(&enc);
    if (k == 0) {
        /* generate() starts an empty input from the BOS token */
        if (m->cfg.bos_id < 0) {
            free(out);
            return dc_set_error(DC_ERR_ARG, "empty prompt, and %s has no BOS token to start from", m->cfg.model_type);
        }
        out[0] = m->cfg.bos_id;
        k = 1;
    }
    *ids = out;
    *n = k;
    return DC_OK;
}
