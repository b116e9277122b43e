/* hf_download.c: `deepc download REPO_ID`: a model repo from the Hugging Face hub (or a
 * mirror) into ~/.cache/deepc/models/<org>--<name>/, as huggingface_hub's hf_hub_download does
 * it, with libcurl:
 *   - the file list from {endpoint}/api/models/{repo}/revision/{rev} ("siblings"), or, when
 *     that API is not there, the usual names tried one by one;
 *   - each file from {endpoint}/{repo}/resolve/{rev}/{file}: a HEAD request (redirects not
 *     followed) gives the file's etag (X-Linked-Etag for LFS files = the sha256 of the
 *     content; ETag otherwise), size (X-Linked-Size / Content-Length) and, for LFS, the CDN
 *     Location to fetch; relative redirects (renamed repos) are followed;
 *   - the body goes to <file>.incomplete, resumed with a Range request when a previous run or
 *     a dropped connection left one; then size and sha256 are checked and the file is renamed
 *     into place (fsync + rename), so the folder never holds a partial file under its name;
 *   - $HF_ENDPOINT (default https://huggingface.co), $HF_TOKEN (Authorization: Bearer, sent
 *     to the hub only, never to the CDN it redirects to), $HF_HUB_OFFLINE=1 (no network: the
 *     files must already be there);
 *   - what was fetched is recorded in <dir>/.deepc-download.json (file -> etag, and whether
 *     the run finished), so a second run only asks for the etags and downloads what changed;
 *   - a diffusers pipeline (model_index.json in the list): only the component folders deepc
 *     runs (scheduler/, text_encoder/, tokenizer/, unet/, vae/, or a DDPM UNet at the top),
 *     each with its config/tokenizer files and one weights file, the F32 safetensors or its
 *     fp16 variant (opts->variant picks the variant first); .bin-only components are refused
 *     before anything large is fetched. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "deepc/io.h"
#include "deepc/llm.h"
#include "util/sha256.h"
#include "util/util.h"

/* ---------------------------------------------------------------------------------------
 * Paths and environment
 * ------------------------------------------------------------------------------------- */

static bool valid_repo_id(const char *id)
{
    size_t n = strlen(id);
    if (!n || n > 96 || id[0] == '/' || id[n - 1] == '/' || strstr(id, "..") || strstr(id, "//")) return false;
    int slashes = 0;
    for (const char *p = id; *p; p++) {
        if (*p == '/') slashes++;
        else if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') return false;
    }
    return slashes <= 1;
}

bool dc_hf_cache_dir(const char *repo_id, char *out, size_t size)
{
    if (!repo_id || !valid_repo_id(repo_id)) return false;
    char name[128];
    size_t k = 0;
    for (const char *p = repo_id; *p && k + 2 < sizeof name; p++) {
        if (*p == '/') {
            name[k++] = '-';
            name[k++] = '-';
        } else name[k++] = *p;
    }
    name[k] = '\0';
    const char *env = getenv("DEEPC_CACHE_DIR");
    int r;
    if (env && *env) r = snprintf(out, size, "%s/models/%s", env, name);
    else {
        const char *home = getenv("HOME");
        r = snprintf(out, size, "%s/.cache/deepc/models/%s", home && *home ? home : ".", name);
    }
    return r > 0 && (size_t)r < size;
}

static bool env_true(const char *name)
{
    const char *v = getenv(name);
    return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"));
}

static const char *endpoint(void)
{
    const char *e = getenv("HF_ENDPOINT");
    return e && *e ? e : "https://huggingface.co";
}

/* ---------------------------------------------------------------------------------------
 * HTTP
 * ------------------------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
static void init_curl(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct meta {
    long status;
    char etag[160];        /* ETag of the first response */
    char linked_etag[160]; /* X-Linked-Etag */
    int64_t size, linked_size;
    char location[2048];
    char commit[64];
} meta;

static void header_value(const char *line, size_t n, char *out, size_t size)
{
    const char *c = memchr(line, ':', n);
    if (!c) return;
    c++;
    while (c < line + n && (*c == ' ' || *c == '\t')) c++;
    size_t len = (size_t)(line + n - c);
    while (len && (c[len - 1] == '\r' || c[len - 1] == '\n' || c[len - 1] == ' ')) len--;
    if (len >= size) len = size - 1;
    memcpy(out, c, len);
    out[len] = '\0';
}

static bool header_is(const char *line, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n > k && !strncasecmp(line, name, k) && line[k] == ':';
}

static size_t meta_header_cb(char *line, size_t size, size_t nmemb, void *user)
{
    meta *m = user;
    size_t n = size * nmemb;
    char v[2048];
    if (header_is(line, n, "etag") && !m->etag[0]) header_value(line, n, m->etag, sizeof m->etag);
    else if (header_is(line, n, "x-linked-etag")) header_value(line, n, m->linked_etag, sizeof m->linked_etag);
    else if (header_is(line, n, "x-linked-size")) {
        header_value(line, n, v, sizeof v);
        m->linked_size = strtoll(v, NULL, 10);
    } else if (header_is(line, n, "content-length")) {
        header_value(line, n, v, sizeof v);
        m->size = strtoll(v, NULL, 10);
    } else if (header_is(line, n, "location")) header_value(line, n, m->location, sizeof m->location);
    else if (header_is(line, n, "x-repo-commit")) header_value(line, n, m->commit, sizeof m->commit);
    return n;
}

static struct curl_slist *auth_headers(void)
{
    const char *tok = getenv("HF_TOKEN");
    if (!tok || !*tok) return NULL;
    char h[1024];
    snprintf(h, sizeof h, "Authorization: Bearer %s", tok);
    return curl_slist_append(NULL, h);
}

static void common_opts(CURL *c, const char *url, char *err)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "deepc/0.1; hf_hub-compatible");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
}

static dc_status http_error(const char *url, long status, const char *what)
{
    if (status == 401 || status == 403)
        return dc_set_error(DC_ERR_IO, "download: %s: HTTP %ld: the repo is gated or private, or does not exist (set HF_TOKEN)",
                            url, status);
    if (status == 404) return dc_set_error(DC_ERR_IO, "download: %s: HTTP 404: no such %s (check the repo id and revision)", url, what);
    return dc_set_error(DC_ERR_IO, "download: %s: HTTP %ld", url, status);
}

/* HEAD url without following redirects, except relative ones (a renamed repo). */
static dc_status head(CURL *c, const char *url, meta *m)
{
    char cur[2048], err[CURL_ERROR_SIZE];
    dc__strlcpy(cur, sizeof cur, url);
    for (int hop = 0; hop < 5; hop++) {
        memset(m, 0, sizeof *m);
        m->size = m->linked_size = -1;
        struct curl_slist *h = auth_headers();
        err[0] = '\0';
        curl_easy_reset(c);
        common_opts(c, cur, err);
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, meta_header_cb);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, m);
        if (h) curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        CURLcode rc = curl_easy_perform(c);
        curl_slist_free_all(h);
        if (rc != CURLE_OK)
            return dc_set_error(DC_ERR_IO, "download: %s: %s (no network? HF_HUB_OFFLINE=1 uses what is already downloaded)",
                                cur, err[0] ? err : curl_easy_strerror(rc));
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &m->status);
        if (m->status >= 300 && m->status < 400 && m->location[0] == '/' && !m->linked_etag[0]) {
            /* relative redirect: the same hub under another path */
            const char *ep = endpoint();
            const char *host_end = strstr(ep, "://");
            host_end = host_end ? strchr(host_end + 3, '/') : NULL;
            size_t base = host_end ? (size_t)(host_end - ep) : strlen(ep);
            int w = snprintf(cur, sizeof cur, "%.*s%s", (int)base, ep, m->location);
            if (w < 0 || (size_t)w >= sizeof cur) return dc_set_error(DC_ERR_ARG, "download: redirect URL too long");
            continue;
        }
        return DC_OK;
    }
    return dc_set_error(DC_ERR_IO, "download: %s: too many redirects", url);
}

typedef struct body {
    char *data;
    size_t n, cap;
} body;

static size_t body_cb(char *p, size_t size, size_t nmemb, void *user)
{
    body *b = user;
    size_t n = size * nmemb;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        if (cap > (64u << 20)) return 0;
        char *q = realloc(b->data, cap);
        if (!q) return 0;
        b->data = q;
        b->cap = cap;
    }
    memcpy(b->data + b->n, p, n);
    b->n += n;
    b->data[b->n] = '\0';
    return n;
}

/* GET a small resource (the API's JSON) into memory, following redirects. */
static dc_status get_small(CURL *c, const char *url, body *b, long *status)
{
    char err[CURL_ERROR_SIZE] = "";
    struct curl_slist *h = auth_headers();
    curl_easy_reset(c);
    common_opts(c, url, err);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    if (h) curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (rc != CURLE_OK)
        return dc_set_error(DC_ERR_IO, "download: %s: %s (no network? HF_HUB_OFFLINE=1 uses what is already downloaded)", url,
                            err[0] ? err : curl_easy_strerror(rc));
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * One file
 * ------------------------------------------------------------------------------------- */

typedef struct xfer {
    FILE *fp, *out;
    bool tty, write_failed;
    const char *label;
    int64_t offset, total;
    double start, last_draw;
    int last_quarter;
} xfer;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t file_cb(char *data, size_t size, size_t nmemb, void *user)
{
    xfer *x = user;
    size_t n = size * nmemb;
    if (fwrite(data, 1, n, x->fp) != n) {
        x->write_failed = true;
        return 0;
    }
    return n;
}

static void human(double b, char *out, size_t size)
{
    if (b >= 1e9) snprintf(out, size, "%.2f GB", b / 1e9);
    else if (b >= 1e6) snprintf(out, size, "%.1f MB", b / 1e6);
    else snprintf(out, size, "%.0f kB", b / 1e3);
}

static int progress_cb(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ut, curl_off_t un)
{
    (void)ut;
    (void)un;
    xfer *x = user;
    if (!x->out) return 0;
    double t = now_s();
    int64_t have = x->offset + (int64_t)dlnow;
    int64_t total = x->total > 0 ? x->total : dltotal > 0 ? x->offset + (int64_t)dltotal : 0;
    char a[32], b[32], r[32];
    human((double)have, a, sizeof a);
    human((double)total, b, sizeof b);
    human(t > x->start ? (double)dlnow / (t - x->start) : 0, r, sizeof r);
    if (x->tty) {
        if (t - x->last_draw < 0.1) return 0;
        x->last_draw = t;
        if (total > 0) {
            int pct = (int)(100.0 * (double)have / (double)total), bar = pct / 4;
            fprintf(x->out, "\r  %-28.28s [%.*s%*s] %3d%%  %s / %s  %s/s\033[K", x->label, bar,
                    "=========================", 25 - bar, "", pct, a, b, r);
        } else fprintf(x->out, "\r  %-28.28s %s  %s/s\033[K", x->label, a, r);
        fflush(x->out);
    } else if (total > 0) {
        int q = (int)(4.0 * (double)have / (double)total);
        if (q > x->last_quarter && q < 4) {
            x->last_quarter = q;
            fprintf(x->out, "  %s: %d%% (%s of %s)\n", x->label, q * 25, a, b);
            fflush(x->out);
        }
    }
    return 0;
}

static bool retryable(CURLcode rc)
{
    return rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING ||
           rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_CONNECT || rc == CURLE_HTTP2 ||
           rc == CURLE_HTTP2_STREAM || rc == CURLE_SSL_CONNECT_ERROR;
}

/* The hex sha256 inside an etag ("\"<64 hex>\"", maybe W/ prefixed), or false. */
static bool etag_sha256(const char *etag, char out[65])
{
    const char *p = etag;
    if (!strncmp(p, "W/", 2)) p += 2;
    if (*p == '"') p++;
    size_t k = 0;
    while (isxdigit((unsigned char)p[k]) && k < 64) k++;
    if (k != 64 || (p[k] && p[k] != '"')) return false;
    for (int i = 0; i < 64; i++) out[i] = (char)tolower((unsigned char)p[i]);
    out[64] = '\0';
    return true;
}

typedef struct job {
    CURL *curl;
    FILE *out; /* progress stream or NULL */
    const char *repo, *rev, *dir;
    cJSON *record; /* file -> etag of what is on disk */
} job;

static dc_status fetch_file(job *j, const char *name, bool required, bool *missing)
{
    char url[4096], dest[4096], part[4200];
    snprintf(url, sizeof url, "%s/%s/resolve/%s/%s", endpoint(), j->repo, j->rev, name);
    if (!dc__path_join(dest, sizeof dest, j->dir, name)) return dc_set_error(DC_ERR_ARG, "download: path too long");
    snprintf(part, sizeof part, "%s.incomplete", dest);
    if (missing) *missing = false;
    /* a diffusers component file ("unet/config.json"): its folder first */
    const char *slash = strrchr(name, '/');
    if (slash) {
        char sub[4096];
        if (!dc__path_join(sub, sizeof sub, j->dir, name)) return dc_set_error(DC_ERR_ARG, "download: path too long");
        sub[strlen(sub) - strlen(slash)] = '\0';
        if (dc__mkdir_p(sub)) return dc_last_status();
    }
    meta m;
    if (head(j->curl, url, &m)) return dc_last_status();
    if (m.status == 404 && !required) {
        if (missing) *missing = true;
        return DC_OK;
    }
    if (m.status >= 400) return http_error(url, m.status, "file in this repo/revision");
    const char *etag = m.linked_etag[0] ? m.linked_etag : m.etag;
    int64_t size = m.linked_size >= 0 ? m.linked_size : m.size;
    char sha[65];
    bool have_sha = m.linked_etag[0] && etag_sha256(m.linked_etag, sha);
    /* LFS: the content is at Location (the CDN); otherwise the resolve URL itself */
    char get_url[4096];
    bool to_hub = true;
    if (m.status >= 300 && m.status < 400 && m.location[0]) {
        if (m.location[0] == '/') {
            const char *ep = endpoint();
            const char *he = strstr(ep, "://");
            he = he ? strchr(he + 3, '/') : NULL;
            int w = snprintf(get_url, sizeof get_url, "%.*s%s", (int)(he ? (size_t)(he - ep) : strlen(ep)), ep, m.location);
            if (w < 0 || (size_t)w >= sizeof get_url) return dc_set_error(DC_ERR_ARG, "download: redirect URL too long");
        } else {
            dc__strlcpy(get_url, sizeof get_url, m.location);
            to_hub = false;
        }
    } else dc__strlcpy(get_url, sizeof get_url, url);

    /* already there with the same etag: nothing to do */
    const cJSON *rec = cJSON_GetObjectItemCaseSensitive(j->record, name);
    if (dc__is_file(dest) && cJSON_IsString(rec) && etag[0] && !strcmp(rec->valuestring, etag) &&
        (size < 0 || dc__file_size(dest) == size)) {
        if (j->out) fprintf(j->out, "  %s: up to date\n", name);
        return DC_OK;
    }

    char err[CURL_ERROR_SIZE];
    int restarts = 0;
    bool done = false;
    for (int attempt = 0; attempt <= 5 && !done; attempt++) {
        int64_t offset = dc__file_size(part);
        if (offset < 0) offset = 0;
        if (size >= 0 && offset > size) {
            remove(part);
            offset = 0;
        }
        if (size >= 0 && offset == size) {
            done = true; /* a previous run got it all but stopped before the rename */
            break;
        }
        FILE *fp = fopen(part, offset ? "ab" : "wb");
        if (!fp) return dc_set_error(DC_ERR_IO, "download: cannot write %s: %s", part, strerror(errno));
        if (j->out && offset && attempt == 0) fprintf(j->out, "  %s: resuming at %lld bytes\n", name, (long long)offset);
        xfer x = {fp, j->out, j->out && isatty(fileno(j->out)), false, name, offset, size, now_s(), 0, 0};
        struct curl_slist *h = to_hub ? auth_headers() : NULL;
        err[0] = '\0';
        curl_easy_reset(j->curl);
        common_opts(j->curl, get_url, err);
        curl_easy_setopt(j->curl, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(j->curl, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(j->curl, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(j->curl, CURLOPT_WRITEFUNCTION, file_cb);
        curl_easy_setopt(j->curl, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt(j->curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(j->curl, CURLOPT_XFERINFOFUNCTION, progress_cb);
        curl_easy_setopt(j->curl, CURLOPT_XFERINFODATA, &x);
        if (h) curl_easy_setopt(j->curl, CURLOPT_HTTPHEADER, h);
        if (offset) curl_easy_setopt(j->curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)offset);
        CURLcode rc = curl_easy_perform(j->curl);
        curl_slist_free_all(h);
        long status = 0;
        curl_easy_getinfo(j->curl, CURLINFO_RESPONSE_CODE, &status);
        bool flushed = fflush(fp) == 0;
        fclose(fp);
        if (x.tty && x.last_draw > 0) fprintf(j->out, "\r\033[K");
        if (rc == CURLE_OK && flushed) done = true;
        else if (x.write_failed || !flushed) return dc_set_error(DC_ERR_IO, "download: cannot write %s (disk full?)", part);
        else if (rc == CURLE_HTTP_RETURNED_ERROR && status == 416 && offset) done = true;
        else if (rc == CURLE_RANGE_ERROR && offset && restarts++ == 0) {
            if (j->out) fprintf(j->out, "  %s: the server cannot resume; restarting\n", name);
            remove(part);
            attempt--;
        } else if (retryable(rc) && attempt < 5) {
            if (j->out) fprintf(j->out, "  %s: connection lost (%s); resuming\n", name, err[0] ? err : curl_easy_strerror(rc));
            struct timespec ts = {0, 100000000L * (attempt + 1)};
            nanosleep(&ts, NULL);
        } else if (rc == CURLE_HTTP_RETURNED_ERROR) {
            return http_error(get_url, status, "file");
        } else {
            return dc_set_error(DC_ERR_IO, "download: %s: %s%s", name, err[0] ? err : curl_easy_strerror(rc),
                                retryable(rc) ? " (gave up; run again to resume)" : "");
        }
    }
    if (!done) return dc_set_error(DC_ERR_IO, "download: %s: gave up after retries; run again to resume", name);
    int64_t got = dc__file_size(part);
    if (size >= 0 && got != size) {
        remove(part);
        return dc_set_error(DC_ERR_FORMAT, "download: %s: got %lld bytes, the hub announced %lld (removed; run again)", name,
                            (long long)got, (long long)size);
    }
    if (have_sha) {
        char hex[65];
        if (dc__sha256_file(part, hex)) return dc_last_status();
        if (strcmp(hex, sha)) {
            remove(part);
            return dc_set_error(DC_ERR_FORMAT, "download: %s: sha256 %s does not match the hub's %s (corrupted; removed, run again)",
                                name, hex, sha);
        }
    }
    if (dc__commit_tmp(part, dest)) return dc_last_status();
    cJSON_DeleteItemFromObjectCaseSensitive(j->record, name);
    cJSON_AddStringToObject(j->record, name, etag);
    if (j->out) fprintf(j->out, "  %s: done (%lld bytes%s)\n", name, (long long)got, have_sha ? ", sha256 ok" : "");
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * The repo
 * ------------------------------------------------------------------------------------- */

static const char *const tokenizer_files[] = {"tokenizer.json",  "tokenizer_config.json", "special_tokens_map.json",
                                              "added_tokens.json", "vocab.json",            "merges.txt",
                                              "tokenizer.model"};

static bool wanted_small(const char *name)
{
    if (!strcmp(name, "config.json") || !strcmp(name, "generation_config.json")) return true;
    for (size_t i = 0; i < sizeof tokenizer_files / sizeof *tokenizer_files; i++)
        if (!strcmp(name, tokenizer_files[i])) return true;
    return false;
}

static bool safe_name(const char *s)
{
    return *s && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") && strcmp(s, "..") && strlen(s) < 200;
}

/* A file name of the repo that may be written under the folder: a name, or one component
 * folder and a name ("unet/config.json"); no hidden folders, no "..". */
static bool safe_rel_name(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash) return safe_name(s);
    if (slash == s || s[0] == '.' || strlen(s) >= 200) return false;
    for (const char *p = s; p < slash; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') return false;
    return safe_name(slash + 1);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* A whole file read into a cJSON tree (NULL if absent or not JSON). */
static cJSON *read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = NULL;
    size_t n = 0, cap = 0;
    char buf[8192];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) {
        if (n + k + 1 > cap) {
            cap = (n + k + 1) * 2;
            char *q = realloc(s, cap);
            if (!q) break;
            s = q;
        }
        memcpy(s + n, buf, k);
        n += k;
    }
    fclose(f);
    if (!s) return NULL;
    s[n] = '\0';
    cJSON *j = cJSON_Parse(s);
    free(s);
    return j;
}

static dc_status save_record(job *j, bool complete)
{
    char p[4096];
    if (!dc__path_join(p, sizeof p, j->dir, ".deepc-download.json")) return dc_set_error(DC_ERR_ARG, "download: path too long");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "repo", j->repo);
    cJSON_AddStringToObject(o, "revision", j->rev);
    /* offline use and `deepc imagine --model REPO_ID` trust a folder only once a run finished */
    cJSON_AddBoolToObject(o, "complete", complete);
    cJSON_AddItemReferenceToObject(o, "etags", j->record);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    if (!s) return dc_set_error(DC_ERR_OOM, "download: out of memory");
    dc_status st = dc_write_file_atomic(p, s, strlen(s));
    free(s);
    return st;
}

static bool file_in(const char *dir, const char *name)
{
    char p[4096];
    return dc__path_join(p, sizeof p, dir, name) && dc__is_file(p);
}

/* Whether dir holds a usable download: a finished run says so in its record ("complete");
 * a record of an unfinished run says it is not; a folder without "complete" (put there by
 * hand, or by an older deepc) is judged by its files. */
static bool offline_complete(const char *dir)
{
    char p[4096];
    if (dc__path_join(p, sizeof p, dir, ".deepc-download.json")) {
        cJSON *r = read_json(p);
        const cJSON *c = r ? cJSON_GetObjectItemCaseSensitive(r, "complete") : NULL;
        bool known = cJSON_IsBool(c), done = cJSON_IsTrue(c);
        cJSON_Delete(r);
        if (known) return done;
    }
    if (file_in(dir, "model_index.json")) return file_in(dir, "unet/config.json") || file_in(dir, "config.json");
    if (!file_in(dir, "config.json")) return false;
    return file_in(dir, "model.safetensors") || file_in(dir, "model.safetensors.index.json");
}

/* The shard names of a model.safetensors.index.json on disk. */
static cJSON *index_shards(const char *dir)
{
    char p[4096];
    if (!dc__path_join(p, sizeof p, dir, "model.safetensors.index.json")) return NULL;
    cJSON *j = read_json(p);
    if (!j) return NULL;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
    cJSON *names = cJSON_CreateArray();
    const cJSON *e;
    if (cJSON_IsObject(wm))
        cJSON_ArrayForEach(e, wm)
        {
            if (!cJSON_IsString(e) || !safe_name(e->valuestring)) continue;
            bool seen = false;
            const cJSON *x;
            cJSON_ArrayForEach(x, names) if (!strcmp(x->valuestring, e->valuestring)) seen = true;
            if (!seen) cJSON_AddItemToArray(names, cJSON_CreateString(e->valuestring));
        }
    cJSON_Delete(j);
    return names;
}

/* ---------------------------------------------------------------------------------------
 * diffusers pipelines (model_index.json + one folder per component)
 *
 * Only the components deepc runs are fetched (the ones a StableDiffusionPipeline or a
 * DDPMPipeline needs); safety_checker/, feature_extractor/ and the like are skipped. Each
 * component brings its config/tokenizer files and ONE weights file: <stem>.safetensors (F32)
 * by default, else the <stem>.fp16.safetensors variant; with a variant asked for, that
 * variant first and the F32 file as the fallback (what diffusers' from_pretrained(variant=)
 * does). The folder then is what dc_sd_pipeline_load / dc_class_model_load read.
 * ------------------------------------------------------------------------------------- */

static const char *const sd_components[] = {"scheduler", "text_encoder", "tokenizer", "unet", "vae"};
static const char *const weight_stems[] = {"diffusion_pytorch_model", "model"};

static bool component_has_weights(const char *comp) { return strcmp(comp, "scheduler") && strcmp(comp, "tokenizer"); }

/* How much a weights file name is wanted: 2 = first choice, 1 = fallback, 0 = not used. */
static int weight_rank(const char *f, const char *variant)
{
    char want[160];
    for (size_t i = 0; i < sizeof weight_stems / sizeof *weight_stems; i++) {
        snprintf(want, sizeof want, "%s.safetensors", weight_stems[i]);
        if (!strcmp(f, want)) return variant ? 1 : 2;
        snprintf(want, sizeof want, "%s.%s.safetensors", weight_stems[i], variant ? variant : "fp16");
        if (!strcmp(f, want)) return variant ? 2 : 1;
    }
    return 0;
}

static bool is_weight_file(const char *f)
{
    static const char *const ext[] = {".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5", ".onnx", ".pb"};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (ends_with(f, ext[i])) return true;
    return false;
}

/* Config and tokenizer files of a component folder (not weight indexes). */
static bool is_component_small(const char *f)
{
    if (ends_with(f, ".json")) return !strstr(f, ".safetensors") && !strstr(f, ".bin");
    return !strcmp(f, "merges.txt") || !strcmp(f, "vocab.txt") || !strcmp(f, "tokenizer.model") ||
           !strcmp(f, "spiece.model");
}

static bool listed_in(const cJSON *all, const char *name)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, all) if (!strcmp(e->valuestring, name)) return true;
    return false;
}

/* The files of folder comp ("" = the top, for DDPM repos that keep the UNet there) that a
 * listed repo offers: small files into `small`, the chosen weights file into `weights`.
 * *present: the folder has any file. Errors for a weight-bearing component with no
 * safetensors file deepc can read (e.g. only .bin). */
static dc_status plan_folder(const char *repo, const cJSON *all, const char *comp, const char *variant, cJSON *small,
                             cJSON *weights, bool *present)
{
    size_t cl = strlen(comp);
    bool top = cl == 0, any_weights = false, has_bin = false;
    const char *best = NULL, *example = NULL;
    int best_rank = 0;
    *present = false;
    const cJSON *e;
    cJSON_ArrayForEach(e, all)
    {
        const char *s = e->valuestring, *f = s;
        if (!top) {
            if (strncmp(s, comp, cl) || s[cl] != '/') continue;
            f = s + cl + 1;
        }
        if (strchr(f, '/')) continue;
        if (top) {
            /* at the top only a UNet2DModel's own files count (not README, not a full .ckpt) */
            if (!strcmp(f, "config.json") || !strcmp(f, "scheduler_config.json")) {
                *present = true;
                cJSON_AddItemToArray(small, cJSON_CreateString(s));
            } else if (!strncmp(f, "diffusion_pytorch_model", 23) && is_weight_file(f)) {
                any_weights = true;
                has_bin |= ends_with(f, ".bin");
                example = s;
            } else continue;
        } else {
            *present = true;
            if (is_weight_file(f)) {
                any_weights = true;
                has_bin |= ends_with(f, ".bin");
                example = s;
            } else if (is_component_small(f)) cJSON_AddItemToArray(small, cJSON_CreateString(s));
        }
        int r = weight_rank(f, variant);
        if (r > best_rank) {
            best_rank = r;
            best = s;
        }
    }
    if (best) {
        cJSON_AddItemToArray(weights, cJSON_CreateString(best));
        return DC_OK;
    }
    if (!*present || !component_has_weights(top ? "unet" : comp)) return DC_OK;
    const char *where = top ? "the top folder" : comp;
    if (has_bin)
        return dc_set_error(DC_ERR_UNSUPPORTED,
                            "download: %s: %s has only .bin weights (%s); deepc reads *.safetensors (a repo or revision with "
                            "safetensors weights is needed)", repo, where, example);
    if (any_weights)
        return dc_set_error(DC_ERR_UNSUPPORTED, "download: %s: %s has no single-file safetensors weights deepc reads (%s%s)",
                            repo, where, example, variant ? "; try another --variant" : "");
    return dc_set_error(DC_ERR_FORMAT, "download: %s: %s has no weights", repo, where);
}

/* Without the file-list API: the usual names, tried one by one. */
static dc_status fetch_component_guessed(job *j, const char *comp, const char *variant, bool *present)
{
    char name[256];
    bool missing = false;
    dc_status st = DC_OK;
    *present = false;
    if (!strcmp(comp, "scheduler")) {
        snprintf(name, sizeof name, "%s/scheduler_config.json", comp);
        st = fetch_file(j, name, false, &missing);
        *present = !st && !missing;
        return st;
    }
    if (!strcmp(comp, "tokenizer")) {
        for (size_t i = 0; !st && i < sizeof tokenizer_files / sizeof *tokenizer_files; i++) {
            snprintf(name, sizeof name, "%s/%s", comp, tokenizer_files[i]);
            st = fetch_file(j, name, false, &missing);
            if (!st && !missing) *present = true;
        }
        return st;
    }
    snprintf(name, sizeof name, "%s/config.json", comp);
    if ((st = fetch_file(j, name, false, &missing)) || missing) return st;
    *present = true;
    /* weights: first choice, then the fallback (F32 <-> variant), for each stem */
    for (int want = 2; want >= 1; want--)
        for (size_t i = 0; i < sizeof weight_stems / sizeof *weight_stems; i++) {
            const char *v = variant ? variant : "fp16";
            bool f32 = (want == 2) != (variant != NULL);
            if (f32) snprintf(name, sizeof name, "%s/%s.safetensors", comp, weight_stems[i]);
            else snprintf(name, sizeof name, "%s/%s.%s.safetensors", comp, weight_stems[i], v);
            if ((st = fetch_file(j, name, false, &missing))) return st;
            if (!missing) return DC_OK;
        }
    return dc_set_error(DC_ERR_UNSUPPORTED, "download: %s: %s/ has no %s.safetensors (nor its %s variant); deepc reads "
                                            "safetensors weights", j->repo, comp, weight_stems[0], variant ? variant : "fp16");
}

static dc_status download_diffusers(job *j, const cJSON *all, bool listed, const char *variant)
{
    dc_status st = fetch_file(j, "model_index.json", true, NULL);
    if (st) return st;
    char p[4096];
    if (!dc__path_join(p, sizeof p, j->dir, "model_index.json")) return dc_set_error(DC_ERR_ARG, "download: path too long");
    cJSON *mi = read_json(p);
    if (!cJSON_IsObject(mi)) {
        cJSON_Delete(mi);
        return dc_set_error(DC_ERR_FORMAT, "download: %s/model_index.json is not a JSON object", j->repo);
    }
    /* the components: keys whose value is [library, class] with a class */
    const char *comps[8];
    int nc = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, mi)
    {
        if (!e->string || e->string[0] == '_' || !cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 ||
            !cJSON_IsString(cJSON_GetArrayItem(e, 1)))
            continue;
        bool used = false;
        for (size_t i = 0; i < sizeof sd_components / sizeof *sd_components; i++)
            if (!strcmp(e->string, sd_components[i])) {
                used = true;
                if (nc < 8) comps[nc++] = sd_components[i];
            }
        if (!used && j->out) fprintf(j->out, "  %s/: skipped (deepc does not use it)\n", e->string);
    }
    cJSON_Delete(mi);
    if (!nc) return dc_set_error(DC_ERR_UNSUPPORTED, "download: %s/model_index.json names none of the components deepc "
                                                     "runs (unet, vae, text_encoder, tokenizer, scheduler)", j->repo);
    if (!listed) {
        for (int i = 0; !st && i < nc; i++) {
            bool present = false;
            st = fetch_component_guessed(j, comps[i], variant, &present);
            if (!st && !present && !strcmp(comps[i], "unet")) {
                /* a DDPM repo with its UNet2DModel at the top */
                bool missing = false;
                st = fetch_file(j, "config.json", true, NULL);
                if (!st) st = fetch_file(j, "scheduler_config.json", false, &missing);
                if (!st) st = fetch_file(j, "diffusion_pytorch_model.safetensors", false, &missing);
                if (!st && missing) {
                    const char *v = variant ? variant : "fp16";
                    char name[128];
                    snprintf(name, sizeof name, "diffusion_pytorch_model.%s.safetensors", v);
                    st = fetch_file(j, name, true, NULL);
                }
            } else if (!st && !present && strcmp(comps[i], "scheduler"))
                st = dc_set_error(DC_ERR_FORMAT, "download: %s: model_index.json names %s/, which is not in the repo", j->repo,
                                  comps[i]);
        }
        return st;
    }
    /* listed: plan everything first, so a repo deepc cannot read is refused before any
     * large file is fetched */
    cJSON *small = cJSON_CreateArray(), *weights = cJSON_CreateArray();
    for (int i = 0; !st && i < nc; i++) {
        bool present = false;
        st = plan_folder(j->repo, all, comps[i], variant, small, weights, &present);
        if (!st && !present && !strcmp(comps[i], "unet") && listed_in(all, "config.json"))
            st = plan_folder(j->repo, all, "", variant, small, weights, &present);
        if (!st && !present && strcmp(comps[i], "scheduler"))
            st = dc_set_error(DC_ERR_FORMAT, "download: %s: model_index.json names %s/, which is not in the repo", j->repo,
                              comps[i]);
    }
    cJSON_ArrayForEach(e, small) if (!st) st = fetch_file(j, e->valuestring, true, NULL);
    cJSON_ArrayForEach(e, weights) if (!st) st = fetch_file(j, e->valuestring, true, NULL);
    cJSON_Delete(small);
    cJSON_Delete(weights);
    return st;
}

dc_status dc_hf_download(const char *repo_id, const dc_hf_download_opts *opts, char *out_dir, size_t out_size)
{
    dc_hf_download_opts o = opts ? *opts : (dc_hf_download_opts){0};
    if (!repo_id || !valid_repo_id(repo_id))
        return dc_set_error(DC_ERR_ARG, "download: '%s' is not a Hugging Face repo id (org/name)", repo_id ? repo_id : "(null)");
    const char *rev = o.revision && *o.revision ? o.revision : "main";
    for (const char *p = rev; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return dc_set_error(DC_ERR_ARG, "download: bad revision '%s'", rev);
    const char *variant = o.variant && *o.variant ? o.variant : NULL;
    if (variant)
        for (const char *p = variant; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
                return dc_set_error(DC_ERR_ARG, "download: bad variant '%s' (e.g. fp16)", variant);
    char dir[4096];
    if (o.dir && *o.dir) dc__strlcpy(dir, sizeof dir, o.dir);
    else if (!dc_hf_cache_dir(repo_id, dir, sizeof dir)) return dc_set_error(DC_ERR_ARG, "download: cache path too long");
    if (out_dir) dc__strlcpy(out_dir, out_size, dir);
    FILE *out = o.quiet ? NULL : o.progress ? o.progress : stderr;

    if (env_true("HF_HUB_OFFLINE")) {
        if (offline_complete(dir)) {
            if (out) fprintf(out, "HF_HUB_OFFLINE is set: using the files already in %s\n", dir);
            return DC_OK;
        }
        return dc_set_error(DC_ERR_IO, "download: HF_HUB_OFFLINE is set and %s is not downloaded in %s", repo_id, dir);
    }
    if (o.use_cache && offline_complete(dir)) return DC_OK;
    if (dc__mkdir_p(dir)) return dc_last_status();
    pthread_once(&curl_once, init_curl);
    if (curl_init_rc != CURLE_OK) return dc_set_error(DC_ERR_IO, "download: libcurl initialisation failed");
    CURL *curl = curl_easy_init();
    if (!curl) return dc_set_error(DC_ERR_OOM, "download: cannot create a libcurl handle");

    job j = {curl, out, repo_id, rev, dir, NULL};
    /* what an earlier run recorded */
    char rp[4096];
    cJSON *old = dc__path_join(rp, sizeof rp, dir, ".deepc-download.json") ? read_json(rp) : NULL;
    const cJSON *oe = old ? cJSON_GetObjectItemCaseSensitive(old, "etags") : NULL;
    j.record = cJSON_IsObject(oe) ? cJSON_Duplicate(oe, 1) : cJSON_CreateObject();
    cJSON_Delete(old);

    if (out) fprintf(out, "downloading %s (%s) from %s into %s\n", repo_id, rev, endpoint(), dir);
    /* the file list */
    char url[4096];
    snprintf(url, sizeof url, "%s/api/models/%s/revision/%s", endpoint(), repo_id, rev);
    body b = {0};
    long status = 0;
    dc_status st = get_small(curl, url, &b, &status);
    cJSON *files = cJSON_CreateArray(), *all = cJSON_CreateArray();
    bool listed = false, has_index = false, has_single = false, has_bin = false, diffusers = false;
    if (!st && status == 200 && b.data) {
        cJSON *api = cJSON_Parse(b.data);
        const cJSON *sib = api ? cJSON_GetObjectItemCaseSensitive(api, "siblings") : NULL;
        const cJSON *e;
        if (cJSON_IsArray(sib)) {
            listed = true;
            cJSON_ArrayForEach(e, sib)
            {
                const cJSON *fn = cJSON_GetObjectItemCaseSensitive(e, "rfilename");
                if (!cJSON_IsString(fn) || !safe_rel_name(fn->valuestring)) continue;
                const char *s = fn->valuestring;
                cJSON_AddItemToArray(all, cJSON_CreateString(s));
                if (strchr(s, '/')) continue;
                if (wanted_small(s)) cJSON_AddItemToArray(files, cJSON_CreateString(s));
                if (!strcmp(s, "model_index.json")) diffusers = true;
                if (!strcmp(s, "model.safetensors.index.json")) has_index = true;
                if (!strcmp(s, "model.safetensors")) has_single = true;
                if (!strcmp(s, "pytorch_model.bin") || !strcmp(s, "pytorch_model.bin.index.json")) has_bin = true;
            }
        }
        cJSON_Delete(api);
    } else if (!st && (status == 401 || status == 403 || (status == 404 && !getenv("HF_ENDPOINT")))) {
        st = http_error(url, status, "model repo (or revision)");
    } else if (st && status == 0) {
        /* no connection at all: stop here with the message of get_small */
    } else {
        st = DC_OK; /* a mirror without the API: try the usual names */
    }
    free(b.data);
    if (!st && !listed) {
        /* no list: a diffusers pipeline announces itself with model_index.json */
        bool missing = true;
        st = fetch_file(&j, "model_index.json", false, &missing);
        diffusers = !st && !missing;
    }
    if (!st && diffusers) {
        st = download_diffusers(&j, all, listed, variant);
    } else if (!st && listed && !has_index && !has_single) {
        st = dc_set_error(DC_ERR_UNSUPPORTED, "download: %s has no safetensors weights%s; deepc reads model.safetensors", repo_id,
                          has_bin ? " (only pytorch_model.bin)" : "");
    } else if (!st) {
        bool missing = false;
        if (!listed) {
            /* no list: config.json must be there; the rest where present */
            st = fetch_file(&j, "config.json", true, NULL);
            const char *opt[] = {"generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                 "vocab.json", "merges.txt", "tokenizer.model"};
            for (size_t i = 0; !st && i < sizeof opt / sizeof *opt; i++) st = fetch_file(&j, opt[i], false, &missing);
            if (!st) {
                st = fetch_file(&j, "model.safetensors.index.json", false, &missing);
                has_index = !st && !missing;
                if (!st && !has_index) st = fetch_file(&j, "model.safetensors", true, NULL);
            }
        } else {
            const cJSON *e;
            cJSON_ArrayForEach(e, files) if (!st) st = fetch_file(&j, e->valuestring, true, NULL);
            if (!st && has_index) st = fetch_file(&j, "model.safetensors.index.json", true, NULL);
            else if (!st) st = fetch_file(&j, "model.safetensors", true, NULL);
        }
        if (!st && has_index) {
            cJSON *shards = index_shards(dir);
            if (!shards || !cJSON_GetArraySize(shards))
                st = dc_set_error(DC_ERR_FORMAT, "download: %s/model.safetensors.index.json lists no shards", dir);
            const cJSON *e;
            if (shards) cJSON_ArrayForEach(e, shards) if (!st) st = fetch_file(&j, e->valuestring, true, NULL);
            cJSON_Delete(shards);
        }
    }
    /* record what is on disk even after a failure, so finished files are not fetched again
     * (an error of the run stays the one reported) */
    if (st) {
        char keep[1024];
        dc__strlcpy(keep, sizeof keep, dc_last_error());
        dc_status code = st;
        save_record(&j, false);
        dc_set_error(code, "%s", keep);
    } else st = save_record(&j, true);
    cJSON_Delete(files);
    cJSON_Delete(all);
    cJSON_Delete(j.record);
    curl_easy_cleanup(curl);
    if (!st && out) fprintf(out, "%s is in %s\n", repo_id, dir);
    return st;
}
