/* decoders.c: tokenizer.json decoders (ByteLevel, Metaspace, ByteFallback, Fuse, Strip,
 * Replace, BPEDecoder, WordPiece, Sequence). As HF, each decoder maps the list of token
 * strings to a new list, and the result is their concatenation. */
#include <stdio.h>

#include "tok_internal.h"

static dc_status parse_one(tk_dec **arr, size_t *n, size_t *cap, const cJSON *j, const char *where)
{
    const char *type = tk_json_str(j, "type");
    if (!type) return dc_set_error(DC_ERR_FORMAT, "%s: decoder without a \"type\"", where);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "decoders");
        if (!cJSON_IsArray(list)) return dc_set_error(DC_ERR_FORMAT, "%s: Sequence decoder without \"decoders\"", where);
        const cJSON *it;
        cJSON_ArrayForEach(it, list)
        {
            dc_status st = parse_one(arr, n, cap, it, where);
            if (st) return st;
        }
        return DC_OK;
    }
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        tk_dec *a = realloc(*arr, c * sizeof *a);
        if (!a) return dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
        *arr = a;
        *cap = c;
    }
    tk_dec *d = &(*arr)[*n];
    memset(d, 0, sizeof *d);
    if (!strcmp(type, "ByteLevel")) d->type = TK_DEC_BYTELEVEL;
    else if (!strcmp(type, "ByteFallback")) d->type = TK_DEC_BYTEFALLBACK;
    else if (!strcmp(type, "Fuse")) d->type = TK_DEC_FUSE;
    else if (!strcmp(type, "Metaspace")) {
        d->type = TK_DEC_METASPACE;
        const char *r = tk_json_str(j, "replacement");
        if (!r) r = "\xE2\x96\x81";
        size_t rl = strlen(r);
        if (!rl || rl > 4) return dc_set_error(DC_ERR_FORMAT, "%s: Metaspace decoder replacement must be one character", where);
        memcpy(d->repl, r, rl);
        d->repl_len = (int)rl;
        const char *ps = tk_json_str(j, "prepend_scheme");
        if (ps) d->prepend = !strcmp(ps, "never") ? TK_PREPEND_NEVER : !strcmp(ps, "first") ? TK_PREPEND_FIRST : TK_PREPEND_ALWAYS;
        else d->prepend = tk_json_bool(j, "add_prefix_space", true) ? TK_PREPEND_ALWAYS : TK_PREPEND_NEVER;
    } else if (!strcmp(type, "Strip")) {
        d->type = TK_DEC_STRIP;
        const char *c = tk_json_str(j, "content");
        int32_t cp = ' ';
        if (c && *c) tk_utf8_decode(c, strlen(c), &cp);
        d->strip_char = cp;
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "start"), *sp = cJSON_GetObjectItemCaseSensitive(j, "stop");
        d->start = cJSON_IsNumber(st) ? (int)st->valuedouble : 0;
        d->stop = cJSON_IsNumber(sp) ? (int)sp->valuedouble : 0;
        if (d->start < 0 || d->stop < 0) return dc_set_error(DC_ERR_FORMAT, "%s: Strip decoder with a negative count", where);
    } else if (!strcmp(type, "Replace")) {
        d->type = TK_DEC_REPLACE;
        const char *c = tk_json_str(j, "content");
        if (!c) return dc_set_error(DC_ERR_FORMAT, "%s: Replace decoder without \"content\"", where);
        d->content = tk_strdup(c);
        if (!d->content) return DC_ERR_OOM;
        d->content_len = strlen(c);
        dc_status st = tk_pattern_parse(&d->pat, cJSON_GetObjectItemCaseSensitive(j, "pattern"), where);
        if (st) {
            free(d->content);
            return st;
        }
    } else if (!strcmp(type, "BPEDecoder")) {
        d->type = TK_DEC_BPE;
        const char *s = tk_json_str(j, "suffix");
        d->suffix = tk_strdup(s ? s : "</w>");
        if (!d->suffix) return DC_ERR_OOM;
    } else if (!strcmp(type, "WordPiece")) {
        d->type = TK_DEC_WORDPIECE;
        const char *s = tk_json_str(j, "prefix");
        d->suffix = tk_strdup(s ? s : "##");
        if (!d->suffix) return DC_ERR_OOM;
        d->cleanup = tk_json_bool(j, "cleanup", true);
    } else
        return dc_set_error(DC_ERR_UNSUPPORTED, "%s: decoder type '%s' is not supported", where, type);
    (*n)++;
    return DC_OK;
}

dc_status tk_dec_parse(tk_dec **out, size_t *n, const cJSON *j, const char *where)
{
    *out = NULL;
    *n = 0;
    if (!j || cJSON_IsNull(j)) return DC_OK;
    size_t cap = 0;
    return parse_one(out, n, &cap, j, where);
}

void tk_dec_free(tk_dec *d)
{
    tk_pattern_free(&d->pat);
    free(d->content);
    free(d->suffix);
}

/* A list of strings held in one buffer. */
typedef struct slist {
    tk_buf b;
    size_t *off, *len;
    size_t n, cap;
} slist;

static bool sl_add(slist *l, const char *s, size_t n)
{
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 64;
        size_t *o = realloc(l->off, c * sizeof *o);
        if (!o) return false;
        l->off = o;
        size_t *q = realloc(l->len, c * sizeof *q);
        if (!q) return false;
        l->len = q;
        l->cap = c;
    }
    l->off[l->n] = l->b.n;
    l->len[l->n] = n;
    l->n++;
    return tk_buf_put(&l->b, s, n);
}

/* appends to the last string */
static bool sl_append(slist *l, const char *s, size_t n)
{
    l->len[l->n - 1] += n;
    return tk_buf_put(&l->b, s, n);
}

static void sl_free(slist *l)
{
    tk_buf_free(&l->b);
    free(l->off);
    free(l->len);
}

#define S(l, i) ((l)->b.s + (l)->off[i])

static bool replace_all(slist *out, const char *s, size_t n, const tk_pattern *pat, const char *c, size_t cl)
{
    if (!sl_add(out, "", 0)) return false;
    size_t at = 0, ms, me;
    while (tk_pattern_next(pat, s, n, at, &ms, &me)) {
        if (!sl_append(out, s + at, ms - at) || !sl_append(out, c, cl)) return false;
        at = me;
    }
    return sl_append(out, s + at, n - at);
}

static bool lit_replace(slist *out, const char *s, size_t n, const char *pat, size_t pl, const char *c, size_t cl)
{
    tk_pattern p = {(char *)pat, pl, NULL};
    return replace_all(out, s, n, &p, c, cl);
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool run(const tk_dec *d, slist *in, slist *out)
{
    switch (d->type) {
    case TK_DEC_BYTELEVEL: {
        /* all tokens into one byte string, then UTF-8 repaired */
        tk_buf bytes = {0};
        for (size_t i = 0; i < in->n; i++) {
            const char *s = S(in, i);
            size_t n = in->len[i], k = 0;
            size_t mark = bytes.n;
            bool ok = true;
            while (k < n) {
                int32_t cp;
                k += (size_t)tk_utf8_decode(s + k, n - k, &cp);
                int by = tk_byte_of_char(cp);
                if (by < 0) {
                    ok = false;
                    break;
                }
                char c = (char)by;
                if (!tk_buf_put(&bytes, &c, 1)) goto oom_bl;
            }
            if (!ok) {
                bytes.n = mark;
                if (!tk_buf_put(&bytes, s, n)) goto oom_bl;
            }
        }
        if (!sl_add(out, "", 0)) goto oom_bl;
        {
            tk_buf fixed = {0};
            if (!tk_utf8_lossy(&fixed, bytes.s ? bytes.s : "", bytes.n)) {
                tk_buf_free(&fixed);
                goto oom_bl;
            }
            bool ok = sl_append(out, fixed.s ? fixed.s : "", fixed.n);
            tk_buf_free(&fixed);
            tk_buf_free(&bytes);
            return ok;
        }
    oom_bl:
        tk_buf_free(&bytes);
        return false;
    }
    case TK_DEC_METASPACE:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = S(in, i);
            size_t n = in->len[i], k = 0;
            if (!sl_add(out, "", 0)) return false;
            while (k < n) {
                if (n - k >= (size_t)d->repl_len && !memcmp(s + k, d->repl, (size_t)d->repl_len)) {
                    if (!(i == 0 && d->prepend != TK_PREPEND_NEVER) && !sl_append(out, " ", 1)) return false;
                    k += (size_t)d->repl_len;
                    continue;
                }
                size_t e = k + 1;
                while (e < n && !(n - e >= (size_t)d->repl_len && !memcmp(s + e, d->repl, (size_t)d->repl_len))) e++;
                if (!sl_append(out, s + k, e - k)) return false;
                k = e;
            }
        }
        return true;
    case TK_DEC_BYTEFALLBACK: {
        tk_buf pend = {0};
        for (size_t i = 0; i <= in->n; i++) {
            const char *s = i < in->n ? S(in, i) : NULL;
            size_t n = i < in->n ? in->len[i] : 0;
            int hi, lo;
            if (s && n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && (hi = hexv(s[3])) >= 0 && (lo = hexv(s[4])) >= 0) {
                char c = (char)(hi * 16 + lo);
                if (!tk_buf_put(&pend, &c, 1)) goto oom_bf;
                continue;
            }
            if (pend.n) {
                if (tk_utf8_valid(pend.s, pend.n)) {
                    if (!sl_add(out, pend.s, pend.n)) goto oom_bf;
                } else
                    for (size_t k = 0; k < pend.n; k++)
                        if (!sl_add(out, "\xEF\xBF\xBD", 3)) goto oom_bf;
                pend.n = 0;
            }
            if (s && !sl_add(out, s, n)) goto oom_bf;
        }
        tk_buf_free(&pend);
        return true;
    oom_bf:
        tk_buf_free(&pend);
        return false;
    }
    case TK_DEC_FUSE:
        if (!sl_add(out, "", 0)) return false;
        for (size_t i = 0; i < in->n; i++)
            if (!sl_append(out, S(in, i), in->len[i])) return false;
        return true;
    case TK_DEC_STRIP:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = S(in, i);
            size_t n = in->len[i];
            /* character boundaries */
            size_t a = 0, e = n;
            int cut = 0;
            while (cut < d->start && a < n) {
                int32_t cp;
                int l = tk_utf8_decode(s + a, n - a, &cp);
                if (cp != d->strip_char) break;
                a += (size_t)l;
                cut++;
            }
            cut = 0;
            while (cut < d->stop && e > a) {
                size_t k = e - 1;
                while (k > a && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
                int32_t cp;
                tk_utf8_decode(s + k, e - k, &cp);
                if (cp != d->strip_char) break;
                e = k;
                cut++;
            }
            if (!sl_add(out, s + a, e - a)) return false;
        }
        return true;
    case TK_DEC_REPLACE:
        for (size_t i = 0; i < in->n; i++)
            if (!replace_all(out, S(in, i), in->len[i], &d->pat, d->content, d->content_len)) return false;
        return true;
    case TK_DEC_BPE:
        for (size_t i = 0; i < in->n; i++) {
            bool last = i + 1 == in->n;
            if (!lit_replace(out, S(in, i), in->len[i], d->suffix, strlen(d->suffix), last ? "" : " ", last ? 0 : 1))
                return false;
        }
        return true;
    case TK_DEC_WORDPIECE: {
        size_t pl = strlen(d->suffix);
        for (size_t i = 0; i < in->n; i++) {
            const char *s = S(in, i);
            size_t n = in->len[i];
            if (i && n >= pl && !memcmp(s, d->suffix, pl)) {
                if (!sl_add(out, s + pl, n - pl)) return false;
            } else {
                if (!sl_add(out, i ? " " : "", i ? 1 : 0) || !sl_append(out, s, n)) return false;
            }
        }
        return true;
    }
    }
    return true;
}

static bool cleanup_spaces(tk_buf *b)
{
    /* transformers' clean_up_tokenization, in its order */
    static const char *pairs[][2] = {{" .", "."},   {" ?", "?"},   {" !", "!"},     {" ,", ","},
                                     {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"},
                                     {" 've", "'ve"}, {" 're", "'re"}};
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        const char *from = pairs[k][0], *to = pairs[k][1];
        size_t fl = strlen(from), tl = strlen(to);
        size_t r = 0, w = 0;
        if (!b->n) return true;
        while (r < b->n) {
            if (b->n - r >= fl && !memcmp(b->s + r, from, fl)) {
                memmove(b->s + w, to, tl);
                w += tl;
                r += fl;
            } else
                b->s[w++] = b->s[r++];
        }
        b->n = w;
        b->s[w] = '\0';
    }
    return true;
}

dc_status tk_decode_tokens(const dc_tokenizer *t, const char **toks, const uint32_t *lens, size_t n, tk_buf *out)
{
    slist a = {0}, b = {0};
    dc_status st = DC_OK;
    for (size_t i = 0; i < n; i++)
        if (!sl_add(&a, toks[i], lens[i])) goto oom;
    if (!t->ndecs) {
        /* no decoder: tokens joined with spaces */
        for (size_t i = 0; i < a.n; i++)
            if ((i && !tk_buf_put(out, " ", 1)) || !tk_buf_put(out, S(&a, i), a.len[i])) goto oom;
    } else {
        for (size_t k = 0; k < t->ndecs; k++) {
            b.n = 0;
            b.b.n = 0;
            if (!run(&t->decs[k], &a, &b)) goto oom;
            slist tmp = a;
            a = b;
            b = tmp;
        }
        for (size_t i = 0; i < a.n; i++)
            if (!tk_buf_put(out, S(&a, i), a.len[i])) goto oom;
    }
    if (!tk_buf_put(out, "", 0)) goto oom;
    if (t->clip_decode && t->eow_suffix) {
        /* transformers' CLIPTokenizer: suffix -> " ", then str.strip() */
        tk_buf r = {0};
        tk_pattern p = {t->eow_suffix, strlen(t->eow_suffix), NULL};
        size_t at = 0, ms, me;
        while (tk_pattern_next(&p, out->s, out->n, at, &ms, &me)) {
            if (!tk_buf_put(&r, out->s + at, ms - at) || !tk_buf_put(&r, " ", 1)) {
                tk_buf_free(&r);
                goto oom;
            }
            at = me;
        }
        if (!tk_buf_put(&r, out->s + at, out->n - at)) {
            tk_buf_free(&r);
            goto oom;
        }
        size_t s0 = 0, e0 = r.n;
        while (s0 < e0) {
            int32_t cp;
            int l = tk_utf8_decode(r.s + s0, e0 - s0, &cp);
            if (!tk_is_py_space(cp)) break;
            s0 += (size_t)l;
        }
        while (e0 > s0) {
            size_t k = e0 - 1;
            while (k > s0 && ((unsigned char)r.s[k] & 0xC0) == 0x80) k--;
            int32_t cp;
            tk_utf8_decode(r.s + k, e0 - k, &cp);
            if (!tk_is_py_space(cp)) break;
            e0 = k;
        }
        out->n = 0;
        bool ok = tk_buf_put(out, r.s + s0, e0 - s0);
        tk_buf_free(&r);
        if (!ok) goto oom;
    }
    if (t->cleanup_spaces) cleanup_spaces(out);
    sl_free(&a);
    sl_free(&b);
    return st;
oom:
    sl_free(&a);
    sl_free(&b);
    return dc_set_error(DC_ERR_OOM, "tokenizer: out of memory while decoding");
}
