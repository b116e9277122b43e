/* unigram.c: the Unigram model (T5, mT5, ALBERT...) as HF tokenizers runs it: Viterbi over
 * the lattice of vocabulary pieces found with a byte trie (common-prefix search), unknown
 * characters scored min_score - 10 and fused, byte_fallback to <0xXX> pieces. Word results
 * are cached. */
#include <stdio.h>

#include "tok_internal.h"

#define UNK_PENALTY 10.0
#define CACHE_SLOTS 65536u
#define CACHE_MAX_ENTRIES 40000u
#define CACHE_MAX_WORD 256u

typedef struct node {
    double score;
    int32_t id;   /* piece id, or -1 (unknown) */
    int32_t from; /* start byte, -1 unreached */
} node;

typedef struct cache_slot {
    uint64_t hash;
    uint32_t off;
    uint16_t klen, ntok;
} cache_slot;

struct tk_unigram {
    double *scores;
    size_t n;
    int32_t unk_id;
    double min_score;
    bool byte_fallback, fuse_unk;
    /* trie: (node, byte) -> (child node in rank, piece id at child in id) */
    tk_pairmap trie;
    int32_t root_child[256], root_id[256];
    int32_t byte_tok[256];
    node *lat;
    size_t latcap;
    tk_tok *pieces;
    size_t piececap;
    cache_slot *cache;
    size_t cache_n;
    tk_buf arena;
    const dc_tokenizer *t;
};

static dc_status oom(void) { return dc_set_error(DC_ERR_OOM, "tokenizer: out of memory"); }

dc_status tk_unigram_parse(dc_tokenizer *t, const cJSON *model, const char *where)
{
    tk_unigram *u = calloc(1, sizeof *u);
    if (!u) return oom();
    t->uni = u;
    u->t = t;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsArray(vocab)) return dc_set_error(DC_ERR_FORMAT, "%s: Unigram model without a \"vocab\" array", where);
    size_t n = (size_t)cJSON_GetArraySize(vocab);
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_id");
    u->unk_id = cJSON_IsNumber(unk) ? (int32_t)unk->valuedouble : -1;
    if (u->unk_id >= (int32_t)n || (cJSON_IsNumber(unk) && unk->valuedouble < 0))
        return dc_set_error(DC_ERR_FORMAT, "%s: Unigram unk_id %d is outside the vocab (%zu pieces)", where,
                            u->unk_id, n);
    u->byte_fallback = tk_json_bool(model, "byte_fallback", false);
    u->fuse_unk = true;
    u->n = n;
    u->scores = malloc((n + 1) * sizeof *u->scores);
    t->nids = n;
    t->model_vocab = n;
    t->id_tok = calloc(n + 1, sizeof *t->id_tok);
    t->id_len = calloc(n + 1, sizeof *t->id_len);
    if (!u->scores || !t->id_tok || !t->id_len) return oom();
    if (!tk_strmap_init(&t->vocab, n) || !tk_pairmap_init(&u->trie, n * 4)) return DC_ERR_OOM;
    for (int i = 0; i < 256; i++) u->root_child[i] = u->root_id[i] = -1;
    int32_t nodes = 1;
    u->min_score = 1e300;
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab)
    {
        const cJSON *tok = cJSON_GetArrayItem(it, 0), *sc = cJSON_GetArrayItem(it, 1);
        if (!cJSON_IsArray(it) || !cJSON_IsString(tok) || !cJSON_IsNumber(sc))
            return dc_set_error(DC_ERR_FORMAT, "%s: Unigram vocab entry %zu is not [\"piece\", score]", where, i);
        const char *s = tok->valuestring;
        size_t l = strlen(s);
        t->id_tok[i] = tk_strndup(s, l);
        if (!t->id_tok[i]) return DC_ERR_OOM;
        t->id_len[i] = (uint32_t)l;
        u->scores[i] = sc->valuedouble;
        if (sc->valuedouble < u->min_score) u->min_score = sc->valuedouble;
        if (!tk_strmap_put(&t->vocab, s, l, (int32_t)i)) return DC_ERR_OOM; /* last wins, as HF */
        /* insert into the trie */
        int32_t cur = 0;
        for (size_t k = 0; k < l; k++) {
            unsigned char c = (unsigned char)s[k];
            bool last = k + 1 == l;
            if (cur == 0) {
                if (u->root_child[c] < 0) u->root_child[c] = nodes++;
                if (last && u->root_id[c] < 0) u->root_id[c] = (int32_t)i;
                cur = u->root_child[c];
                continue;
            }
            const struct tk_pair_slot *e = tk_pairmap_get(&u->trie, cur, c);
            int32_t child, pid;
            if (e) {
                child = e->rank;
                pid = e->id;
            } else {
                child = nodes++;
                pid = -1;
            }
            if (last && pid < 0) pid = (int32_t)i;
            if (!e || pid != e->id)
                if (!tk_pairmap_put(&u->trie, cur, c, child, pid)) return DC_ERR_OOM;
            cur = child;
        }
        i++;
    }
    if (!n) u->min_score = 0;
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        u->byte_tok[b] = tk_strmap_get(&t->vocab, name, 6);
    }
    return DC_OK;
}

void tk_unigram_free(tk_unigram *u)
{
    if (!u) return;
    free(u->scores);
    tk_pairmap_free(&u->trie);
    free(u->lat);
    free(u->pieces);
    free(u->cache);
    tk_buf_free(&u->arena);
    free(u);
}

static bool grow_toks(tk_tok **toks, size_t *cap, size_t need)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    tk_tok *tt = realloc(*toks, c * sizeof *tt);
    if (!tt) return false;
    *toks = tt;
    *cap = c;
    return true;
}

/* emits one piece string [a, b) of the word: its id, else bytes or unk */
static dc_status emit(tk_unigram *u, const char *w, size_t a, size_t b, int32_t id_hint, tk_tok **toks,
                      size_t *nt, size_t *cap)
{
    int32_t id = id_hint >= 0 ? id_hint : tk_strmap_get(&u->t->vocab, w + a, b - a);
    if (id < 0 && u->byte_fallback) {
        bool all = true;
        for (size_t k = a; k < b; k++)
            if (u->byte_tok[(unsigned char)w[k]] < 0) all = false;
        if (all) {
            if (!grow_toks(toks, cap, *nt + (b - a))) return oom();
            for (size_t k = a; k < b; k++) (*toks)[(*nt)++] = (tk_tok){u->byte_tok[(unsigned char)w[k]], (uint32_t)a, (uint32_t)b};
            return DC_OK;
        }
    }
    if (id < 0) id = u->unk_id;
    if (id < 0) return dc_set_error(DC_ERR_FORMAT, "tokenizer: Unigram model has no unk_id for an unknown piece");
    if (!grow_toks(toks, cap, *nt + 1)) return oom();
    (*toks)[(*nt)++] = (tk_tok){id, (uint32_t)a, (uint32_t)b};
    return DC_OK;
}

static bool cache_get(tk_unigram *u, const char *w, size_t n, uint64_t h, tk_tok **toks, size_t *nt, size_t *cap)
{
    if (!u->cache) return false;
    size_t i = h & (CACHE_SLOTS - 1);
    for (;;) {
        cache_slot *s = &u->cache[i];
        if (!s->ntok) return false;
        if (s->hash == h && s->klen == n && !memcmp(u->arena.s + s->off, w, n)) {
            if (!grow_toks(toks, cap, *nt + s->ntok)) return false;
            const char *v = u->arena.s + s->off + n;
            for (uint16_t k = 0; k < s->ntok; k++) {
                tk_tok tk;
                memcpy(&tk.id, v + 8 * k, 4);
                uint16_t a, b;
                memcpy(&a, v + 8 * k + 4, 2);
                memcpy(&b, v + 8 * k + 6, 2);
                tk.start = a;
                tk.end = b;
                (*toks)[(*nt)++] = tk;
            }
            return true;
        }
        i = (i + 1) & (CACHE_SLOTS - 1);
    }
}

static void cache_put(tk_unigram *u, const char *w, size_t n, uint64_t h, const tk_tok *toks, size_t nt)
{
    if (!nt || nt > 65535) return;
    if (!u->cache) {
        u->cache = calloc(CACHE_SLOTS, sizeof *u->cache);
        if (!u->cache) return;
    }
    if (u->cache_n >= CACHE_MAX_ENTRIES) {
        memset(u->cache, 0, CACHE_SLOTS * sizeof *u->cache);
        u->cache_n = 0;
        u->arena.n = 0;
    }
    size_t off = u->arena.n;
    if (!tk_buf_reserve(&u->arena, n + 8 * nt + 1)) {
        dc_clear_error();
        return;
    }
    memcpy(u->arena.s + off, w, n);
    for (size_t k = 0; k < nt; k++) {
        uint16_t a = (uint16_t)toks[k].start, b = (uint16_t)toks[k].end;
        memcpy(u->arena.s + off + n + 8 * k, &toks[k].id, 4);
        memcpy(u->arena.s + off + n + 8 * k + 4, &a, 2);
        memcpy(u->arena.s + off + n + 8 * k + 6, &b, 2);
    }
    u->arena.n = off + n + 8 * nt;
    size_t i = h & (CACHE_SLOTS - 1);
    while (u->cache[i].ntok) i = (i + 1) & (CACHE_SLOTS - 1);
    u->cache[i] = (cache_slot){h, (uint32_t)off, (uint16_t)n, (uint16_t)nt};
    u->cache_n++;
}

dc_status tk_unigram_word(tk_unigram *u, const char *w, size_t n, tk_tok **toks, size_t *nt, size_t *cap)
{
    if (!n) return DC_OK;
    uint64_t h = 0;
    bool cacheable = n <= CACHE_MAX_WORD;
    if (cacheable) {
        h = tk_hash(w, n);
        if (cache_get(u, w, n, h, toks, nt, cap)) return DC_OK;
    }
    if (u->latcap < n + 1) {
        node *l = realloc(u->lat, (n + 1) * sizeof *l);
        if (!l) return oom();
        u->lat = l;
        u->latcap = n + 1;
    }
    node *lat = u->lat;
    for (size_t i = 0; i <= n; i++) lat[i] = (node){0.0, -1, -1};
    double unk_score = u->min_score - UNK_PENALTY;
    size_t start = 0;
    while (start < n) {
        double base = lat[start].score;
        size_t mblen = (size_t)tk_utf8_len((unsigned char)w[start]);
        if (start + mblen > n) mblen = n - start;
        bool single = false;
        /* common-prefix search */
        unsigned char c = (unsigned char)w[start];
        int32_t cur = u->root_child[c];
        int32_t pid = u->root_id[c];
        size_t k = start + 1;
        while (cur >= 0) {
            if (pid >= 0) {
                double cand = base + u->scores[pid];
                node *t = &lat[k];
                if (t->from < 0 || cand > t->score) {
                    t->score = cand;
                    t->from = (int32_t)start;
                    t->id = pid;
                }
                if (k - start == mblen) single = true;
            }
            if (k >= n) break;
            const struct tk_pair_slot *e = tk_pairmap_get(&u->trie, cur, (unsigned char)w[k]);
            if (!e) break;
            cur = e->rank;
            pid = e->id;
            k++;
        }
        if (!single) {
            double cand = base + unk_score;
            node *t = &lat[start + mblen];
            if (t->from < 0 || cand > t->score) {
                t->score = cand;
                t->from = (int32_t)start;
                t->id = u->unk_id >= 0 ? u->unk_id : -2;
            }
        }
        start += mblen;
    }
    /* backtrack: collect pieces right to left, fusing unknowns */
    size_t first = *nt;
    size_t end = n;
    size_t unk_end = 0;
    bool in_unk = false;
    /* store pieces reversed into toks, then reverse */
    while (end > 0) {
        const node *nd = &lat[end];
        if (nd->from < 0) return dc_set_error(DC_ERR_STATE, "tokenizer: Unigram lattice is broken");
        size_t from = (size_t)nd->from;
        bool is_unk = u->fuse_unk && (nd->id == u->unk_id || nd->id == -2);
        if (nd->id == -2) return dc_set_error(DC_ERR_FORMAT, "tokenizer: Unigram model has no unk_id for an unknown character");
        if (is_unk) {
            if (!in_unk) {
                unk_end = end;
                in_unk = true;
            }
        } else {
            if (in_unk) {
                if (!grow_toks(toks, cap, *nt + 1)) return oom();
                (*toks)[(*nt)++] = (tk_tok){-1, (uint32_t)end, (uint32_t)unk_end};
                in_unk = false;
            }
            if (!grow_toks(toks, cap, *nt + 1)) return oom();
            (*toks)[(*nt)++] = (tk_tok){nd->id, (uint32_t)from, (uint32_t)end};
        }
        end = from;
    }
    if (in_unk) {
        if (!grow_toks(toks, cap, *nt + 1)) return oom();
        (*toks)[(*nt)++] = (tk_tok){-1, 0, (uint32_t)unk_end};
    }
    for (size_t a = first, b = *nt; a + 1 < b; a++, b--) {
        tk_tok tmp = (*toks)[a];
        (*toks)[a] = (*toks)[b - 1];
        (*toks)[b - 1] = tmp;
    }
    /* resolve ids: pieces found in the lattice keep their id; fused unknowns are looked up
     * (HF looks every piece string up again: the same except for fused unknowns) */
    size_t np = *nt - first;
    if (np > 0) {
        /* rewrite into final tokens (byte fallback can expand) */
        if (!grow_toks(&u->pieces, &u->piececap, np)) return oom();
        tk_tok *pieces = u->pieces;
        memcpy(pieces, *toks + first, np * sizeof *pieces);
        *nt = first;
        for (size_t k = 0; k < np; k++) {
            int32_t hint = pieces[k].id;
            /* HF looks the piece string up again (a duplicated piece maps to its last id) */
            if (hint >= 0) hint = tk_strmap_get(&u->t->vocab, w + pieces[k].start, pieces[k].end - pieces[k].start);
            dc_status st = emit(u, w, pieces[k].start, pieces[k].end, hint, toks, nt, cap);
            if (st) return st;
        }
    }
    if (cacheable) cache_put(u, w, n, h, *toks + first, *nt - first);
    return DC_OK;
}
