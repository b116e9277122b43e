/* test_download.c: `deepc download` against a tiny HTTP/1.1 server written here (a thread on
 * 127.0.0.1, an ephemeral port) that serves in-memory files with Range support and can drop
 * a connection midway or ignore Range. Never touches the real network.
 *
 * Covered: plain download + md5, resume after a dropped connection within one call, resume
 * of a .part left by an earlier run (the server sees "Range: bytes=N-"), a server that
 * ignores Range (restart from 0), checksum mismatch (error, nothing left behind), HTTP 404,
 * a file already present (no request at all), the whole MNIST data set through
 * DEEPC_DOWNLOAD_BASE (served from ../shared/data, whose files carry the official md5s) and
 * then loaded, and the tar reader (ustar, GNU long names, pax paths, refusal of "..").
 */
#include "support/testlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "deepc/data.h"

/* ---------------------------------------------------------------------------------------
 * the server
 * ------------------------------------------------------------------------------------- */

typedef struct srv_file {
    char path[128];
    uint8_t *data;
    size_t size;
} srv_file;

typedef struct server {
    int fd, port;
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t mu;
    srv_file files[8];
    int nfiles;
    /* behaviour switches, read under mu */
    long drop_after;      /* > 0: the next response is cut after this many body bytes (once) */
    bool ignore_range;
    /* what it saw */
    int requests;
    long last_range;      /* start of the last Range header, -1 when none */
} server;

static server srv;

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        c += w;
        n -= (size_t)w;
    }
}

static void handle(int fd)
{
    char req[4096];
    size_t got = 0;
    while (got < sizeof req - 1) {
        ssize_t r = recv(fd, req + got, sizeof req - 1 - got, 0);
        if (r <= 0) return;
        got += (size_t)r;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n")) break;
    }
    char path[256] = "";
    if (sscanf(req, "GET %255s HTTP/1.", path) != 1) return;
    long range = -1;
    for (char *line = strstr(req, "\r\n"); line; line = strstr(line + 2, "\r\n"))
        if (!strncasecmp(line + 2, "Range: bytes=", 13)) range = atol(line + 15);

    pthread_mutex_lock(&srv.mu);
    srv.requests++;
    srv.last_range = range;
    long drop = srv.drop_after;
    srv.drop_after = 0;
    bool ignore = srv.ignore_range;
    srv_file *f = NULL;
    for (int i = 0; i < srv.nfiles; i++)
        if (!strcmp(srv.files[i].path, path)) f = &srv.files[i];
    pthread_mutex_unlock(&srv.mu);

    char head[512];
    if (!f) {
        int n = snprintf(head, sizeof head, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
        send_all(fd, head, (size_t)n);
        return;
    }
    size_t start = 0;
    int n;
    if (range >= 0 && !ignore) {
        if ((size_t)range >= f->size) {
            n = snprintf(head, sizeof head,
                         "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%zu\r\nContent-Length: 0\r\n"
                         "Connection: close\r\n\r\n", f->size);
            send_all(fd, head, (size_t)n);
            return;
        }
        start = (size_t)range;
        n = snprintf(head, sizeof head,
                     "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %zu-%zu/%zu\r\nContent-Length: %zu\r\n"
                     "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                     start, f->size - 1, f->size, f->size - start);
    } else {
        n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nContent-Type: application/octet-stream\r\n"
                     "Connection: close\r\n\r\n", f->size);
    }
    send_all(fd, head, (size_t)n);
    size_t len = f->size - start;
    if (drop > 0 && (size_t)drop < len) len = (size_t)drop; /* then hang up mid-body */
    send_all(fd, f->data + start, len);
}

static void *serve(void *arg)
{
    (void)arg;
    while (!srv.stop) {
        struct pollfd pfd = {srv.fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0) continue;
        int c = accept(srv.fd, NULL, NULL);
        if (c < 0) continue;
        handle(c);
        shutdown(c, SHUT_RDWR);
        close(c);
    }
    return NULL;
}

static void server_start(void)
{
    memset(&srv, 0, sizeof srv);
    pthread_mutex_init(&srv.mu, NULL);
    srv.fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(srv.fd >= 0);
    int one = 1;
    setsockopt(srv.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    assert_int_equal(bind(srv.fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(srv.fd, 8), 0);
    socklen_t len = sizeof a;
    getsockname(srv.fd, (struct sockaddr *)&a, &len);
    srv.port = ntohs(a.sin_port);
    srv.last_range = -1;
    assert_int_equal(pthread_create(&srv.thread, NULL, serve, NULL), 0);
}

static void server_stop(void)
{
    srv.stop = 1;
    pthread_join(srv.thread, NULL);
    close(srv.fd);
    for (int i = 0; i < srv.nfiles; i++) free(srv.files[i].data);
    pthread_mutex_destroy(&srv.mu);
}

static void server_add(const char *path, const void *data, size_t size)
{
    pthread_mutex_lock(&srv.mu);
    srv_file *f = &srv.files[srv.nfiles++];
    snprintf(f->path, sizeof f->path, "%s", path);
    f->data = malloc(size ? size : 1);
    memcpy(f->data, data, size);
    f->size = size;
    pthread_mutex_unlock(&srv.mu);
}

static void server_set(long drop_after, bool ignore_range)
{
    pthread_mutex_lock(&srv.mu);
    srv.drop_after = drop_after;
    srv.ignore_range = ignore_range;
    pthread_mutex_unlock(&srv.mu);
}

static int server_requests(void)
{
    pthread_mutex_lock(&srv.mu);
    int n = srv.requests;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

static long server_last_range(void)
{
    pthread_mutex_lock(&srv.mu);
    long r = srv.last_range;
    pthread_mutex_unlock(&srv.mu);
    return r;
}

/* ---------------------------------------------------------------------------------------
 * fixtures
 * ------------------------------------------------------------------------------------- */

static char tmp_root[256];
static uint8_t *blob;
static size_t blob_size = 300000;
static char blob_md5[33];

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    /* a proxy from the environment must not see 127.0.0.1 requests */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("ALL_PROXY");
    unsetenv("all_proxy");
    snprintf(tmp_root, sizeof tmp_root, "/tmp/deepc_test_download_XXXXXX");
    if (!mkdtemp(tmp_root)) return -1;
    blob = malloc(blob_size);
    for (size_t i = 0; i < blob_size; i++) blob[i] = (uint8_t)(i * 2654435761u >> 13);
    dc_md5_buffer(blob, blob_size, blob_md5);
    server_start();
    server_add("/files/blob.bin", blob, blob_size);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    server_stop();
    free(blob);
    nftw(tmp_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static const char *url_of(const char *path)
{
    static char u[256];
    snprintf(u, sizeof u, "http://127.0.0.1:%d%s", srv.port, path);
    return u;
}

static const char *tmp(const char *name)
{
    static char p[2][512];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", tmp_root, name);
    return p[k];
}

static void check_blob(const char *path)
{
    char hex[33];
    TL_OK(dc_md5_file(path, hex));
    assert_string_equal(hex, blob_md5);
    char part[600];
    snprintf(part, sizeof part, "%s.part", path);
    assert_int_equal(access(part, F_OK), -1);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static const dc_download_opts quiet = {.quiet = true, .max_retries = 3, .timeout_s = 10};

/* ---------------------------------------------------------------------------------------
 * tests
 * ------------------------------------------------------------------------------------- */

static void test_md5(void **state)
{
    (void)state;
    char hex[33];
    dc_md5_buffer("", 0, hex);
    assert_string_equal(hex, "d41d8cd98f00b204e9800998ecf8427e");
    dc_md5_buffer("abc", 3, hex);
    assert_string_equal(hex, "900150983cd24fb0d6963f7d28e17f72");
    const char *fox = "The quick brown fox jumps over the lazy dog";
    dc_md5_buffer(fox, strlen(fox), hex);
    assert_string_equal(hex, "9e107d9d372bb6826bd81d3542a419d6");
    /* lengths around the 56/64-byte padding boundary */
    char a[130];
    memset(a, 'a', sizeof a);
    dc_md5_buffer(a, 56, hex);
    assert_string_equal(hex, "3b0c8ac703f828b04c6c197006d17218");
    dc_md5_buffer(a, 64, hex);
    assert_string_equal(hex, "014842d480b571495a4a0363793f7367");
    dc_md5_buffer(a, 128, hex);
    assert_string_equal(hex, "e510683b3f5ffe4093d021808bc6ff70");
}

static void test_plain(void **state)
{
    (void)state;
    const char *dest = tmp("plain.bin");
    int before = server_requests();
    TL_OK(dc_download_file(url_of("/files/blob.bin"), dest, blob_md5, &quiet));
    check_blob(dest);
    assert_int_equal(server_requests(), before + 1);
    assert_int_equal(server_last_range(), -1);
    /* already there with the right md5: no request at all */
    TL_OK(dc_download_file(url_of("/files/blob.bin"), dest, blob_md5, &quiet));
    assert_int_equal(server_requests(), before + 1);
    /* no md5 given: downloaded again, still fine */
    TL_OK(dc_download_file(url_of("/files/blob.bin"), dest, NULL, &quiet));
    check_blob(dest);
}

static void test_resume_after_drop(void **state)
{
    (void)state;
    const char *dest = tmp("dropped.bin");
    server_set(100000, false);
    int before = server_requests();
    TL_OK(dc_download_file(url_of("/files/blob.bin"), dest, blob_md5, &quiet));
    check_blob(dest);
    assert_int_equal(server_requests(), before + 2);
    assert_int_equal(server_last_range(), 100000); /* the second request resumed */
}

static void test_resume_part_file(void **state)
{
    (void)state;
    const char *dest = tmp("resumed.bin");
    char part[600];
    snprintf(part, sizeof part, "%s.part", dest);
    write_file(part, blob, 51200);
    /* with progress to a file: it says it resumed */
    FILE *log = tmpfile();
    dc_download_opts o = {.progress = log, .max_retries = 2};
    TL_OK(dc_download_file(url_of("/files/blob.bin"), dest, blob_md5, &o));
    check_blob(dest);
    assert_int_equal(server_last_range(), 51200);
    fflush(log);
    rewind(log);
    char text[2048] = "";
    size_t n = fread(text, 1, sizeof text - 1, log);
    text[n] = '\0';
    fclose(log);
    assert_non_null(strstr(text, "resuming at 51200 bytes"));
    assert_non_null(strstr(text, "resumed.bin: done (md5 ok)"));
    /* a .part that is already complete: the server answers 416, the md5 decides */
    const char *dest2 = tmp("complete.bin");
    snprintf(part, sizeof part, "%s.part", dest2);
    write_file(part, blob, blob_size);
    TL_OK(dc_download_file(url_of("/files/blob.bin"), dest2, blob_md5, &quiet));
    check_blob(dest2);
}

static void test_server_ignores_range(void **state)
{
    (void)state;
    const char *dest = tmp("norange.bin");
    char part[600];
    snprintf(part, sizeof part, "%s.part", dest);
    write_file(part, "garbage-garbage", 15);
    server_set(0, true);
    TL_OK(dc_download_file(url_of("/files/blob.bin"), dest, blob_md5, &quiet));
    server_set(0, false);
    check_blob(dest);
}

static void test_failures(void **state)
{
    (void)state;
    /* wrong checksum: an error naming both sums; neither the file nor .part stays */
    const char *dest = tmp("bad.bin");
    dc_status st = dc_download_file(url_of("/files/blob.bin"), dest, "0123456789abcdef0123456789abcdef", &quiet);
    assert_int_equal(st, DC_ERR_FORMAT);
    assert_non_null(strstr(dc_last_error(), "md5 mismatch: expected 0123456789abcdef0123456789abcdef"));
    assert_non_null(strstr(dc_last_error(), blob_md5));
    assert_int_equal(access(dest, F_OK), -1);
    char part[600];
    snprintf(part, sizeof part, "%s.part", dest);
    assert_int_equal(access(part, F_OK), -1);
    /* 404 */
    st = dc_download_file(url_of("/files/nothing.bin"), tmp("nothing.bin"), NULL, &quiet);
    assert_int_equal(st, DC_ERR_IO);
    assert_non_null(strstr(dc_last_error(), "HTTP 404"));
    assert_int_equal(access(tmp("nothing.bin"), F_OK), -1);
    /* nobody listening (a closed port): an error after the retries */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(a.sin_port));
    dc_download_opts o = {.quiet = true, .max_retries = 1};
    st = dc_download_file(url, tmp("closed.bin"), NULL, &o);
    assert_int_equal(st, DC_ERR_IO);
    assert_non_null(strstr(dc_last_error(), url));
    /* a destination folder that does not exist */
    st = dc_download_file(url_of("/files/blob.bin"), tmp("no/such/dir/x.bin"), NULL, &quiet);
    assert_int_equal(st, DC_ERR_IO);
}

static void add_shared(const char *rel, const char *served)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/data/%s", tl_shared_dir(), rel);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    server_add(served, b, (size_t)n);
    free(b);
}

static void test_mnist_dataset(void **state)
{
    (void)state;
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/data/mnist/t10k-labels-idx1-ubyte.gz", tl_shared_dir());
    if (access(probe, R_OK) != 0) skip();
    const char *names[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    for (int i = 0; i < 4; i++) {
        char rel[128], served[160];
        snprintf(rel, sizeof rel, "mnist/%s", names[i]);
        snprintf(served, sizeof served, "/mirror/mnist/%s", names[i]);
        add_shared(rel, served);
    }
    char base[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/mirror/mnist", srv.port); /* no trailing '/' */
    setenv("DEEPC_DOWNLOAD_BASE", base, 1);
    const char *root = tmp("data");
    /* the big file is cut once on the way: resumed */
    server_set(3000000, false);
    TL_OK(dc_download_dataset(DC_DATASET_MNIST, root, &quiet));
    dc_dataset *te = TL_CHECK(dc_dataset_load(DC_DATASET_MNIST, DC_SPLIT_TEST, tmp("data")));
    assert_int_equal(te->count, 10000);
    assert_non_null(strstr(te->source, "data/mnist"));
    dc_dataset_free(te);
    dc_dataset *tr = TL_CHECK(dc_dataset_load(DC_DATASET_MNIST, DC_SPLIT_TRAIN, tmp("data")));
    assert_int_equal(tr->count, 60000);
    dc_dataset_free(tr);
    /* a second run finds everything in place and fetches nothing */
    int before = server_requests();
    TL_OK(dc_download_dataset(DC_DATASET_MNIST, tmp("data"), &quiet));
    assert_int_equal(server_requests(), before);
    /* Fashion-MNIST from this mirror gets MNIST's bytes under the same names: the official
     * Fashion-MNIST checksum rejects them and nothing is kept */
    assert_int_equal(dc_download_dataset(DC_DATASET_FASHION_MNIST, tmp("data"), &quiet), DC_ERR_FORMAT);
    assert_non_null(strstr(dc_last_error(), "/mirror/mnist/train-images-idx3-ubyte.gz: md5 mismatch: expected 8d4fb7e6c68d591d4c3dfef9ec88bf0d"));
    char fm[600];
    snprintf(fm, sizeof fm, "%s/fashion-mnist/train-images-idx3-ubyte.gz", tmp("data"));
    assert_int_equal(access(fm, F_OK), -1);
    /* a mirror without the files: an HTTP error naming the URL */
    snprintf(base, sizeof base, "http://127.0.0.1:%d/empty/", srv.port);
    setenv("DEEPC_DOWNLOAD_BASE", base, 1);
    assert_int_equal(dc_download_dataset(DC_DATASET_FASHION_MNIST, tmp("data"), &quiet), DC_ERR_IO);
    assert_non_null(strstr(dc_last_error(), "/empty/train-images-idx3-ubyte.gz: HTTP 404"));
    unsetenv("DEEPC_DOWNLOAD_BASE");
}

/* ---------------------------------------------------------------------------------------
 * tar
 * ------------------------------------------------------------------------------------- */

typedef struct tarbuf {
    uint8_t *data;
    size_t size, cap;
} tarbuf;

static void tb_put(tarbuf *t, const void *p, size_t n)
{
    if (t->size + n > t->cap) {
        t->cap = (t->size + n) * 2;
        t->data = realloc(t->data, t->cap);
    }
    memcpy(t->data + t->size, p, n);
    t->size += n;
}

/* width-1 octal digits and a NUL, as tar writes its numeric fields */
static void octal(uint8_t *dst, int width, uint64_t v)
{
    for (int i = width - 2; i >= 0; i--, v >>= 3) dst[i] = (uint8_t)('0' + (v & 7));
    dst[width - 1] = '\0';
}

static void tb_member(tarbuf *t, const char *name, char type, const void *data, size_t n, bool gnu_base256)
{
    uint8_t h[512] = {0};
    size_t nl = strlen(name);
    memcpy(h, name, nl < 100 ? nl : 100);
    octal(h + 100, 8, 0644);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    if (gnu_base256) {
        h[124] = 0x80;
        for (int i = 0; i < 8; i++) h[135 - i] = (uint8_t)(n >> (8 * i));
    } else {
        octal(h + 124, 12, n);
    }
    octal(h + 136, 12, 0);
    h[156] = (uint8_t)type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    octal(h + 148, 7, sum);
    tb_put(t, h, 512);
    if (n) tb_put(t, data, n);
    static const uint8_t zero[512];
    if (n % 512) tb_put(t, zero, 512 - n % 512);
}

static void tb_finish(tarbuf *t, const char *path)
{
    static const uint8_t zero[1024];
    tb_put(t, zero, 1024);
    gzFile g = gzopen(path, "wb");
    gzwrite(g, t->data, (unsigned)t->size);
    gzclose(g);
    free(t->data);
    memset(t, 0, sizeof *t);
}

static void test_tar(void **state)
{
    (void)state;
    tarbuf t = {0};
    tb_member(&t, "cifar-10-batches-bin/", '5', NULL, 0, false);
    tb_member(&t, "cifar-10-batches-bin/readme.html", '0', "<html>hi</html>", 15, false);
    tb_member(&t, "cifar-10-batches-bin/data.bin", '0', blob, 70000, true);
    char longname[300];
    memset(longname, 'n', 200);
    strcpy(longname + 200, ".txt");
    char lname[320];
    snprintf(lname, sizeof lname, "deep/%s", longname);
    tb_member(&t, "././@LongLink", 'L', lname, strlen(lname) + 1, false);
    tb_member(&t, "deep/truncated-name", '0', "long", 4, false);
    const char *pax = "30 path=pax/from-pax-name.txt\n";
    tb_member(&t, "PaxHeaders/x", 'x', pax, strlen(pax), false);
    tb_member(&t, "short-name", '0', "pax", 3, false);
    tb_member(&t, "link", '2', NULL, 0, false); /* a symlink: skipped */
    const char *arch = tmp("good.tar.gz");
    tb_finish(&t, arch);
    const char *out = tmp("extracted");
    TL_OK(dc_extract_tar_gz(arch, out));
    char p[1024], hex[33], want[33];
    snprintf(p, sizeof p, "%s/cifar-10-batches-bin/data.bin", out);
    TL_OK(dc_md5_file(p, hex));
    dc_md5_buffer(blob, 70000, want);
    assert_string_equal(hex, want);
    snprintf(p, sizeof p, "%s/cifar-10-batches-bin/readme.html", out);
    TL_OK(dc_md5_file(p, hex));
    dc_md5_buffer("<html>hi</html>", 15, want);
    assert_string_equal(hex, want);
    snprintf(p, sizeof p, "%s/deep/%s", out, longname);
    assert_int_equal(access(p, R_OK), 0);
    snprintf(p, sizeof p, "%s/pax/from-pax-name.txt", out);
    assert_int_equal(access(p, R_OK), 0);
    snprintf(p, sizeof p, "%s/link", out);
    assert_int_equal(access(p, F_OK), -1);

    /* escaping the folder is refused */
    tb_member(&t, "../evil.txt", '0', "x", 1, false);
    arch = tmp("evil.tar.gz");
    tb_finish(&t, arch);
    assert_int_equal(dc_extract_tar_gz(arch, out), DC_ERR_FORMAT);
    assert_non_null(strstr(dc_last_error(), "refusing member '../evil.txt'"));
    snprintf(p, sizeof p, "%s/../evil.txt", out);
    assert_int_equal(access(p, F_OK), -1);
    tb_member(&t, "/etc/evil", '0', "x", 1, false);
    tb_finish(&t, arch);
    assert_int_equal(dc_extract_tar_gz(arch, out), DC_ERR_FORMAT);

    /* truncated: the data of the last member is cut */
    tb_member(&t, "big.bin", '0', blob, 5000, false);
    t.size -= 3000; /* cut into the member's data (no end blocks follow) */
    arch = tmp("cut.tar.gz");
    gzFile g = gzopen(arch, "wb");
    gzwrite(g, t.data, (unsigned)t.size);
    gzclose(g);
    free(t.data);
    memset(&t, 0, sizeof t);
    assert_int_equal(dc_extract_tar_gz(arch, tmp("cut")), DC_ERR_FORMAT);
    assert_non_null(strstr(dc_last_error(), "truncated archive"));
    /* not a tar at all */
    write_file(tmp("junk.tar.gz"), blob, 2048);
    assert_int_equal(dc_extract_tar_gz(tmp("junk.tar.gz"), tmp("junk")), DC_ERR_FORMAT);
    assert_non_null(strstr(dc_last_error(), "not a tar archive"));
    assert_int_equal(dc_extract_tar_gz(tmp("missing.tar.gz"), tmp("junk")), DC_ERR_IO);

    /* download + extract, the CIFAR path with a stand-in archive of 5 records */
    uint8_t *rec = malloc(3073 * 5);
    for (int i = 0; i < 3073 * 5; i++) rec[i] = (uint8_t)(i % 3073 == 0 ? i / 3073 * 2 : i * 7);
    tb_member(&t, "cifar-10-batches-bin/test_batch.bin", '0', rec, 3073 * 5, false);
    free(rec);
    arch = tmp("served.tar.gz");
    tb_finish(&t, arch);
    FILE *f = fopen(arch, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    server_add("/cifar.tar.gz", b, (size_t)n);
    dc_md5_buffer(b, (size_t)n, want);
    free(b);
    TL_OK(dc_download_file(url_of("/cifar.tar.gz"), tmp("dl.tar.gz"), want, &quiet));
    TL_OK(dc_extract_tar_gz(tmp("dl.tar.gz"), tmp("dl")));
    snprintf(p, sizeof p, "%s/cifar-10-batches-bin/test_batch.bin", tmp("dl"));
    const char *one[] = {p};
    dc_dataset *ds = TL_CHECK(dc_cifar10_load(1, one));
    assert_int_equal(ds->count, 5);
    assert_int_equal(ds->labels[4], 8);
    dc_dataset_free(ds);
}

int main(void)
{
    /* each test gets a fresh server and folder */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_md5),
        cmocka_unit_test_setup_teardown(test_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_part_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_ignores_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mnist_dataset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tar, setup, teardown),
    };
    return TL_RUN(tests);
}
