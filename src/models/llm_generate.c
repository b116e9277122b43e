/* llm_generate.c: text generation with Hugging Face generate() semantics for one sequence
 * (greedy and sampling with HF's logits processors in HF's order, max_new_tokens /
 * max_length / min_new_tokens, EOS, stop strings), streaming of whole UTF-8 characters, and
 * next-word prediction (dc_llm_complete). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "llm_internal.h"
#include "util/util.h"

/* ---------------------------------------------------------------------------------------
 * Generation config
 * ------------------------------------------------------------------------------------- */

static void apply_json(dc_generation_config *g, const cJSON *o)
{
    const cJSON *v;
#define NUM(key) (v = cJSON_GetObjectItemCaseSensitive(o, key), cJSON_IsNumber(v))
    if (NUM("max_new_tokens")) g->max_new_tokens = (int64_t)v->valuedouble;
    if (NUM("max_length")) g->max_length = (int64_t)v->valuedouble;
    if (NUM("min_new_tokens")) g->min_new_tokens = (int64_t)v->valuedouble;
    if (NUM("temperature")) g->temperature = (float)v->valuedouble;
    if (NUM("top_k")) g->top_k = (int)v->valuedouble;
    if (NUM("top_p")) g->top_p = (float)v->valuedouble;
    if (NUM("repetition_penalty")) g->repetition_penalty = (float)v->valuedouble;
    if (NUM("pad_token_id")) g->pad_id = (int32_t)v->valuedouble;
#undef NUM
    v = cJSON_GetObjectItemCaseSensitive(o, "do_sample");
    if (cJSON_IsBool(v)) g->do_sample = cJSON_IsTrue(v);
    v = cJSON_GetObjectItemCaseSensitive(o, "use_cache");
    if (cJSON_IsBool(v)) g->use_cache = cJSON_IsTrue(v);
    v = cJSON_GetObjectItemCaseSensitive(o, "eos_token_id");
    if (cJSON_IsNumber(v)) {
        g->eos_ids[0] = (int32_t)v->valuedouble;
        g->n_eos = 1;
    } else if (cJSON_IsArray(v)) {
        int k = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) if (cJSON_IsNumber(e) && k < 8) g->eos_ids[k++] = (int32_t)e->valuedouble;
        g->n_eos = k;
    }
}

dc_generation_config dc_llm_generation_config(const dc_llm *m)
{
    /* transformers' GenerationConfig defaults */
    dc_generation_config g = {.max_new_tokens = -1, .max_length = 20, .min_new_tokens = 0, .do_sample = false,
                              .temperature = 1.0f, .top_k = 50, .top_p = 1.0f, .repetition_penalty = 1.0f,
                              .seed = 0, .n_eos = 0, .pad_id = -1, .use_cache = true};
    if (!m) return g;
    /* GenerationConfig.from_model_config takes the special ids from config.json... */
    for (int i = 0; i < m->cfg.n_eos; i++) g.eos_ids[i] = m->cfg.eos_ids[i];
    g.n_eos = m->cfg.n_eos;
    g.pad_id = m->cfg.pad_id;
    /* ...and generation_config.json, when there is one, replaces them */
    if (m->gen_config_json) {
        cJSON *o = cJSON_Parse(m->gen_config_json);
        if (o) apply_json(&g, o);
        cJSON_Delete(o);
    }
    return g;
}

void dc_llm_apply_pipeline_params(const dc_llm *m, dc_generation_config *cfg)
{
    if (!m || !cfg || !m->config_json) return;
    cJSON *o = cJSON_Parse(m->config_json);
    const cJSON *t = o ? cJSON_GetObjectItemCaseSensitive(o, "task_specific_params") : NULL;
    const cJSON *tg = cJSON_IsObject(t) ? cJSON_GetObjectItemCaseSensitive(t, "text-generation") : NULL;
    if (cJSON_IsObject(tg)) apply_json(cfg, tg);
    cJSON_Delete(o);
}

/* ---------------------------------------------------------------------------------------
 * Logits processors
 * ------------------------------------------------------------------------------------- */

/* The k-th largest of v[0..n) (k >= 1), by quickselect on a copy in tmp. */
static float kth_largest(const float *v, int64_t n, int64_t k, float *tmp)
{
    memcpy(tmp, v, (size_t)n * sizeof *tmp);
    int64_t lo = 0, hi = n - 1, want = k - 1; /* index in descending order */
    while (lo < hi) {
        float pivot = tmp[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (tmp[i] > pivot) i++;
            while (tmp[j] < pivot) j--;
            if (i <= j) {
                float t = tmp[i];
                tmp[i] = tmp[j];
                tmp[j] = t;
                i++;
                j--;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else break;
    }
    return tmp[want];
}

typedef struct scored { float s; int32_t id; } scored;
static int cmp_scored_asc(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* HF's RepetitionPenaltyLogitsProcessor, then (sampling) TemperatureLogitsWarper,
 * TopKLogitsWarper, TopPLogitsWarper, applied to scores in place. */
static void process_scores(float *scores, int64_t V, const int32_t *prev, size_t n_prev, const dc_generation_config *cfg,
                           int64_t n_new, float *tmp, int32_t *mark)
{
    if (cfg->repetition_penalty != 1.0f && n_prev) {
        /* gather then scatter: each distinct id is penalised once */
        float p = cfg->repetition_penalty;
        for (size_t i = 0; i < n_prev; i++) {
            int32_t id = prev[i];
            if (id < 0 || id >= V || mark[id]) continue;
            mark[id] = 1;
            scores[id] = scores[id] < 0 ? scores[id] * p : scores[id] / p;
        }
        for (size_t i = 0; i < n_prev; i++)
            if (prev[i] >= 0 && prev[i] < V) mark[prev[i]] = 0;
    }
    if (n_new < cfg->min_new_tokens)
        for (int e = 0; e < cfg->n_eos; e++)
            if (cfg->eos_ids[e] >= 0 && cfg->eos_ids[e] < V) scores[cfg->eos_ids[e]] = -INFINITY;
    if (!cfg->do_sample || cfg->temperature <= 0.0f) return;
    if (cfg->temperature != 1.0f)
        for (int64_t i = 0; i < V; i++) scores[i] /= cfg->temperature;
    if (cfg->top_k > 0) {
        int64_t k = cfg->top_k < V ? cfg->top_k : V;
        float thr = kth_largest(scores, V, k, tmp);
        for (int64_t i = 0; i < V; i++)
            if (scores[i] < thr) scores[i] = -INFINITY;
    }
    if (cfg->top_p < 1.0f) {
        /* sort ascending, cumulative softmax, drop the low tail whose mass is <= 1 - top_p
         * (always keeping the most likely token). -inf entries have probability 0, so they
         * would be dropped anyway: only finite scores are sorted. */
        scored *sv = (scored *)tmp; /* tmp holds 2V floats = V scored pairs */
        int64_t k = 0;
        float mx = -INFINITY;
        for (int64_t i = 0; i < V; i++)
            if (scores[i] > -INFINITY) {
                sv[k].s = scores[i];
                sv[k].id = (int32_t)i;
                k++;
                mx = scores[i] > mx ? scores[i] : mx;
            }
        qsort(sv, (size_t)k, sizeof *sv, cmp_scored_asc);
        float sum = 0;
        for (int64_t i = 0; i < k; i++) sum += expf(sv[i].s - mx);
        float cum = 0, lim = 1.0f - cfg->top_p;
        for (int64_t i = 0; i + 1 < k; i++) {
            cum += expf(sv[i].s - mx) / sum;
            if (cum <= lim) scores[sv[i].id] = -INFINITY;
        }
    }
}

static void softmax_all(const float *s, int64_t V, float *p)
{
    float mx = -INFINITY;
    for (int64_t i = 0; i < V; i++) mx = s[i] > mx ? s[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < V; i++) {
        p[i] = s[i] > -INFINITY ? expf(s[i] - mx) : 0.0f;
        sum += p[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < V; i++) p[i] *= inv;
}

void dc_llm_next_token_probs(const float *logits, int64_t vocab, const int32_t *prev, size_t n_prev,
                             const dc_generation_config *cfg, float *probs, float *scratch, int32_t *iscratch)
{
    /* scratch: the processed scores in [0, V), the top-k / top-p work area in [V, 3V) */
    float *s = scratch;
    memcpy(s, logits, (size_t)vocab * sizeof *s);
    memset(iscratch, 0, (size_t)vocab * sizeof *iscratch);
    process_scores(s, vocab, prev, n_prev, cfg, (int64_t)1 << 40, scratch + vocab, iscratch);
    softmax_all(s, vocab, probs);
}

static int32_t argmax(const float *s, int64_t V)
{
    int64_t best = 0;
    for (int64_t i = 1; i < V; i++)
        if (s[i] > s[best]) best = i;
    return (int32_t)best;
}

/* ---------------------------------------------------------------------------------------
 * Streaming detokenisation: decode ids[prefix..] and ids[prefix..read), emit the difference
 * once it no longer ends in an incomplete character (U+FFFD from a partial byte sequence).
 * The window starts a few prompt tokens back, so SentencePiece's leading space is right.
 * ------------------------------------------------------------------------------------- */

typedef struct streamer {
    dc_tokenizer *tok;
    size_t prefix, read;
    dc_llm_stream_fn fn;
    void *ctx;
    bool stopped;
} streamer;

static bool ends_with_fffd(const char *s)
{
    size_t n = strlen(s);
    return n >= 3 && (unsigned char)s[n - 3] == 0xEF && (unsigned char)s[n - 2] == 0xBF && (unsigned char)s[n - 1] == 0xBD;
}

static void stream_step(streamer *st, const int32_t *ids, size_t n, bool final)
{
    if (!st->fn || st->stopped) return;
    char *a = dc_tokenizer_decode(st->tok, ids + st->prefix, st->read - st->prefix, true);
    char *b = dc_tokenizer_decode(st->tok, ids + st->prefix, n - st->prefix, true);
    if (a && b) {
        size_t la = strlen(a), lb = strlen(b);
        if (lb > la && (final || !ends_with_fffd(b)) && !strncmp(a, b, la)) {
            if (!st->fn(b + la, lb - la, st->ctx)) st->stopped = true;
            st->prefix = st->read;
            st->read = n;
        } else if (lb > la && strncmp(a, b, la) && (final || !ends_with_fffd(b))) {
            /* the tokenizer re-spelled the earlier text (rare): emit only what is new */
            if (!st->fn(b + (la < lb ? la : lb), lb - la, st->ctx)) st->stopped = true;
            st->prefix = st->read;
            st->read = n;
        }
    }
    free(a);
    free(b);
}

/* ---------------------------------------------------------------------------------------
 * generate()
 * ------------------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool is_eos(const dc_generation_config *cfg, int32_t id)
{
    for (int e = 0; e < cfg->n_eos; e++)
        if (cfg->eos_ids[e] == id) return true;
    return false;
}

/* Did the last token complete one of the stop strings? The text of the tail of the sequence
 * (window tokens back) is decoded with and without the new token; a stop string that occurs in
 * the longer text and ends past the shorter one was completed now (HF StopStringCriteria). */
static bool stop_string_hit(dc_tokenizer *tok, const int32_t *ids, size_t n, size_t n_prompt, const dc_generation_config *cfg)
{
    if (!cfg->n_stop_strings || n <= n_prompt) return false;
    size_t maxlen = 0;
    for (int i = 0; i < cfg->n_stop_strings; i++)
        if (cfg->stop_strings[i] && strlen(cfg->stop_strings[i]) > maxlen) maxlen = strlen(cfg->stop_strings[i]);
    if (!maxlen) return false;
    /* every token spells at least one byte... except special and partial-byte ones: leave
     * generous room */
    size_t window = 2 * maxlen + 8, start = n > window ? n - window : 0;
    char *a = dc_tokenizer_decode(tok, ids + start, n - 1 - start, false);
    char *b = dc_tokenizer_decode(tok, ids + start, n - start, false);
    bool hit = false;
    if (a && b) {
        size_t la = strlen(a);
        for (int i = 0; i < cfg->n_stop_strings && !hit; i++) {
            const char *s = cfg->stop_strings[i];
            if (!s || !*s) continue;
            size_t ls = strlen(s);
            for (const char *p = strstr(b, s); p && !hit; p = strstr(p + 1, s))
                if ((size_t)(p - b) + ls > la) hit = true;
        }
    }
    free(a);
    free(b);
    return hit;
}

void dc_generation_free(dc_generation *g)
{
    if (!g) return;
    free(g->ids);
    free(g->text);
    memset(g, 0, sizeof *g);
}

dc_status dc_llm_generate(dc_llm *m, const int32_t *prompt, size_t n, const dc_generation_config *cfg,
                          dc_llm_stream_fn stream, void *ctx, dc_generation *out)
{
    if (!out) return dc_set_error(DC_ERR_ARG, "generate: NULL output");
    memset(out, 0, sizeof *out);
    if (!m || !prompt || !cfg) return dc_set_error(DC_ERR_ARG, "generate: NULL argument");
    if (n == 0) return dc_set_error(DC_ERR_ARG, "generate: empty prompt (use dc_llm_encode, which starts from BOS)");
    if (cfg->do_sample && cfg->temperature < 0.0f)
        return dc_set_error(DC_ERR_ARG, "generate: temperature %g must be >= 0", (double)cfg->temperature);
    if (cfg->do_sample && (cfg->top_p <= 0.0f || cfg->top_p > 1.0f))
        return dc_set_error(DC_ERR_ARG, "generate: top_p %g must be in (0, 1]", (double)cfg->top_p);
    if (cfg->repetition_penalty <= 0.0f)
        return dc_set_error(DC_ERR_ARG, "generate: repetition_penalty %g must be > 0", (double)cfg->repetition_penalty);
    int64_t V = m->cfg.vocab_size, ctxn = m->ctx;
    int64_t max_new = cfg->max_new_tokens >= 0 ? cfg->max_new_tokens : cfg->max_length - (int64_t)n;
    if (max_new < 1) max_new = 1; /* generate() checks its stopping criteria after a step */

    /* room in the context: keep at least min(max_new, ctx/4) positions free for new tokens,
     * cutting the prompt from the left (keeping a leading BOS) when it is too long */
    int64_t room = max_new < ctxn / 4 ? max_new : ctxn / 4;
    if (room < 1) room = 1;
    const int32_t *p = prompt;
    size_t np = n;
    bool keep_bos = m->cfg.bos_id >= 0 && prompt[0] == m->cfg.bos_id;
    int32_t *ids = NULL;
    size_t cap = 0;
    if ((int64_t)np + room > ctxn) {
        size_t keep = (size_t)(ctxn - room);
        out->truncated = (int64_t)(np - keep);
        cap = keep + (size_t)max_new + 1;
        ids = malloc(cap * sizeof *ids);
        if (!ids) return dc_set_error(DC_ERR_OOM, "generate: out of memory");
        if (keep_bos && keep > 1) {
            ids[0] = prompt[0];
            memcpy(ids + 1, prompt + (np - keep + 1), (keep - 1) * sizeof *ids);
        } else {
            memcpy(ids, prompt + (np - keep), keep * sizeof *ids);
        }
        np = keep;
    } else {
        cap = np + (size_t)max_new + 1;
        ids = malloc(cap * sizeof *ids);
        if (!ids) return dc_set_error(DC_ERR_OOM, "generate: out of memory");
        memcpy(ids, p, np * sizeof *ids);
    }
    if ((int64_t)np + max_new > ctxn) max_new = ctxn - (int64_t)np;

    float *scores = malloc((size_t)V * 3 * sizeof(float));
    int32_t *mark = calloc((size_t)V, sizeof *mark);
    if (!scores || !mark) {
        free(ids);
        free(scores);
        free(mark);
        return dc_set_error(DC_ERR_OOM, "generate: out of memory");
    }
    float *tmp = scores + V; /* 2V floats for top-k / top-p */
    dc_rng rng;
    dc_rng_seed(&rng, cfg->seed);
    streamer st = {m->tok, np > 5 ? np - 5 : 0, np, stream, ctx, false};
    size_t len = np;
    dc_status status = DC_OK;
    out->reason = DC_STOP_LENGTH;

    double t0 = now_s(), t1 = t0;
    dc_llm_truncate(m, 0);
    const float *logits = dc_llm_forward(m, ids, (int64_t)len, NULL);
    for (int64_t step = 0; logits && step < max_new; step++) {
        if (step == 0) t1 = now_s();
        memcpy(scores, logits, (size_t)V * sizeof *scores);
        process_scores(scores, V, ids, len, cfg, step, tmp, mark);
        int32_t next;
        if (!cfg->do_sample || cfg->temperature <= 0.0f) {
            next = argmax(scores, V);
        } else {
            /* multinomial over softmax(scores), by inverse CDF on one uniform draw */
            softmax_all(scores, V, tmp);
            double u = dc_rng_uniform_f64(&rng), c = 0;
            next = -1;
            int32_t last = 0;
            for (int64_t i = 0; i < V; i++) {
                if (tmp[i] <= 0) continue;
                last = (int32_t)i;
                c += tmp[i];
                if (u < c) {
                    next = (int32_t)i;
                    break;
                }
            }
            if (next < 0) next = last; /* rounding left u past the total */
        }
        ids[len++] = next;
        stream_step(&st, ids, len, false);
        if (st.stopped) {
            out->reason = DC_STOP_CALLBACK;
            break;
        }
        if (is_eos(cfg, next)) {
            out->reason = DC_STOP_EOS;
            break;
        }
        if (stop_string_hit(m->tok, ids, len, np, cfg)) {
            out->reason = DC_STOP_STRING;
            break;
        }
        if (step + 1 == max_new) break;
        if (cfg->use_cache) {
            logits = dc_llm_forward(m, &next, 1, NULL);
        } else {
            /* no cache: the whole sequence again, as generate(use_cache=False) */
            dc_llm_truncate(m, 0);
            logits = dc_llm_forward(m, ids, (int64_t)len, NULL);
        }
    }
    if (!logits) status = dc_last_status();
    double t2 = now_s();
    out->prompt_seconds = t1 - t0;
    out->decode_seconds = t2 - t1;
    if (!status) stream_step(&st, ids, len, true);
    free(scores);
    free(mark);
    out->ids = ids;
    out->n = len;
    out->n_prompt = np;
    if (!status) {
        /* the new text: decode(all) minus decode(prompt) when that is a prefix (HF pipeline) */
        char *all = dc_tokenizer_decode(m->tok, ids, len, true);
        char *pre = dc_tokenizer_decode(m->tok, ids, np, true);
        if (all && pre && !strncmp(all, pre, strlen(pre))) {
            out->text = strdup(all + strlen(pre));
        } else {
            out->text = dc_tokenizer_decode(m->tok, ids + np, len - np, true);
        }
        free(all);
        free(pre);
        if (!out->text) status = dc_last_status() ? dc_last_status() : dc_set_error(DC_ERR_OOM, "generate: out of memory");
    }
    if (status) dc_generation_free(out);
    return status;
}

/* ---------------------------------------------------------------------------------------
 * Next-word prediction
 * ------------------------------------------------------------------------------------- */

/* The text that ids[np..n) add after ids[0..np), decoded in context (prompt tail included so
 * that SentencePiece and byte-level spaces come out right). */
static char *continuation(dc_tokenizer *tok, const int32_t *ids, size_t np, size_t n)
{
    size_t start = np > 5 ? np - 5 : 0;
    char *a = dc_tokenizer_decode(tok, ids + start, np - start, true);
    char *b = dc_tokenizer_decode(tok, ids + start, n - start, true);
    char *r = NULL;
    if (a && b) {
        size_t la = strlen(a);
        r = strdup(!strncmp(a, b, la) ? b + la : b);
    }
    free(a);
    free(b);
    return r;
}

static bool model_eos(const dc_llm *m, int32_t id)
{
    for (int e = 0; e < m->cfg.n_eos; e++)
        if (m->cfg.eos_ids[e] == id) return true;
    return false;
}

static int cmp_word_desc(const void *a, const void *b)
{
    const dc_next_word *x = a, *y = b;
    return x->prob > y->prob ? -1 : x->prob < y->prob;
}

void dc_completion_free(dc_completion *c)
{
    if (!c) return;
    for (int i = 0; i < c->n_tokens; i++) free(c->tokens[i].text);
    for (int i = 0; i < c->n_words; i++) free(c->words[i].text);
    free(c->tokens);
    free(c->words);
    memset(c, 0, sizeof *c);
}

static char *trim_dup(const char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    char *r = malloc(n + 1);
    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}

#define WORD_MAX_TOKENS 12

dc_status dc_llm_complete(dc_llm *m, const char *text, int k, dc_completion *out)
{
    if (!out) return dc_set_error(DC_ERR_ARG, "complete: NULL output");
    memset(out, 0, sizeof *out);
    if (!m || !text) return dc_set_error(DC_ERR_ARG, "complete: NULL argument");
    if (k < 1 || k > 100) return dc_set_error(DC_ERR_ARG, "complete: k = %d outside 1..100", k);
    int32_t *prompt = NULL;
    size_t np = 0;
    if (dc_llm_encode(m, text, &prompt, &np)) return dc_last_status();
    int64_t V = m->cfg.vocab_size;
    if (k > V) k = (int)V;
    /* long prompts keep their last tokens, leaving room for the word expansion */
    int64_t room = WORD_MAX_TOKENS + 1;
    if ((int64_t)np + room > m->ctx) {
        size_t keep = (size_t)(m->ctx - room);
        memmove(prompt, prompt + (np - keep), keep * sizeof *prompt);
        np = keep;
    }
    size_t cap = np + WORD_MAX_TOKENS + 1;
    int32_t *seq = malloc(cap * sizeof *seq);
    float *probs = malloc((size_t)V * sizeof *probs), *p2 = malloc((size_t)V * sizeof *p2);
    out->tokens = calloc((size_t)k, sizeof *out->tokens);
    out->words = calloc((size_t)k, sizeof *out->words);
    dc_status st = DC_OK;
    if (!seq || !probs || !p2 || !out->tokens || !out->words) {
        st = dc_set_error(DC_ERR_OOM, "complete: out of memory");
        goto done;
    }
    memcpy(seq, prompt, np * sizeof *seq);
    dc_llm_truncate(m, 0);
    const float *lg = dc_llm_forward(m, prompt, (int64_t)np, NULL);
    if (!lg) {
        st = dc_last_status();
        goto done;
    }
    softmax_all(lg, V, probs);
    /* top k tokens by repeated selection (k is small) */
    memcpy(p2, probs, (size_t)V * sizeof *p2);
    for (int i = 0; i < k; i++) {
        int32_t best = argmax(p2, V);
        out->tokens[i].id = best;
        out->tokens[i].prob = probs[best];
        p2[best] = -1.0f;
        seq[np] = best;
        out->tokens[i].text = continuation(m->tok, seq, np, np + 1);
        if (!out->tokens[i].text) {
            st = dc_last_status() ? dc_last_status() : dc_set_error(DC_ERR_OOM, "complete: out of memory");
            goto done;
        }
        out->n_tokens = i + 1;
    }
    /* words: each top token extended greedily up to the next whitespace-led token */
    for (int i = 0; i < k; i++) {
        size_t n = np;
        seq[n++] = out->tokens[i].id;
        double prob = out->tokens[i].prob;
        if (!dc_tokenizer_is_special(m->tok, out->tokens[i].id)) {
            char *cur = continuation(m->tok, seq, np, n);
            if (dc_llm_truncate(m, (int64_t)np)) {
                free(cur);
                st = dc_last_status();
                goto done;
            }
            const float *l = dc_llm_forward(m, seq + n - 1, 1, NULL);
            while (l && cur && n < np + WORD_MAX_TOKENS) {
                int32_t nx = argmax(l, V);
                if (dc_tokenizer_is_special(m->tok, nx) || model_eos(m, nx))
                    break;
                seq[n] = nx;
                char *ext = continuation(m->tok, seq, np, n + 1);
                if (!ext) break;
                size_t lc = strlen(cur);
                const char *add = !strncmp(ext, cur, lc) ? ext + lc : ext;
                /* the next token starts a new word (whitespace-led), or ends this one with
                 * punctuation ("time," -> "time") */
                bool has_alnum = false;
                for (const char *q = cur; *q; q++) has_alnum |= isalnum((unsigned char)*q) || (unsigned char)*q >= 0x80;
                if (!*add || isspace((unsigned char)*add) || (has_alnum && ispunct((unsigned char)*add))) {
                    free(ext);
                    break;
                }
                /* softmax probability of nx */
                float mx = l[nx];
                double sum = 0;
                for (int64_t j = 0; j < V; j++) sum += exp((double)(l[j] - mx));
                prob *= 1.0 / sum;
                free(cur);
                cur = ext;
                n++;
                l = dc_llm_forward(m, &nx, 1, NULL);
            }
            free(cur);
            if (!l) {
                st = dc_last_status();
                goto done;
            }
        }
        char *w = continuation(m->tok, seq, np, n);
        char *t = w ? trim_dup(w) : NULL;
        free(w);
        if (!t) {
            st = dc_last_status() ? dc_last_status() : dc_set_error(DC_ERR_OOM, "complete: out of memory");
            goto done;
        }
        int j = 0;
        for (; j < out->n_words; j++)
            if (!strcmp(out->words[j].text, t)) break;
        if (j < out->n_words) {
            out->words[j].prob += prob;
            free(t);
        } else {
            out->words[out->n_words].text = t;
            out->words[out->n_words].prob = prob;
            out->n_words++;
        }
    }
    qsort(out->words, (size_t)out->n_words, sizeof *out->words, cmp_word_desc);
done:
    free(prompt);
    free(seq);
    free(probs);
    free(p2);
    if (st) dc_completion_free(out);
    return st;
}
