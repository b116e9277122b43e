/* precompiled.c: SentencePiece's precompiled_charsmap normalizer (T5, mT5, XLM-R...), as HF
 * tokenizers runs it: the charsmap is a darts-clone double-array trie over UTF-8 keys plus
 * a blob of NUL-terminated replacements. Each extended grapheme cluster shorter than 6
 * bytes is looked up whole (the shortest key that prefixes it wins); otherwise, or when it
 * has no entry, each character is looked up alone. */
#include <utf8proc.h>

#include "tok_internal.h"

struct tk_precompiled {
    uint32_t *trie;
    size_t ntrie;
    char *norm;
    size_t nnorm;
    /* single ASCII bytes: replacement offset into norm, or -1 */
    int32_t ascii[128];
};

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Shortest-prefix lookup: the replacement offset for key[0..n), or -1. */
static int32_t lookup(const tk_precompiled *pc, const unsigned char *key, size_t n)
{
    if (!pc->ntrie) return -1;
    size_t pos = 0;
    uint32_t unit = pc->trie[0];
    pos ^= (size_t)((unit >> 10) << ((unit & (1u << 9)) >> 6));
    for (size_t i = 0; i < n; i++) {
        unsigned char c = key[i];
        if (!c) break;
        pos ^= c;
        if (pos >= pc->ntrie) return -1;
        unit = pc->trie[pos];
        if ((unit & ((1u << 31) | 0xFFu)) != c) return -1;
        pos ^= (size_t)((unit >> 10) << ((unit & (1u << 9)) >> 6));
        if (pos >= pc->ntrie) return -1;
        if ((unit >> 8) & 1) {
            uint32_t v = pc->trie[pos] & ((1u << 31) - 1);
            return v < pc->nnorm ? (int32_t)v : -1;
        }
    }
    return -1;
}

tk_precompiled *tk_precompiled_from_bytes(const uint8_t *d, size_t n, const char *where)
{
    if (n < 4) {
        dc_set_error(DC_ERR_FORMAT, "%s: precompiled_charsmap is too short", where);
        return NULL;
    }
    uint32_t tsize = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
    if (tsize % 4 || tsize > n - 4) {
        dc_set_error(DC_ERR_FORMAT, "%s: precompiled_charsmap has a bad trie size %u", where, tsize);
        return NULL;
    }
    tk_precompiled *pc = calloc(1, sizeof *pc);
    if (!pc) {
        dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
        return NULL;
    }
    pc->ntrie = tsize / 4;
    pc->trie = malloc(tsize ? tsize : 4);
    pc->nnorm = n - 4 - tsize;
    pc->norm = malloc(pc->nnorm + 1);
    if (!pc->trie || !pc->norm) {
        tk_precompiled_free(pc);
        dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < pc->ntrie; i++) {
        const uint8_t *u = d + 4 + 4 * i;
        pc->trie[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
    }
    memcpy(pc->norm, d + 4 + tsize, pc->nnorm);
    pc->norm[pc->nnorm] = '\0';
    for (int c = 0; c < 128; c++) {
        unsigned char k = (unsigned char)c;
        pc->ascii[c] = c ? lookup(pc, &k, 1) : -1;
    }
    return pc;
}

tk_precompiled *tk_precompiled_new(const char *b64, const char *where)
{
    size_t len = strlen(b64);
    uint8_t *d = malloc(len / 4 * 3 + 4);
    if (!d) {
        dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
        return NULL;
    }
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        if (b64[i] == '=') break;
        int v = b64val((unsigned char)b64[i]);
        if (v < 0) {
            free(d);
            dc_set_error(DC_ERR_FORMAT, "%s: precompiled_charsmap is not valid base64", where);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[n++] = (uint8_t)(acc >> bits);
        }
    }
    tk_precompiled *pc = tk_precompiled_from_bytes(d, n, where);
    free(d);
    return pc;
}

void tk_precompiled_free(tk_precompiled *pc)
{
    if (!pc) return;
    free(pc->trie);
    free(pc->norm);
    free(pc);
}

static bool emit_norm(const tk_precompiled *pc, int32_t off, tk_work *out, uint32_t os, uint32_t oe)
{
    const char *r = pc->norm + off;
    return tk_work_emit(out, r, strlen(r), os, oe);
}

bool tk_precompiled_run(const tk_precompiled *pc, const tk_work *in, const tk_piece *p, tk_work *out)
{
    const char *s = in->text.s;
    size_t i = p->start, e = p->start + p->len;
#define OS(k) (in->as ? in->as[k] : p->ostart)
#define OE(k) (in->ae ? in->ae[k] : p->oend)
    while (i < e) {
        unsigned char c = (unsigned char)s[i];
        /* ASCII followed by ASCII (other than CR LF) is a grapheme of its own */
        if (c < 0x80 && (i + 1 >= e || ((unsigned char)s[i + 1] < 0x80 && !(c == '\r' && s[i + 1] == '\n')))) {
            int32_t off = pc->ascii[c];
            bool ok = off >= 0 ? emit_norm(pc, off, out, OS(i), OE(i))
                               : tk_work_emit(out, s + i, 1, OS(i), OE(i));
            if (in->as && off < 0) {
                out->as[out->text.n - 1] = in->as[i];
                out->ae[out->text.n - 1] = in->ae[i];
            }
            if (!ok) return false;
            i++;
            continue;
        }
        /* one extended grapheme cluster [i, g) */
        int32_t cp;
        size_t g = i + (size_t)tk_utf8_decode(s + i, e - i, &cp);
        utf8proc_int32_t state = 0;
        int32_t prev = cp;
        while (g < e) {
            int32_t c2;
            int l = tk_utf8_decode(s + g, e - g, &c2);
            if (prev < 0 || c2 < 0 || utf8proc_grapheme_break_stateful(prev, c2, &state)) break;
            prev = c2;
            g += (size_t)l;
        }
        if (g - i < 6) {
            int32_t off = lookup(pc, (const unsigned char *)s + i, g - i);
            if (off >= 0) {
                if (!emit_norm(pc, off, out, OS(i), OE(g - 1))) return false;
                i = g;
                continue;
            }
        }
        while (i < g) {
            int32_t c3;
            size_t l = (size_t)tk_utf8_decode(s + i, g - i, &c3);
            int32_t off = lookup(pc, (const unsigned char *)s + i, l);
            bool ok = off >= 0 ? emit_norm(pc, off, out, OS(i), OE(i + l - 1))
                               : tk_work_emit(out, s + i, l, OS(i), OE(i + l - 1));
            if (!ok) return false;
            i += l;
        }
    }
#undef OS
#undef OE
    return true;
}
