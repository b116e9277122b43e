/* summarize.c: the encoder-decoder model object (loading a Hugging Face folder, dispatching to
 * bart.c / t5.c), the public encode / logits / generate entry points, the generation settings
 * generate() and pipeline("summarization") would use, and the summarization pipeline itself:
 * prefix, tokenize, truncate (with a warning) or chunk long inputs, generate, decode. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tokenizers/tok_internal.h"
#include "summarize_internal.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- loading -------------------------------------------------------------------------------- */

static bool exists_in(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *fp = fopen(p, "rb");
    if (fp) fclose(fp);
    return fp != NULL;
}

dc_s2s_model *dc_s2s_load(const char *dir, bool load_tokenizer)
{
    if (!dir || !*dir) {
        dc_set_error(DC_ERR_ARG, "summarize: no model folder given");
        return NULL;
    }
    dc_s2s_model *m = calloc(1, sizeof *m);
    if (!m || !(m->dir = strdup(dir))) {
        free(m);
        dc_set_error(DC_ERR_OOM, "out of memory");
        return NULL;
    }
    m->hf = dc__hf_folder_open(dir);
    if (!m->hf) goto fail;
    const char *type = dc__json_str(m->hf->config, "model_type", "");
    dc_status st;
    if (strcmp(type, "bart") == 0) {
        m->arch = DC__ARCH_BART;
        st = dc__bart_setup(m);
    } else if (strcmp(type, "t5") == 0) {
        m->arch = DC__ARCH_T5;
        st = dc__t5_setup(m);
    } else {
        st = dc_set_error(DC_ERR_UNSUPPORTED, "%s: model_type '%s' is not a summarization model deepc runs (bart, t5)",
                          dir, type);
    }
    if (st) goto fail;
    if (load_tokenizer) {
        if (exists_in(dir, "tokenizer.json") || exists_in(dir, "vocab.json")) {
            m->tok = dc_tokenizer_load(dir);
        } else if (exists_in(dir, "spiece.model")) {
            char p[4096];
            snprintf(p, sizeof p, "%s/spiece.model", dir);
            m->tok = dc_tokenizer_load(p);
        } else {
            dc_set_error(DC_ERR_IO, "%s has no tokenizer (tokenizer.json, vocab.json + merges.txt or spiece.model)",
                         dir);
        }
        if (!m->tok) goto fail;
        /* the summarization pipeline decodes with clean_up_tokenization_spaces=False */
        m->tok->cleanup_spaces = false;
    }
    return m;
fail:
    dc_s2s_free(m);
    return NULL;
}

void dc_s2s_free(dc_s2s_model *m)
{
    if (!m) return;
    dc_tokenizer_free(m->tok);
    dc__hf_folder_close(m->hf);
    free(m->enc);
    free(m->dec);
    free(m->dir);
    free(m);
}

const char *dc_s2s_arch(const dc_s2s_model *m) { return m->arch == DC__ARCH_BART ? "bart" : "t5"; }
int64_t dc_s2s_vocab_size(const dc_s2s_model *m) { return m->vocab; }
int64_t dc_s2s_d_model(const dc_s2s_model *m) { return m->d_model; }
int64_t dc_s2s_max_source_length(const dc_s2s_model *m) { return m->max_source; }
struct dc_tokenizer *dc_s2s_tokenizer(dc_s2s_model *m) { return m->tok; }

/* ---- low-level entry points ------------------------------------------------------------------- */

static dc_status check_ids(const dc_s2s_model *m, const int32_t *ids, int64_t n, const char *what)
{
    if (!ids || n <= 0) return dc_set_error(DC_ERR_ARG, "summarize: empty %s", what);
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->vocab)
            return dc_set_error(DC_ERR_ARG, "summarize: %s id %d at %lld is outside the vocabulary (%lld)", what,
                                ids[i], (long long)i, (long long)m->vocab);
    if (m->arch == DC__ARCH_BART && n > m->max_source)
        return dc_set_error(DC_ERR_ARG, "summarize: %s of %lld tokens exceeds max_position_embeddings %lld", what,
                            (long long)n, (long long)m->max_source);
    return DC_OK;
}

static dc__s2s_state *encode_state(dc_s2s_model *m, const int32_t *src, int64_t n, int beams, int64_t max_len)
{
    if (check_ids(m, src, n, "source")) return NULL;
    dc_init();
    dc__s2s_state *st = dc__s2s_state_new(m, n, beams, max_len < 2 ? 2 : max_len);
    if (!st) return NULL;
    if (m->encode(m, st, src, n)) {
        dc__s2s_state_free(st);
        return NULL;
    }
    return st;
}

dc_status dc_s2s_encode(dc_s2s_model *m, const int32_t *src, int64_t n, float *out)
{
    dc__s2s_state *st = encode_state(m, src, n, 1, 2);
    if (!st) return dc_last_status();
    memcpy(out, st->enc, (size_t)(n * m->d_model) * sizeof(float));
    dc__s2s_state_free(st);
    return DC_OK;
}

dc_status dc_s2s_decoder_logits(dc_s2s_model *m, const int32_t *src, int64_t n_src, const int32_t *dec,
                                int64_t n_dec, float *logits)
{
    if (check_ids(m, dec, n_dec, "decoder input")) return dc_last_status();
    dc__s2s_state *st = encode_state(m, src, n_src, 1, n_dec);
    if (!st) return dc_last_status();
    for (int64_t t = 0; t < n_dec; t++) {
        st->slot[t] = 0;
        m->step(m, st, dec + t, t, logits + t * m->vocab);
    }
    dc__s2s_state_free(st);
    return DC_OK;
}

dc_status dc_s2s_generate(dc_s2s_model *m, const int32_t *src, int64_t n_src, const dc_generate_config *cfg,
                          dc_generate_progress_fn progress, void *pctx, int32_t **out, int64_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    int max_length, min_length;
    dc__gen_lengths(cfg, &max_length, &min_length);
    if (cfg->num_beams < 1 || cfg->num_beams > 64)
        return dc_set_error(DC_ERR_ARG, "generate: num_beams %d is outside 1..64", cfg->num_beams);
    if (max_length < 1 || max_length > 1 << 20)
        return dc_set_error(DC_ERR_ARG, "generate: max_length %d is out of range", max_length);
    if (cfg->decoder_start_token_id < 0 || cfg->decoder_start_token_id >= m->vocab)
        return dc_set_error(DC_ERR_ARG, "generate: decoder_start_token_id %d is not set or outside the vocabulary",
                            cfg->decoder_start_token_id);
    if (cfg->num_beams > 1 && cfg->do_sample)
        return dc_set_error(DC_ERR_UNSUPPORTED, "generate: beam sampling (do_sample with num_beams > 1) is not supported");
    if (cfg->num_beams > 1 && cfg->n_eos == 0)
        return dc_set_error(DC_ERR_ARG, "generate: beam search needs an eos_token_id");
    if (m->arch == DC__ARCH_BART && max_length > m->max_source)
        return dc_set_error(DC_ERR_ARG, "generate: max_length %d exceeds max_position_embeddings %lld", max_length,
                            (long long)m->max_source);
    dc__s2s_state *st = encode_state(m, src, n_src, cfg->num_beams, max_length);
    if (!st) return dc_last_status();
    dc_status s = dc__generate(m, st, cfg, progress, pctx, out, n_out);
    dc__s2s_state_free(st);
    return s;
}

/* ---- generation settings ---------------------------------------------------------------------- */

static bool has_num(const cJSON *o, const char *k)
{
    return o && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* Applies the generation keys present in `o` (null values are "unset" and leave the field). */
static void apply_gen(dc_generate_config *c, const cJSON *o, bool strict_ids)
{
    if (!o) return;
    if (has_num(o, "max_length")) c->max_length = (int)dc__json_int(o, "max_length", 20);
    if (has_num(o, "min_length")) c->min_length = (int)dc__json_int(o, "min_length", 0);
    if (has_num(o, "max_new_tokens")) c->max_new_tokens = (int)dc__json_int(o, "max_new_tokens", -1);
    if (has_num(o, "min_new_tokens")) c->min_new_tokens = (int)dc__json_int(o, "min_new_tokens", -1);
    if (has_num(o, "num_beams")) c->num_beams = (int)dc__json_int(o, "num_beams", 1);
    if (has_num(o, "length_penalty")) c->length_penalty = (float)dc__json_num(o, "length_penalty", 1);
    if (has_num(o, "no_repeat_ngram_size")) c->no_repeat_ngram_size = (int)dc__json_int(o, "no_repeat_ngram_size", 0);
    if (has_num(o, "repetition_penalty")) c->repetition_penalty = (float)dc__json_num(o, "repetition_penalty", 1);
    if (has_num(o, "temperature")) c->temperature = (float)dc__json_num(o, "temperature", 1);
    if (has_num(o, "top_k")) c->top_k = (int)dc__json_int(o, "top_k", 50);
    if (has_num(o, "top_p")) c->top_p = (float)dc__json_num(o, "top_p", 1);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "do_sample");
    if (cJSON_IsBool(v)) c->do_sample = cJSON_IsTrue(v);
    v = cJSON_GetObjectItemCaseSensitive(o, "early_stopping");
    if (cJSON_IsBool(v)) c->early_stopping = cJSON_IsTrue(v) ? DC_EARLY_STOP_TRUE : DC_EARLY_STOP_FALSE;
    if (cJSON_IsString(v) && strcmp(v->valuestring, "never") == 0) c->early_stopping = DC_EARLY_STOP_NEVER;
    (void)strict_ids;
    if (has_num(o, "decoder_start_token_id")) c->decoder_start_token_id = (int32_t)dc__json_int(o, "decoder_start_token_id", -1);
    if (has_num(o, "bos_token_id")) c->bos_token_id = (int32_t)dc__json_int(o, "bos_token_id", -1);
    if (has_num(o, "forced_bos_token_id")) c->forced_bos_token_id = (int32_t)dc__json_int(o, "forced_bos_token_id", -1);
    if (has_num(o, "forced_eos_token_id")) c->forced_eos_token_id = (int32_t)dc__json_int(o, "forced_eos_token_id", -1);
    v = cJSON_GetObjectItemCaseSensitive(o, "forced_eos_token_id");
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0 && cJSON_IsNumber(cJSON_GetArrayItem(v, 0)))
        c->forced_eos_token_id = (int32_t)cJSON_GetArrayItem(v, 0)->valuedouble;
    if (has_num(o, "pad_token_id")) c->pad_token_id = (int32_t)dc__json_int(o, "pad_token_id", -1);
    v = cJSON_GetObjectItemCaseSensitive(o, "eos_token_id");
    if (cJSON_IsNumber(v)) {
        c->n_eos = 1;
        c->eos_token_id[0] = (int32_t)v->valuedouble;
    } else if (cJSON_IsArray(v)) {
        c->n_eos = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) if (cJSON_IsNumber(e) && c->n_eos < DC_GEN_MAX_EOS) c->eos_token_id[c->n_eos++] =
            (int32_t)e->valuedouble;
    }
}

dc_status dc_s2s_generation_config(const dc_s2s_model *m, const char *task, dc_generate_config *out)
{
    dc_generate_config c = dc_generate_config_default();
    /* from_pretrained: generation_config.json, else GenerationConfig.from_model_config(config) */
    apply_gen(&c, m->hf->gen_config ? m->hf->gen_config : m->hf->config, true);
    if (task) {
        const cJSON *tsp = cJSON_GetObjectItemCaseSensitive(m->hf->config, "task_specific_params");
        const cJSON *tp = tsp ? cJSON_GetObjectItemCaseSensitive(tsp, task) : NULL;
        if (cJSON_IsObject(tp)) apply_gen(&c, tp, false);
    }
    /* _prepare_special_tokens: decoder start falls back to bos; pad to the first eos */
    if (c.decoder_start_token_id < 0) {
        int64_t v = dc__json_int(m->hf->config, "decoder_start_token_id", -1);
        c.decoder_start_token_id = (int32_t)(v >= 0 ? v : c.bos_token_id);
    }
    if (c.n_eos == 0) {
        int64_t v = dc__json_int(m->hf->config, "eos_token_id", -1);
        if (v >= 0) {
            c.n_eos = 1;
            c.eos_token_id[0] = (int32_t)v;
        }
    }
    if (c.pad_token_id < 0) c.pad_token_id = (int32_t)dc__json_int(m->hf->config, "pad_token_id", -1);
    if (c.pad_token_id < 0 && c.n_eos) c.pad_token_id = c.eos_token_id[0];
    *out = c;
    return DC_OK;
}

/* ---- pipeline ------------------------------------------------------------------------------------ */

dc_status dc_summarize_options_for(const dc_s2s_model *m, dc_summarize_options *out)
{
    memset(out, 0, sizeof *out);
    out->chunk_overlap = 64;
    return dc_s2s_generation_config(m, "summarization", &out->gen);
}

/* config.prefix as the pipeline sees it after task_specific_params were merged into the config;
 * T5 without one gets "summarize: " (t5-small's own task_specific_params carry it). */
static const char *model_prefix(const dc_s2s_model *m)
{
    const cJSON *tsp = cJSON_GetObjectItemCaseSensitive(m->hf->config, "task_specific_params");
    const cJSON *tp = tsp ? cJSON_GetObjectItemCaseSensitive(tsp, "summarization") : NULL;
    const char *p = dc__json_str(tp, "prefix", NULL);
    if (!p) p = dc__json_str(m->hf->config, "prefix", NULL);
    if (!p) p = m->arch == DC__ARCH_T5 ? "summarize: " : "";
    return p;
}

bool dc_text_is_binary(const char *text, size_t len)
{
    size_t bad = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)text[i];
        if (c == 0) return true;
        if (c < 0x80) {
            if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != '\v') bad++;
            i++;
            continue;
        }
        int n = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
        if (c >= 0xF5) n = 0;
        bool ok = n > 0 && i + (size_t)n <= len;
        for (int k = 1; ok && k < n; k++) ok = ((unsigned char)text[i + (size_t)k] & 0xC0) == 0x80;
        if (!ok) {
            bad++;
            i++;
        } else {
            i += (size_t)n;
        }
    }
    return bad * 100 > len;
}

static bool blank(const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (t[i] != ' ' && t[i] != '\n' && t[i] != '\t' && t[i] != '\r' && t[i] != '\f' && t[i] != '\v') return false;
    return true;
}

/* Summarizes text[0..len) as one input (truncated when too long). */
static dc_status summarize_one(dc_s2s_model *m, const char *text, size_t len, const dc_summarize_options *opt,
                               char **summary, int64_t *gen_tokens, int64_t *src_tokens, bool *truncated)
{
    const char *prefix = model_prefix(m);
    size_t pl = strlen(prefix);
    char *input = malloc(pl + len + 1);
    if (!input) return dc_set_error(DC_ERR_OOM, "summarize: out of memory");
    memcpy(input, prefix, pl);
    memcpy(input + pl, text, len);
    input[pl + len] = '\0';
    dc_encoding enc;
    dc_status s = dc_tokenizer_encode(m->tok, input, pl + len, true, false, &enc);
    if (s) {
        free(input);
        return s;
    }
    *truncated = false;
    if ((int64_t)enc.n > m->max_source) {
        /* tokenizer(..., truncation=True, max_length=...): special tokens stay inside the limit */
        FILE *w = opt->warn ? opt->warn : stderr;
        fprintf(w, "warning: the input has %zu tokens, more than the model's %lld: truncated (use --chunk to "
                   "summarize all of it)\n", enc.n, (long long)m->max_source);
        dc_encoding_free(&enc);
        dc_batch_options bo = dc_batch_options_default();
        bo.max_length = (size_t)m->max_source;
        const char *texts[1] = {input};
        s = dc_tokenizer_encode_batch(m->tok, texts, 1, &bo, &enc);
        if (s) {
            free(input);
            return s;
        }
        *truncated = true;
    }
    free(input);
    *src_tokens = (int64_t)enc.n;
    int32_t *ids = NULL;
    int64_t n = 0;
    s = dc_s2s_generate(m, enc.ids, (int64_t)enc.n, &opt->gen, opt->progress, opt->progress_ctx, &ids, &n);
    dc_encoding_free(&enc);
    if (s) return s;
    int64_t g = 0;
    for (int64_t i = 1; i < n; i++) {
        bool special = false;
        for (int e = 0; e < opt->gen.n_eos; e++) special = special || ids[i] == opt->gen.eos_token_id[e];
        special = special || ids[i] == opt->gen.pad_token_id;
        g += !special;
    }
    *gen_tokens = g;
    *summary = dc_tokenizer_decode(m->tok, ids, (size_t)n, true);
    free(ids);
    return *summary ? DC_OK : dc_last_status();
}

dc_status dc_summarize(dc_s2s_model *m, const char *text, const dc_summarize_options *opt, dc_summary *out)
{
    memset(out, 0, sizeof *out);
    if (!m || !text || !opt) return dc_set_error(DC_ERR_ARG, "summarize: NULL argument");
    if (!m->tok) return dc_set_error(DC_ERR_STATE, "summarize: the model was loaded without its tokenizer");
    size_t len = strlen(text);
    if (dc_text_is_binary(text, len)) return dc_set_error(DC_ERR_ARG, "summarize: the input looks like binary data, not text");
    if (blank(text, len)) return dc_set_error(DC_ERR_ARG, "summarize: the input text is empty");
    double t0 = now_s();
    dc_status s;
    if (!opt->chunk) {
        s = summarize_one(m, text, len, opt, &out->text, &out->tokens, &out->source_tokens, &out->truncated);
        out->chunks = 1;
    } else {
        /* windows of the text's own tokens (offsets into the text), leaving room for the prefix
         * and special tokens; consecutive windows share `overlap` tokens */
        dc_encoding enc;
        s = dc_tokenizer_encode(m->tok, text, len, false, true, &enc);
        if (s) return s;
        dc_encoding pe;
        const char *prefix = model_prefix(m);
        s = dc_tokenizer_encode(m->tok, prefix, strlen(prefix), true, false, &pe);
        if (s) {
            dc_encoding_free(&enc);
            return s;
        }
        int64_t room = m->max_source - (int64_t)pe.n - 2;
        dc_encoding_free(&pe);
        int64_t overlap = opt->chunk_overlap > 0 ? opt->chunk_overlap : 0;
        if (room < 16) room = 16;
        if (overlap > room / 2) overlap = room / 2;
        size_t cap = 256, n = 0;
        char *joined = malloc(cap);
        if (!joined) {
            dc_encoding_free(&enc);
            return dc_set_error(DC_ERR_OOM, "summarize: out of memory");
        }
        joined[0] = '\0';
        int64_t total = (int64_t)enc.n;
        for (int64_t start = 0; start < total || (start == 0 && total == 0);) {
            int64_t end = start + room < total ? start + room : total;
            size_t a = total ? enc.offsets[2 * start] : 0, b = total ? enc.offsets[2 * (end - 1) + 1] : len;
            char *piece = NULL;
            int64_t g = 0, st = 0;
            bool tr = false;
            s = summarize_one(m, text + a, b - a, opt, &piece, &g, &st, &tr);
            if (s) break;
            size_t pl = strlen(piece);
            if (n + pl + 2 > cap) {
                while (n + pl + 2 > cap) cap *= 2;
                char *nj = realloc(joined, cap);
                if (!nj) {
                    free(piece);
                    s = dc_set_error(DC_ERR_OOM, "summarize: out of memory");
                    break;
                }
                joined = nj;
            }
            if (n && pl) joined[n++] = ' ';
            memcpy(joined + n, piece, pl + 1);
            n += pl;
            free(piece);
            out->tokens += g;
            out->source_tokens += st;
            out->chunks++;
            if (end >= total) break;
            start = end - overlap;
        }
        dc_encoding_free(&enc);
        if (s) {
            free(joined);
            return s;
        }
        out->text = joined;
    }
    out->seconds = now_s() - t0;
    if (s) {
        free(out->text);
        out->text = NULL;
    }
    return s;
}

void dc_summary_free(dc_summary *s)
{
    if (!s) return;
    free(s->text);
    s->text = NULL;
}
