/* fsutil.c: file-system helpers for the data, plot and download code: mkdir -p, sizes,
 * temporary names and the fsync + rename that makes a write atomic. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

dc_status dc__mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0) return DC_OK;
    if (n >= sizeof buf) return dc_set_error(DC_ERR_IO, "path too long: %s", path);
    memcpy(buf, path, n + 1);
    /* create each prefix ending before a '/', then the whole path */
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return dc_set_error(DC_ERR_IO, "cannot create folder %s: %s", buf, strerror(errno));
        buf[i] = saved;
    }
    if (!dc__is_dir(path)) return dc_set_error(DC_ERR_IO, "%s exists and is not a folder", path);
    return DC_OK;
}

int64_t dc__file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
    return (int64_t)st.st_size;
}

bool dc__is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool dc__is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void dc__tmp_path(const char *path, char *out, size_t size)
{
    static atomic_uint counter;
    unsigned n = atomic_fetch_add(&counter, 1u);
    snprintf(out, size, "%s.tmp-%ld-%u", path, (long)getpid(), n);
}

static void fsync_path(const char *path, int flags)
{
    int fd = open(path, flags);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

dc_status dc__commit_tmp(const char *tmp, const char *path)
{
    fsync_path(tmp, O_RDONLY);
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return dc_set_error(DC_ERR_IO, "cannot write %s: rename from temporary file failed: %s",
                            path, strerror(e));
    }
    /* fsync the folder so the rename itself survives a crash */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    fsync_path(dir, O_RDONLY | O_DIRECTORY);
    return DC_OK;
}

bool dc__path_join(char *out, size_t size, const char *dir, const char *name)
{
    size_t n = strlen(dir);
    int w;
    if (n == 0) w = snprintf(out, size, "%s", name);
    else if (dir[n - 1] == '/') w = snprintf(out, size, "%s%s", dir, name);
    else w = snprintf(out, size, "%s/%s", dir, name);
    return w >= 0 && (size_t)w < size;
}

double dc__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
