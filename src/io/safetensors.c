/* safetensors.c: reading and writing safetensors checkpoints (deepc/io.h), and atomic file
 * writes.
 *
 * File layout:  u64 little-endian N | N bytes of JSON header | data area
 * The header is {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
 *                ..., "__metadata__": {"key": "value", ...}} with offsets relative to the
 * start of the data area.
 *
 * Reading maps the file once (copy-on-write) and validates the whole header before anything
 * is returned, because the file may be hostile (fuzzed, truncated, hand-edited): every length
 * and offset is checked against the real file size with overflow-safe arithmetic before it is
 * used. Tensors are then views of the mapping: each holds a reference to it, so closing the
 * dc_safetensors object does not invalidate them.
 *
 * Writing lays tensors out by decreasing element size (8-byte, then 4, 2, 1) so every tensor
 * is naturally aligned in the data area (the header is space-padded to a multiple of 8, as
 * the Python library does), and writes through a temporary file + fsync + rename so a crash
 * never leaves a half-written checkpoint under the real name.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "deepc/io.h"
#include "io/mapping.h"

/* The Python/Rust implementation refuses headers over 100 MB; so do we, before allocating. */
#define ST_MAX_HEADER 100000000ull
/* JSON numbers are doubles: integers above 2^53 are not exact, so they cannot be offsets. */
#define ST_MAX_INT 9007199254740992.0

typedef struct st_entry {
    const char *name; /* points into the parsed JSON tree */
    dc_dtype dtype;
    int ndim;
    int64_t shape[DC_MAX_DIMS];
    uint64_t begin, end; /* in the data area */
} st_entry;

struct dc_safetensors {
    char *path;          /* the file's path, or the name given to open_memory */
    dc__mapping *map;
    const uint8_t *data; /* start of the data area inside map */
    uint64_t data_size;
    cJSON *root;         /* keeps the names and metadata strings */
    const cJSON *meta;   /* the "__metadata__" object or NULL */
    int n;
    st_entry *entries;   /* file order */
    const st_entry **by_name; /* sorted by name, for binary search */
};

/* ---------------------------------------------------------------------------------------
 * Header validation
 * ------------------------------------------------------------------------------------- */

static bool dtype_from_name(const char *s, dc_dtype *out)
{
    for (int d = 0; d < DC_DTYPE_COUNT; d++)
        if (strcmp(s, dc_dtype_name((dc_dtype)d)) == 0) {
            *out = (dc_dtype)d;
            return true;
        }
    return false;
}

/* Valid safetensors dtypes that deepc does not store: reported as unsupported, not malformed. */
static bool dtype_known_elsewhere(const char *s)
{
    static const char *other[] = {"F64", "I8", "I16", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2",
                                  "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (strcmp(s, other[i]) == 0) return true;
    return false;
}

/* A JSON number that is an exact non-negative integer no larger than 2^53. */
static bool json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > ST_MAX_INT || d != (double)(uint64_t)d) return false;
    *out = (uint64_t)d;
    return true;
}

/* qsort comparators over arrays of entry pointers */
static int cmp_by_name(const void *a, const void *b)
{
    return strcmp((*(const st_entry *const *)a)->name, (*(const st_entry *const *)b)->name);
}

static int cmp_by_offset(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static dc_status parse_entry(const char *file, const cJSON *item, st_entry *e, uint64_t data_size)
{
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: tensor '%s': entry is not a JSON object", file, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(jd) || !jd->valuestring)
        return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: tensor '%s': missing or non-string \"dtype\"", file, name);
    if (!dtype_from_name(jd->valuestring, &e->dtype)) {
        if (dtype_known_elsewhere(jd->valuestring))
            return dc_set_error(DC_ERR_UNSUPPORTED,
                                "safetensors: %s: tensor '%s': dtype %s is not supported by deepc "
                                "(F32, F16, BF16, I64, I32, U8, BOOL are)", file, name, jd->valuestring);
        return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: tensor '%s': unknown dtype \"%.32s\"", file, name,
                            jd->valuestring);
    }
    if (!cJSON_IsArray(js))
        return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: tensor '%s': missing or non-array \"shape\"", file, name);
    int ndim = cJSON_GetArraySize(js);
    if (ndim > DC_MAX_DIMS)
        return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: tensor '%s': %d dims, deepc supports at most %d",
                            file, name, ndim, DC_MAX_DIMS);
    e->ndim = ndim;
    /* numel with overflow checks; zero-size dims are fine, but the product of the other dims
     * must still be representable (strides are computed from it) */
    uint64_t numel = 1, span = 1;
    int i = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, js)
    {
        uint64_t d;
        if (!json_uint(dim, &d)) {
            if (cJSON_IsNumber(dim) && dim->valuedouble < 0)
                return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: tensor '%s': negative size %g at dim %d",
                                    file, name, dim->valuedouble, i);
            return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: tensor '%s': dim %d of the shape is not a "
                                "non-negative integer", file, name, i);
        }
        uint64_t ds = d ? d : 1;
        if (span > (uint64_t)(INT64_MAX / 16) / ds)
            return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: tensor '%s': shape too large", file, name);
        span *= ds;
        numel = d ? numel * d : 0; /* numel <= span: cannot overflow */
        e->shape[i++] = (int64_t)d;
    }
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_uint(cJSON_GetArrayItem(jo, 0), &e->begin) ||
        !json_uint(cJSON_GetArrayItem(jo, 1), &e->end))
        return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: tensor '%s': \"data_offsets\" is not a pair of "
                            "non-negative integers", file, name);
    if (e->begin > e->end || e->end > data_size)
        return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: tensor '%s': data_offsets [%llu, %llu] outside the "
                            "%llu-byte data area", file, name, (unsigned long long)e->begin,
                            (unsigned long long)e->end, (unsigned long long)data_size);
    uint64_t nbytes = numel * dc_dtype_size(e->dtype); /* numel < 2^59, size <= 8 */
    if (nbytes != e->end - e->begin) {
        char sbuf[DC_SHAPE_STR_MAX];
        return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: tensor '%s': %s %s needs %llu bytes, data_offsets "
                            "give %llu", file, name, jd->valuestring,
                            dc__shape_fmt(e->ndim, e->shape, sbuf, sizeof sbuf), (unsigned long long)nbytes,
                            (unsigned long long)(e->end - e->begin));
    }
    e->name = name;
    return DC_OK;
}

/* Parses and validates the header of the image in st->map; fills st. */
static dc_status parse(dc_safetensors *st)
{
    const char *file = st->path;
    const uint8_t *img = st->map->data;
    uint64_t size = st->map->size;
    if (size < 8)
        return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: file is %llu bytes, too short for the 8-byte header "
                            "length", file, (unsigned long long)size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | img[i]; /* little-endian on any host */
    if (hlen > ST_MAX_HEADER)
        return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: header length %llu exceeds the %llu-byte limit", file,
                            (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > size - 8)
        return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: header length %llu runs past the end of the "
                            "%llu-byte file (truncated?)", file, (unsigned long long)hlen,
                            (unsigned long long)size);
    if (hlen < 2)
        return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: header of %llu bytes cannot hold a JSON object", file,
                            (unsigned long long)hlen);
    const char *hdr = (const char *)img + 8;
    const char *end = NULL;
    st->root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, false);
    if (!st->root) {
        const char *at = cJSON_GetErrorPtr();
        long off = (at && at >= hdr && at <= hdr + hlen) ? (long)(at - hdr) : -1;
        return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: header is not valid JSON (near byte %ld of %llu)", file,
                            off, (unsigned long long)hlen);
    }
    /* anything after the JSON value must be padding */
    for (const char *p = end ? end : hdr + hlen; p < hdr + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: trailing bytes after the JSON header (byte %ld)",
                                file, (long)(p - hdr));
    if (!cJSON_IsObject(st->root))
        return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: header is JSON but not an object", file);

    st->data = img + 8 + hlen;
    st->data_size = size - 8 - hlen;

    int count = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, st->root)
    {
        if (!item->string)
            return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: header entry without a name", file);
        if (strcmp(item->string, "__metadata__") == 0) {
            if (st->meta)
                return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: \"__metadata__\" appears twice", file);
            if (!cJSON_IsObject(item))
                return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: \"__metadata__\" is not an object", file);
            const cJSON *kv;
            cJSON_ArrayForEach(kv, item)
            {
                if (!cJSON_IsString(kv) || !kv->valuestring)
                    return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: metadata '%s' is not a string", file,
                                        kv->string ? kv->string : "?");
            }
            st->meta = item;
        } else {
            if (count == INT_MAX) return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: too many tensors", file);
            count++;
        }
    }
    st->entries = dc__calloc((size_t)count, sizeof *st->entries);
    st->by_name = dc__calloc((size_t)count, sizeof *st->by_name);
    if (!st->entries || !st->by_name) return dc_last_status();
    int n = 0;
    cJSON_ArrayForEach(item, st->root)
    {
        if (strcmp(item->string, "__metadata__") == 0) continue;
        if (parse_entry(file, item, &st->entries[n], st->data_size)) return dc_last_status();
        st->by_name[n] = &st->entries[n];
        n++;
    }
    st->n = n;
    if (n == 0) return DC_OK;

    /* names unique (cJSON keeps duplicate keys as separate items) */
    qsort(st->by_name, (size_t)n, sizeof *st->by_name, cmp_by_name);
    for (int i = 1; i < n; i++)
        if (strcmp(st->by_name[i - 1]->name, st->by_name[i]->name) == 0)
            return dc_set_error(DC_ERR_FORMAT, "safetensors: %s: tensor '%s' appears twice", file,
                                st->by_name[i]->name);

    /* byte ranges in order and not overlapping */
    const st_entry **by_off = dc__malloc((size_t)n * sizeof *by_off);
    if (!by_off) return dc_last_status();
    for (int i = 0; i < n; i++) by_off[i] = &st->entries[i];
    qsort(by_off, (size_t)n, sizeof *by_off, cmp_by_offset);
    dc_status status = DC_OK;
    for (int i = 1; i < n; i++) {
        const st_entry *a = by_off[i - 1], *b = by_off[i];
        if (b->begin < a->end) {
            status = dc_set_error(DC_ERR_FORMAT, "safetensors: %s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] "
                                  "overlap", file, a->name, (unsigned long long)a->begin,
                                  (unsigned long long)a->end, b->name, (unsigned long long)b->begin,
                                  (unsigned long long)b->end);
            break;
        }
    }
    free(by_off);
    return status;
}

static dc_safetensors *open_mapping(dc__mapping *map, const char *name)
{
    dc_safetensors *st = dc__calloc(1, sizeof *st);
    if (!st) {
        dc__mapping_release(map);
        return NULL;
    }
    st->map = map;
    st->path = strdup(name);
    if (!st->path) {
        dc_set_error(DC_ERR_OOM, "safetensors: %s: out of memory", name);
        dc_safetensors_close(st);
        return NULL;
    }
    if (parse(st)) {
        dc_safetensors_close(st);
        return NULL;
    }
    return st;
}

dc_safetensors *dc_safetensors_open(const char *path)
{
    if (!path) {
        dc_set_error(DC_ERR_ARG, "safetensors_open: path is NULL");
        return NULL;
    }
    dc__mapping *map = dc__mapping_open(path);
    if (!map) return NULL;
    return open_mapping(map, path);
}

dc_safetensors *dc_safetensors_open_memory(const void *data, size_t size, const char *name)
{
    if (!name) name = "<memory>";
    if (!data && size) {
        dc_set_error(DC_ERR_ARG, "safetensors: %s: data is NULL", name);
        return NULL;
    }
    dc__mapping *map = dc__mapping_copy(data, size);
    if (!map) return NULL;
    return open_mapping(map, name);
}

void dc_safetensors_close(dc_safetensors *st)
{
    if (!st) return;
    cJSON_Delete(st->root);
    free(st->entries);
    free((void *)st->by_name);
    free(st->path);
    dc__mapping_release(st->map); /* tensors still viewing it hold their own references */
    free(st);
}

/* ---------------------------------------------------------------------------------------
 * Queries
 * ------------------------------------------------------------------------------------- */

static const st_entry *find(const dc_safetensors *st, const char *name)
{
    if (!st || !name) return NULL;
    int lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const st_entry *e = st->by_name[mid];
        int c = strcmp(name, e->name);
        if (c == 0) return e;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

int dc_safetensors_count(const dc_safetensors *st) { return st ? st->n : 0; }

const char *dc_safetensors_name(const dc_safetensors *st, int index)
{
    if (!st || index < 0 || index >= st->n) return NULL;
    return st->entries[index].name;
}

bool dc_safetensors_has(const dc_safetensors *st, const char *name) { return find(st, name) != NULL; }

const char *dc_safetensors_path(const dc_safetensors *st) { return st ? st->path : NULL; }

const char *dc_safetensors_metadata(const dc_safetensors *st, const char *key)
{
    if (!st || !st->meta || !key) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(st->meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool dc_safetensors_info(const dc_safetensors *st, const char *name, dc_dtype *dtype, int *ndim,
                         int64_t shape[DC_MAX_DIMS])
{
    const st_entry *e = find(st, name);
    if (!e) return false;
    if (dtype) *dtype = e->dtype;
    if (ndim) *ndim = e->ndim;
    if (shape)
        for (int i = 0; i < e->ndim; i++) shape[i] = e->shape[i];
    return true;
}

dc_tensor *dc_safetensors_get(dc_safetensors *st, const char *name)
{
    if (!st || !name) {
        dc_set_error(DC_ERR_ARG, "safetensors_get: %s is NULL", st ? "name" : "checkpoint");
        return NULL;
    }
    const st_entry *e = find(st, name);
    if (!e) {
        dc_set_error(DC_ERR_ARG, "safetensors: %s: no tensor named '%s' (%d tensors in the file)", st->path, name,
                     st->n);
        return NULL;
    }
    const uint8_t *p = st->data + e->begin;
    size_t esize = dc_dtype_size(e->dtype);
    if ((uintptr_t)p % esize != 0) {
        /* a writer that did not align the data area: copy rather than hand out a misaligned
         * pointer (undefined behaviour for float/int64 loads) */
        return dc_from_data(e->dtype, e->ndim, e->shape, p);
    }
    dc__mapping_retain(st->map);
    dc_tensor *t = dc_from_external(e->dtype, e->ndim, e->shape, (void *)p, dc__mapping_release_cb, st->map);
    if (!t) dc__mapping_release(st->map);
    return t;
}

/* ---------------------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------------------- */

static dc_status write_all(int fd, const void *data, size_t size, const char *path)
{
    const char *p = data;
    while (size > 0) {
        size_t chunk = size > (1u << 30) ? (1u << 30) : size;
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return dc_set_error(DC_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
        p += w;
        size -= (size_t)w;
    }
    return DC_OK;
}

/* An atomic writer: dc__atomic_begin creates "<path>.tmp.<pid>.<n>" next to the target;
 * dc__atomic_commit fsyncs, renames over the target and fsyncs the folder so the rename
 * itself is durable; dc__atomic_abort removes the temporary. */
typedef struct atomic_file {
    int fd;
    char *tmp;
    const char *path;
} atomic_file;

static dc_status atomic_begin(atomic_file *af, const char *path)
{
    static unsigned long counter;
    af->fd = -1;
    af->path = path;
    size_t len = strlen(path) + 64;
    af->tmp = dc__malloc(len);
    if (!af->tmp) return dc_last_status();
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned long k = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
        snprintf(af->tmp, len, "%s.tmp.%ld.%lu", path, (long)getpid(), k);
        af->fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (af->fd >= 0) return DC_OK;
        if (errno != EEXIST) break;
    }
    dc_status s = dc_set_error(DC_ERR_IO, "%s: cannot create temporary file %s: %s", path, af->tmp, strerror(errno));
    free(af->tmp);
    af->tmp = NULL;
    return s;
}

static void atomic_abort(atomic_file *af)
{
    if (af->fd >= 0) close(af->fd);
    if (af->tmp) unlink(af->tmp);
    free(af->tmp);
    af->fd = -1;
    af->tmp = NULL;
}

static dc_status atomic_commit(atomic_file *af)
{
    const char *path = af->path;
    if (fsync(af->fd) != 0) {
        dc_status s = dc_set_error(DC_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
        atomic_abort(af);
        return s;
    }
    int rc = close(af->fd);
    af->fd = -1;
    if (rc != 0) {
        dc_status s = dc_set_error(DC_ERR_IO, "%s: close failed: %s", path, strerror(errno));
        atomic_abort(af);
        return s;
    }
    if (rename(af->tmp, path) != 0) {
        dc_status s = dc_set_error(DC_ERR_IO, "%s: rename from %s failed: %s", path, af->tmp, strerror(errno));
        atomic_abort(af);
        return s;
    }
    free(af->tmp);
    af->tmp = NULL;
    /* fsync the folder so the new directory entry survives a crash; file systems that cannot
     * fsync a directory (EINVAL) have nothing more to do */
    char *dir = strdup(path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        const char *d = ".";
        if (slash == dir)
            d = "/";
        else if (slash) {
            *slash = '\0';
            d = dir;
        }
        int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd) != 0 && errno != EINVAL && errno != EROFS) {
                dc_status s = dc_set_error(DC_ERR_IO, "%s: fsync of folder %s failed: %s", path, d, strerror(errno));
                close(dfd);
                free(dir);
                return s;
            }
            close(dfd);
        }
        free(dir);
    }
    return DC_OK;
}

dc_status dc_write_file_atomic(const char *path, const void *data, size_t size)
{
    if (!path) return dc_set_error(DC_ERR_ARG, "write_file_atomic: path is NULL");
    if (!data && size) return dc_set_error(DC_ERR_ARG, "write_file_atomic: %s: data is NULL", path);
    atomic_file af;
    if (atomic_begin(&af, path)) return dc_last_status();
    if (write_all(af.fd, data, size, path)) {
        dc_status s = dc_last_status();
        atomic_abort(&af);
        return s;
    }
    return atomic_commit(&af);
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

dc_status dc_safetensors_save(const char *path, int n, const dc_named_tensor *tensors,
                              const char *const *metadata)
{
    if (!path) return dc_set_error(DC_ERR_ARG, "safetensors_save: path is NULL");
    if (n < 0 || (n > 0 && !tensors))
        return dc_set_error(DC_ERR_ARG, "safetensors_save: %s: bad tensor list (n = %d)", path, n);
    for (int i = 0; i < n; i++) {
        const dc_tensor *t = tensors[i].tensor;
        if (!tensors[i].name) return dc_set_error(DC_ERR_ARG, "safetensors_save: %s: tensor %d has no name", path, i);
        if (strcmp(tensors[i].name, "__metadata__") == 0)
            return dc_set_error(DC_ERR_ARG, "safetensors_save: %s: \"__metadata__\" is reserved", path);
        if (!t)
            return dc_set_error(DC_ERR_ARG, "safetensors_save: %s: tensor '%s' is NULL", path, tensors[i].name);
        if (t->storage->device != DC_CPU)
            return dc_set_error(DC_ERR_DEVICE, "safetensors_save: %s: tensor '%s' is on %s; copy it to the CPU first",
                                path, tensors[i].name, dc_device_name(t->storage->device));
    }
    if (metadata)
        for (int i = 0; metadata[i]; i += 2) {
            if (!metadata[i + 1])
                return dc_set_error(DC_ERR_ARG, "safetensors_save: %s: metadata key '%s' has no value", path,
                                    metadata[i]);
            for (int j = 0; j < i; j += 2)
                if (strcmp(metadata[i], metadata[j]) == 0)
                    return dc_set_error(DC_ERR_ARG, "safetensors_save: %s: metadata key '%s' is given twice",
                                        path, metadata[i]);
        }

    dc_status status = DC_OK;
    cJSON *root = NULL;
    char *json = NULL;
    int *order = NULL;
    const char **names = NULL;
    uint8_t *buf = NULL;
    atomic_file af = {.fd = -1};

    /* unique names */
    if (n > 0) {
        names = dc__malloc((size_t)n * sizeof *names);
        if (!names) return dc_last_status();
        for (int i = 0; i < n; i++) names[i] = tensors[i].name;
        qsort(names, (size_t)n, sizeof *names, cmp_str_ptr);
        for (int i = 1; i < n; i++)
            if (strcmp(names[i - 1], names[i]) == 0) {
                status = dc_set_error(DC_ERR_ARG, "safetensors_save: %s: tensor name '%s' is used twice", path,
                                      names[i]);
                goto done;
            }
    }

    /* layout: stable order by decreasing element size keeps every tensor aligned */
    order = dc__malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    if (!order) goto fail;
    {
        int k = 0;
        for (size_t es = 8; es >= 1; es /= 2)
            for (int i = 0; i < n; i++)
                if (dc_dtype_size(tensors[i].tensor->dtype) == es) order[k++] = i;
        if (k != n) {
            status = dc_set_error(DC_ERR_DTYPE, "safetensors_save: %s: a tensor has an unknown dtype", path);
            goto done;
        }
    }

    root = cJSON_CreateObject();
    if (!root) goto oom;
    if (metadata && metadata[0]) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        if (!m) goto oom;
        for (int i = 0; metadata[i]; i += 2)
            if (!cJSON_AddStringToObject(m, metadata[i], metadata[i + 1])) goto oom;
    }
    uint64_t offset = 0;
    for (int k = 0; k < n; k++) {
        const dc_tensor *t = tensors[order[k]].tensor;
        cJSON *e = cJSON_AddObjectToObject(root, tensors[order[k]].name);
        if (!e || !cJSON_AddStringToObject(e, "dtype", dc_dtype_name(t->dtype))) goto oom;
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        if (!shape) goto oom;
        for (int d = 0; d < t->ndim; d++) {
            cJSON *v = cJSON_CreateNumber((double)t->shape[d]);
            if (!v || !cJSON_AddItemToArray(shape, v)) goto oom;
        }
        uint64_t nbytes = (uint64_t)dc_numel(t) * dc_dtype_size(t->dtype);
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON *b = cJSON_CreateNumber((double)offset), *en = cJSON_CreateNumber((double)(offset + nbytes));
        if (!offs || !b || !en) {
            cJSON_Delete(b);
            cJSON_Delete(en);
            goto oom;
        }
        cJSON_AddItemToArray(offs, b);
        cJSON_AddItemToArray(offs, en);
        offset += nbytes;
    }
    json = cJSON_PrintUnformatted(root);
    if (!json) goto oom;

    {
        size_t jlen = strlen(json);
        size_t hlen = (jlen + 7) & ~(size_t)7;
        uint8_t prefix[8];
        for (int i = 0; i < 8; i++) prefix[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
        if (atomic_begin(&af, path)) goto fail;
        static const char spaces[9] = "        ";
        if (write_all(af.fd, prefix, 8, path) || write_all(af.fd, json, jlen, path) ||
            write_all(af.fd, spaces, hlen - jlen, path))
            goto fail;
    }
    for (int k = 0; k < n; k++) {
        const dc_tensor *t = tensors[order[k]].tensor;
        size_t nbytes = (size_t)dc_numel(t) * dc_dtype_size(t->dtype);
        if (nbytes == 0) continue;
        if (dc_is_contiguous(t)) {
            if (write_all(af.fd, dc_data(t), nbytes, path)) goto fail;
            continue;
        }
        /* strided: gather into row-major order first */
        uint8_t *nb = realloc(buf, nbytes);
        if (!nb) goto oom;
        buf = nb;
        int64_t stride[DC_MAX_DIMS];
        dc__contiguous_strides(t->ndim, t->shape, stride);
        if (dc_backend_of(t)->copy_strided(buf, t->dtype, stride, dc_data(t), t->dtype, t->stride, t->ndim,
                                           t->shape))
            goto fail;
        if (write_all(af.fd, buf, nbytes, path)) goto fail;
    }
    if (atomic_commit(&af)) goto fail;
    goto done;

oom:
    dc_set_error(DC_ERR_OOM, "safetensors_save: %s: out of memory", path);
fail:
    status = dc_last_status();
    if (status == DC_OK) status = dc_set_error(DC_ERR_IO, "safetensors_save: %s: failed", path);
    atomic_abort(&af);
done:
    free(buf);
    cJSON_free(json);
    cJSON_Delete(root);
    free(order);
    free(names);
    return status;
}
