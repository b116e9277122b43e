/* tokenizer.c: the public dc_tokenizer_* API: loading from any supported path, the encode
 * pipeline (added tokens, normalizers, pre-tokenizers, model, post-processor, truncation,
 * padding), decode, and token <-> id lookups. */
#include <stdio.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "tok_internal.h"

static dc_status oom(void) { return dc_set_error(DC_ERR_OOM, "tokenizer: out of memory"); }

void dc_tokenizer_free(dc_tokenizer *t)
{
    if (!t) return;
    free(t->path);
    tk_bpe_free(t->bpe);
    tk_unigram_free(t->uni);
    if (t->id_tok)
        for (size_t i = 0; i < t->nids; i++) free(t->id_tok[i]);
    free(t->id_tok);
    free(t->id_len);
    free(t->id_special);
    tk_strmap_free(&t->vocab);
    for (size_t i = 0; i < t->nadded; i++) {
        free(t->added[i].content);
        free(t->added[i].norm);
    }
    free(t->added);
    tk_added_matcher_free(&t->m_raw);
    tk_added_matcher_free(&t->m_norm);
    for (size_t i = 0; i < t->nnorms; i++) tk_norm_free(&t->norms[i]);
    free(t->norms);
    for (size_t i = 0; i < t->npres; i++) tk_pre_free(&t->pres[i]);
    free(t->pres);
    for (size_t i = 0; i < t->ndecs; i++) tk_dec_free(&t->decs[i]);
    free(t->decs);
    tk_post_free(&t->post);
    free(t->eow_suffix);
    tk_work_free(&t->w[0]);
    tk_work_free(&t->w[1]);
    free(t->toks);
    free(t);
}

static dc_tokenizer *from_tree(cJSON *root, const char *where, const char *config_dir)
{
    tk_tables_init();
    dc_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        cJSON_Delete(root);
        oom();
        return NULL;
    }
    t->pad_id = -1;
    t->path = tk_strdup(where);
    dc_status st = t->path ? tk_load_json_tree(t, root, where) : DC_ERR_OOM;
    cJSON_Delete(root);
    if (st) {
        dc_tokenizer_free(t);
        return NULL;
    }
    if (config_dir) tk_load_config(t, config_dir);
    for (size_t i = 0; i < t->nids; i++)
        if (t->id_tok[i]) t->vocab_size++;
    dc_clear_error();
    return t;
}

dc_tokenizer *dc_tokenizer_from_json(const char *json, size_t len, const char *name)
{
    if (!json) {
        dc_set_error(DC_ERR_ARG, "dc_tokenizer_from_json: NULL json");
        return NULL;
    }
    if (!name) name = "tokenizer.json";
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        size_t at = e && e >= json && e <= json + len ? (size_t)(e - json) : 0;
        dc_set_error(DC_ERR_FORMAT, "%s: not valid JSON (error near byte %zu)", name, at);
        return NULL;
    }
    return from_tree(root, name, NULL);
}

static bool is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

static dc_tokenizer *load_json_file(const char *path, const char *dir)
{
    char *data;
    size_t len;
    if (tk_read_file(path, &data, &len)) return NULL;
    cJSON *root = cJSON_ParseWithLength(data, len);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        size_t at = e && e >= data && e <= data + len ? (size_t)(e - data) : 0;
        dc_set_error(DC_ERR_FORMAT, "%s: not valid JSON (error near byte %zu of %zu)", path, at, len);
        free(data);
        return NULL;
    }
    free(data);
    return from_tree(root, path, dir);
}

dc_tokenizer *dc_tokenizer_load(const char *path)
{
    if (!path || !*path) {
        dc_set_error(DC_ERR_ARG, "dc_tokenizer_load: empty path");
        return NULL;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        dc_set_error(DC_ERR_IO, "%s: no such file or folder", path);
        return NULL;
    }
    size_t pl = strlen(path);
    char *buf = malloc(pl + 64), *buf2 = malloc(pl + 64);
    dc_tokenizer *t = NULL;
    if (!buf || !buf2) {
        oom();
        goto done;
    }
    if (S_ISDIR(sb.st_mode)) {
        snprintf(buf, pl + 64, "%s/tokenizer.json", path);
        if (is_file(buf)) {
            t = load_json_file(buf, path);
            goto done;
        }
        snprintf(buf, pl + 64, "%s/vocab.json", path);
        snprintf(buf2, pl + 64, "%s/merges.txt", path);
        if (is_file(buf) && is_file(buf2)) {
            tk_tables_init();
            cJSON *root = tk_json_from_vocab_merges(path, buf, buf2);
            if (root) t = from_tree(root, path, path);
            goto done;
        }
        static const char *models[] = {"tokenizer.model", "spiece.model", "sentencepiece.bpe.model"};
        for (int i = 0; i < 3; i++) {
            snprintf(buf, pl + 64, "%s/%s", path, models[i]);
            if (is_file(buf)) {
                tk_tables_init();
                cJSON *root = tk_json_from_spm(buf);
                if (root) t = from_tree(root, buf, path);
                goto done;
            }
        }
        snprintf(buf, pl + 64, "%s/bpe_simple_vocab_16e6.txt.gz", path);
        if (is_file(buf)) {
            tk_tables_init();
            cJSON *root = tk_json_from_clip_bpe(buf);
            if (root) t = from_tree(root, buf, NULL);
            goto done;
        }
        dc_set_error(DC_ERR_IO,
                     "%s: folder has no tokenizer.json, vocab.json + merges.txt, tokenizer.model or "
                     "bpe_simple_vocab_16e6.txt.gz",
                     path);
        goto done;
    }
    /* a file: the folder it is in may hold tokenizer_config.json */
    memcpy(buf2, path, pl + 1);
    char *slash = strrchr(buf2, '/');
    if (slash) *slash = '\0';
    else strcpy(buf2, ".");
    tk_tables_init();
    if (ends_with(path, ".gz")) {
        cJSON *root = tk_json_from_clip_bpe(path);
        if (root) t = from_tree(root, path, NULL);
    } else if (ends_with(path, ".model")) {
        cJSON *root = tk_json_from_spm(path);
        if (root) t = from_tree(root, path, buf2);
    } else
        t = load_json_file(path, buf2);
done:
    free(buf);
    free(buf2);
    return t;
}

/* ---- encode ---- */

static bool push_tok(dc_tokenizer *t, int32_t id, uint32_t s, uint32_t e)
{
    if (t->ntoks == t->tokcap) {
        size_t c = t->tokcap ? t->tokcap * 2 : 256;
        tk_tok *tt = realloc(t->toks, c * sizeof *tt);
        if (!tt) return false;
        t->toks = tt;
        t->tokcap = c;
    }
    t->toks[t->ntoks++] = (tk_tok){id, s, e};
    return true;
}

/* Fills t->toks (ids with original offsets) for text; no post-processing. */
static dc_status encode_tokens(dc_tokenizer *t, const char *text, size_t len, bool offsets)
{
    if (len > UINT32_MAX / 2) return dc_set_error(DC_ERR_ARG, "dc_tokenizer_encode: text of %zu bytes is too long", len);
    tk_work *w0 = &t->w[0], *w1 = &t->w[1];
    if (!tk_work_reset(w0, offsets) || !tk_work_reset(w1, offsets)) return DC_ERR_OOM;
    t->ntoks = 0;
    if (!len) return DC_OK;
    if (t->keep_invalid || tk_utf8_valid(text, len)) {
        if (!tk_buf_put(&w0->text, text, len)) return DC_ERR_OOM;
        if (offsets) {
            if (w0->acap < len) {
                uint32_t *as = realloc(w0->as, len * sizeof *as), *ae;
                if (!as) return oom();
                w0->as = as;
                ae = realloc(w0->ae, len * sizeof *ae);
                if (!ae) return oom();
                w0->ae = ae;
                w0->acap = len;
            }
            for (size_t i = 0; i < len;) {
                size_t l = (size_t)tk_utf8_len((unsigned char)text[i]);
                if (i + l > len) l = len - i;
                for (size_t k = 0; k < l; k++) {
                    w0->as[i + k] = (uint32_t)i;
                    w0->ae[i + k] = (uint32_t)(i + l);
                }
                i += l;
            }
        }
    } else {
        /* invalid UTF-8: each maximal invalid part becomes U+FFFD */
        size_t i = 0;
        while (i < len) {
            int32_t cp;
            int l = tk_utf8_decode(text + i, len - i, &cp);
            if (cp >= 0) {
                if (!tk_work_emit(w0, text + i, (size_t)l, (uint32_t)i, (uint32_t)(i + (size_t)l))) return DC_ERR_OOM;
                i += (size_t)l;
                continue;
            }
            size_t j = i + tk_utf8_invalid_len(text + i, len - i);
            if (!tk_work_emit(w0, "\xEF\xBF\xBD", 3, (uint32_t)i, (uint32_t)j)) return DC_ERR_OOM;
            i = j;
        }
    }
    size_t n = w0->text.n;
    if (!tk_work_push(w0, (tk_piece){0, (uint32_t)n, -1, 0, (uint32_t)len, true})) return DC_ERR_OOM;
    dc_status st;
    if ((st = tk_added_split(t, w0, false))) return st;
    if ((st = tk_normalize(t, w0, w1))) return st;
    if ((st = tk_added_split(t, w0, true))) return st;
    if ((st = tk_pretokenize(t, w0, w1))) return st;
    for (size_t i = 0; i < w0->np; i++) {
        const tk_piece *p = &w0->p[i];
        if (p->added >= 0) {
            if (!push_tok(t, p->added, p->ostart, p->oend)) return oom();
            continue;
        }
        size_t first = t->ntoks;
        const char *word = w0->text.s + p->start;
        st = t->model_type == TK_MODEL_BPE ? tk_bpe_word(t->bpe, word, p->len, &t->toks, &t->ntoks, &t->tokcap)
                                           : tk_unigram_word(t->uni, word, p->len, &t->toks, &t->ntoks, &t->tokcap);
        if (st) return st;
        if (offsets)
            for (size_t k = first; k < t->ntoks; k++) {
                uint32_t a = t->toks[k].start, b = t->toks[k].end;
                if (a >= p->len) a = p->len - 1;
                uint32_t os = w0->as[p->start + a];
                uint32_t oe = b > t->toks[k].start ? w0->ae[p->start + b - 1] : os;
                if (oe < os) oe = os;
                t->toks[k].start = os;
                t->toks[k].end = oe;
            }
    }
    return DC_OK;
}

static dc_status encode_one(dc_tokenizer *t, const char *text, size_t len, bool add_special, bool offsets,
                            size_t max_len, dc_encoding *out)
{
    memset(out, 0, sizeof *out);
    dc_status st = encode_tokens(t, text, len, offsets);
    if (st) return st;
    bool post = add_special && t->post.present;
    size_t extra = post ? t->post.added_single : 0;
    size_t keep = t->ntoks;
    if (max_len) {
        if (extra > max_len)
            return dc_set_error(DC_ERR_ARG, "tokenizer: max_length %zu is shorter than the %zu special tokens", max_len, extra);
        if (keep > max_len - extra) keep = max_len - extra;
    }
    size_t n = keep + extra;
    out->ids = malloc((n + 1) * sizeof *out->ids);
    out->special_mask = malloc(n + 1);
    out->attention_mask = malloc(n + 1);
    if (offsets) out->offsets = malloc((2 * n + 1) * sizeof *out->offsets);
    if (!out->ids || !out->special_mask || !out->attention_mask || (offsets && !out->offsets)) {
        dc_encoding_free(out);
        return oom();
    }
    size_t k = 0;
#define PUT(id, s, e, sp)                                      \
    do {                                                       \
        out->ids[k] = (id);                                    \
        out->special_mask[k] = (uint8_t)(sp);                  \
        out->attention_mask[k] = 1;                            \
        if (offsets) {                                         \
            out->offsets[2 * k] = (s);                         \
            out->offsets[2 * k + 1] = (e);                     \
        }                                                      \
        k++;                                                   \
    } while (0)
    if (post) {
        for (size_t i = 0; i < t->post.nsingle; i++) {
            const tk_tpl_item *it = &t->post.single[i];
            if (it->is_seq)
                for (size_t j = 0; j < keep; j++)
                    PUT(t->toks[j].id, t->toks[j].start, t->toks[j].end, t->id_special[t->toks[j].id]);
            else
                for (size_t j = 0; j < it->n; j++) PUT(it->ids[j], 0, 0, 1);
        }
    } else
        for (size_t j = 0; j < keep; j++) PUT(t->toks[j].id, t->toks[j].start, t->toks[j].end, t->id_special[t->toks[j].id]);
#undef PUT
    out->n = k;
    return DC_OK;
}

dc_status dc_tokenizer_encode(dc_tokenizer *t, const char *text, size_t len, bool add_special, bool with_offsets,
                              dc_encoding *out)
{
    if (!out) return dc_set_error(DC_ERR_ARG, "dc_tokenizer_encode: NULL output");
    memset(out, 0, sizeof *out);
    if (!t || (!text && len)) return dc_set_error(DC_ERR_ARG, "dc_tokenizer_encode: NULL tokenizer or text");
    if (!text) text = "";
    if (len == (size_t)-1) len = strlen(text);
    return encode_one(t, text, len, add_special, with_offsets, 0, out);
}

void dc_encoding_free(dc_encoding *e)
{
    if (!e) return;
    free(e->ids);
    free(e->offsets);
    free(e->special_mask);
    free(e->attention_mask);
    memset(e, 0, sizeof *e);
}

dc_batch_options dc_batch_options_default(void)
{
    dc_batch_options o;
    memset(&o, 0, sizeof o);
    o.add_special_tokens = true;
    o.pad_id = -1;
    return o;
}

static dc_status pad_to(dc_encoding *e, size_t len, int32_t pad, bool left, bool offsets)
{
    if (e->n >= len) return DC_OK;
    size_t n = e->n, d = len - n;
    int32_t *ids = realloc(e->ids, len * sizeof *ids);
    if (!ids) return oom();
    e->ids = ids;
    uint8_t *sm = realloc(e->special_mask, len);
    if (!sm) return oom();
    e->special_mask = sm;
    uint8_t *am = realloc(e->attention_mask, len);
    if (!am) return oom();
    e->attention_mask = am;
    if (offsets) {
        size_t *of = realloc(e->offsets, 2 * len * sizeof *of);
        if (!of) return oom();
        e->offsets = of;
    }
    size_t at = left ? 0 : n;
    if (left) {
        memmove(ids + d, ids, n * sizeof *ids);
        memmove(sm + d, sm, n);
        memmove(am + d, am, n);
        if (offsets) memmove(e->offsets + 2 * d, e->offsets, 2 * n * sizeof *e->offsets);
    }
    for (size_t i = at; i < at + d; i++) {
        ids[i] = pad;
        sm[i] = 1;
        am[i] = 0;
        if (offsets) e->offsets[2 * i] = e->offsets[2 * i + 1] = 0;
    }
    e->n = len;
    return DC_OK;
}

dc_status dc_tokenizer_encode_batch(dc_tokenizer *t, const char *const *texts, size_t n, const dc_batch_options *opt,
                                    dc_encoding *out)
{
    if (!t || (!texts && n) || (!out && n)) return dc_set_error(DC_ERR_ARG, "dc_tokenizer_encode_batch: NULL argument");
    dc_batch_options o = opt ? *opt : dc_batch_options_default();
    if (o.padding == DC_PAD_MAX_LENGTH && !o.max_length)
        return dc_set_error(DC_ERR_ARG, "dc_tokenizer_encode_batch: padding to max_length needs max_length > 0");
    for (size_t i = 0; i < n; i++) memset(&out[i], 0, sizeof out[i]);
    size_t longest = 0;
    dc_status st = DC_OK;
    for (size_t i = 0; i < n && !st; i++) {
        if (!texts[i]) {
            st = dc_set_error(DC_ERR_ARG, "dc_tokenizer_encode_batch: text %zu is NULL", i);
            break;
        }
        st = encode_one(t, texts[i], strlen(texts[i]), o.add_special_tokens, o.with_offsets, o.max_length, &out[i]);
        if (!st && out[i].n > longest) longest = out[i].n;
    }
    if (!st && o.padding != DC_PAD_NONE) {
        size_t len = o.padding == DC_PAD_LONGEST ? longest : o.max_length;
        int32_t pad = o.pad_id >= 0 ? o.pad_id : t->pad_id >= 0 ? t->pad_id : 0;
        for (size_t i = 0; i < n && !st; i++) st = pad_to(&out[i], len, pad, o.pad_left, o.with_offsets);
    }
    if (st)
        for (size_t i = 0; i < n; i++) dc_encoding_free(&out[i]);
    return st;
}

/* ---- decode and lookups ---- */

char *dc_tokenizer_decode(dc_tokenizer *t, const int32_t *ids, size_t n, bool skip_special)
{
    if (!t || (!ids && n)) {
        dc_set_error(DC_ERR_ARG, "dc_tokenizer_decode: NULL tokenizer or ids");
        return NULL;
    }
    const char **toks = malloc((n + 1) * sizeof *toks);
    uint32_t *lens = malloc((n + 1) * sizeof *lens);
    if (!toks || !lens) {
        free(toks);
        free(lens);
        oom();
        return NULL;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || (size_t)id >= t->nids || !t->id_tok[id]) {
            free(toks);
            free(lens);
            dc_set_error(DC_ERR_ARG, "tokenizer %s: id %d (position %zu) is not in the vocabulary (size %zu)", t->path, id,
                         i, t->vocab_size);
            return NULL;
        }
        if (skip_special && t->id_special[id]) continue;
        toks[m] = t->id_tok[id];
        lens[m] = t->id_len[id];
        m++;
    }
    tk_buf out = {0};
    dc_status st = tk_decode_tokens(t, toks, lens, m, &out);
    free(toks);
    free(lens);
    if (st) {
        tk_buf_free(&out);
        return NULL;
    }
    if (!out.s && !tk_buf_put(&out, "", 0)) return NULL;
    return out.s;
}

int32_t dc_tokenizer_token_to_id(const dc_tokenizer *t, const char *token)
{
    if (!t || !token) return -1;
    return tk_strmap_get(&t->vocab, token, strlen(token));
}

const char *dc_tokenizer_id_to_token(const dc_tokenizer *t, int32_t id)
{
    if (!t || id < 0 || (size_t)id >= t->nids) return NULL;
    return t->id_tok[id];
}

bool dc_tokenizer_is_special(const dc_tokenizer *t, int32_t id)
{
    return t && id >= 0 && (size_t)id < t->nids && t->id_special[id];
}

size_t dc_tokenizer_vocab_size(const dc_tokenizer *t) { return t ? t->vocab_size : 0; }

int32_t dc_tokenizer_pad_id(const dc_tokenizer *t) { return t ? t->pad_id : -1; }
