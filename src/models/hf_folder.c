/* hf_folder.c: a minimal reader of Hugging Face model folders for the summarization models:
 * config.json, generation_config.json, and the weights as model.safetensors or as shards
 * listed by model.safetensors.index.json. Weights come out as contiguous F32 (a view of the
 * mapping when stored as F32, so an F32 checkpoint costs no copy; F16/BF16 are widened).
 *
 * The causal-LM work (deepc/llm.h) reads the same folders; this file keeps to what
 * summarization needs so that the two can be merged into one loader. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deepc/ops.h"
#include "summarize_internal.h"

char *dc__read_text_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        dc_set_error(DC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    bool err = ferror(fp);
    fclose(fp);
    if (!buf) {
        dc_set_error(DC_ERR_OOM, "out of memory reading %s", path);
        return NULL;
    }
    if (err) {
        free(buf);
        dc_set_error(DC_ERR_IO, "cannot read %s", path);
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

static cJSON *read_json(const char *path, bool required)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (required) dc_set_error(DC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    fclose(fp);
    size_t len;
    char *text = dc__read_text_file(path, &len);
    if (!text) return NULL;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        dc_set_error(DC_ERR_FORMAT, "%s is not a JSON object", path);
    }
    return j;
}

int64_t dc__json_int(const cJSON *obj, const char *key, int64_t def)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : def;
}

double dc__json_num(const cJSON *obj, const char *key, double def)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

bool dc__json_bool(const cJSON *obj, const char *key, bool def)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

const char *dc__json_str(const cJSON *obj, const char *key, const char *def)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : def;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool file_exists(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp) fclose(fp);
    return fp != NULL;
}

dc__hf_folder *dc__hf_folder_open(const char *dir)
{
    dc__hf_folder *f = calloc(1, sizeof *f);
    if (!f || !(f->dir = strdup(dir))) {
        free(f);
        dc_set_error(DC_ERR_OOM, "out of memory");
        return NULL;
    }
    char *p = join(dir, "config.json");
    if (!p || !file_exists(p)) {
        dc_set_error(DC_ERR_IO, "%s is not a Hugging Face model folder (no config.json)", dir);
        free(p);
        goto fail;
    }
    f->config = read_json(p, true);
    free(p);
    if (!f->config) goto fail;
    p = join(dir, "generation_config.json");
    f->gen_config = p ? read_json(p, false) : NULL;
    free(p);
    if (!f->gen_config) dc_clear_error();

    /* weights: a single file, or an index naming the shards */
    char *single = join(dir, "model.safetensors");
    char *index = join(dir, "model.safetensors.index.json");
    if (single && file_exists(single)) {
        f->shards = calloc(1, sizeof *f->shards);
        if (f->shards && (f->shards[0] = dc_safetensors_open(single))) f->n_shards = 1;
    } else if (index && file_exists(index)) {
        cJSON *ix = read_json(index, true);
        const cJSON *map = ix ? cJSON_GetObjectItemCaseSensitive(ix, "weight_map") : NULL;
        if (ix && !cJSON_IsObject(map)) dc_set_error(DC_ERR_FORMAT, "%s has no weight_map", index);
        if (cJSON_IsObject(map)) {
            int n = cJSON_GetArraySize(map);
            const char **names = calloc((size_t)n + 1, sizeof *names);
            int nn = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, map) {
                if (!cJSON_IsString(e)) continue;
                bool seen = false;
                for (int i = 0; i < nn && !seen; i++) seen = strcmp(names[i], e->valuestring) == 0;
                if (!seen && names) names[nn++] = e->valuestring;
            }
            f->shards = calloc((size_t)nn + 1, sizeof *f->shards);
            for (int i = 0; f->shards && i < nn; i++) {
                if (strchr(names[i], '/') || strstr(names[i], "..")) {
                    dc_set_error(DC_ERR_FORMAT, "%s: shard name '%s' leaves the folder", index, names[i]);
                    break;
                }
                char *sp = join(dir, names[i]);
                f->shards[i] = sp ? dc_safetensors_open(sp) : NULL;
                free(sp);
                if (!f->shards[i]) break;
                f->n_shards++;
            }
            if (f->n_shards != nn) f->n_shards = -1;
            free(names);
        }
        cJSON_Delete(ix);
    } else {
        bool bin = false;
        char *pb = join(dir, "pytorch_model.bin");
        bin = pb && file_exists(pb);
        free(pb);
        dc_set_error(DC_ERR_IO, "%s has no model.safetensors or model.safetensors.index.json%s", dir,
                     bin ? " (only pytorch_model.bin: convert it to safetensors first)" : "");
    }
    free(single);
    free(index);
    if (f->n_shards <= 0) {
        if (f->shards)
            for (int i = 0; f->shards[i]; i++) dc_safetensors_close(f->shards[i]);
        free(f->shards);
        f->shards = NULL;
        f->n_shards = 0;
        goto fail;
    }
    return f;
fail:
    dc__hf_folder_close(f);
    return NULL;
}

void dc__hf_folder_close(dc__hf_folder *f)
{
    if (!f) return;
    for (int i = 0; i < f->n_owned; i++) dc_tensor_release(f->owned[i]);
    free(f->owned);
    for (int i = 0; i < f->n_shards; i++) dc_safetensors_close(f->shards[i]);
    free(f->shards);
    cJSON_Delete(f->config);
    cJSON_Delete(f->gen_config);
    free(f->dir);
    free(f);
}

static dc_safetensors *shard_of(const dc__hf_folder *f, const char *name)
{
    for (int i = 0; i < f->n_shards; i++)
        if (dc_safetensors_has(f->shards[i], name)) return f->shards[i];
    return NULL;
}

bool dc__hf_has(const dc__hf_folder *f, const char *name)
{
    return shard_of(f, name) != NULL;
}

const float *dc__hf_weight(dc__hf_folder *f, const char *name, int ndim, const int64_t *shape)
{
    dc_safetensors *st = shard_of(f, name);
    if (!st) {
        dc_set_error(DC_ERR_FORMAT, "%s: weight '%s' is missing", f->dir, name);
        return NULL;
    }
    dc_dtype dt;
    int nd;
    int64_t sh[DC_MAX_DIMS];
    dc_safetensors_info(st, name, &dt, &nd, sh);
    if (ndim > 0) {
        bool ok = nd == ndim;
        for (int i = 0; ok && i < nd; i++) ok = sh[i] == shape[i];
        if (!ok) {
            char got[DC_SHAPE_STR_MAX] = "[", want[DC_SHAPE_STR_MAX] = "[";
            for (int i = 0; i < nd; i++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)sh[i]);
            for (int i = 0; i < ndim; i++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "",
                         (long long)shape[i]);
            dc_set_error(DC_ERR_FORMAT, "%s: weight '%s' has shape %s], the config implies %s]", f->dir, name,
                         got, want);
            return NULL;
        }
    }
    if (dt != DC_F32 && dt != DC_F16 && dt != DC_BF16) {
        dc_set_error(DC_ERR_FORMAT, "%s: weight '%s' is %s, not a float type", f->dir, name, dc_dtype_name(dt));
        return NULL;
    }
    if (f->n_owned == f->cap_owned) {
        int cap = f->cap_owned ? 2 * f->cap_owned : 64;
        dc_tensor **o = realloc(f->owned, (size_t)cap * sizeof *o);
        if (!o) {
            dc_set_error(DC_ERR_OOM, "out of memory");
            return NULL;
        }
        f->owned = o;
        f->cap_owned = cap;
    }
    /* inside a pool of our own, whatever the caller has active; what we keep is retained */
    dc_pool_mark mk = dc_pool_push();
    dc_tensor *t = dc_safetensors_get(st, name);
    if (t && dt != DC_F32) t = dc_to_dtype(t, DC_F32);
    if (t && !dc_is_contiguous(t)) t = dc_contiguous(t);
    if (t) dc_tensor_retain(t);
    dc_pool_pop(mk);
    if (!t) return NULL;
    f->owned[f->n_owned++] = t;
    return dc_data_f32(t);
}
