/* pretokenizers.c: tokenizer.json pre-tokenizers (ByteLevel, Metaspace, Split, Whitespace,
 * WhitespaceSplit, Digits, Punctuation, BertPreTokenizer, Sequence). ByteLevel's GPT-2 regex
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * is a hand-written scanner (same pieces as Oniguruma, several times faster than PCRE2 JIT);
 * other regexes go through PCRE2. Split behaviors follow HF's SplitDelimiterBehavior. */
#include <pthread.h>
#include <utf8proc.h>

#include "tok_internal.h"

const char tk_gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- character classes ---- */

enum { C_OTHER = 0, C_LETTER = 1, C_NUMBER = 2, C_SPACE = 3 };

static uint8_t ascii_class[128];

static void ascii_init(void)
{
    for (int c = 0; c < 128; c++) {
        uint8_t k = C_OTHER;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) k = C_LETTER;
        else if (c >= '0' && c <= '9') k = C_NUMBER;
        else if (c == ' ' || (c >= 9 && c <= 13)) k = C_SPACE;
        ascii_class[c] = k;
    }
}

static inline int cp_class(int32_t cp)
{
    if (cp < 0) return C_OTHER;
    if (cp < 128) return ascii_class[cp];
    if (tk_is_space(cp)) return C_SPACE;
    if (tk_in_ranges(tk_letter_ranges, tk_letter_nranges, cp)) return C_LETTER;
    if (tk_in_ranges(tk_number_ranges, tk_number_nranges, cp)) return C_NUMBER;
    return C_OTHER;
}

/* class and length of the character at s[i] */
static inline int class_at(const char *s, size_t n, size_t i, int *len)
{
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80) {
        *len = 1;
        return ascii_class[c];
    }
    int32_t cp;
    *len = tk_utf8_decode(s + i, n - i, &cp);
    return cp_class(cp);
}

/* end of the run of class k starting at i */
static inline size_t run_end(const char *s, size_t n, size_t i, int k)
{
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if (ascii_class[c] != k) break;
            i++;
            continue;
        }
        int l;
        if (class_at(s, n, i, &l) != k) break;
        i += (size_t)l;
    }
    return i;
}

size_t tk_gpt2_next(const char *s, size_t n, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    if (c == '\'' && i + 1 < n) {
        char d = s[i + 1];
        if (d == 's' || d == 't' || d == 'm' || d == 'd') return i + 2;
        if (i + 2 < n) {
            char e = s[i + 2];
            if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) return i + 3;
        }
    }
    if (c == ' ' && i + 1 < n) {
        int l;
        int k = class_at(s, n, i + 1, &l);
        if (k != C_SPACE) return run_end(s, n, i + 1 + (size_t)l, k);
    }
    int l0;
    int k0 = class_at(s, n, i, &l0);
    if (k0 != C_SPACE) return run_end(s, n, i + (size_t)l0, k0);
    /* whitespace: \s+(?!\S) then \s+ */
    size_t j = i, last = i;
    while (j < n) {
        int l;
        if (class_at(s, n, j, &l) != C_SPACE) break;
        last = j;
        j += (size_t)l;
    }
    if (j >= n) return j;
    if (last > i) return last;
    return j;
}

/* ---- parsing ---- */

static dc_status parse_one(tk_pre **arr, size_t *n, size_t *cap, const cJSON *j, const char *where)
{
    const char *type = tk_json_str(j, "type");
    if (!type) return dc_set_error(DC_ERR_FORMAT, "%s: pre_tokenizer without a \"type\"", where);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers");
        if (!cJSON_IsArray(list))
            return dc_set_error(DC_ERR_FORMAT, "%s: Sequence pre_tokenizer without \"pretokenizers\"", where);
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
        tk_pre *a = realloc(*arr, c * sizeof *a);
        if (!a) return dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
        *arr = a;
        *cap = c;
    }
    tk_pre *p = &(*arr)[*n];
    memset(p, 0, sizeof *p);
    if (!strcmp(type, "ByteLevel")) {
        p->type = TK_PRE_BYTELEVEL;
        p->add_prefix_space = tk_json_bool(j, "add_prefix_space", true);
        p->use_regex = tk_json_bool(j, "use_regex", true);
        p->gpt2_regex = true;
    } else if (!strcmp(type, "Metaspace")) {
        p->type = TK_PRE_METASPACE;
        const char *r = tk_json_str(j, "replacement");
        if (!r) r = "\xE2\x96\x81";
        int32_t cp;
        size_t rl = strlen(r);
        if (!rl || (size_t)tk_utf8_decode(r, rl, &cp) != rl || cp < 0)
            return dc_set_error(DC_ERR_FORMAT, "%s: Metaspace replacement must be one character", where);
        memcpy(p->repl, r, rl);
        p->repl_len = (int)rl;
        const char *ps = tk_json_str(j, "prepend_scheme");
        if (ps) {
            if (!strcmp(ps, "always")) p->prepend = TK_PREPEND_ALWAYS;
            else if (!strcmp(ps, "first")) p->prepend = TK_PREPEND_FIRST;
            else if (!strcmp(ps, "never")) p->prepend = TK_PREPEND_NEVER;
            else return dc_set_error(DC_ERR_FORMAT, "%s: unknown Metaspace prepend_scheme '%s'", where, ps);
        } else
            p->prepend = tk_json_bool(j, "add_prefix_space", true) ? TK_PREPEND_ALWAYS : TK_PREPEND_NEVER;
        p->split = tk_json_bool(j, "split", true);
    } else if (!strcmp(type, "Split")) {
        p->type = TK_PRE_SPLIT;
        dc_status st = tk_pattern_parse(&p->pat, cJSON_GetObjectItemCaseSensitive(j, "pattern"), where);
        if (st) return st;
        const char *b = tk_json_str(j, "behavior");
        if (!b) b = "Removed";
        if (!strcmp(b, "Removed")) p->behavior = TK_SPLIT_REMOVED;
        else if (!strcmp(b, "Isolated")) p->behavior = TK_SPLIT_ISOLATED;
        else if (!strcmp(b, "MergedWithPrevious")) p->behavior = TK_SPLIT_MERGED_PREV;
        else if (!strcmp(b, "MergedWithNext")) p->behavior = TK_SPLIT_MERGED_NEXT;
        else if (!strcmp(b, "Contiguous")) p->behavior = TK_SPLIT_CONTIGUOUS;
        else {
            tk_pattern_free(&p->pat);
            return dc_set_error(DC_ERR_FORMAT, "%s: unknown Split behavior '%s'", where, b);
        }
        p->invert = tk_json_bool(j, "invert", false);
    } else if (!strcmp(type, "Whitespace")) {
        p->type = TK_PRE_WHITESPACE;
        p->pat.re = tk_regex_compile("\\w+|[^\\w\\s]+", where);
        if (!p->pat.re) return dc_last_status();
    } else if (!strcmp(type, "WhitespaceSplit")) p->type = TK_PRE_WHITESPACE_SPLIT;
    else if (!strcmp(type, "Digits")) {
        p->type = TK_PRE_DIGITS;
        p->individual_digits = tk_json_bool(j, "individual_digits", false);
    } else if (!strcmp(type, "Punctuation")) {
        p->type = TK_PRE_PUNCTUATION;
        const char *b = tk_json_str(j, "behavior");
        p->behavior = TK_SPLIT_ISOLATED;
        if (b && !strcmp(b, "Removed")) p->behavior = TK_SPLIT_REMOVED;
        else if (b && !strcmp(b, "MergedWithPrevious")) p->behavior = TK_SPLIT_MERGED_PREV;
        else if (b && !strcmp(b, "MergedWithNext")) p->behavior = TK_SPLIT_MERGED_NEXT;
        else if (b && !strcmp(b, "Contiguous")) p->behavior = TK_SPLIT_CONTIGUOUS;
    } else if (!strcmp(type, "BertPreTokenizer")) p->type = TK_PRE_BERT;
    else return dc_set_error(DC_ERR_UNSUPPORTED, "%s: pre_tokenizer type '%s' is not supported", where, type);
    (*n)++;
    return DC_OK;
}

dc_status tk_pre_parse(tk_pre **out, size_t *n, const cJSON *j, const char *where)
{
    *out = NULL;
    *n = 0;
    if (!j || cJSON_IsNull(j)) return DC_OK;
    size_t cap = 0;
    return parse_one(out, n, &cap, j, where);
}

void tk_pre_free(tk_pre *p)
{
    tk_pattern_free(&p->pat);
    tk_regex_free(p->re);
}

/* ---- splitting with behaviors ---- */

typedef struct span {
    uint32_t a, b;
    bool m;
} span;

typedef struct span_list {
    span *s;
    size_t n, cap;
} span_list;

static bool span_push(span_list *l, size_t a, size_t b, bool m)
{
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 32;
        span *s = realloc(l->s, c * sizeof *s);
        if (!s) {
            dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
            return false;
        }
        l->s = s;
        l->cap = c;
    }
    l->s[l->n++] = (span){(uint32_t)a, (uint32_t)b, m};
    return true;
}

/* Applies HF's SplitDelimiterBehavior in place: afterwards l holds the kept ranges. */
static void apply_behavior(span_list *l, tk_split_behavior bh, bool invert)
{
    if (invert)
        for (size_t i = 0; i < l->n; i++) l->s[i].m = !l->s[i].m;
    size_t o = 0;
    bool prev = false;
    switch (bh) {
    case TK_SPLIT_REMOVED:
        for (size_t i = 0; i < l->n; i++)
            if (!l->s[i].m) l->s[o++] = l->s[i];
        break;
    case TK_SPLIT_ISOLATED: o = l->n; break;
    case TK_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < l->n; i++) {
            span sp = l->s[i];
            if (sp.m && !prev && o > 0) l->s[o - 1].b = sp.b;
            else l->s[o++] = sp;
            prev = sp.m;
        }
        break;
    case TK_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < l->n; i++) {
            span sp = l->s[i];
            if (sp.m == prev && o > 0) l->s[o - 1].b = sp.b;
            else l->s[o++] = sp;
            prev = sp.m;
        }
        break;
    case TK_SPLIT_MERGED_NEXT: {
        /* right to left, writing from the end */
        size_t w = l->n;
        for (size_t i = l->n; i-- > 0;) {
            span sp = l->s[i];
            if (sp.m && !prev && w < l->n) l->s[w].a = sp.a;
            else l->s[--w] = sp;
            prev = sp.m;
        }
        memmove(l->s, l->s + w, (l->n - w) * sizeof *l->s);
        o = l->n - w;
        break;
    }
    }
    l->n = o;
}

/* Pushes the kept spans of a piece as new pieces of out (text shared with in). */
static bool push_spans(const span_list *l, const tk_piece *p, tk_work *out)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->s[i].b <= l->s[i].a) continue;
        tk_piece q = *p;
        q.start = p->start + l->s[i].a;
        q.len = l->s[i].b - l->s[i].a;
        q.at_origin = p->at_origin && l->s[i].a == 0;
        if (!tk_work_push(out, q)) return false;
    }
    return true;
}

typedef bool (*char_pred)(int32_t cp);

static bool is_numeric(int32_t cp)
{
    if (cp < 0) return false;
    if (cp < 128) return cp >= '0' && cp <= '9';
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

static bool is_punct(int32_t cp)
{
    if (cp < 0) return false;
    if (cp < 128) return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
                         (cp >= 123 && cp <= 126);
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

/* spans for a character predicate: each matching character is a match of its own */
static bool pred_spans(const char *s, size_t n, char_pred f, span_list *l)
{
    size_t i = 0, prev = 0;
    while (i < n) {
        int32_t cp;
        size_t len = (size_t)tk_utf8_decode(s + i, n - i, &cp);
        if (f(cp)) {
            if (prev < i && !span_push(l, prev, i, false)) return false;
            if (!span_push(l, i, i + len, true)) return false;
            prev = i + len;
        }
        i += len;
    }
    return prev >= n || span_push(l, prev, n, false);
}

static bool pattern_spans(const tk_pattern *pat, const char *s, size_t n, span_list *l)
{
    size_t at = 0, ms, me;
    while (at < n && tk_pattern_next(pat, s, n, at, &ms, &me)) {
        if (ms > at && !span_push(l, at, ms, false)) return false;
        if (!span_push(l, ms, me, true)) return false;
        at = me;
    }
    return at >= n || span_push(l, at, n, false);
}

/* ---- stages ---- */

static void swap_pieces(tk_work *a, tk_work *b)
{
    tk_piece *p = a->p;
    size_t np = a->np, pcap = a->pcap;
    a->p = b->p;
    a->np = b->np;
    a->pcap = b->pcap;
    b->p = p;
    b->np = np;
    b->pcap = pcap;
}

static void swap_all(tk_work *a, tk_work *b)
{
    tk_work t = *a;
    *a = *b;
    *b = t;
}

static dc_status split_stage(const tk_pre *pre, tk_work *in, tk_work *out)
{
    out->np = 0;
    span_list l = {0};
    dc_status st = DC_OK;
    for (size_t i = 0; i < in->np; i++) {
        const tk_piece *p = &in->p[i];
        if (p->added >= 0) {
            if (!tk_work_push(out, *p)) goto oom;
            continue;
        }
        const char *s = in->text.s + p->start;
        size_t n = p->len;
        if (pre->type == TK_PRE_BYTELEVEL) {
            size_t a = 0;
            while (a < n) {
                size_t b = tk_gpt2_next(s, n, a);
                tk_piece q = *p;
                q.start = p->start + (uint32_t)a;
                q.len = (uint32_t)(b - a);
                q.at_origin = p->at_origin && a == 0;
                if (!tk_work_push(out, q)) goto oom;
                a = b;
            }
            continue;
        }
        l.n = 0;
        switch (pre->type) {
        case TK_PRE_SPLIT:
            if (!pattern_spans(&pre->pat, s, n, &l)) goto oom;
            apply_behavior(&l, pre->behavior, pre->invert);
            break;
        case TK_PRE_WHITESPACE:
            if (!pattern_spans(&pre->pat, s, n, &l)) goto oom;
            apply_behavior(&l, TK_SPLIT_REMOVED, true);
            break;
        case TK_PRE_WHITESPACE_SPLIT:
            if (!pred_spans(s, n, tk_is_space, &l)) goto oom;
            apply_behavior(&l, TK_SPLIT_REMOVED, false);
            break;
        case TK_PRE_DIGITS:
            if (!pred_spans(s, n, is_numeric, &l)) goto oom;
            apply_behavior(&l, pre->individual_digits ? TK_SPLIT_ISOLATED : TK_SPLIT_CONTIGUOUS, false);
            break;
        case TK_PRE_PUNCTUATION:
            if (!pred_spans(s, n, is_punct, &l)) goto oom;
            apply_behavior(&l, pre->behavior, false);
            break;
        default: break;
        }
        if (!push_spans(&l, p, out)) goto oom;
    }
    free(l.s);
    swap_pieces(in, out);
    return st;
oom:
    free(l.s);
    return dc_last_status() ? dc_last_status() : DC_ERR_OOM;
}

static dc_status bert_stage(tk_work *in, tk_work *out)
{
    /* whitespace split (removed), then punctuation (isolated) */
    span_list l = {0};
    for (int pass = 0; pass < 2; pass++) {
        out->np = 0;
        for (size_t i = 0; i < in->np; i++) {
            const tk_piece *p = &in->p[i];
            if (p->added >= 0) {
                if (!tk_work_push(out, *p)) goto oom;
                continue;
            }
            l.n = 0;
            if (!pred_spans(in->text.s + p->start, p->len, pass ? is_punct : tk_is_space, &l)) goto oom;
            apply_behavior(&l, pass ? TK_SPLIT_ISOLATED : TK_SPLIT_REMOVED, false);
            if (!push_spans(&l, p, out)) goto oom;
        }
        swap_pieces(in, out);
    }
    free(l.s);
    return DC_OK;
oom:
    free(l.s);
    return DC_ERR_OOM;
}

static const char *byte_char(unsigned b, int *len);

/* ByteLevel's prefix space and (when it is not the last stage) the byte -> char mapping. */
static dc_status bytelevel_transform(const tk_pre *pre, bool map_bytes, tk_work *in, tk_work *out)
{
    if (!tk_work_reset(out, in->as != NULL)) return DC_ERR_OOM;
    for (size_t i = 0; i < in->np; i++) {
        tk_piece p = in->p[i];
        if (p.added >= 0) {
            if (!tk_work_push(out, p)) return DC_ERR_OOM;
            continue;
        }
        size_t at = out->text.n;
        const char *s = in->text.s + p.start;
#define OS(k) (in->as ? in->as[p.start + (k)] : p.ostart)
#define OE(k) (in->ae ? in->ae[p.start + (k)] : p.oend)
        if (pre->add_prefix_space && (p.len == 0 || s[0] != ' ')) {
            size_t l = p.len ? (size_t)tk_utf8_len((unsigned char)s[0]) : 0;
            if (l > p.len) l = p.len;
            if (map_bytes) {
                int bl;
                const char *bc = byte_char(' ', &bl);
                if (!tk_work_emit(out, bc, (size_t)bl, p.len ? OS(0) : p.ostart, p.len ? OE(l - 1) : p.ostart))
                    return DC_ERR_OOM;
            } else if (!tk_work_emit(out, " ", 1, p.len ? OS(0) : p.ostart, p.len ? OE(l - 1) : p.ostart))
                return DC_ERR_OOM;
        }
        for (size_t k = 0; k < p.len; k++) {
            int bl = 1;
            const char *bc = map_bytes ? byte_char((unsigned char)s[k], &bl) : s + k;
            if (!tk_work_emit(out, bc, (size_t)bl, OS(k), OE(k))) return DC_ERR_OOM;
        }
#undef OS
#undef OE
        p.start = (uint32_t)at;
        p.len = (uint32_t)(out->text.n - at);
        if (p.len && !tk_work_push(out, p)) return DC_ERR_OOM;
    }
    swap_all(in, out);
    return DC_OK;
}

static dc_status metaspace_stage(const tk_pre *pre, tk_work *in, tk_work *out)
{
    if (!tk_work_reset(out, in->as != NULL)) return DC_ERR_OOM;
    span_list l = {0};
    for (size_t i = 0; i < in->np; i++) {
        tk_piece p = in->p[i];
        if (p.added >= 0) {
            if (!tk_work_push(out, p)) goto oom;
            continue;
        }
        size_t at = out->text.n;
        const char *s = in->text.s + p.start;
#define OS(k) (in->as ? in->as[p.start + (k)] : p.ostart)
#define OE(k) (in->ae ? in->ae[p.start + (k)] : p.oend)
        bool starts = (p.len >= (uint32_t)pre->repl_len && !memcmp(s, pre->repl, (size_t)pre->repl_len)) ||
                      (p.len && s[0] == ' ');
        bool prepend = !starts && (pre->prepend == TK_PREPEND_ALWAYS ||
                                   (pre->prepend == TK_PREPEND_FIRST && p.at_origin));
        if (prepend && p.len) {
            size_t l = (size_t)tk_utf8_len((unsigned char)s[0]);
            if (l > p.len) l = p.len;
            if (!tk_work_emit(out, pre->repl, (size_t)pre->repl_len, OS(0), OE(l - 1))) goto oom;
        }
        for (size_t k = 0; k < p.len;) {
            if (s[k] == ' ') {
                if (!tk_work_emit(out, pre->repl, (size_t)pre->repl_len, OS(k), OE(k))) goto oom;
                k++;
                continue;
            }
            size_t e = k + 1;
            while (e < p.len && s[e] != ' ') e++;
            size_t o = out->text.n;
            if (!tk_work_emit(out, s + k, e - k, 0, 0)) goto oom;
            if (out->as) {
                memcpy(out->as + o, in->as + p.start + k, (e - k) * sizeof(uint32_t));
                memcpy(out->ae + o, in->ae + p.start + k, (e - k) * sizeof(uint32_t));
            }
            k = e;
        }
#undef OS
#undef OE
        tk_piece q = p;
        q.start = (uint32_t)at;
        q.len = (uint32_t)(out->text.n - at);
        if (!q.len) continue;
        if (!pre->split) {
            if (!tk_work_push(out, q)) goto oom;
            continue;
        }
        /* split on the replacement, merged with the next piece */
        l.n = 0;
        const char *t = out->text.s + q.start;
        size_t prev = 0;
        for (size_t k = 0; k + (size_t)pre->repl_len <= q.len;) {
            if (!memcmp(t + k, pre->repl, (size_t)pre->repl_len)) {
                if (prev < k && !span_push(&l, prev, k, false)) goto oom;
                if (!span_push(&l, k, k + (size_t)pre->repl_len, true)) goto oom;
                k += (size_t)pre->repl_len;
                prev = k;
            } else
                k++;
        }
        if (prev < q.len && !span_push(&l, prev, q.len, false)) goto oom;
        apply_behavior(&l, TK_SPLIT_MERGED_NEXT, false);
        if (!push_spans(&l, &q, out)) goto oom;
    }
    free(l.s);
    swap_all(in, out);
    return DC_OK;
oom:
    free(l.s);
    return DC_ERR_OOM;
}

/* ---- the byte-level alphabet (GPT-2's bytes_to_unicode) ---- */

static char bl_chars[256][3];
static int bl_len[256];
static int16_t bl_inv[324];

static void bl_init(void)
{
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int cp;
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) cp = b;
        else cp = 256 + extra++;
        bl_len[b] = tk_utf8_encode(cp, bl_chars[b]);
    }
    for (int i = 0; i < 324; i++) bl_inv[i] = -1;
    for (int b = 0; b < 256; b++) {
        int32_t c;
        tk_utf8_decode(bl_chars[b], (size_t)bl_len[b], &c);
        bl_inv[c] = (int16_t)b;
    }
}

static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static void tables_init(void)
{
    ascii_init();
    bl_init();
}
void tk_tables_init(void) { pthread_once(&tables_once, tables_init); }

static const char *byte_char(unsigned b, int *len)
{
    *len = bl_len[b & 255];
    return bl_chars[b & 255];
}

dc_status tk_pretokenize(const dc_tokenizer *t, tk_work *in, tk_work *out)
{
    for (size_t k = 0; k < t->npres; k++) {
        const tk_pre *pre = &t->pres[k];
        dc_status st = DC_OK;
        switch (pre->type) {
        case TK_PRE_BYTELEVEL: {
            bool map = !pre->raw_bytes;
            if (pre->add_prefix_space) st = bytelevel_transform(pre, false, in, out);
            if (!st && pre->use_regex) st = split_stage(pre, in, out);
            if (!st && map) {
                tk_pre plain = *pre;
                plain.add_prefix_space = false;
                st = bytelevel_transform(&plain, true, in, out);
            }
            break;
        }
        case TK_PRE_METASPACE: st = metaspace_stage(pre, in, out); break;
        case TK_PRE_BERT: st = bert_stage(in, out); break;
        default: st = split_stage(pre, in, out); break;
        }
        if (st) return st;
    }
    return DC_OK;
}

int tk_byte_of_char(int32_t cp) { return cp >= 0 && cp < 324 ? bl_inv[cp] : -1; }
