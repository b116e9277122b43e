/* spm.c: reads a SentencePiece .model (a ModelProto protobuf: pieces with scores and types,
 * trainer_spec, normalizer_spec) and builds the tokenizer.json tree that transformers (v5)
 * makes from it: BPE models as LlamaTokenizer (byte fallback, Metaspace "first", <s>
 * prepended), Unigram models as T5Tokenizer (Precompiled charsmap, WhitespaceSplit +
 * Metaspace, </s> appended). */
#include <stdio.h>

#include "tok_internal.h"

typedef struct pb {
    const uint8_t *p, *end;
    bool bad;
} pb;

static uint64_t varint(pb *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = true;
            return 0;
        }
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) return v;
    }
    r->bad = true;
    return 0;
}

/* Reads a field key; returns false at the end. */
static bool field(pb *r, uint32_t *num, uint32_t *wt)
{
    if (r->p >= r->end || r->bad) return false;
    uint64_t k = varint(r);
    *num = (uint32_t)(k >> 3);
    *wt = (uint32_t)(k & 7);
    return !r->bad;
}

/* Length-delimited payload as a sub-reader. */
static pb sub(pb *r)
{
    uint64_t n = varint(r);
    pb s = {r->p, r->p, false};
    if (r->bad || n > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        return s;
    }
    s.end = r->p + n;
    r->p += n;
    return s;
}

static void skip(pb *r, uint32_t wt)
{
    switch (wt) {
    case 0: varint(r); break;
    case 1:
        if (r->end - r->p < 8) r->bad = true;
        else r->p += 8;
        break;
    case 2: sub(r); break;
    case 5:
        if (r->end - r->p < 4) r->bad = true;
        else r->p += 4;
        break;
    default: r->bad = true;
    }
}

typedef struct piece {
    char *s;
    size_t len;
    float score;
    int type; /* 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte */
} piece;

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64encode(const uint8_t *d, size_t n)
{
    char *o = malloc((n + 2) / 3 * 4 + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
        o[k++] = b64chars[(v >> 18) & 63];
        o[k++] = b64chars[(v >> 12) & 63];
        o[k++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        o[k++] = i + 2 < n ? b64chars[v & 63] : '=';
    }
    o[k] = '\0';
    return o;
}

static cJSON *parse_lit(const char *s) { return cJSON_Parse(s); }

cJSON *tk_json_from_spm(const char *path)
{
    char *data;
    size_t len;
    if (tk_read_file(path, &data, &len)) return NULL;
    pb r = {(const uint8_t *)data, (const uint8_t *)data + len, false};
    piece *pieces = NULL;
    size_t np = 0, cap = 0;
    int model_type = 1, unk_id = 0, bos_id = 1, eos_id = 2;
    bool byte_fallback = false;
    const uint8_t *charsmap = NULL;
    size_t charsmap_len = 0;
    cJSON *root = NULL;
    uint32_t num, wt;
    while (field(&r, &num, &wt)) {
        if (num == 1 && wt == 2) {
            pb s = sub(&r);
            piece pc = {NULL, 0, 0.0f, 1};
            uint32_t n2, w2;
            while (field(&s, &n2, &w2)) {
                if (n2 == 1 && w2 == 2) {
                    pb t = sub(&s);
                    if (!s.bad) {
                        free(pc.s);
                        pc.s = tk_strndup((const char *)t.p, (size_t)(t.end - t.p));
                        if (!pc.s) goto oom;
                        pc.len = (size_t)(t.end - t.p);
                    }
                } else if (n2 == 2 && w2 == 5) {
                    if (s.end - s.p < 4) s.bad = true;
                    else {
                        memcpy(&pc.score, s.p, 4);
                        s.p += 4;
                    }
                } else if (n2 == 3 && w2 == 0)
                    pc.type = (int)varint(&s);
                else
                    skip(&s, w2);
            }
            if (s.bad || !pc.s) {
                free(pc.s);
                r.bad = true;
                break;
            }
            if (np == cap) {
                cap = cap ? cap * 2 : 1024;
                piece *q = realloc(pieces, cap * sizeof *q);
                if (!q) {
                    free(pc.s);
                    goto oom;
                }
                pieces = q;
            }
            pieces[np++] = pc;
        } else if (num == 2 && wt == 2) {
            pb s = sub(&r);
            uint32_t n2, w2;
            while (field(&s, &n2, &w2)) {
                if (w2 == 0 && (n2 == 3 || n2 == 35 || n2 == 40 || n2 == 41 || n2 == 42)) {
                    int64_t v = (int64_t)varint(&s);
                    if (n2 == 3) model_type = (int)v;
                    else if (n2 == 35) byte_fallback = v != 0;
                    else if (n2 == 40) unk_id = (int)v;
                    else if (n2 == 41) bos_id = (int)v;
                    else eos_id = (int)v;
                } else
                    skip(&s, w2);
            }
            if (s.bad) r.bad = true;
        } else if (num == 3 && wt == 2) {
            pb s = sub(&r);
            uint32_t n2, w2;
            while (field(&s, &n2, &w2)) {
                if (n2 == 2 && w2 == 2) {
                    pb t = sub(&s);
                    charsmap = t.p;
                    charsmap_len = (size_t)(t.end - t.p);
                } else
                    skip(&s, w2);
            }
            if (s.bad) r.bad = true;
        } else
            skip(&r, wt);
    }
    if (r.bad || !np) {
        dc_set_error(DC_ERR_FORMAT, "%s: not a SentencePiece model (%s)", path,
                     r.bad ? "malformed protobuf" : "no pieces");
        goto done;
    }
    if (model_type != 1 && model_type != 2) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: SentencePiece model type %d is not supported (Unigram and BPE are)",
                     path, model_type);
        goto done;
    }
    if (unk_id < 0 || (size_t)unk_id >= np) {
        dc_set_error(DC_ERR_FORMAT, "%s: unk_id %d is outside the %zu pieces", path, unk_id, np);
        goto done;
    }
    root = cJSON_CreateObject();
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    if (!root || !model || !added) goto oom;
    /* special tokens: unk, bos, eos and the control pieces */
    for (size_t i = 0; i < np; i++) {
        bool sp = pieces[i].type == 3 || (int)i == unk_id || (int)i == bos_id || (int)i == eos_id;
        if (!sp) continue;
        cJSON *o = cJSON_CreateObject();
        if (!o) goto oom;
        cJSON_AddNumberToObject(o, "id", (double)i);
        cJSON_AddStringToObject(o, "content", pieces[i].s);
        cJSON_AddBoolToObject(o, "normalized", false);
        cJSON_AddBoolToObject(o, "special", true);
        cJSON_AddItemToArray(added, o);
    }
    char buf[512];
    if (model_type == 2) {
        cJSON_AddStringToObject(model, "type", "BPE");
        cJSON_AddBoolToObject(model, "fuse_unk", true);
        cJSON_AddBoolToObject(model, "byte_fallback", true);
        cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
        cJSON *merges = cJSON_AddArrayToObject(model, "merges");
        if (!vocab || !merges) goto oom;
        tk_strmap ids;
        if (!tk_strmap_init(&ids, np)) goto oom;
        for (size_t i = 0; i < np; i++) {
            if (!tk_strmap_put(&ids, pieces[i].s, pieces[i].len, (int32_t)i)) {
                tk_strmap_free(&ids);
                goto oom;
            }
        }
        for (size_t i = 0; i < np; i++)
            if (tk_strmap_get(&ids, pieces[i].s, pieces[i].len) == (int32_t)i)
                cJSON_AddNumberToObject(vocab, pieces[i].s, (double)i);
        /* transformers' generate_merges: for each piece in id order, each split point (in
         * characters) whose halves are both pieces */
        for (size_t i = 0; i < np; i++) {
            const char *s = pieces[i].s;
            size_t n = pieces[i].len;
            if (tk_strmap_get(&ids, s, n) != (int32_t)i) continue;
            size_t k = (size_t)tk_utf8_len((unsigned char)s[0]);
            for (; k < n; k += (size_t)tk_utf8_len((unsigned char)s[k])) {
                if (tk_strmap_get(&ids, s, k) < 0 || tk_strmap_get(&ids, s + k, n - k) < 0) continue;
                cJSON *pair = cJSON_CreateArray();
                char *a = tk_strndup(s, k);
                if (!pair || !a) {
                    free(a);
                    cJSON_Delete(pair);
                    tk_strmap_free(&ids);
                    goto oom;
                }
                cJSON_AddItemToArray(pair, cJSON_CreateString(a));
                cJSON_AddItemToArray(pair, cJSON_CreateString(s + k));
                free(a);
                cJSON_AddItemToArray(merges, pair);
            }
        }
        tk_strmap_free(&ids);
        cJSON_AddItemToObject(root, "pre_tokenizer",
                              parse_lit("{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"first\",\"split\":false}"));
        cJSON_AddItemToObject(root, "decoder",
                              parse_lit("{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},"
                                        "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
                                        "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}"));
        if (bos_id >= 0 && (size_t)bos_id < np) {
            snprintf(buf, sizeof buf,
                     "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"bos\",\"type_id\":0}},"
                     "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"special_tokens\":{\"bos\":{\"id\":\"bos\",\"ids\":[%d]}}}",
                     bos_id);
            cJSON_AddItemToObject(root, "post_processor", parse_lit(buf));
        }
    } else {
        cJSON_AddStringToObject(model, "type", "Unigram");
        cJSON_AddNumberToObject(model, "unk_id", unk_id);
        cJSON_AddBoolToObject(model, "byte_fallback", byte_fallback);
        cJSON *vocab = cJSON_AddArrayToObject(model, "vocab");
        if (!vocab) goto oom;
        for (size_t i = 0; i < np; i++) {
            cJSON *e = cJSON_CreateArray();
            if (!e) goto oom;
            cJSON_AddItemToArray(e, cJSON_CreateString(pieces[i].s));
            cJSON_AddItemToArray(e, cJSON_CreateNumber((double)pieces[i].score));
            cJSON_AddItemToArray(vocab, e);
        }
        if (charsmap && charsmap_len) {
            char *b64 = b64encode(charsmap, charsmap_len);
            if (!b64) goto oom;
            cJSON *nm = cJSON_AddObjectToObject(root, "normalizer");
            cJSON_AddStringToObject(nm, "type", "Precompiled");
            cJSON_AddStringToObject(nm, "precompiled_charsmap", b64);
            free(b64);
        }
        cJSON_AddItemToObject(root, "pre_tokenizer",
                              parse_lit("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"WhitespaceSplit\"},"
                                        "{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"always\",\"split\":true}]}"));
        cJSON_AddItemToObject(root, "decoder",
                              parse_lit("{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"always\",\"split\":true}"));
        if (eos_id >= 0 && (size_t)eos_id < np) {
            snprintf(buf, sizeof buf,
                     "{\"type\":\"TemplateProcessing\",\"single\":[{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},"
                     "{\"SpecialToken\":{\"id\":\"eos\",\"type_id\":0}}],\"special_tokens\":{\"eos\":{\"id\":\"eos\",\"ids\":[%d]}}}",
                     eos_id);
            cJSON_AddItemToObject(root, "post_processor", parse_lit(buf));
        }
    }
    goto done;
oom:
    dc_set_error(DC_ERR_OOM, "tokenizer: out of memory reading %s", path);
    cJSON_Delete(root);
    root = NULL;
done:
    for (size_t i = 0; i < np; i++) free(pieces[i].s);
    free(pieces);
    free(data);
    return root;
}
