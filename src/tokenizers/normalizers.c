/* normalizers.c: tokenizer.json normalizers (NFC, NFD, NFKC, NFKD, Lowercase, Replace, Strip,
 * Prepend, Precompiled, StripAccents, Sequence), applied to the text pieces of the work
 * buffer while keeping each output byte aligned to the original bytes it came from. */
#include <utf8proc.h>

#include "tok_internal.h"

static dc_status parse_one(tk_norm **arr, size_t *n, size_t *cap, const cJSON *j, const char *where)
{
    const char *type = tk_json_str(j, "type");
    if (!type) return dc_set_error(DC_ERR_FORMAT, "%s: normalizer without a \"type\"", where);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "normalizers");
        if (!cJSON_IsArray(list))
            return dc_set_error(DC_ERR_FORMAT, "%s: Sequence normalizer without \"normalizers\"", where);
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
        tk_norm *a = realloc(*arr, c * sizeof *a);
        if (!a) return dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
        *arr = a;
        *cap = c;
    }
    tk_norm *nm = &(*arr)[*n];
    memset(nm, 0, sizeof *nm);
    if (!strcmp(type, "NFC")) nm->type = TK_NORM_NFC;
    else if (!strcmp(type, "NFD")) nm->type = TK_NORM_NFD;
    else if (!strcmp(type, "NFKC")) nm->type = TK_NORM_NFKC;
    else if (!strcmp(type, "NFKD")) nm->type = TK_NORM_NFKD;
    else if (!strcmp(type, "Lowercase")) nm->type = TK_NORM_LOWERCASE;
    else if (!strcmp(type, "StripAccents")) nm->type = TK_NORM_STRIP_ACCENTS;
    else if (!strcmp(type, "Strip")) {
        nm->type = TK_NORM_STRIP;
        nm->left = tk_json_bool(j, "strip_left", true);
        nm->right = tk_json_bool(j, "strip_right", true);
    } else if (!strcmp(type, "Replace") || !strcmp(type, "Prepend")) {
        bool rep = type[0] == 'R';
        nm->type = rep ? TK_NORM_REPLACE : TK_NORM_PREPEND;
        const char *c = tk_json_str(j, rep ? "content" : "prepend");
        if (!c) return dc_set_error(DC_ERR_FORMAT, "%s: %s normalizer without its string", where, type);
        nm->content = tk_strdup(c);
        if (!nm->content) return DC_ERR_OOM;
        nm->content_len = strlen(c);
        if (rep) {
            dc_status st = tk_pattern_parse(&nm->pat, cJSON_GetObjectItemCaseSensitive(j, "pattern"), where);
            if (st) {
                free(nm->content);
                return st;
            }
        }
    } else if (!strcmp(type, "Precompiled")) {
        nm->type = TK_NORM_PRECOMPILED;
        const char *b64 = tk_json_str(j, "precompiled_charsmap");
        if (!b64) {
            /* an empty charsmap (null) normalizes nothing: drop it */
            return DC_OK;
        }
        nm->pc = tk_precompiled_new(b64, where);
        if (!nm->pc) return dc_last_status();
    } else
        return dc_set_error(DC_ERR_UNSUPPORTED, "%s: normalizer type '%s' is not supported", where, type);
    (*n)++;
    return DC_OK;
}

dc_status tk_norm_parse(tk_norm **out, size_t *n, const cJSON *j, const char *where)
{
    *out = NULL;
    *n = 0;
    if (!j || cJSON_IsNull(j)) return DC_OK;
    size_t cap = 0;
    dc_status st = parse_one(out, n, &cap, j, where);
    return st;
}

void tk_norm_free(tk_norm *nm)
{
    free(nm->content);
    tk_pattern_free(&nm->pat);
    tk_precompiled_free(nm->pc);
}

/* ---- helpers ---- */

static inline uint32_t os_of(const tk_work *in, const tk_piece *p, size_t i)
{
    return in->as ? in->as[i] : p->ostart;
}
static inline uint32_t oe_of(const tk_work *in, const tk_piece *p, size_t i)
{
    return in->ae ? in->ae[i] : p->oend;
}

/* Copies in->text[a, b) to out with its alignment. */
static bool copy_range(const tk_work *in, size_t a, size_t b, tk_work *out)
{
    if (b <= a) return true;
    size_t at = out->text.n;
    if (!tk_work_emit(out, in->text.s + a, b - a, 0, 0)) return false;
    if (out->as) {
        memcpy(out->as + at, in->as + a, (b - a) * sizeof(uint32_t));
        memcpy(out->ae + at, in->ae + a, (b - a) * sizeof(uint32_t));
    }
    return true;
}

static bool unicode_norm(const tk_work *in, const tk_piece *p, tk_work *out, tk_norm_type type)
{
    const char *s = in->text.s;
    size_t a = p->start, e = p->start + p->len;
    int opts = UTF8PROC_STABLE;
    if (type == TK_NORM_NFC) opts |= UTF8PROC_COMPOSE;
    else if (type == TK_NORM_NFD) opts |= UTF8PROC_DECOMPOSE;
    else if (type == TK_NORM_NFKC) opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    else opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
    size_t i = a;
    while (i < e) {
        /* a segment: one character, then every character >= U+0300 after it (a character
         * below U+0300 never combines with what precedes it, so segments normalize alone) */
        int32_t cp;
        size_t j = i + (size_t)tk_utf8_decode(s + i, e - i, &cp);
        if (cp < 0x80 && cp >= 0 && (j >= e || (unsigned char)s[j] < 0x80)) {
            if (!copy_range(in, i, j, out)) return false;
            i = j;
            continue;
        }
        while (j < e) {
            int32_t c2;
            int l = tk_utf8_decode(s + j, e - j, &c2);
            if (c2 >= 0 && c2 < 0x300) break;
            j += (size_t)l;
        }
        if (type == TK_NORM_NFC && j - i <= 2 && cp >= 0 && cp < 0x300) {
            if (!copy_range(in, i, j, out)) return false;
            i = j;
            continue;
        }
        utf8proc_uint8_t *res = NULL;
        utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(j - i), &res,
                                          (utf8proc_option_t)opts);
        bool ok;
        if (r < 0) ok = copy_range(in, i, j, out);
        else ok = tk_work_emit(out, (const char *)res, (size_t)r, os_of(in, p, i), oe_of(in, p, j - 1));
        free(res);
        if (!ok) return false;
        i = j;
    }
    return true;
}

static bool lowercase(const tk_work *in, const tk_piece *p, tk_work *out)
{
    const char *s = in->text.s;
    size_t i = p->start, e = p->start + p->len;
    while (i < e) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            char l = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            if (!tk_work_emit(out, &l, 1, os_of(in, p, i), oe_of(in, p, i))) return false;
            i++;
            continue;
        }
        int32_t cp;
        int n = tk_utf8_decode(s + i, e - i, &cp);
        char buf[16];
        int bl;
        if (cp < 0) {
            buf[0] = (char)c;
            bl = 1;
        } else {
            /* HF's (Rust's) full lowercase mapping, from the generated table */
            size_t lo = 0, hi = tk_lower_n;
            const char *low = NULL;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if ((uint32_t)cp < tk_lower_table[mid].cp) hi = mid;
                else if ((uint32_t)cp > tk_lower_table[mid].cp) lo = mid + 1;
                else {
                    low = tk_lower_table[mid].lower;
                    break;
                }
            }
            if (low) {
                bl = (int)strlen(low);
                memcpy(buf, low, (size_t)bl);
            } else {
                memcpy(buf, s + i, (size_t)n);
                bl = n;
            }
        }
        if (!tk_work_emit(out, buf, (size_t)bl, os_of(in, p, i), oe_of(in, p, i + (size_t)n - 1)))
            return false;
        i += (size_t)n;
    }
    return true;
}

static bool replace(const tk_norm *nm, const tk_work *in, const tk_piece *p, tk_work *out)
{
    const char *s = in->text.s + p->start;
    size_t n = p->len, at = 0, ms, me;
    while (tk_pattern_next(&nm->pat, s, n, at, &ms, &me)) {
        if (!copy_range(in, p->start + at, p->start + ms, out)) return false;
        if (!tk_work_emit(out, nm->content, nm->content_len, os_of(in, p, p->start + ms),
                          oe_of(in, p, p->start + me - 1)))
            return false;
        at = me;
    }
    return copy_range(in, p->start + at, p->start + n, out);
}

static bool strip(const tk_norm *nm, const tk_work *in, const tk_piece *p, tk_work *out)
{
    const char *s = in->text.s;
    size_t a = p->start, e = p->start + p->len;
    if (nm->left)
        while (a < e) {
            int32_t cp;
            int l = tk_utf8_decode(s + a, e - a, &cp);
            if (!tk_is_space(cp)) break;
            a += (size_t)l;
        }
    if (nm->right)
        while (e > a) {
            size_t k = e - 1;
            while (k > a && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
            int32_t cp;
            tk_utf8_decode(s + k, e - k, &cp);
            if (!tk_is_space(cp)) break;
            e = k;
        }
    return copy_range(in, a, e, out);
}

static bool strip_accents(const tk_work *in, const tk_piece *p, tk_work *out)
{
    const char *s = in->text.s;
    size_t i = p->start, e = p->start + p->len;
    while (i < e) {
        int32_t cp;
        size_t l = (size_t)tk_utf8_decode(s + i, e - i, &cp);
        if (cp >= 0x300) {
            utf8proc_category_t c = utf8proc_category(cp);
            if (c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_MC || c == UTF8PROC_CATEGORY_ME) {
                i += l;
                continue;
            }
        }
        if (!copy_range(in, i, i + l, out)) return false;
        i += l;
    }
    return true;
}

static bool run_one(const tk_norm *nm, const tk_work *in, const tk_piece *p, tk_work *out)
{
    switch (nm->type) {
    case TK_NORM_NFC:
    case TK_NORM_NFD:
    case TK_NORM_NFKC:
    case TK_NORM_NFKD: return unicode_norm(in, p, out, nm->type);
    case TK_NORM_LOWERCASE: return lowercase(in, p, out);
    case TK_NORM_REPLACE: return replace(nm, in, p, out);
    case TK_NORM_STRIP: return strip(nm, in, p, out);
    case TK_NORM_STRIP_ACCENTS: return strip_accents(in, p, out);
    case TK_NORM_PREPEND:
        if (p->len) {
            size_t l = (size_t)tk_utf8_len((unsigned char)in->text.s[p->start]);
            if (l > p->len) l = p->len;
            if (!tk_work_emit(out, nm->content, nm->content_len, os_of(in, p, p->start),
                              oe_of(in, p, p->start + l - 1)))
                return false;
        }
        return copy_range(in, p->start, p->start + p->len, out);
    case TK_NORM_PRECOMPILED: return tk_precompiled_run(nm->pc, in, p, out);
    }
    return true;
}

dc_status tk_normalize(const dc_tokenizer *t, tk_work *in, tk_work *out)
{
    for (size_t k = 0; k < t->nnorms; k++) {
        const tk_norm *nm = &t->norms[k];
        if (!tk_work_reset(out, in->as != NULL)) return DC_ERR_OOM;
        for (size_t i = 0; i < in->np; i++) {
            tk_piece p = in->p[i];
            if (p.added >= 0) {
                if (!tk_work_push(out, p)) return DC_ERR_OOM;
                continue;
            }
            size_t at = out->text.n;
            if (!run_one(nm, in, &p, out)) return dc_last_status() ? dc_last_status() : DC_ERR_OOM;
            tk_piece q = p;
            q.start = (uint32_t)at;
            q.len = (uint32_t)(out->text.n - at);
            if (q.len && !tk_work_push(out, q)) return DC_ERR_OOM;
        }
        tk_work tmp = *in;
        *in = *out;
        *out = tmp;
    }
    return DC_OK;
}

char *tk_normalize_string(const dc_tokenizer *t, const char *s, size_t n, size_t *out_len)
{
    tk_work w[2];
    memset(w, 0, sizeof w);
    char *res = NULL;
    if (!tk_buf_put(&w[0].text, s, n)) goto done;
    if (!tk_work_push(&w[0], (tk_piece){0, (uint32_t)n, -1, 0, (uint32_t)n, true})) goto done;
    if (tk_normalize(t, &w[0], &w[1])) goto done;
    tk_buf out = {0};
    for (size_t i = 0; i < w[0].np; i++)
        if (!tk_buf_put(&out, w[0].text.s + w[0].p[i].start, w[0].p[i].len)) {
            tk_buf_free(&out);
            goto done;
        }
    if (!out.s && !tk_buf_put(&out, "", 0)) goto done;
    res = out.s;
    *out_len = out.n;
done:
    tk_work_free(&w[0]);
    tk_work_free(&w[1]);
    return res;
}
