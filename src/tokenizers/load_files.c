/* load_files.c: tokenizers shipped as vocab.json + merges.txt (GPT-2, RoBERTa/BART, CLIP)
 * and CLIP's bpe_simple_vocab_16e6.txt.gz. Each is turned into the tokenizer.json tree that
 * transformers (v5) builds for it (GPT2Tokenizer, RobertaTokenizer/BartTokenizer,
 * CLIPTokenizer), so one loader serves every format. */
#include <stdio.h>

#include "tok_internal.h"

typedef enum kind { K_GPT2, K_ROBERTA, K_CLIP } kind;

static cJSON *fail_oom(cJSON *root)
{
    cJSON_Delete(root);
    dc_set_error(DC_ERR_OOM, "tokenizer: out of memory");
    return NULL;
}

static cJSON *added_token(int id, const char *content, bool normalized, bool special, bool lstrip)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "id", id);
    cJSON_AddStringToObject(o, "content", content);
    cJSON_AddBoolToObject(o, "single_word", false);
    cJSON_AddBoolToObject(o, "lstrip", lstrip);
    cJSON_AddBoolToObject(o, "rstrip", false);
    cJSON_AddBoolToObject(o, "normalized", normalized);
    cJSON_AddBoolToObject(o, "special", special);
    return o;
}

static bool add_special(cJSON *list, const cJSON *vocab, const char *content, bool normalized)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(vocab, content);
    if (!cJSON_IsNumber(id)) return true;
    cJSON *o = added_token((int)id->valuedouble, content, normalized, true, false);
    return o && cJSON_AddItemToArray(list, o);
}

static cJSON *parse(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    return j;
}

/* Assembles the tokenizer.json tree; takes ownership of vocab and merges. */
static cJSON *assemble(kind k, cJSON *vocab, cJSON *merges, bool add_prefix_space)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        cJSON_Delete(vocab);
        cJSON_Delete(merges);
        return fail_oom(NULL);
    }
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    if (!model) {
        cJSON_Delete(vocab);
        cJSON_Delete(merges);
        return fail_oom(root);
    }
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON_AddItemToObject(model, "merges", merges);
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    char pre[160], post[300], dec[64];
    snprintf(dec, sizeof dec, "{\"type\":\"ByteLevel\"}");
    if (k == K_CLIP) {
        cJSON_AddStringToObject(model, "unk_token", "<|endoftext|>");
        cJSON_AddStringToObject(model, "end_of_word_suffix", "</w>");
        if (!add_special(added, vocab, "<|startoftext|>", true) || !add_special(added, vocab, "<|endoftext|>", false))
            return fail_oom(root);
        cJSON *norm = parse("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Replace\","
                            "\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\" \"},{\"type\":\"Lowercase\"}]}");
        cJSON *pt = parse("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
                          "\"<\\\\|startoftext\\\\|>|<\\\\|endoftext\\\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\\\p{L}]+|"
                          "[\\\\p{N}]|[^\\\\s\\\\p{L}\\\\p{N}]+\"},\"behavior\":\"Removed\",\"invert\":true},"
                          "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}]}");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(vocab, "<|startoftext|>");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(vocab, "<|endoftext|>");
        if (!norm || !pt) {
            cJSON_Delete(norm);
            cJSON_Delete(pt);
            return fail_oom(root);
        }
        cJSON_AddItemToObject(root, "normalizer", norm);
        cJSON_AddItemToObject(root, "pre_tokenizer", pt);
        if (cJSON_IsNumber(s) && cJSON_IsNumber(e)) {
            snprintf(post, sizeof post,
                     "{\"type\":\"RobertaProcessing\",\"sep\":[\"<|endoftext|>\",%d],\"cls\":[\"<|startoftext|>\",%d]}",
                     (int)e->valuedouble, (int)s->valuedouble);
            cJSON *pp = parse(post);
            if (!pp) return fail_oom(root);
            cJSON_AddItemToObject(root, "post_processor", pp);
        }
    } else {
        snprintf(pre, sizeof pre, "{\"type\":\"ByteLevel\",\"add_prefix_space\":%s,\"use_regex\":true}",
                 add_prefix_space ? "true" : "false");
        cJSON *pt = parse(pre);
        if (!pt) return fail_oom(root);
        cJSON_AddItemToObject(root, "pre_tokenizer", pt);
        if (k == K_GPT2) {
            if (!add_special(added, vocab, "<|endoftext|>", false)) return fail_oom(root);
        } else {
            static const char *sp[] = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"};
            for (int i = 0; i < 5; i++)
                if (!add_special(added, vocab, sp[i], false)) return fail_oom(root);
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(vocab, "<s>");
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(vocab, "</s>");
            if (cJSON_IsNumber(s) && cJSON_IsNumber(e)) {
                snprintf(post, sizeof post, "{\"type\":\"RobertaProcessing\",\"sep\":[\"</s>\",%d],\"cls\":[\"<s>\",%d]}",
                         (int)e->valuedouble, (int)s->valuedouble);
                cJSON *pp = parse(post);
                if (!pp) return fail_oom(root);
                cJSON_AddItemToObject(root, "post_processor", pp);
            }
        }
    }
    cJSON *d = parse(dec);
    if (!d) return fail_oom(root);
    cJSON_AddItemToObject(root, "decoder", d);
    return root;
}

/* Splits merges text into a JSON array of [a, b] pairs; max_merges 0 = all. */
static cJSON *merges_from_text(const char *data, size_t len, const char *path, size_t max_merges, bool skip_first)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return fail_oom(NULL);
    size_t i = 0, line = 0, count = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && data[e] != '\n') e++;
        size_t le = e;
        if (le > i && data[le - 1] == '\r') le--;
        line++;
        bool skip = (line == 1 && skip_first) || (le - i >= 8 && !memcmp(data + i, "#version", 8)) || le == i;
        if (!skip) {
            if (max_merges && count >= max_merges) break;
            const char *sp = memchr(data + i, ' ', le - i);
            if (!sp || memchr(sp + 1, ' ', (size_t)(data + le - sp - 1))) {
                cJSON_Delete(arr);
                dc_set_error(DC_ERR_FORMAT, "%s: line %zu is not two tokens separated by one space", path, line);
                return NULL;
            }
            cJSON *pair = cJSON_CreateArray();
            char *a = tk_strndup(data + i, (size_t)(sp - data - i));
            char *b = tk_strndup(sp + 1, (size_t)(data + le - sp - 1));
            if (!pair || !a || !b) {
                free(a);
                free(b);
                cJSON_Delete(pair);
                return fail_oom(arr);
            }
            cJSON_AddItemToArray(pair, cJSON_CreateString(a));
            cJSON_AddItemToArray(pair, cJSON_CreateString(b));
            free(a);
            free(b);
            cJSON_AddItemToArray(arr, pair);
            count++;
        }
        i = e + 1;
    }
    return arr;
}

static bool read_json_file(const char *path, cJSON **out)
{
    char *data;
    size_t len;
    if (tk_read_file(path, &data, &len)) return false;
    *out = cJSON_ParseWithLength(data, len);
    free(data);
    if (!*out) {
        dc_set_error(DC_ERR_FORMAT, "%s: not valid JSON", path);
        return false;
    }
    return true;
}

cJSON *tk_json_from_vocab_merges(const char *dir, const char *vocab_path, const char *merges_path)
{
    cJSON *vocab;
    if (!read_json_file(vocab_path, &vocab)) return NULL;
    if (!cJSON_IsObject(vocab)) {
        cJSON_Delete(vocab);
        dc_set_error(DC_ERR_FORMAT, "%s: not a JSON object of token -> id", vocab_path);
        return NULL;
    }
    /* which tokenizer: tokenizer_config.json's class, else the vocabulary's tokens */
    kind k = K_GPT2;
    bool add_prefix_space = false;
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    char *data;
    size_t len;
    bool have_class = false;
    dc_status saved = dc_last_status();
    if (!tk_read_file(cfg, &data, &len)) {
        cJSON *j = cJSON_ParseWithLength(data, len);
        free(data);
        const char *cls = tk_json_str(j, "tokenizer_class");
        if (cls) {
            have_class = true;
            if (!strncmp(cls, "CLIP", 4)) k = K_CLIP;
            else if (!strncmp(cls, "Roberta", 7) || !strncmp(cls, "Bart", 4) || !strncmp(cls, "Longformer", 10))
                k = K_ROBERTA;
            else if (!strncmp(cls, "GPT2", 4)) k = K_GPT2;
            else have_class = false;
        }
        add_prefix_space = tk_json_bool(j, "add_prefix_space", false) && k != K_CLIP;
        cJSON_Delete(j);
    } else if (!saved)
        dc_clear_error();
    if (!have_class) {
        if (cJSON_GetObjectItemCaseSensitive(vocab, "<|startoftext|>")) k = K_CLIP;
        else if (cJSON_GetObjectItemCaseSensitive(vocab, "<s>") && cJSON_GetObjectItemCaseSensitive(vocab, "</s>"))
            k = K_ROBERTA;
    }
    if (tk_read_file(merges_path, &data, &len)) {
        cJSON_Delete(vocab);
        return NULL;
    }
    cJSON *merges = merges_from_text(data, len, merges_path, k == K_CLIP ? 49152 - 256 - 2 : 0, false);
    free(data);
    if (!merges) {
        cJSON_Delete(vocab);
        return NULL;
    }
    return assemble(k, vocab, merges, add_prefix_space);
}

cJSON *tk_json_from_clip_bpe(const char *gz_path)
{
    char *data;
    size_t len;
    if (tk_read_gzip(gz_path, &data, &len)) return NULL;
    cJSON *merges = merges_from_text(data, len, gz_path, 49152 - 256 - 2, true);
    free(data);
    if (!merges) return NULL;
    if (cJSON_GetArraySize(merges) < 1) {
        cJSON_Delete(merges);
        dc_set_error(DC_ERR_FORMAT, "%s: no merges found", gz_path);
        return NULL;
    }
    /* vocab: the 256 byte characters, the same with </w>, one per merge, then the specials */
    cJSON *vocab = cJSON_CreateObject();
    if (!vocab) {
        cJSON_Delete(merges);
        return fail_oom(NULL);
    }
    int order[256], n = 0;
    for (int b = 0; b < 256; b++)
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) order[n++] = b;
    for (int b = 0; b < 256; b++)
        if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) order[n++] = b;
    /* the character for byte b: b itself if printable, else 256 + its rank among the rest */
    int cp_of[256], extra = 0;
    for (int b = 0; b < 256; b++) {
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) cp_of[b] = b;
        else cp_of[b] = 256 + extra++;
    }
    int id = 0;
    char buf[16];
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < 256; i++) {
            int l = tk_utf8_encode(cp_of[order[i]], buf);
            if (pass) memcpy(buf + l, "</w>", 5);
            else buf[l] = '\0';
            cJSON_AddNumberToObject(vocab, buf, id++);
        }
    /* OpenAI builds a dict from the list: a repeated string keeps its last id */
    tk_buf cat = {0};
    tk_strmap last;
    if (!tk_strmap_init(&last, (size_t)cJSON_GetArraySize(merges))) {
        cJSON_Delete(merges);
        cJSON_Delete(vocab);
        return NULL;
    }
    const cJSON *it;
    int first_merge_id = id;
    for (int pass = 0; pass < 2; pass++) {
        id = first_merge_id;
        cJSON_ArrayForEach(it, merges)
        {
            cat.n = 0;
            const char *a = cJSON_GetArrayItem(it, 0)->valuestring, *b = cJSON_GetArrayItem(it, 1)->valuestring;
            if (!tk_buf_put(&cat, a, strlen(a)) || !tk_buf_put(&cat, b, strlen(b)) ||
                (!pass && !tk_strmap_put(&last, cat.s, cat.n, id))) {
                tk_buf_free(&cat);
                tk_strmap_free(&last);
                cJSON_Delete(merges);
                return fail_oom(vocab);
            }
            if (pass && tk_strmap_get(&last, cat.s, cat.n) == id) cJSON_AddNumberToObject(vocab, cat.s, id);
            id++;
        }
    }
    tk_buf_free(&cat);
    tk_strmap_free(&last);
    cJSON_AddNumberToObject(vocab, "<|startoftext|>", id++);
    cJSON_AddNumberToObject(vocab, "<|endoftext|>", id++);
    return assemble(K_CLIP, vocab, merges, false);
}
