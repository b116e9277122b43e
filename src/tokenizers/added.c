/* added.c: the added vocabulary (special tokens such as <|endoftext|>, </s>, <extra_id_0>).
 * As HF's AddedVocabulary: tokens with normalized=false are cut out of the raw text first,
 * then those with normalized=true out of the normalized pieces; matches are leftmost-longest
 * and honour single_word, lstrip and rstrip. */
#include <utf8proc.h>

#include "tok_internal.h"

static int cmp_len_desc(const void *a, const void *b, void *ctx)
{
    const tk_added *ad = ctx;
    const tk_added *x = &ad[*(const int32_t *)a], *y = &ad[*(const int32_t *)b];
    size_t lx = x->normalized ? x->norm_len : x->len, ly = y->normalized ? y->norm_len : y->len;
    if (lx != ly) return lx > ly ? -1 : 1;
    return *(const int32_t *)a - *(const int32_t *)b;
}

static dc_status build(dc_tokenizer *t, tk_added_matcher *m, bool normalized)
{
    memset(m, 0, sizeof *m);
    m->idx = malloc((t->nadded + 1) * sizeof *m->idx);
    if (!m->idx) return dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
    uint32_t count[256] = {0};
    for (size_t i = 0; i < t->nadded; i++) {
        const tk_added *a = &t->added[i];
        if (a->normalized != normalized) continue;
        const char *c = normalized ? a->norm : a->content;
        size_t l = normalized ? a->norm_len : a->len;
        if (!l) continue;
        count[(unsigned char)c[0]]++;
    }
    uint32_t at = 0;
    for (int b = 0; b < 256; b++) {
        m->start[b] = at;
        at += count[b];
    }
    m->start[256] = at;
    m->n = at;
    uint32_t fill[256];
    memcpy(fill, m->start, sizeof fill);
    for (size_t i = 0; i < t->nadded; i++) {
        const tk_added *a = &t->added[i];
        if (a->normalized != normalized) continue;
        const char *c = normalized ? a->norm : a->content;
        size_t l = normalized ? a->norm_len : a->len;
        if (!l) continue;
        m->idx[fill[(unsigned char)c[0]]++] = (int32_t)i;
    }
    for (int b = 0; b < 256; b++)
        if (m->start[b + 1] - m->start[b] > 1)
            qsort_r(m->idx + m->start[b], m->start[b + 1] - m->start[b], sizeof *m->idx, cmp_len_desc,
                    t->added);
    return DC_OK;
}

dc_status tk_added_build(dc_tokenizer *t)
{
    for (size_t i = 0; i < t->nadded; i++) {
        tk_added *a = &t->added[i];
        free(a->norm);
        a->norm = NULL;
        if (a->normalized) {
            a->norm = tk_normalize_string(t, a->content, a->len, &a->norm_len);
            if (!a->norm) return dc_last_status() ? dc_last_status() : DC_ERR_OOM;
        }
    }
    tk_added_matcher_free(&t->m_raw);
    tk_added_matcher_free(&t->m_norm);
    dc_status st = build(t, &t->m_raw, false);
    if (!st) st = build(t, &t->m_norm, true);
    return st;
}

void tk_added_matcher_free(tk_added_matcher *m)
{
    free(m->idx);
    memset(m, 0, sizeof *m);
}

static bool is_word_char(int32_t cp)
{
    if (cp < 0) return false;
    if (cp == '_') return true;
    if (cp < 128) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

static int32_t last_cp(const char *s, size_t n)
{
    if (!n) return -1;
    size_t k = n - 1;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80 && n - k < 4) k--;
    int32_t cp;
    tk_utf8_decode(s + k, n - k, &cp);
    return cp;
}

/* The longest token of the matcher at s[i..n), or -1. */
static int32_t match_at(const dc_tokenizer *t, const tk_added_matcher *m, bool normalized,
                        const char *s, size_t n, size_t i, size_t *len)
{
    unsigned char b = (unsigned char)s[i];
    for (uint32_t k = m->start[b]; k < m->start[b + 1]; k++) {
        const tk_added *a = &t->added[m->idx[k]];
        const char *c = normalized ? a->norm : a->content;
        size_t l = normalized ? a->norm_len : a->len;
        if (l <= n - i && !memcmp(s + i, c, l)) {
            *len = l;
            return m->idx[k];
        }
    }
    return -1;
}

dc_status tk_added_split(const dc_tokenizer *t, tk_work *w, bool normalized)
{
    const tk_added_matcher *m = normalized ? &t->m_norm : &t->m_raw;
    if (!m->n) return DC_OK;
    /* new pieces are appended after the old ones, then moved down */
    size_t old = w->np;
    for (size_t pi = 0; pi < old; pi++) {
        tk_piece p = w->p[pi];
        if (p.added >= 0) {
            if (!tk_work_push(w, p)) return DC_ERR_OOM;
            continue;
        }
        const char *s = w->text.s + p.start;
        size_t n = p.len, from = 0, i = 0;
        while (i < n) {
            unsigned char b = (unsigned char)s[i];
            if (m->start[b] == m->start[b + 1]) {
                i++;
                continue;
            }
            size_t len;
            int32_t k = match_at(t, m, normalized, s, n, i, &len);
            if (k < 0) {
                i++;
                continue;
            }
            const tk_added *a = &t->added[k];
            size_t start = i, stop = i + len;
            if (a->single_word) {
                int32_t before = last_cp(s, i), after;
                if (stop < n) tk_utf8_decode(s + stop, n - stop, &after);
                else after = -1;
                if (is_word_char(before) || is_word_char(after)) {
                    i++;
                    continue;
                }
            }
            if (a->lstrip) {
                size_t ns = start;
                while (ns > from) {
                    size_t k2 = ns - 1;
                    while (k2 > from && ((unsigned char)s[k2] & 0xC0) == 0x80) k2--;
                    int32_t cp;
                    tk_utf8_decode(s + k2, ns - k2, &cp);
                    if (!tk_is_space(cp)) break;
                    ns = k2;
                }
                start = ns;
            }
            if (a->rstrip)
                while (stop < n) {
                    int32_t cp;
                    int l = tk_utf8_decode(s + stop, n - stop, &cp);
                    if (!tk_is_space(cp)) break;
                    stop += (size_t)l;
                }
            if (start > from) {
                tk_piece q = p;
                q.start = p.start + (uint32_t)from;
                q.len = (uint32_t)(start - from);
                q.at_origin = p.at_origin && from == 0;
                if (!tk_work_push(w, q)) return DC_ERR_OOM;
            }
            tk_piece q = p;
            q.added = a->id;
            q.start = p.start + (uint32_t)start;
            q.len = 0;
            q.ostart = w->as ? w->as[p.start + start] : (uint32_t)start;
            q.oend = w->ae ? w->ae[p.start + stop - 1] : (uint32_t)stop;
            q.at_origin = false;
            if (!tk_work_push(w, q)) return DC_ERR_OOM;
            from = stop;
            i = i + len > stop ? i + len : stop;
        }
        if (from < n) {
            tk_piece q = p;
            q.start = p.start + (uint32_t)from;
            q.len = (uint32_t)(n - from);
            q.at_origin = p.at_origin && from == 0;
            if (!tk_work_push(w, q)) return DC_ERR_OOM;
        }
    }
    memmove(w->p, w->p + old, (w->np - old) * sizeof *w->p);
    w->np -= old;
    return DC_OK;
}
