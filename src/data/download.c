/* download.c: `deepc download mnist|fashion-mnist|cifar10`: fetches a data set's files with
 * libcurl from the canonical public URLs (or $DEEPC_DOWNLOAD_BASE, which tests point at a
 * local server), resumes partial downloads (<file>.part and an HTTP Range request, also
 * after a dropped connection within one run), shows progress, verifies the official md5
 * checksums and renames each finished file into place, so a data folder never holds a
 * half-written file under its real name. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "data_internal.h"
#include "util/util.h"

typedef struct remote_file {
    const char *name;
    const char *md5; /* of the file as served (.gz / .tar.gz) */
} remote_file;

/* MNIST md5s: the official ones (../shared/data/README.md lists the same). */
static const remote_file mnist_files[] = {
    {"train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"},
    {"train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"},
    {"t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"},
    {"t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"},
};
/* Fashion-MNIST md5s: from github.com/zalandoresearch/fashion-mnist's README. (Debian's
 * dataset-fashion-mnist recompressed the files, so its .gz md5s differ; its contents don't.) */
static const remote_file fashion_files[] = {
    {"train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"},
    {"train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"},
    {"t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"},
    {"t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"},
};
static const remote_file cifar_archive = {"cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"};

static const char *const canonical_base[DC_DATASET_COUNT] = {
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://www.cs.toronto.edu/~kriz/",
};

/* ---------------------------------------------------------------------------------------
 * Progress display
 * ------------------------------------------------------------------------------------- */

typedef struct xfer {
    FILE *fp;              /* the .part file */
    FILE *out;             /* progress stream, NULL when quiet */
    bool tty;
    const char *label;
    int64_t offset;        /* bytes already in .part when this request started */
    double last_draw, start;
    int last_decile;
    int64_t written;
    bool write_failed;
} xfer;

static size_t write_cb(char *data, size_t size, size_t nmemb, void *user)
{
    xfer *x = user;
    size_t n = size * nmemb;
    if (fwrite(data, 1, n, x->fp) != n) {
        x->write_failed = true;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    x->written += (int64_t)n;
    return n;
}

static void human(double bytes, char *out, size_t size)
{
    if (bytes >= 1e6) snprintf(out, size, "%.1f MB", bytes / 1e6);
    else snprintf(out, size, "%.0f kB", bytes / 1e3);
}

static int progress_cb(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)ultotal;
    (void)ulnow;
    xfer *x = user;
    if (!x->out) return 0;
    double now = dc__now();
    int64_t have = x->offset + (int64_t)dlnow, total = dltotal > 0 ? x->offset + (int64_t)dltotal : 0;
    char a[32], b[32], r[32];
    human((double)have, a, sizeof a);
    human((double)total, b, sizeof b);
    double rate = now > x->start ? (double)dlnow / (now - x->start) : 0;
    human(rate, r, sizeof r);
    if (x->tty) {
        /* redraw in place at most 10 times a second */
        if (now - x->last_draw < 0.1) return 0;
        x->last_draw = now;
        if (total > 0)
            fprintf(x->out, "\r  %s  %3d%%  %s / %s  %s/s\033[K", x->label, (int)(100.0 * (double)have / (double)total), a, b, r);
        else
            fprintf(x->out, "\r  %s  %s  %s/s\033[K", x->label, a, r);
        fflush(x->out);
    } else if (total > 0) {
        /* plain output (a log file): one line per 25% */
        int q = (int)(4.0 * (double)have / (double)total);
        if (q > x->last_decile && q < 4) {
            x->last_decile = q;
            fprintf(x->out, "  %s: %d%% (%s of %s)\n", x->label, q * 25, a, b);
            fflush(x->out);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * One file
 * ------------------------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
static void init_curl(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static bool retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

dc_status dc_download_file(const char *url, const char *dest, const char *expected_md5,
                           const dc_download_opts *opts)
{
    if (!url || !dest) return dc_set_error(DC_ERR_ARG, "download: NULL url or destination");
    dc_download_opts o = opts ? *opts : (dc_download_opts){0};
    if (o.max_retries <= 0) o.max_retries = 5;
    if (o.timeout_s <= 0) o.timeout_s = 60;
    FILE *out = o.quiet ? NULL : o.progress ? o.progress : stderr;
    const char *label = dc__basename(dest);

    /* already there and intact: keep it */
    if (dc__is_file(dest) && expected_md5) {
        char have[33];
        if (dc_md5_file(dest, have) == DC_OK && !strcasecmp(have, expected_md5)) {
            if (out) fprintf(out, "  %s: already present (md5 ok)\n", label);
            return DC_OK;
        }
    }
    pthread_once(&curl_once, init_curl);
    if (curl_init_rc != CURLE_OK)
        return dc_set_error(DC_ERR_IO, "download: libcurl initialisation failed: %s", curl_easy_strerror(curl_init_rc));

    char part[4096];
    if (snprintf(part, sizeof part, "%s.part", dest) >= (int)sizeof part)
        return dc_set_error(DC_ERR_ARG, "download: path too long: %s", dest);
    CURL *curl = curl_easy_init();
    if (!curl) return dc_set_error(DC_ERR_OOM, "download: cannot create a libcurl handle");
    char curl_err[CURL_ERROR_SIZE];
    dc_status st = DC_OK;
    bool done = false;
    int restarts = 0; /* full restarts after a server refused to resume */
    for (int attempt = 0; attempt <= o.max_retries && !done; attempt++) {
        int64_t offset = dc__file_size(part);
        if (offset < 0) offset = 0;
        FILE *fp = fopen(part, offset > 0 ? "ab" : "wb");
        if (!fp) {
            st = dc_set_error(DC_ERR_IO, "download: cannot write %s: %s", part, strerror(errno));
            break;
        }
        if (out && attempt == 0 && offset > 0) fprintf(out, "  %s: resuming at %lld bytes\n", label, (long long)offset);
        xfer x = {fp, out, out && isatty(fileno(out)), label, offset, 0, dc__now(), 0, 0, false};
        curl_err[0] = '\0';
        curl_easy_reset(curl);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(curl, CURLOPT_USERAGENT, "deepc/0.1 (libcurl)");
        curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
        /* a stalled connection (under 1 byte/s for timeout_s) counts as dropped */
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, o.timeout_s);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress_cb);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &x);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        if (offset > 0) curl_easy_setopt(curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)offset);
        CURLcode rc = curl_easy_perform(curl);
        long http = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http);
        bool flushed = fflush(fp) == 0;
        fclose(fp);
        if (x.tty && x.last_draw > 0) fprintf(out, "\r\033[K");
        if (rc == CURLE_OK && flushed) {
            done = true;
        } else if (x.write_failed || !flushed) {
            st = dc_set_error(DC_ERR_IO, "download: cannot write %s (disk full?)", part);
            break;
        } else if (rc == CURLE_HTTP_RETURNED_ERROR && http == 416 && offset > 0) {
            /* the range starts at the end: .part already holds the whole file; the md5 says */
            done = true;
        } else if (rc == CURLE_RANGE_ERROR && offset > 0 && restarts++ == 0) {
            /* the server ignored the Range header: start over from byte 0 */
            if (out) fprintf(out, "  %s: the server cannot resume; restarting\n", label);
            remove(part);
            attempt--;
        } else if (retryable(rc) && attempt < o.max_retries) {
            if (out)
                fprintf(out, "  %s: connection lost after %lld bytes (%s); resuming\n", label,
                        (long long)(offset + x.written), curl_err[0] ? curl_err : curl_easy_strerror(rc));
            /* brief, growing pause so a flapping link gets a moment */
            struct timespec ts = {0, 100000000L * (attempt + 1)};
            nanosleep(&ts, NULL);
        } else {
            if (rc == CURLE_HTTP_RETURNED_ERROR)
                st = dc_set_error(DC_ERR_IO, "download: %s: HTTP %ld", url, http);
            else
                st = dc_set_error(DC_ERR_IO, "download: %s: %s%s", url, curl_err[0] ? curl_err : curl_easy_strerror(rc),
                                  retryable(rc) ? " (gave up after retries; run again to resume)" : "");
            break;
        }
    }
    curl_easy_cleanup(curl);
    if (st) return st;
    if (!done) return dc_set_error(DC_ERR_IO, "download: %s: gave up after %d retries; run again to resume", url, o.max_retries);
    if (expected_md5) {
        char got[33];
        if (dc_md5_file(part, got)) return dc_last_status();
        if (strcasecmp(got, expected_md5)) {
            remove(part);
            return dc_set_error(DC_ERR_FORMAT,
                                "download: %s: md5 mismatch: expected %s, got %s (the partial file was removed; run again)",
                                url, expected_md5, got);
        }
    }
    if (dc__commit_tmp(part, dest)) return dc_last_status();
    if (out) fprintf(out, "  %s: done%s\n", label, expected_md5 ? " (md5 ok)" : "");
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Data sets
 * ------------------------------------------------------------------------------------- */

static void make_url(char *out, size_t size, const char *base, const char *name)
{
    size_t n = strlen(base);
    if (snprintf(out, size, "%s%s%s", base, n && base[n - 1] == '/' ? "" : "/", name) < 0) out[0] = '\0';
}

static bool cifar_complete(const char *dir)
{
    static const char *const names[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                        "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    char path[4096];
    for (int i = 0; i < 6; i++)
        if (!dc__path_join(path, sizeof path, dir, names[i]) || dc__file_size(path) != 30730000) return false;
    return true;
}

dc_status dc_download_dataset(dc_dataset_id id, const char *data_dir, const dc_download_opts *opts)
{
    const dc_dataset_info *info = dc_dataset_info_of(id);
    if (!info) return dc_set_error(DC_ERR_ARG, "download: unknown dataset id %d (valid: %s)", (int)id, dc_dataset_names());
    char root[4096], dir[4096], url[4096], dest[4096];
    dc_default_download_dir(data_dir, root, sizeof root);
    const char *env = getenv("DEEPC_DOWNLOAD_BASE");
    const char *base = env && *env ? env : canonical_base[id];
    FILE *out = opts && opts->quiet ? NULL : opts && opts->progress ? opts->progress : stderr;

    if (id == DC_DATASET_CIFAR10) {
        if (!dc__path_join(dir, sizeof dir, root, "cifar-10-batches-bin")) return dc_set_error(DC_ERR_ARG, "path too long: %s", root);
        if (cifar_complete(dir)) {
            if (out) fprintf(out, "%s is already in %s\n", info->title, dir);
            return DC_OK;
        }
        if (dc__mkdir_p(root)) return dc_last_status();
        if (out) fprintf(out, "downloading %s into %s\n", info->title, dir);
        make_url(url, sizeof url, base, cifar_archive.name);
        if (!dc__path_join(dest, sizeof dest, root, cifar_archive.name)) return dc_set_error(DC_ERR_ARG, "path too long: %s", root);
        if (dc_download_file(url, dest, cifar_archive.md5, opts)) return dc_last_status();
        if (out) fprintf(out, "  extracting %s\n", cifar_archive.name);
        if (dc_extract_tar_gz(dest, root)) return dc_last_status();
        if (!cifar_complete(dir))
            return dc_set_error(DC_ERR_FORMAT, "download: %s did not contain the six CIFAR-10 batches in cifar-10-batches-bin/", dest);
        remove(dest); /* the 163 MB archive is no longer needed */
        return DC_OK;
    }
    const remote_file *files = id == DC_DATASET_MNIST ? mnist_files : fashion_files;
    if (!dc__path_join(dir, sizeof dir, root, id == DC_DATASET_MNIST ? "mnist" : "fashion-mnist"))
        return dc_set_error(DC_ERR_ARG, "path too long: %s", root);
    if (dc__mkdir_p(dir)) return dc_last_status();
    if (out) fprintf(out, "downloading %s into %s\n", info->title, dir);
    for (int i = 0; i < 4; i++) {
        make_url(url, sizeof url, base, files[i].name);
        if (!dc__path_join(dest, sizeof dest, dir, files[i].name)) return dc_set_error(DC_ERR_ARG, "path too long: %s", dir);
        if (dc_download_file(url, dest, files[i].md5, opts)) return dc_last_status();
    }
    return DC_OK;
}
