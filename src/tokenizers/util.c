/* util.c: the tokenizers' small helpers: byte buffers, UTF-8 decoding and lossy repair,
 * whitespace classes, hash maps (string -> id, id pair -> merge), file and gzip reading,
 * cJSON accessors and the encode work buffer. */
#include <errno.h>
#include <stdio.h>

#include <zlib.h>

#include "tok_internal.h"

/* ---- buffers ---- */

bool tk_buf_reserve(tk_buf *b, size_t extra)
{
    if (b->n + extra <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        dc_set_error(DC_ERR_OOM, "tokenizer: out of memory (%zu bytes)", cap);
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

bool tk_buf_put(tk_buf *b, const void *p, size_t n)
{
    if (!tk_buf_reserve(b, n + 1)) return false;
    if (n) memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = '\0';
    return true;
}

void tk_buf_free(tk_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

char *tk_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) {
        dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *tk_strdup(const char *s) { return tk_strndup(s, strlen(s)); }

/* ---- UTF-8 ---- */

int tk_utf8_decode(const char *s, size_t n, int32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    int32_t v;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *cp = -1;
        return 1;
    }
    if ((size_t)len > n) {
        *cp = -1;
        return 1;
    }
    for (int i = 1; i < len; i++) {
        unsigned char d = u[i];
        if (d < lo || d > hi) {
            *cp = -1;
            return 1;
        }
        lo = 0x80;
        hi = 0xBF;
        v = (v << 6) | (d & 0x3F);
    }
    *cp = v;
    return len;
}

int tk_utf8_encode(int32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the maximal prefix of an invalid sequence at s that could start a valid one
 * (at least 1): the unit the replacement character stands for. */
size_t tk_utf8_invalid_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 1;
    size_t i = 1;
    while (i < (size_t)len && i < n && u[i] >= lo && u[i] <= hi) {
        lo = 0x80;
        hi = 0xBF;
        i++;
    }
    return i;
}

bool tk_utf8_lossy(tk_buf *out, const char *s, size_t n)
{
    size_t i = 0, run = 0;
    while (i < n) {
        int32_t cp;
        int l = tk_utf8_decode(s + i, n - i, &cp);
        if (cp >= 0) {
            i += (size_t)l;
            continue;
        }
        if (!tk_buf_put(out, s + run, i - run)) return false;
        if (!tk_buf_put(out, "\xEF\xBF\xBD", 3)) return false;
        i += tk_utf8_invalid_len(s + i, n - i);
        run = i;
    }
    return tk_buf_put(out, s + run, n - run);
}

bool tk_utf8_valid(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        int32_t cp;
        int l = tk_utf8_decode(s + i, n - i, &cp);
        if (cp < 0) return false;
        i += (size_t)l;
    }
    return true;
}

bool tk_is_space(int32_t c)
{
    if (c < 0x80) return c == ' ' || (c >= 9 && c <= 13);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool tk_in_ranges(const uint32_t (*r)[2], size_t n, int32_t cp)
{
    if (cp < 0) return false;
    size_t lo = 0, hi = n;
    uint32_t c = (uint32_t)cp;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid][0]) hi = mid;
        else if (c > r[mid][1]) lo = mid + 1;
        else return true;
    }
    return false;
}

bool tk_is_py_space(int32_t c) { return tk_is_space(c) || (c >= 0x1C && c <= 0x1F); }

/* ---- hashing ---- */

uint64_t tk_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ (n * 0x9E3779B97F4A7C15ull);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        h = (h ^ v) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ull;
    h ^= h >> 32;
    return h;
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

bool tk_strmap_init(tk_strmap *m, size_t expected)
{
    memset(m, 0, sizeof *m);
    m->cap = pow2_at_least(expected * 2 + 16);
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        dc_set_error(DC_ERR_OOM, "tokenizer: out of memory (vocabulary map)");
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) m->slots[i].val = -1;
    return true;
}

static bool strmap_grow(tk_strmap *m)
{
    size_t cap = m->cap * 2;
    struct tk_strmap_slot *s = calloc(cap, sizeof *s);
    if (!s) {
        dc_set_error(DC_ERR_OOM, "tokenizer: out of memory (vocabulary map)");
        return false;
    }
    for (size_t i = 0; i < cap; i++) s[i].val = -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].val < 0) continue;
        size_t j = m->slots[i].hash & (cap - 1);
        while (s[j].val >= 0) j = (j + 1) & (cap - 1);
        s[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    return true;
}

bool tk_strmap_put(tk_strmap *m, const char *k, size_t n, int32_t val)
{
    if ((m->count + 1) * 2 > m->cap && !strmap_grow(m)) return false;
    uint64_t h = tk_hash(k, n);
    size_t i = h & (m->cap - 1);
    for (;;) {
        struct tk_strmap_slot *s = &m->slots[i];
        if (s->val < 0) break;
        if (s->hash == h && s->len == n && !memcmp(m->keys.s + s->off, k, n)) {
            s->val = val;
            return true;
        }
        i = (i + 1) & (m->cap - 1);
    }
    size_t off = m->keys.n;
    if (!tk_buf_put(&m->keys, k, n)) return false;
    m->slots[i] = (struct tk_strmap_slot){h, (uint32_t)off, (uint32_t)n, val};
    m->count++;
    return true;
}

int32_t tk_strmap_get(const tk_strmap *m, const char *k, size_t n)
{
    if (!m->slots) return -1;
    uint64_t h = tk_hash(k, n);
    size_t i = h & (m->cap - 1);
    for (;;) {
        const struct tk_strmap_slot *s = &m->slots[i];
        if (s->val < 0) return -1;
        if (s->hash == h && s->len == n && !memcmp(m->keys.s + s->off, k, n)) return s->val;
        i = (i + 1) & (m->cap - 1);
    }
}

void tk_strmap_free(tk_strmap *m)
{
    free(m->slots);
    tk_buf_free(&m->keys);
    memset(m, 0, sizeof *m);
}

bool tk_pairmap_init(tk_pairmap *m, size_t expected)
{
    m->cap = pow2_at_least(expected * 2 + 16);
    m->count = 0;
    m->slots = malloc(m->cap * sizeof *m->slots);
    if (!m->slots) {
        dc_set_error(DC_ERR_OOM, "tokenizer: out of memory (merges map)");
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) m->slots[i].key = UINT64_MAX;
    return true;
}

bool tk_pairmap_put(tk_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id)
{
    if ((m->count + 1) * 2 > m->cap) {
        tk_pairmap old = *m;
        if (!tk_pairmap_init(m, old.cap)) {
            *m = old;
            return false;
        }
        for (size_t i = 0; i < old.cap; i++)
            if (old.slots[i].key != UINT64_MAX)
                tk_pairmap_put(m, (int32_t)(old.slots[i].key >> 32), (int32_t)(uint32_t)old.slots[i].key,
                               old.slots[i].rank, old.slots[i].id);
        free(old.slots);
    }
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t mask = m->cap - 1, i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
    while (m->slots[i].key != UINT64_MAX && m->slots[i].key != key) i = (i + 1) & mask;
    if (m->slots[i].key == UINT64_MAX) m->count++;
    m->slots[i] = (struct tk_pair_slot){key, rank, id};
    return true;
}

void tk_pairmap_free(tk_pairmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* ---- files ---- */

dc_status tk_read_file(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return dc_set_error(DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    tk_buf b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (!tk_buf_put(&b, chunk, got)) {
            fclose(f);
            tk_buf_free(&b);
            return DC_ERR_OOM;
        }
    }
    bool err = ferror(f);
    fclose(f);
    if (err) {
        tk_buf_free(&b);
        return dc_set_error(DC_ERR_IO, "%s: read error", path);
    }
    if (!b.s && !tk_buf_put(&b, "", 0)) return DC_ERR_OOM;
    *data = b.s;
    *len = b.n;
    return DC_OK;
}

dc_status tk_read_gzip(const char *path, char **data, size_t *len)
{
    gzFile f = gzopen(path, "rb");
    if (!f) return dc_set_error(DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    tk_buf b = {0};
    char chunk[65536];
    int got;
    while ((got = gzread(f, chunk, sizeof chunk)) > 0) {
        if (!tk_buf_put(&b, chunk, (size_t)got)) {
            gzclose(f);
            tk_buf_free(&b);
            return DC_ERR_OOM;
        }
    }
    int errnum = 0;
    const char *msg = gzerror(f, &errnum);
    if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
        dc_set_error(DC_ERR_FORMAT, "%s: not a valid gzip file (%s)", path, msg ? msg : "?");
        gzclose(f);
        tk_buf_free(&b);
        return DC_ERR_FORMAT;
    }
    gzclose(f);
    if (!b.s && !tk_buf_put(&b, "", 0)) return DC_ERR_OOM;
    *data = b.s;
    *len = b.n;
    return DC_OK;
}

/* ---- cJSON ---- */

const char *tk_json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool tk_json_bool(const cJSON *o, const char *key, bool dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsTrue(v)) return true;
    if (cJSON_IsFalse(v)) return false;
    return dflt;
}

/* ---- work buffer ---- */

bool tk_work_push(tk_work *w, tk_piece pc)
{
    if (w->np == w->pcap) {
        size_t cap = w->pcap ? w->pcap * 2 : 64;
        tk_piece *p = realloc(w->p, cap * sizeof *p);
        if (!p) {
            dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
            return false;
        }
        w->p = p;
        w->pcap = cap;
    }
    w->p[w->np++] = pc;
    return true;
}

bool tk_work_emit(tk_work *w, const char *b, size_t n, uint32_t os, uint32_t oe)
{
    if (!tk_buf_put(&w->text, b, n)) return false;
    if (w->as) {
        if (w->text.n > w->acap) {
            size_t cap = w->acap ? w->acap : 64;
            while (cap < w->text.n) cap *= 2;
            uint32_t *as = realloc(w->as, cap * sizeof *as);
            if (!as) {
                dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
                return false;
            }
            w->as = as;
            uint32_t *ae = realloc(w->ae, cap * sizeof *ae);
            if (!ae) {
                dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
                return false;
            }
            w->ae = ae;
            w->acap = cap;
        }
        for (size_t i = w->text.n - n; i < w->text.n; i++) {
            w->as[i] = os;
            w->ae[i] = oe;
        }
    }
    return true;
}

bool tk_work_reset(tk_work *w, bool align)
{
    w->text.n = 0;
    w->np = 0;
    if (align && !w->as) {
        w->acap = 64;
        w->as = malloc(w->acap * sizeof *w->as);
        w->ae = malloc(w->acap * sizeof *w->ae);
        if (!w->as || !w->ae) {
            free(w->as);
            free(w->ae);
            w->as = w->ae = NULL;
            w->acap = 0;
            dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
            return false;
        }
    } else if (!align && w->as) {
        free(w->as);
        free(w->ae);
        w->as = w->ae = NULL;
        w->acap = 0;
    }
    return true;
}

void tk_work_free(tk_work *w)
{
    tk_buf_free(&w->text);
    free(w->as);
    free(w->ae);
    free(w->p);
    memset(w, 0, sizeof *w);
}
