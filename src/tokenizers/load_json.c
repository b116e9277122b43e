/* load_json.c: builds a dc_tokenizer from a parsed tokenizer.json tree (the format HF
 * tokenizers saves): model, added_tokens, normalizer, pre_tokenizer, post_processor,
 * decoder; and reads tokenizer_config.json for the transformers-level settings
 * (clean_up_tokenization_spaces, model_max_length, pad_token). */
#include <stdio.h>

#include "tok_internal.h"

static dc_status oom(void) { return dc_set_error(DC_ERR_OOM, "tokenizer: out of memory"); }

static dc_status grow_ids(dc_tokenizer *t, size_t nids)
{
    if (nids <= t->nids) return DC_OK;
    char **a = realloc(t->id_tok, (nids + 1) * sizeof *a);
    if (!a) return oom();
    t->id_tok = a;
    uint32_t *l = realloc(t->id_len, (nids + 1) * sizeof *l);
    if (!l) return oom();
    t->id_len = l;
    for (size_t i = t->nids; i <= nids; i++) {
        t->id_tok[i] = NULL;
        t->id_len[i] = 0;
    }
    t->nids = nids;
    return DC_OK;
}

static dc_status parse_added(dc_tokenizer *t, const cJSON *list, const char *where)
{
    if (!list || cJSON_IsNull(list)) return DC_OK;
    if (!cJSON_IsArray(list)) return dc_set_error(DC_ERR_FORMAT, "%s: \"added_tokens\" is not an array", where);
    size_t n = (size_t)cJSON_GetArraySize(list);
    t->added = calloc(n + 1, sizeof *t->added);
    if (!t->added) return oom();
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const char *content = tk_json_str(it, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 1e8 || !content)
            return dc_set_error(DC_ERR_FORMAT, "%s: added token %zu needs an \"id\" and a \"content\"", where, t->nadded);
        tk_added *a = &t->added[t->nadded];
        a->id = (int32_t)id->valuedouble;
        a->len = strlen(content);
        a->content = tk_strndup(content, a->len);
        if (!a->content) return DC_ERR_OOM;
        a->special = tk_json_bool(it, "special", false);
        a->single_word = tk_json_bool(it, "single_word", false);
        a->lstrip = tk_json_bool(it, "lstrip", false);
        a->rstrip = tk_json_bool(it, "rstrip", false);
        a->normalized = tk_json_bool(it, "normalized", !a->special);
        t->nadded++;
        dc_status st = grow_ids(t, (size_t)a->id + 1);
        if (st) return st;
        free(t->id_tok[a->id]);
        t->id_tok[a->id] = tk_strndup(content, a->len);
        if (!t->id_tok[a->id]) return DC_ERR_OOM;
        t->id_len[a->id] = (uint32_t)a->len;
        if (!tk_strmap_put(&t->vocab, content, a->len, a->id)) return DC_ERR_OOM;
    }
    return DC_OK;
}

dc_status tk_load_json_tree(dc_tokenizer *t, const cJSON *root, const char *where)
{
    if (!cJSON_IsObject(root)) return dc_set_error(DC_ERR_FORMAT, "%s: not a JSON object", where);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return dc_set_error(DC_ERR_FORMAT, "%s: no \"model\" object (not a tokenizer.json?)", where);
    const char *type = tk_json_str(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!type) type = cJSON_IsArray(vocab) ? "Unigram" : cJSON_GetObjectItemCaseSensitive(model, "merges") ? "BPE" : "?";
    dc_status st;
    if (!strcmp(type, "BPE")) {
        t->model_type = TK_MODEL_BPE;
        st = tk_bpe_parse(t, model, where);
    } else if (!strcmp(type, "Unigram")) {
        t->model_type = TK_MODEL_UNIGRAM;
        st = tk_unigram_parse(t, model, where);
    } else
        st = dc_set_error(DC_ERR_UNSUPPORTED, "%s: model type '%s' is not supported (BPE and Unigram are)", where, type);
    if (st) return st;
    if ((st = parse_added(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), where))) return st;
    t->id_special = calloc(t->nids + 1, sizeof *t->id_special);
    if (!t->id_special) return oom();
    for (size_t i = 0; i < t->nadded; i++)
        if (t->added[i].special) t->id_special[t->added[i].id] = true;
    if ((st = tk_norm_parse(&t->norms, &t->nnorms, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), where)))
        return st;
    if ((st = tk_pre_parse(&t->pres, &t->npres, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), where)))
        return st;
    if ((st = tk_post_parse(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), where))) return st;
    if ((st = tk_dec_parse(&t->decs, &t->ndecs, cJSON_GetObjectItemCaseSensitive(root, "decoder"), where))) return st;
    /* byte-level BPE: the model sees raw bytes when ByteLevel is the last pre-tokenizer */
    if (t->model_type == TK_MODEL_BPE && t->npres && t->pres[t->npres - 1].type == TK_PRE_BYTELEVEL) {
        t->pres[t->npres - 1].raw_bytes = true;
        t->raw_bytes = true;
        if ((st = tk_bpe_set_raw(t))) return st;
    }
    t->keep_invalid = t->raw_bytes && t->nnorms == 0;
    if (t->model_type == TK_MODEL_BPE && tk_bpe_suffix(t->bpe) && t->ndecs == 1 && t->decs[0].type == TK_DEC_BYTELEVEL) {
        t->clip_decode = true;
        t->eow_suffix = tk_strdup(tk_bpe_suffix(t->bpe));
        if (!t->eow_suffix) return DC_ERR_OOM;
    }
    if ((st = tk_added_build(t))) return st;
    t->pad_id = tk_strmap_get(&t->vocab, "<pad>", 5);
    return DC_OK;
}

/* transformers (v5) T5Tokenizer rebuilds the pipeline around the model: only the Precompiled
 * normalizer, WhitespaceSplit + Metaspace(always, split), a Metaspace decoder. */
static void apply_t5_class(dc_tokenizer *t)
{
    size_t k = 0;
    for (size_t i = 0; i < t->nnorms; i++) {
        if (t->norms[i].type == TK_NORM_PRECOMPILED) t->norms[k++] = t->norms[i];
        else tk_norm_free(&t->norms[i]);
    }
    t->nnorms = k;
    cJSON *pre = cJSON_Parse("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"WhitespaceSplit\"},"
                             "{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"always\",\"split\":true}]}");
    cJSON *dec = cJSON_Parse("{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"always\",\"split\":true}");
    tk_pre *np = NULL;
    size_t nnp = 0;
    tk_dec *nd = NULL;
    size_t nnd = 0;
    if (pre && dec && !tk_pre_parse(&np, &nnp, pre, "T5Tokenizer") && !tk_dec_parse(&nd, &nnd, dec, "T5Tokenizer")) {
        for (size_t i = 0; i < t->npres; i++) tk_pre_free(&t->pres[i]);
        free(t->pres);
        t->pres = np;
        t->npres = nnp;
        for (size_t i = 0; i < t->ndecs; i++) tk_dec_free(&t->decs[i]);
        free(t->decs);
        t->decs = nd;
        t->ndecs = nnd;
    } else {
        for (size_t i = 0; i < nnp; i++) tk_pre_free(&np[i]);
        free(np);
        for (size_t i = 0; i < nnd; i++) tk_dec_free(&nd[i]);
        free(nd);
    }
    cJSON_Delete(pre);
    cJSON_Delete(dec);
}

void tk_load_config(dc_tokenizer *t, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    char *data;
    size_t len;
    dc_status saved = dc_last_status();
    if (tk_read_file(path, &data, &len)) {
        if (!saved) dc_clear_error();
        return;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    free(data);
    if (!j) return;
    const char *cls = tk_json_str(j, "tokenizer_class");
    if (cls && !strncmp(cls, "T5Tokenizer", 11) && t->model_type == TK_MODEL_UNIGRAM) apply_t5_class(t);
    /* transformers skips the clean-up for BPE models */
    if (tk_json_bool(j, "clean_up_tokenization_spaces", false) && t->model_type != TK_MODEL_BPE) t->cleanup_spaces = true;
    const cJSON *ml = cJSON_GetObjectItemCaseSensitive(j, "model_max_length");
    if (cJSON_IsNumber(ml) && ml->valuedouble > 0 && ml->valuedouble < 1e9) t->model_max_length = (int)ml->valuedouble;
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(j, "pad_token");
    const char *ps = cJSON_IsString(pad) ? pad->valuestring : tk_json_str(pad, "content");
    if (ps) {
        int32_t id = tk_strmap_get(&t->vocab, ps, strlen(ps));
        if (id >= 0) t->pad_id = id;
    }
    cJSON_Delete(j);
}
