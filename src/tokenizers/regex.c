/* regex.c: the split and replace patterns of tokenizer.json, compiled with PCRE2 (UTF, UCP,
 * JIT). HF runs them with Oniguruma, whose classes differ from PCRE2's: \s is White_Space
 * (PCRE2 adds U+180E), \w is letters, marks, decimal digits and connector punctuation. The
 * pattern is rewritten so that PCRE2 sees Oniguruma's classes. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>

#include "tok_internal.h"

struct tk_regex {
    pcre2_code *code;
    pcre2_match_data *md;
    bool jit;
};

#define ONIG_SPACE "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
#define ONIG_WORD "\\p{L}\\p{M}\\p{Nd}\\p{Pc}"

/* Appends the ranges as a class body. */
static bool put_ranges(tk_buf *b, const uint32_t (*r)[2], size_t n)
{
    char tmp[48];
    for (size_t i = 0; i < n; i++) {
        int l = r[i][0] == r[i][1] ? snprintf(tmp, sizeof tmp, "\\x{%X}", r[i][0])
                                   : snprintf(tmp, sizeof tmp, "\\x{%X}-\\x{%X}", r[i][0], r[i][1]);
        if (!tk_buf_put(b, tmp, (size_t)l)) return false;
    }
    return true;
}

/* Rewrites \s \S \w \W \p{L} \p{N} outside and inside character classes. */
static char *rewrite(const char *p)
{
    tk_buf b = {0};
    bool in_class = false;
    for (size_t i = 0; p[i]; i++) {
        char c = p[i];
        if (c == '\\' && p[i + 1] == 'p' && p[i + 2] == '{' && (p[i + 3] == 'L' || p[i + 3] == 'N') && p[i + 4] == '}') {
            bool L = p[i + 3] == 'L';
            if ((!in_class && !tk_buf_putc(&b, '[')) ||
                !put_ranges(&b, L ? tk_letter_ranges : tk_number_ranges, L ? tk_letter_nranges : tk_number_nranges) ||
                (!in_class && !tk_buf_putc(&b, ']')))
                goto oom;
            i += 4;
            continue;
        }
        if (c == '\\' && p[i + 1]) {
            char d = p[i + 1];
            const char *rep = NULL;
            if (d == 's') rep = in_class ? ONIG_SPACE : "[" ONIG_SPACE "]";
            else if (d == 'S') rep = in_class ? NULL : "[^" ONIG_SPACE "]";
            else if (d == 'w') rep = in_class ? ONIG_WORD : "[" ONIG_WORD "]";
            else if (d == 'W') rep = in_class ? NULL : "[^" ONIG_WORD "]";
            if (rep) {
                if (!tk_buf_put(&b, rep, strlen(rep))) goto oom;
            } else if (!tk_buf_put(&b, p + i, 2))
                goto oom;
            i++;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
            if (!tk_buf_putc(&b, c)) goto oom;
            /* a ']' or '^]' right after '[' is literal */
            if (p[i + 1] == '^') {
                if (!tk_buf_putc(&b, '^')) goto oom;
                i++;
            }
            if (p[i + 1] == ']') {
                if (!tk_buf_putc(&b, ']')) goto oom;
                i++;
            }
            continue;
        }
        if (c == ']' && in_class) in_class = false;
        if (!tk_buf_putc(&b, c)) goto oom;
    }
    if (!b.s && !tk_buf_put(&b, "", 0)) goto oom;
    return b.s;
oom:
    tk_buf_free(&b);
    return NULL;
}

tk_regex *tk_regex_compile(const char *pattern, const char *where)
{
    char *p = rewrite(pattern);
    if (!p) return NULL;
    int err;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
    free(p);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        dc_set_error(DC_ERR_FORMAT, "%s: bad regex '%s': %s at offset %zu", where, pattern,
                     (const char *)msg, (size_t)off);
        return NULL;
    }
    tk_regex *re = calloc(1, sizeof *re);
    if (!re) {
        pcre2_code_free(code);
        dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
        return NULL;
    }
    re->code = code;
    re->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    re->md = pcre2_match_data_create_from_pattern(code, NULL);
    if (!re->md) {
        tk_regex_free(re);
        dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
        return NULL;
    }
    return re;
}

void tk_regex_free(tk_regex *re)
{
    if (!re) return;
    if (re->md) pcre2_match_data_free(re->md);
    pcre2_code_free(re->code);
    free(re);
}

bool tk_regex_next(tk_regex *re, const char *s, size_t n, size_t from, size_t *ms, size_t *me)
{
    while (from <= n) {
        int rc = re->jit ? pcre2_jit_match(re->code, (PCRE2_SPTR)s, n, from, 0, re->md, NULL)
                         : pcre2_match(re->code, (PCRE2_SPTR)s, n, from, 0, re->md, NULL);
        if (rc < 0) return false;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
        if (ov[1] > ov[0]) {
            *ms = ov[0];
            *me = ov[1];
            return true;
        }
        /* empty match: step over one character */
        if (ov[0] >= n) return false;
        from = ov[0] + (size_t)tk_utf8_len((unsigned char)s[ov[0]]);
        if (from > n) from = n;
    }
    return false;
}

bool tk_pattern_next(const tk_pattern *p, const char *s, size_t n, size_t from, size_t *ms,
                     size_t *me)
{
    if (p->re) return tk_regex_next(p->re, s, n, from, ms, me);
    if (!p->lit_len || from >= n) return false;
    const char *hit = memmem(s + from, n - from, p->lit, p->lit_len);
    if (!hit) return false;
    *ms = (size_t)(hit - s);
    *me = *ms + p->lit_len;
    return true;
}

void tk_pattern_free(tk_pattern *p)
{
    free(p->lit);
    tk_regex_free(p->re);
    memset(p, 0, sizeof *p);
}

dc_status tk_pattern_parse(tk_pattern *p, const cJSON *j, const char *where)
{
    memset(p, 0, sizeof *p);
    const char *lit = tk_json_str(j, "String");
    const char *rx = tk_json_str(j, "Regex");
    if (lit) {
        p->lit = tk_strdup(lit);
        if (!p->lit) return DC_ERR_OOM;
        p->lit_len = strlen(lit);
        return DC_OK;
    }
    if (rx) {
        p->re = tk_regex_compile(rx, where);
        return p->re ? DC_OK : dc_last_status();
    }
    return dc_set_error(DC_ERR_FORMAT, "%s: pattern is neither {\"String\"} nor {\"Regex\"}", where);
}
