/* postprocess.c: tokenizer.json post-processors (TemplateProcessing, RobertaProcessing,
 * BertProcessing, ByteLevel, Sequence), reduced to one template for a single sequence:
 * a list of special-token id runs around the sequence ($A). */
#include "tok_internal.h"

static dc_status oom(void) { return dc_set_error(DC_ERR_OOM, "tokenizer: out of memory"); }

static dc_status add_item(tk_post *p, bool is_seq, const int32_t *ids, size_t n, int type_id)
{
    tk_tpl_item *a = realloc(p->single, (p->nsingle + 1) * sizeof *a);
    if (!a) return oom();
    p->single = a;
    tk_tpl_item *it = &a[p->nsingle];
    memset(it, 0, sizeof *it);
    it->is_seq = is_seq;
    it->type_id = type_id;
    if (n) {
        it->ids = malloc(n * sizeof *it->ids);
        if (!it->ids) return oom();
        memcpy(it->ids, ids, n * sizeof *ids);
        it->n = n;
    }
    p->nsingle++;
    return DC_OK;
}

void tk_post_free(tk_post *p)
{
    for (size_t i = 0; i < p->nsingle; i++) free(p->single[i].ids);
    free(p->single);
    memset(p, 0, sizeof *p);
}

static dc_status pair_token(const cJSON *j, const char *key, int32_t *id, const char *where)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
    const cJSON *v = cJSON_GetArrayItem(a, 1);
    if (!cJSON_IsArray(a) || !cJSON_IsNumber(v))
        return dc_set_error(DC_ERR_FORMAT, "%s: post_processor \"%s\" is not [token, id]", where, key);
    *id = (int32_t)v->valuedouble;
    return DC_OK;
}

/* Parses one processor into a template (p); ByteLevel gives none (present = false). */
static dc_status parse_one(tk_post *p, const cJSON *j, const char *where)
{
    memset(p, 0, sizeof *p);
    const char *type = tk_json_str(j, "type");
    if (!type) return dc_set_error(DC_ERR_FORMAT, "%s: post_processor without a \"type\"", where);
    dc_status st;
    if (!strcmp(type, "ByteLevel")) return DC_OK;
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        int32_t cls, sep;
        if ((st = pair_token(j, "cls", &cls, where)) || (st = pair_token(j, "sep", &sep, where))) return st;
        p->present = true;
        if ((st = add_item(p, false, &cls, 1, 0)) || (st = add_item(p, true, NULL, 0, 0)) ||
            (st = add_item(p, false, &sep, 1, 0)))
            return st;
        p->added_single = 2;
        return DC_OK;
    }
    if (!strcmp(type, "TemplateProcessing")) {
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(j, "single");
        const cJSON *specials = cJSON_GetObjectItemCaseSensitive(j, "special_tokens");
        if (!cJSON_IsArray(single)) return dc_set_error(DC_ERR_FORMAT, "%s: TemplateProcessing without a \"single\" list", where);
        p->present = true;
        const cJSON *it;
        cJSON_ArrayForEach(it, single)
        {
            const cJSON *sq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
            const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
            if (sq) {
                const cJSON *tid = cJSON_GetObjectItemCaseSensitive(sq, "type_id");
                if ((st = add_item(p, true, NULL, 0, cJSON_IsNumber(tid) ? (int)tid->valuedouble : 0))) return st;
            } else if (sp) {
                const char *name = tk_json_str(sp, "id");
                const cJSON *tid = cJSON_GetObjectItemCaseSensitive(sp, "type_id");
                const cJSON *def = name ? cJSON_GetObjectItemCaseSensitive(specials, name) : NULL;
                const cJSON *ids = cJSON_GetObjectItemCaseSensitive(def, "ids");
                if (!cJSON_IsArray(ids))
                    return dc_set_error(DC_ERR_FORMAT, "%s: TemplateProcessing special token '%s' has no \"ids\" in special_tokens",
                                        where, name ? name : "?");
                size_t n = (size_t)cJSON_GetArraySize(ids);
                int32_t *v = malloc((n + 1) * sizeof *v);
                if (!v) return oom();
                size_t k = 0;
                const cJSON *x;
                cJSON_ArrayForEach(x, ids) v[k++] = cJSON_IsNumber(x) ? (int32_t)x->valuedouble : -1;
                st = add_item(p, false, v, n, cJSON_IsNumber(tid) ? (int)tid->valuedouble : 0);
                free(v);
                if (st) return st;
                p->added_single += n;
            } else
                return dc_set_error(DC_ERR_FORMAT, "%s: TemplateProcessing item is neither Sequence nor SpecialToken", where);
        }
        return DC_OK;
    }
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "processors");
        if (!cJSON_IsArray(list)) return dc_set_error(DC_ERR_FORMAT, "%s: Sequence post_processor without \"processors\"", where);
        const cJSON *it;
        cJSON_ArrayForEach(it, list)
        {
            tk_post q;
            if ((st = parse_one(&q, it, where))) {
                tk_post_free(&q);
                return st;
            }
            if (!q.present) continue;
            if (!p->present) {
                *p = q;
                continue;
            }
            /* compose: q applied to the output of p */
            tk_post r = {0};
            r.present = true;
            for (size_t a = 0; a < q.nsingle && !st; a++) {
                if (!q.single[a].is_seq) {
                    st = add_item(&r, false, q.single[a].ids, q.single[a].n, q.single[a].type_id);
                    continue;
                }
                for (size_t b = 0; b < p->nsingle && !st; b++)
                    st = add_item(&r, p->single[b].is_seq, p->single[b].ids, p->single[b].n, p->single[b].type_id);
            }
            r.added_single = p->added_single + q.added_single;
            tk_post_free(p);
            tk_post_free(&q);
            *p = r;
            if (st) return st;
        }
        return DC_OK;
    }
    return dc_set_error(DC_ERR_UNSUPPORTED, "%s: post_processor type '%s' is not supported", where, type);
}

dc_status tk_post_parse(dc_tokenizer *t, const cJSON *j, const char *where)
{
    memset(&t->post, 0, sizeof t->post);
    if (!j || cJSON_IsNull(j)) return DC_OK;
    dc_status st = parse_one(&t->post, j, where);
    if (st) return st;
    for (size_t i = 0; i < t->post.nsingle; i++)
        for (size_t k = 0; k < t->post.single[i].n; k++) {
            int32_t id = t->post.single[i].ids[k];
            if (id < 0 || (size_t)id >= t->nids)
                return dc_set_error(DC_ERR_FORMAT, "%s: post_processor special token id %d is outside the vocabulary", where, id);
        }
    return DC_OK;
}
