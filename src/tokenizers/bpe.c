/* bpe.c: the BPE model as HF tokenizers runs it: a word starts as one symbol per character
 * (continuing_subword_prefix / end_of_word_suffix, byte_fallback, unk fusing as HF), then
 * merges are applied lowest rank first, leftmost first, with a binary heap over a linked
 * list of symbols (O(n log n) per word). Results of words up to 256 bytes are cached in a
 * hash map. When ByteLevel is the last pre-tokenizer the model works on raw bytes: the
 * vocabulary is mapped back through the byte alphabet once at load time, so no per-word
 * byte -> char conversion is needed. */
#include <stdio.h>

#include "tok_internal.h"

#define CACHE_SLOTS 65536u
#define CACHE_MAX_ENTRIES 40000u
#define CACHE_MAX_WORD 256u

typedef struct cache_slot {
    uint64_t hash;
    uint32_t off;  /* into arena: key bytes then (id, len) pairs */
    uint16_t klen, ntok;
} cache_slot;

typedef struct sym {
    int32_t id, prev, next;
    uint32_t start, len;
} sym;

typedef struct heap_ent {
    uint32_t rank, pos;
    int32_t id;
} heap_ent;

struct tk_bpe {
    tk_pairmap merges;
    const tk_strmap *vocab; /* the map words are looked up in: t->vocab or raw */
    tk_strmap raw;
    bool raw_mode;
    int32_t unk_id;
    char *prefix, *suffix;
    size_t prefix_len, suffix_len;
    bool fuse_unk, byte_fallback, ignore_merges;
    int32_t byte_tok[256];
    int32_t char1[256]; /* id of the 1-byte symbol b (no prefix or suffix), or -1 */
    char *tmp;           /* prefix + char + suffix */
    /* cache */
    cache_slot *cache;
    size_t cache_n;
    tk_buf arena;
    /* scratch */
    sym *syms;
    size_t symcap;
    heap_ent *heap;
    size_t heapcap;
};

static dc_status oom(void) { return dc_set_error(DC_ERR_OOM, "tokenizer: out of memory"); }

const char *tk_bpe_suffix(const tk_bpe *b) { return b->suffix; }

dc_status tk_bpe_parse(dc_tokenizer *t, const cJSON *model, const char *where)
{
    tk_bpe *b = calloc(1, sizeof *b);
    if (!b) return oom();
    t->bpe = b;
    b->vocab = &t->vocab;
    b->unk_id = -1;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab)) return dc_set_error(DC_ERR_FORMAT, "%s: BPE model without a \"vocab\" object", where);
    if (merges && !cJSON_IsArray(merges) && !cJSON_IsNull(merges))
        return dc_set_error(DC_ERR_FORMAT, "%s: BPE \"merges\" is not an array", where);
    /* vocabulary */
    size_t nv = (size_t)cJSON_GetArraySize(vocab);
    int32_t maxid = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab)
    {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 1e8 ||
            it->valuedouble != (double)(int32_t)it->valuedouble)
            return dc_set_error(DC_ERR_FORMAT, "%s: vocab entry '%s' has no valid id", where, it->string);
        if ((int32_t)it->valuedouble > maxid) maxid = (int32_t)it->valuedouble;
    }
    if (!tk_strmap_init(&t->vocab, nv)) return DC_ERR_OOM;
    t->nids = (size_t)(maxid + 1);
    t->id_tok = calloc(t->nids + 1, sizeof *t->id_tok);
    t->id_len = calloc(t->nids + 1, sizeof *t->id_len);
    if (!t->id_tok || !t->id_len) return oom();
    cJSON_ArrayForEach(it, vocab)
    {
        int32_t id = (int32_t)it->valuedouble;
        size_t l = strlen(it->string);
        if (!tk_strmap_put(&t->vocab, it->string, l, id)) return DC_ERR_OOM;
        if (!t->id_tok[id]) {
            t->id_tok[id] = tk_strndup(it->string, l);
            if (!t->id_tok[id]) return DC_ERR_OOM;
            t->id_len[id] = (uint32_t)l;
        }
    }
    t->model_vocab = nv;
    /* options */
    const char *unk = tk_json_str(model, "unk_token");
    const char *pre = tk_json_str(model, "continuing_subword_prefix");
    const char *suf = tk_json_str(model, "end_of_word_suffix");
    if (pre && *pre) {
        b->prefix = tk_strdup(pre);
        if (!b->prefix) return DC_ERR_OOM;
        b->prefix_len = strlen(pre);
    }
    if (suf && *suf) {
        b->suffix = tk_strdup(suf);
        if (!b->suffix) return DC_ERR_OOM;
        b->suffix_len = strlen(suf);
    }
    b->fuse_unk = tk_json_bool(model, "fuse_unk", false);
    b->byte_fallback = tk_json_bool(model, "byte_fallback", false);
    b->ignore_merges = tk_json_bool(model, "ignore_merges", false);
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(drop) && drop->valuedouble > 0)
        return dc_set_error(DC_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", where);
    if (unk) {
        b->unk_id = tk_strmap_get(&t->vocab, unk, strlen(unk));
        if (b->unk_id < 0) {
            /* HF fails only when an unknown character needs it */
            b->unk_id = -2;
        }
    }
    b->tmp = malloc(8 + b->prefix_len + b->suffix_len);
    if (!b->tmp) return oom();
    for (int i = 0; i < 256; i++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", i);
        b->byte_tok[i] = tk_strmap_get(&t->vocab, name, 6);
    }
    /* merges */
    size_t nm = merges ? (size_t)cJSON_GetArraySize(merges) : 0;
    if (!tk_pairmap_init(&b->merges, nm)) return DC_ERR_OOM;
    tk_buf cat = {0};
    int32_t rank = 0;
    cJSON_ArrayForEach(it, merges)
    {
        const char *l, *r;
        size_t ll, rl;
        char *sp = NULL;
        if (cJSON_IsString(it)) {
            l = it->valuestring;
            sp = strchr(l, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                tk_buf_free(&cat);
                return dc_set_error(DC_ERR_FORMAT, "%s: merge %d '%s' is not two tokens separated by one space",
                                    where, rank, l);
            }
            ll = (size_t)(sp - l);
            r = sp + 1;
            rl = strlen(r);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 0)) && cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            l = cJSON_GetArrayItem(it, 0)->valuestring;
            r = cJSON_GetArrayItem(it, 1)->valuestring;
            ll = strlen(l);
            rl = strlen(r);
        } else {
            tk_buf_free(&cat);
            return dc_set_error(DC_ERR_FORMAT, "%s: merge %d is neither \"a b\" nor [\"a\", \"b\"]", where, rank);
        }
        int32_t a = tk_strmap_get(&t->vocab, l, ll), c = tk_strmap_get(&t->vocab, r, rl);
        if (a < 0 || c < 0) {
            tk_buf_free(&cat);
            return dc_set_error(DC_ERR_FORMAT, "%s: merge %d '%.*s %.*s' uses a token not in the vocab", where,
                                rank, (int)ll, l, (int)rl, r);
        }
        cat.n = 0;
        const char *rr = r;
        size_t rrl = rl;
        if (b->prefix_len && rl >= b->prefix_len && !memcmp(r, b->prefix, b->prefix_len)) {
            rr += b->prefix_len;
            rrl -= b->prefix_len;
        }
        if (!tk_buf_put(&cat, l, ll) || !tk_buf_put(&cat, rr, rrl)) {
            tk_buf_free(&cat);
            return DC_ERR_OOM;
        }
        int32_t nid = tk_strmap_get(&t->vocab, cat.s, cat.n);
        if (nid < 0) {
            dc_set_error(DC_ERR_FORMAT, "%s: merge %d gives '%s', which is not in the vocab", where, rank, cat.s);
            tk_buf_free(&cat);
            return DC_ERR_FORMAT;
        }
        if (!tk_pairmap_put(&b->merges, a, c, rank, nid)) {
            tk_buf_free(&cat);
            return DC_ERR_OOM;
        }
        rank++;
    }
    tk_buf_free(&cat);
    for (int i = 0; i < 256; i++) {
        char ch = (char)i;
        b->char1[i] = tk_strmap_get(b->vocab, &ch, 1);
    }
    return DC_OK;
}

dc_status tk_bpe_set_raw(dc_tokenizer *t)
{
    tk_bpe *b = t->bpe;
    if (!tk_strmap_init(&b->raw, t->model_vocab)) return DC_ERR_OOM;
    tk_buf tmp = {0};
    for (size_t id = 0; id < t->nids; id++) {
        const char *s = t->id_tok[id];
        if (!s) continue;
        size_t n = t->id_len[id], i = 0;
        tmp.n = 0;
        bool ok = true;
        while (i < n) {
            int32_t cp;
            i += (size_t)tk_utf8_decode(s + i, n - i, &cp);
            int by = tk_byte_of_char(cp);
            if (by < 0) {
                ok = false;
                break;
            }
            char c = (char)by;
            if (!tk_buf_put(&tmp, &c, 1)) {
                tk_buf_free(&tmp);
                return DC_ERR_OOM;
            }
        }
        if (ok && tmp.n && tk_strmap_get(&b->raw, tmp.s, tmp.n) < 0 &&
            !tk_strmap_put(&b->raw, tmp.s, tmp.n, (int32_t)id)) {
            tk_buf_free(&tmp);
            return DC_ERR_OOM;
        }
    }
    tk_buf_free(&tmp);
    /* the prefix and suffix are looked up mapped too: keep them as they are (ASCII) */
    b->vocab = &b->raw;
    b->raw_mode = true;
    for (int i = 0; i < 256; i++) {
        char ch = (char)i;
        b->char1[i] = tk_strmap_get(b->vocab, &ch, 1);
    }
    return DC_OK;
}

void tk_bpe_free(tk_bpe *b)
{
    if (!b) return;
    tk_pairmap_free(&b->merges);
    tk_strmap_free(&b->raw);
    free(b->prefix);
    free(b->suffix);
    free(b->tmp);
    free(b->cache);
    tk_buf_free(&b->arena);
    free(b->syms);
    free(b->heap);
    free(b);
}

/* ---- heap ---- */

static inline bool heap_less(const heap_ent *a, const heap_ent *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static inline void heap_push(heap_ent *h, size_t *n, heap_ent e)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static inline heap_ent heap_pop(heap_ent *h, size_t *n)
{
    heap_ent top = h[0], last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

/* ---- cache ---- */

static bool cache_get(tk_bpe *b, const char *w, size_t n, uint64_t h, tk_tok **toks, size_t *nt, size_t *cap)
{
    if (!b->cache) return false;
    size_t i = h & (CACHE_SLOTS - 1);
    for (;;) {
        cache_slot *s = &b->cache[i];
        if (!s->ntok) return false;
        if (s->hash == h && s->klen == n && !memcmp(b->arena.s + s->off, w, n)) {
            if (*nt + s->ntok > *cap) {
                size_t c = *cap ? *cap : 64;
                while (c < *nt + s->ntok) c *= 2;
                tk_tok *tt = realloc(*toks, c * sizeof *tt);
                if (!tt) return false;
                *toks = tt;
                *cap = c;
            }
            const char *v = b->arena.s + s->off + n;
            uint32_t at = 0;
            for (uint16_t k = 0; k < s->ntok; k++) {
                int32_t id;
                uint16_t len;
                memcpy(&id, v + 6 * k, 4);
                memcpy(&len, v + 6 * k + 4, 2);
                (*toks)[(*nt)++] = (tk_tok){id, at, at + len};
                at += len;
            }
            return true;
        }
        i = (i + 1) & (CACHE_SLOTS - 1);
    }
}

static void cache_put(tk_bpe *b, const char *w, size_t n, uint64_t h, const tk_tok *toks, size_t nt)
{
    if (!nt || nt > 65535) return;
    if (!b->cache) {
        b->cache = calloc(CACHE_SLOTS, sizeof *b->cache);
        if (!b->cache) return;
    }
    if (b->cache_n >= CACHE_MAX_ENTRIES) {
        memset(b->cache, 0, CACHE_SLOTS * sizeof *b->cache);
        b->cache_n = 0;
        b->arena.n = 0;
    }
    size_t off = b->arena.n;
    if (!tk_buf_reserve(&b->arena, n + 6 * nt + 1)) {
        dc_clear_error();
        return;
    }
    memcpy(b->arena.s + off, w, n);
    for (size_t k = 0; k < nt; k++) {
        uint16_t len = (uint16_t)(toks[k].end - toks[k].start);
        memcpy(b->arena.s + off + n + 6 * k, &toks[k].id, 4);
        memcpy(b->arena.s + off + n + 6 * k + 4, &len, 2);
    }
    b->arena.n = off + n + 6 * nt;
    size_t i = h & (CACHE_SLOTS - 1);
    while (b->cache[i].ntok) i = (i + 1) & (CACHE_SLOTS - 1);
    b->cache[i] = (cache_slot){h, (uint32_t)off, (uint16_t)n, (uint16_t)nt};
    b->cache_n++;
}

/* ---- one word ---- */

static bool add_sym(tk_bpe *b, size_t *ns, int32_t id, size_t start, size_t len)
{
    if (*ns == b->symcap) {
        size_t c = b->symcap ? b->symcap * 2 : 256;
        sym *s = realloc(b->syms, c * sizeof *s);
        if (!s) return false;
        b->syms = s;
        b->symcap = c;
    }
    b->syms[*ns] = (sym){id, (int32_t)*ns - 1, (int32_t)*ns + 1, (uint32_t)start, (uint32_t)len};
    (*ns)++;
    return true;
}

dc_status tk_bpe_word(tk_bpe *b, const char *w, size_t n, tk_tok **toks, size_t *nt, size_t *cap)
{
    if (!n) return DC_OK;
    uint64_t h = 0;
    bool cacheable = n <= CACHE_MAX_WORD;
    if (cacheable) {
        h = tk_hash(w, n);
        if (cache_get(b, w, n, h, toks, nt, cap)) return DC_OK;
    }
    if (b->ignore_merges) {
        int32_t id = tk_strmap_get(b->vocab, w, n);
        if (id >= 0) {
            if (*nt + 1 > *cap) {
                size_t c = *cap ? *cap * 2 : 64;
                tk_tok *tt = realloc(*toks, c * sizeof *tt);
                if (!tt) return oom();
                *toks = tt;
                *cap = c;
            }
            (*toks)[(*nt)++] = (tk_tok){id, 0, (uint32_t)n};
            return DC_OK;
        }
    }
    size_t ns = 0;
    int32_t unk_id = -1;
    size_t unk_start = 0, unk_len = 0;
    bool have_unk = false;
    size_t i = 0;
    while (i < n) {
        size_t cl = b->raw_mode ? 1 : (size_t)tk_utf8_len((unsigned char)w[i]);
        if (i + cl > n) cl = n - i;
        bool first = i == 0, last = i + cl >= n;
        int32_t id;
        size_t sl = 0;
        if (cl == 1 && (first || !b->prefix_len) && (!last || !b->suffix_len))
            id = b->char1[(unsigned char)w[i]];
        else {
            if (!first && b->prefix_len) {
                memcpy(b->tmp, b->prefix, b->prefix_len);
                sl = b->prefix_len;
            }
            memcpy(b->tmp + sl, w + i, cl);
            sl += cl;
            if (last && b->suffix_len) {
                memcpy(b->tmp + sl, b->suffix, b->suffix_len);
                sl += b->suffix_len;
            }
            id = tk_strmap_get(b->vocab, b->tmp, sl);
        }
        if (id >= 0) {
            if (have_unk) {
                if (!add_sym(b, &ns, unk_id, unk_start, unk_len)) return oom();
                have_unk = false;
            }
            if (!add_sym(b, &ns, id, i, cl)) return oom();
        } else {
            bool done = false;
            if (b->byte_fallback) {
                /* the symbol string (with prefix/suffix) as <0xXX> tokens, if all exist */
                const char *s = sl ? b->tmp : w + i;
                size_t slen = sl ? sl : cl;
                bool all = true;
                for (size_t k = 0; k < slen; k++)
                    if (b->byte_tok[(unsigned char)s[k]] < 0) all = false;
                if (all) {
                    /* HF gives each byte token a length of one byte */
                    for (size_t k = 0; k < slen; k++)
                        if (!add_sym(b, &ns, b->byte_tok[(unsigned char)s[k]], i + (k < cl ? k : cl), k < cl ? 1 : 0))
                            return oom();
                    done = true;
                }
            }
            if (!done && b->unk_id != -1) {
                if (b->unk_id == -2)
                    return dc_set_error(DC_ERR_FORMAT, "tokenizer: the BPE unk_token is not in the vocabulary");
                if (have_unk && b->fuse_unk)
                    unk_len += cl;
                else {
                    if (have_unk && !add_sym(b, &ns, unk_id, unk_start, unk_len)) return oom();
                    unk_id = b->unk_id;
                    unk_start = i;
                    unk_len = cl;
                    have_unk = true;
                }
            }
        }
        i += cl;
    }
    if (have_unk && !add_sym(b, &ns, unk_id, unk_start, unk_len)) return oom();
    if (!ns) return DC_OK;
    b->syms[ns - 1].next = -1;
    /* merges */
    if (ns > 1 && b->merges.count) {
        if (b->heapcap < ns * 3) { /* (ns - 1) initial pairs + 2 per merge */
            size_t c = ns * 3;
            heap_ent *hh = realloc(b->heap, c * sizeof *hh);
            if (!hh) return oom();
            b->heap = hh;
            b->heapcap = c;
        }
        size_t hn = 0;
        sym *s = b->syms;
        for (size_t k = 0; k + 1 < ns; k++) {
            const struct tk_pair_slot *m = tk_pairmap_get(&b->merges, s[k].id, s[k + 1].id);
            if (m) heap_push(b->heap, &hn, (heap_ent){(uint32_t)m->rank, (uint32_t)k, m->id});
        }
        while (hn) {
            heap_ent top = heap_pop(b->heap, &hn);
            sym *cur = &s[top.pos];
            if (cur->id < 0 || cur->next < 0) continue;
            sym *right = &s[cur->next];
            const struct tk_pair_slot *m = tk_pairmap_get(&b->merges, cur->id, right->id);
            if (!m || m->id != top.id) continue;
            cur->id = top.id;
            cur->len += right->len;
            int32_t rn = right->next;
            right->id = -1; /* removed */
            cur->next = rn;
            if (rn >= 0) s[rn].prev = (int32_t)top.pos;
            if (cur->prev >= 0) {
                const struct tk_pair_slot *mp = tk_pairmap_get(&b->merges, s[cur->prev].id, cur->id);
                if (mp) heap_push(b->heap, &hn, (heap_ent){(uint32_t)mp->rank, (uint32_t)cur->prev, mp->id});
            }
            if (rn >= 0) {
                const struct tk_pair_slot *mn = tk_pairmap_get(&b->merges, cur->id, s[rn].id);
                if (mn) heap_push(b->heap, &hn, (heap_ent){(uint32_t)mn->rank, top.pos, mn->id});
            }
        }
    }
    /* output */
    size_t start_nt = *nt;
    for (int32_t k = 0; k >= 0; k = b->syms[k].next) {
        if (*nt == *cap) {
            size_t c = *cap ? *cap * 2 : 64;
            tk_tok *tt = realloc(*toks, c * sizeof *tt);
            if (!tt) return oom();
            *toks = tt;
            *cap = c;
        }
        const sym *s = &b->syms[k];
        (*toks)[(*nt)++] = (tk_tok){s->id, s->start, s->start + s->len};
        if (s->next < 0) break;
    }
    if (cacheable) cache_put(b, w, n, h, *toks + start_nt, *nt - start_nt);
    return DC_OK;
}
