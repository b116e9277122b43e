/* test_hf_download.c: `deepc download REPO_ID` (dc_hf_download) against a small imitation of
 * the Hugging Face hub written here: an HTTP/1.1 server thread on 127.0.0.1 (ephemeral port)
 * with the hub's endpoints: /api/models/<repo>/revision/<rev> (the file list),
 * /<repo>/resolve/<rev>/<file> answering like the hub (small files: 200 with ETag; LFS files:
 * 302 to a CDN URL with X-Linked-Etag = sha256 and X-Linked-Size; a renamed repo: a relative
 * 307), a CDN path with Range support, and switches to drop a connection midway, corrupt a
 * byte, or require a token. Never touches the real network.
 *
 * Covered: sha256 test vectors; a whole download (files identical, loadable by dc_llm_load);
 * a second run that fetches nothing; resume after a dropped connection and from a partial
 * file of an earlier run; a corrupted body (sha256 mismatch: error, nothing left); gated repos
 * (401, then HF_TOKEN; the token never goes to the CDN); HF_HUB_OFFLINE; the cache folder
 * (DEEPC_CACHE_DIR) and loading by repo id; a renamed repo; bad repo ids; a missing repo.
 *
 * diffusers layouts: acme/pipe is tests/fixtures/sd/tiny_pipe as the hub would hold it (with
 * .bin duplicates, an unused fp16 / non_ema UNet, safety_checker/, feature_extractor/, a
 * top-level checkpoint, and a vae/ that has only the fp16 file): only the components deepc
 * runs arrive, F32 first, fp16 as the fallback or with variant "fp16", and the folder loads
 * with dc_sd_pipeline_load; the same without the file-list API; acme/ddpm (a DDPMPipeline:
 * unet/ + scheduler/) loads with dc_class_model_load; acme/binonly (.bin weights) is refused
 * with one line before any large file is fetched; and `deepc imagine --model acme/pipe`
 * (the CLI) downloads into the cache, then runs from it with no request, also offline. */
#include "support/testlib.h"

#include <arpa/inet.h>
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
#include <sys/wait.h>
#include <unistd.h>

#include "deepc/diffusion.h"
#include "deepc/llm.h"
#include "util/sha256.h"

/* ---------------------------------------------------------------------------------------
 * The imitation hub
 * ------------------------------------------------------------------------------------- */

typedef struct hub_file {
    char repo[16]; /* "tiny" (also served as acme/gated), "pipe", "ddpm", "binonly" */
    char name[96];
    uint8_t *data;
    size_t size;
    bool lfs;
    char sha[65];
} hub_file;

typedef struct hub {
    int fd, port;
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t mu;
    hub_file files[48];
    int nfiles;
    /* switches */
    long drop_after;   /* > 0: the next CDN body is cut after this many bytes (once) */
    bool corrupt;      /* flip a byte of CDN bodies */
    bool gated;        /* answer 401 without "Authorization: Bearer secret" */
    bool no_api;       /* answer 404 to the file-list API (a mirror without it) */
    /* what it saw */
    int cdn_gets, api_gets;
    long last_range;
    bool token_at_cdn;
} hub;

static hub H;

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

static int reply(int fd, const char *status, const char *headers, const void *body, size_t n, bool head)
{
    char h[2048];
    int k = snprintf(h, sizeof h, "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n", status, headers, n);
    send_all(fd, h, (size_t)k);
    if (!head && n) send_all(fd, body, n);
    return 0;
}

/* The file set a repo name serves (acme/gated is acme/tiny behind a token), NULL: none. */
static const char *repo_files(const char *name)
{
    if (!strcmp(name, "tiny") || !strcmp(name, "gated")) return "tiny";
    if (!strcmp(name, "pipe") || !strcmp(name, "ddpm") || !strcmp(name, "binonly")) return name;
    return NULL;
}

static int handle(int fd)
{
    char req[8192];
    size_t got = 0;
    while (got < sizeof req - 1) {
        ssize_t r = recv(fd, req + got, sizeof req - 1 - got, 0);
        if (r <= 0) return 0;
        got += (size_t)r;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n")) break;
    }
    char method[8], path[512];
    if (sscanf(req, "%7s %511s HTTP/1.", method, path) != 2) return 0;
    bool head = !strcmp(method, "HEAD");
    long range = -1;
    bool auth = false;
    for (char *line = strstr(req, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (!strncasecmp(line + 2, "Range: bytes=", 13)) range = atol(line + 15);
        if (!strncasecmp(line + 2, "Authorization: Bearer secret", 28)) auth = true;
    }
    pthread_mutex_lock(&H.mu);
    bool gated = H.gated, corrupt = H.corrupt;
    char hdr[1024];
    if (!strncmp(path, "/cdn/", 5)) {
        H.cdn_gets++;
        H.last_range = range;
        if (auth) H.token_at_cdn = true;
        long drop = H.drop_after;
        H.drop_after = 0;
        hub_file *f = NULL;
        for (int i = 0; i < H.nfiles; i++)
            if (!strcmp(H.files[i].sha, path + 5)) f = &H.files[i];
        pthread_mutex_unlock(&H.mu);
        if (!f) return reply(fd, "404 Not Found", "", "no", 2, head);
        size_t start = range > 0 ? (size_t)range : 0;
        if (start >= f->size && range >= 0)
            return reply(fd, "416 Range Not Satisfiable", "", "", 0, head);
        uint8_t *body = malloc(f->size);
        memcpy(body, f->data, f->size);
        if (corrupt) body[f->size / 2] ^= 0x55;
        if (range > 0)
            snprintf(hdr, sizeof hdr, "Content-Range: bytes %zu-%zu/%zu\r\n", start, f->size - 1, f->size);
        else hdr[0] = '\0';
        char h[2048];
        int k = snprintf(h, sizeof h, "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
                         range > 0 ? "206 Partial Content" : "200 OK", hdr, f->size - start);
        send_all(fd, h, (size_t)k);
        size_t len = f->size - start;
        if (drop > 0 && (size_t)drop < len) len = (size_t)drop;
        if (!head) send_all(fd, body + start, len);
        free(body);
        return 0;
    }
    if (!strncmp(path, "/api/models/", 12)) {
        H.api_gets++;
        bool no_api = H.no_api;
        pthread_mutex_unlock(&H.mu);
        char aorg[64], arepo[64];
        if (no_api || sscanf(path + 12, "%63[^/]/%63[^/]/", aorg, arepo) != 2 || strcmp(aorg, "acme") ||
            !repo_files(arepo))
            return reply(fd, "404 Not Found", "", "{\"error\":\"Repository not found\"}", 31, head);
        if (gated && !auth) return reply(fd, "401 Unauthorized", "", "{}", 2, head);
        const char *rf = repo_files(arepo);
        char body[8192] = "{\"sha\":\"0123abcd\",\"siblings\":[{\"rfilename\":\".gitattributes\"},"
                          "{\"rfilename\":\"onnx/model.onnx\"}";
        for (int i = 0; i < H.nfiles; i++) {
            if (strcmp(H.files[i].repo, rf)) continue;
            strcat(body, ",{\"rfilename\":\"");
            strcat(body, H.files[i].name);
            strcat(body, "\"}");
        }
        strcat(body, "]}");
        return reply(fd, "200 OK", "Content-Type: application/json\r\n", body, strlen(body), head);
    }
    /* /<org>/<name>/resolve/<rev>/<file> */
    char org[64], name[64], rev[64], file[256];
    if (sscanf(path, "/%63[^/]/%63[^/]/resolve/%63[^/]/%255s", org, name, rev, file) != 4) {
        pthread_mutex_unlock(&H.mu);
        return reply(fd, "404 Not Found", "", "", 0, head);
    }
    if (!strcmp(org, "old")) {
        pthread_mutex_unlock(&H.mu);
        snprintf(hdr, sizeof hdr, "Location: /acme/%s/resolve/%s/%s\r\n", name, rev, file);
        return reply(fd, "307 Temporary Redirect", hdr, "", 0, head);
    }
    if (strcmp(org, "acme") || !repo_files(name)) {
        pthread_mutex_unlock(&H.mu);
        return reply(fd, "404 Not Found", "X-Error-Code: RepoNotFound\r\n", "", 0, head);
    }
    if (gated && !auth) {
        pthread_mutex_unlock(&H.mu);
        return reply(fd, "401 Unauthorized", "", "", 0, head);
    }
    hub_file *f = NULL;
    for (int i = 0; i < H.nfiles; i++)
        if (!strcmp(H.files[i].repo, repo_files(name)) && !strcmp(H.files[i].name, file)) f = &H.files[i];
    int port = H.port;
    pthread_mutex_unlock(&H.mu);
    if (!f) return reply(fd, "404 Not Found", "X-Error-Code: EntryNotFound\r\n", "", 0, head);
    if (f->lfs) {
        snprintf(hdr, sizeof hdr,
                 "Location: http://127.0.0.1:%d/cdn/%s\r\nX-Linked-Etag: \"%s\"\r\nX-Linked-Size: %zu\r\n"
                 "X-Repo-Commit: 0123abcd\r\nETag: W/\"ffff\"\r\n",
                 port, f->sha, f->sha, f->size);
        return reply(fd, "302 Found", hdr, "", 0, head);
    }
    snprintf(hdr, sizeof hdr, "ETag: \"%.40s\"\r\nX-Repo-Commit: 0123abcd\r\n", f->sha);
    return reply(fd, "200 OK", hdr, f->data, f->size, head);
}

static void *serve(void *arg)
{
    (void)arg;
    while (!H.stop) {
        struct pollfd pfd = {H.fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0) continue;
        int c = accept(H.fd, NULL, NULL);
        if (c < 0) continue;
        handle(c);
        shutdown(c, SHUT_RDWR);
        close(c);
    }
    return NULL;
}

static void add_blob(const char *repo, const char *name, const void *data, size_t n, bool lfs)
{
    assert_true(H.nfiles < (int)(sizeof H.files / sizeof *H.files));
    hub_file *h = &H.files[H.nfiles++];
    snprintf(h->repo, sizeof h->repo, "%s", repo);
    snprintf(h->name, sizeof h->name, "%s", name);
    h->data = malloc(n ? n : 1);
    memcpy(h->data, data, n);
    h->size = n;
    h->lfs = lfs;
    dc__sha256 c;
    uint8_t dg[32];
    dc__sha256_init(&c);
    dc__sha256_update(&c, h->data, h->size);
    dc__sha256_final(&c, dg);
    dc__sha256_hex(dg, h->sha);
}

/* A fixture file (under tests/fixtures) served as repo/name. */
static void add_fixture(const char *repo, const char *name, const char *fixture, bool lfs)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", tl_fixtures_dir(), fixture);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    add_blob(repo, name, buf, (size_t)n, lfs);
    free(buf);
}

static void add_file(const char *name, bool lfs)
{
    char fx[256];
    snprintf(fx, sizeof fx, "llm/gpt2_tiny/%s", name);
    add_fixture("tiny", name, fx, lfs);
}

/* Bytes no loader accepts: files that must never be downloaded. */
static void add_junk(const char *repo, const char *name, bool lfs)
{
    char junk[300];
    snprintf(junk, sizeof junk, "not to be downloaded: %s/%s", repo, name);
    add_blob(repo, name, junk, strlen(junk), lfs);
}

static void add_text(const char *repo, const char *name, const char *text) { add_blob(repo, name, text, strlen(text), false); }

/* tests/fixtures/sd/tiny_pipe laid out as a Stable Diffusion repo on the hub, and two
 * smaller diffusers repos. */
static void add_diffusers_repos(void)
{
    static const char *const small[] = {"scheduler/scheduler_config.json", "text_encoder/config.json",
                                        "tokenizer/merges.txt",            "tokenizer/special_tokens_map.json",
                                        "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
                                        "unet/config.json",                "vae/config.json"};
    char fx[256];
    add_text("pipe", "model_index.json",
             "{\"_class_name\": \"StableDiffusionPipeline\", \"_diffusers_version\": \"0.27.2\",\n"
             " \"feature_extractor\": [\"transformers\", \"CLIPImageProcessor\"], \"image_encoder\": [null, null],\n"
             " \"requires_safety_checker\": true,\n"
             " \"safety_checker\": [\"stable_diffusion\", \"StableDiffusionSafetyChecker\"],\n"
             " \"scheduler\": [\"diffusers\", \"PNDMScheduler\"], \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],\n"
             " \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"], \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],\n"
             " \"vae\": [\"diffusers\", \"AutoencoderKL\"]}\n");
    for (size_t i = 0; i < sizeof small / sizeof *small; i++) {
        snprintf(fx, sizeof fx, "sd/tiny_pipe/%s", small[i]);
        add_fixture("pipe", small[i], fx, false);
    }
    add_fixture("pipe", "text_encoder/model.safetensors", "sd/tiny_pipe/text_encoder/model.safetensors", true);
    add_fixture("pipe", "unet/diffusion_pytorch_model.safetensors", "sd/tiny_pipe/unet/diffusion_pytorch_model.safetensors",
                true);
    /* the fp16 variant of the UNet: the same (loadable) bytes under the variant's name */
    add_fixture("pipe", "unet/diffusion_pytorch_model.fp16.safetensors",
                "sd/tiny_pipe/unet/diffusion_pytorch_model.safetensors", true);
    /* vae/ has only the fp16 file */
    add_fixture("pipe", "vae/diffusion_pytorch_model.fp16.safetensors",
                "sd/tiny_pipe/vae/diffusion_pytorch_model.fp16.safetensors", true);
    add_junk("pipe", "unet/diffusion_pytorch_model.non_ema.safetensors", true);
    add_junk("pipe", "unet/diffusion_pytorch_model.bin", true);
    add_junk("pipe", "text_encoder/pytorch_model.bin", true);
    add_junk("pipe", "vae/diffusion_pytorch_model.bin", true);
    add_junk("pipe", "safety_checker/config.json", false);
    add_junk("pipe", "safety_checker/model.safetensors", true);
    add_junk("pipe", "feature_extractor/preprocessor_config.json", false);
    add_junk("pipe", "v1-5-pruned-emaonly.safetensors", true);
    add_junk("pipe", "README.md", false);

    add_text("ddpm", "model_index.json",
             "{\"_class_name\": \"DDPMPipeline\", \"_diffusers_version\": \"0.27.2\",\n"
             " \"scheduler\": [\"diffusers\", \"DDPMScheduler\"], \"unet\": [\"diffusers\", \"UNet2DModel\"]}\n");
    add_fixture("ddpm", "unet/config.json", "sd/tiny_unet2d/config.json", false);
    add_fixture("ddpm", "unet/diffusion_pytorch_model.safetensors", "sd/tiny_unet2d/diffusion_pytorch_model.safetensors", true);
    add_text("ddpm", "scheduler/scheduler_config.json",
             "{\"_class_name\": \"DDPMScheduler\", \"num_train_timesteps\": 1000, \"beta_start\": 0.0001,\n"
             " \"beta_end\": 0.02, \"beta_schedule\": \"linear\", \"clip_sample\": true}\n");

    add_text("binonly", "model_index.json",
             "{\"_class_name\": \"DDPMPipeline\", \"scheduler\": [\"diffusers\", \"DDPMScheduler\"],\n"
             " \"unet\": [\"diffusers\", \"UNet2DModel\"]}\n");
    add_fixture("binonly", "unet/config.json", "sd/tiny_unet2d/config.json", false);
    add_junk("binonly", "unet/diffusion_pytorch_model.bin", true);
    add_text("binonly", "scheduler/scheduler_config.json", "{\"_class_name\": \"DDPMScheduler\"}\n");
}

static int hub_start(void **state)
{
    (void)state;
    memset(&H, 0, sizeof H);
    pthread_mutex_init(&H.mu, NULL);
    H.fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(H.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    if (bind(H.fd, (struct sockaddr *)&a, sizeof a) || listen(H.fd, 16)) return -1;
    socklen_t len = sizeof a;
    getsockname(H.fd, (struct sockaddr *)&a, &len);
    H.port = ntohs(a.sin_port);
    add_file("config.json", false);
    add_file("generation_config.json", false);
    add_file("vocab.json", false);
    add_file("merges.txt", false);
    add_file("model.safetensors", true);
    add_diffusers_repos();
    pthread_create(&H.thread, NULL, serve, NULL);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", H.port);
    setenv("HF_ENDPOINT", ep, 1);
    unsetenv("HF_TOKEN");
    unsetenv("HF_HUB_OFFLINE");
    return 0;
}

static int hub_stop(void **state)
{
    (void)state;
    H.stop = 1;
    pthread_join(H.thread, NULL);
    close(H.fd);
    for (int i = 0; i < H.nfiles; i++) free(H.files[i].data);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * helpers
 * ------------------------------------------------------------------------------------- */

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static char *fresh_dir(void)
{
    static char d[128];
    snprintf(d, sizeof d, "/tmp/deepc-test-hf-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void rm_rf(const char *d) { nftw(d, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static bool same_as_hub_in(const char *repo, const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    hub_file *h = NULL;
    for (int i = 0; i < H.nfiles; i++)
        if (!strcmp(H.files[i].repo, repo) && !strcmp(H.files[i].name, name)) h = &H.files[i];
    FILE *f = h ? fopen(p, "rb") : NULL;
    if (!f) return false;
    uint8_t *buf = malloc(h->size + 1);
    size_t n = fread(buf, 1, h->size + 1, f);
    fclose(f);
    bool ok = n == h->size && !memcmp(buf, h->data, n);
    free(buf);
    return ok;
}

static bool same_as_hub(const char *dir, const char *name) { return same_as_hub_in("tiny", dir, name); }

static bool exists(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static dc_status fetch(const char *repo, const char *dir)
{
    dc_hf_download_opts o = {.dir = dir, .quiet = true};
    return dc_hf_download(repo, &o, NULL, 0);
}

/* ---------------------------------------------------------------------------------------
 * tests
 * ------------------------------------------------------------------------------------- */

static void test_sha256(void **s)
{
    (void)s;
    struct { const char *in; const char *hex; } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < 3; i++) {
        dc__sha256 c;
        uint8_t d[32];
        char hex[65];
        dc__sha256_init(&c);
        /* byte by byte, to cross block boundaries the hard way */
        for (const char *p = v[i].in; *p; p++) dc__sha256_update(&c, p, 1);
        dc__sha256_final(&c, d);
        dc__sha256_hex(d, hex);
        assert_string_equal(hex, v[i].hex);
    }
    /* a million 'a' */
    dc__sha256 c;
    uint8_t d[32];
    char hex[65], block[1000];
    memset(block, 'a', sizeof block);
    dc__sha256_init(&c);
    for (int i = 0; i < 1000; i++) dc__sha256_update(&c, block, sizeof block);
    dc__sha256_final(&c, d);
    dc__sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_download_and_load(void **s)
{
    (void)s;
    char *dir = fresh_dir();
    int cdn0 = H.cdn_gets;
    TL_OK(fetch("acme/tiny", dir));
    for (int i = 0; i < H.nfiles; i++)
        if (!strcmp(H.files[i].repo, "tiny")) assert_true(same_as_hub(dir, H.files[i].name));
    assert_false(exists(dir, "model.safetensors.incomplete"));
    assert_false(exists(dir, "README.md"));
    assert_false(exists(dir, "onnx"));
    assert_int_equal(H.cdn_gets, cdn0 + 1);
    dc_llm *m = dc_llm_load(dir, NULL);
    assert_non_null(m);
    int32_t id = 5;
    assert_non_null(dc_llm_forward(m, &id, 1, NULL));
    dc_llm_free(m);
    /* a second run asks for etags only */
    TL_OK(fetch("acme/tiny", dir));
    assert_int_equal(H.cdn_gets, cdn0 + 1);
    rm_rf(dir);
}

static void test_resume(void **s)
{
    (void)s;
    char *dir = fresh_dir();
    /* the connection drops after 50000 bytes: resumed within the same call */
    H.drop_after = 50000;
    TL_OK(fetch("acme/tiny", dir));
    assert_int_equal(H.last_range, 50000);
    assert_true(same_as_hub(dir, "model.safetensors"));
    rm_rf(dir);
    /* a partial file left by an earlier run */
    dir = fresh_dir();
    char p[4096];
    snprintf(p, sizeof p, "%s/model.safetensors.incomplete", dir);
    FILE *f = fopen(p, "wb");
    hub_file *h = &H.files[4];
    fwrite(h->data, 1, 70000, f);
    fclose(f);
    TL_OK(fetch("acme/tiny", dir));
    assert_int_equal(H.last_range, 70000);
    assert_true(same_as_hub(dir, "model.safetensors"));
    assert_false(exists(dir, "model.safetensors.incomplete"));
    rm_rf(dir);
}

static void test_corrupted(void **s)
{
    (void)s;
    char *dir = fresh_dir();
    H.corrupt = true;
    dc_status st = fetch("acme/tiny", dir);
    H.corrupt = false;
    assert_int_not_equal(st, DC_OK);
    assert_non_null(strstr(dc_last_error(), "sha256"));
    printf("  corrupted: %s\n", dc_last_error());
    assert_false(exists(dir, "model.safetensors"));
    assert_false(exists(dir, "model.safetensors.incomplete"));
    /* the small files that did arrive stay, and a new run completes */
    assert_true(same_as_hub(dir, "config.json"));
    TL_OK(fetch("acme/tiny", dir));
    assert_true(same_as_hub(dir, "model.safetensors"));
    rm_rf(dir);
}

static void test_gated_and_errors(void **s)
{
    (void)s;
    char *dir = fresh_dir();
    H.gated = true;
    assert_int_not_equal(fetch("acme/gated", dir), DC_OK);
    assert_non_null(strstr(dc_last_error(), "HF_TOKEN"));
    printf("  gated: %s\n", dc_last_error());
    setenv("HF_TOKEN", "secret", 1);
    H.token_at_cdn = false;
    TL_OK(fetch("acme/gated", dir));
    assert_false(H.token_at_cdn);
    assert_true(same_as_hub(dir, "model.safetensors"));
    unsetenv("HF_TOKEN");
    H.gated = false;
    rm_rf(dir);

    dir = fresh_dir();
    assert_int_not_equal(fetch("acme/missing", dir), DC_OK);
    printf("  missing repo: %s\n", dc_last_error());
    assert_int_not_equal(fetch("../etc", dir), DC_OK);
    assert_non_null(strstr(dc_last_error(), "not a Hugging Face repo id"));
    assert_int_not_equal(fetch("a/b/c", dir), DC_OK);
    /* a renamed repo: the hub answers with a relative redirect */
    TL_OK(fetch("old/tiny", dir));
    assert_true(same_as_hub(dir, "model.safetensors"));
    rm_rf(dir);
    /* no server at all */
    char ep[64];
    snprintf(ep, sizeof ep, "%s", getenv("HF_ENDPOINT"));
    setenv("HF_ENDPOINT", "http://127.0.0.1:1", 1);
    dir = fresh_dir();
    assert_int_not_equal(fetch("acme/tiny", dir), DC_OK);
    printf("  no server: %s\n", dc_last_error());
    rm_rf(dir);
    setenv("HF_ENDPOINT", ep, 1);
}

static void test_cache_and_offline(void **s)
{
    (void)s;
    char *root = fresh_dir();
    setenv("DEEPC_CACHE_DIR", root, 1);
    char dir[4096], want[4096];
    assert_true(dc_hf_cache_dir("acme/tiny", dir, sizeof dir));
    snprintf(want, sizeof want, "%s/models/acme--tiny", root);
    assert_string_equal(dir, want);
    /* offline before anything is there */
    setenv("HF_HUB_OFFLINE", "1", 1);
    assert_int_not_equal(dc_hf_download("acme/tiny", &(dc_hf_download_opts){.quiet = true}, NULL, 0), DC_OK);
    assert_non_null(strstr(dc_last_error(), "HF_HUB_OFFLINE"));
    unsetenv("HF_HUB_OFFLINE");
    char got[4096];
    TL_OK(dc_hf_download("acme/tiny", &(dc_hf_download_opts){.quiet = true}, got, sizeof got));
    assert_string_equal(got, want);
    /* offline afterwards: no request at all */
    setenv("HF_HUB_OFFLINE", "1", 1);
    int api = H.api_gets;
    TL_OK(dc_hf_download("acme/tiny", &(dc_hf_download_opts){.quiet = true}, NULL, 0));
    assert_int_equal(H.api_gets, api);
    unsetenv("HF_HUB_OFFLINE");
    /* --model accepts the repo id */
    dc_llm *m = dc_llm_load("acme/tiny", NULL);
    assert_non_null(m);
    dc_llm_free(m);
    unsetenv("DEEPC_CACHE_DIR");
    rm_rf(root);
}

/* ---- diffusers ------------------------------------------------------------------------ */

/* what deepc runs of acme/pipe, and what it must leave on the hub */
static const char *const pipe_small[] = {"model_index.json",
                                         "scheduler/scheduler_config.json",
                                         "text_encoder/config.json",
                                         "tokenizer/merges.txt",
                                         "tokenizer/special_tokens_map.json",
                                         "tokenizer/tokenizer_config.json",
                                         "tokenizer/vocab.json",
                                         "unet/config.json",
                                         "vae/config.json"};
static const char *const pipe_unused[] = {"unet/diffusion_pytorch_model.non_ema.safetensors",
                                          "unet/diffusion_pytorch_model.bin",
                                          "text_encoder/pytorch_model.bin",
                                          "vae/diffusion_pytorch_model.bin",
                                          "vae/diffusion_pytorch_model.safetensors",
                                          "safety_checker",
                                          "feature_extractor",
                                          "v1-5-pruned-emaonly.safetensors",
                                          "README.md",
                                          "onnx"};

/* dir holds acme/pipe as deepc imagine needs it: the pipeline loads. fp16_unet: which
 * UNet file is expected. */
static void check_pipe(const char *dir, bool fp16_unet)
{
    for (size_t i = 0; i < sizeof pipe_small / sizeof *pipe_small; i++) {
        if (!same_as_hub_in("pipe", dir, pipe_small[i])) fail_msg("%s: missing or different", pipe_small[i]);
    }
    assert_true(same_as_hub_in("pipe", dir, "text_encoder/model.safetensors"));
    assert_true(same_as_hub_in("pipe", dir, "vae/diffusion_pytorch_model.fp16.safetensors")); /* the fallback */
    const char *unet = "unet/diffusion_pytorch_model.safetensors", *unet16 = "unet/diffusion_pytorch_model.fp16.safetensors";
    assert_true(same_as_hub_in("pipe", dir, fp16_unet ? unet16 : unet));
    assert_false(exists(dir, fp16_unet ? unet : unet16));
    for (size_t i = 0; i < sizeof pipe_unused / sizeof *pipe_unused; i++)
        if (exists(dir, pipe_unused[i])) fail_msg("%s was downloaded", pipe_unused[i]);
    assert_false(exists(dir, "unet/diffusion_pytorch_model.safetensors.incomplete"));
    dc_sd_pipeline *p = dc_sd_pipeline_load(dir, DC_F32);
    if (!p) fail_msg("dc_sd_pipeline_load(%s): %s", dir, dc_last_error());
    dc_sd_pipeline_free(p);
}

static void test_diffusers_pipeline(void **s)
{
    (void)s;
    char *dir = fresh_dir();
    int cdn0 = H.cdn_gets;
    TL_OK(fetch("acme/pipe", dir));
    check_pipe(dir, false);
    assert_int_equal(H.cdn_gets, cdn0 + 3); /* text encoder, unet, vae */
    /* a second run asks for etags only */
    TL_OK(fetch("acme/pipe", dir));
    assert_int_equal(H.cdn_gets, cdn0 + 3);
    rm_rf(dir);

    /* --variant fp16: the variant where there is one, F32 (text_encoder/) where not */
    dir = fresh_dir();
    dc_hf_download_opts o = {.dir = dir, .quiet = true, .variant = "fp16"};
    TL_OK(dc_hf_download("acme/pipe", &o, NULL, 0));
    check_pipe(dir, true);
    rm_rf(dir);

    /* a mirror without the file-list API: the usual names, tried one by one */
    dir = fresh_dir();
    H.no_api = true;
    dc_status st = fetch("acme/pipe", dir);
    H.no_api = false;
    TL_OK(st);
    check_pipe(dir, false);
    rm_rf(dir);
}

static void test_diffusers_ddpm_and_bin(void **s)
{
    (void)s;
    /* a DDPMPipeline: unet/ + scheduler/, sampled by the class-model path */
    char *dir = fresh_dir();
    TL_OK(fetch("acme/ddpm", dir));
    assert_true(same_as_hub_in("ddpm", dir, "model_index.json"));
    assert_true(same_as_hub_in("ddpm", dir, "unet/config.json"));
    assert_true(same_as_hub_in("ddpm", dir, "unet/diffusion_pytorch_model.safetensors"));
    assert_true(same_as_hub_in("ddpm", dir, "scheduler/scheduler_config.json"));
    dc_class_model *m = dc_class_model_load(dir);
    if (!m) fail_msg("dc_class_model_load(%s): %s", dir, dc_last_error());
    assert_int_equal(m->num_classes, 11);
    dc_class_model_free(m);
    rm_rf(dir);

    /* only .bin weights: one line, before any large file */
    dir = fresh_dir();
    int cdn0 = H.cdn_gets;
    assert_int_not_equal(fetch("acme/binonly", dir), DC_OK);
    printf("  .bin only: %s\n", dc_last_error());
    assert_non_null(strstr(dc_last_error(), ".bin"));
    assert_non_null(strstr(dc_last_error(), "safetensors"));
    assert_null(strchr(dc_last_error(), '\n'));
    assert_int_equal(H.cdn_gets, cdn0);
    assert_false(exists(dir, "unet/diffusion_pytorch_model.bin"));
    /* offline, the unfinished folder is not taken for a download */
    setenv("HF_HUB_OFFLINE", "1", 1);
    assert_int_not_equal(fetch("acme/binonly", dir), DC_OK);
    unsetenv("HF_HUB_OFFLINE");
    rm_rf(dir);
    /* a bad variant name never reaches a URL */
    dc_hf_download_opts o = {.quiet = true, .variant = "../x"};
    assert_int_not_equal(dc_hf_download("acme/pipe", &o, NULL, 0), DC_OK);
}

/* Runs the deepc CLI (a shell command line after "deepc"); its exit status. */
static int cli(const char *args, const char *log)
{
    char cmd[16384];
    int n = snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>&1", DEEPC_CLI, args, log);
    assert_true(n > 0 && (size_t)n < sizeof cmd);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static bool log_has(const char *log, const char *what)
{
    FILE *f = fopen(log, "rb");
    if (!f) return false;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, what) != NULL;
}

static void test_imagine_repo_id(void **s)
{
    (void)s;
    if (access(DEEPC_CLI, X_OK)) fail_msg("the deepc CLI %s is not built (cmake --build builds it)", DEEPC_CLI);
    char *root = fresh_dir();
    setenv("DEEPC_CACHE_DIR", root, 1);
    char log[4096], args[4096], path[4096];
    snprintf(log, sizeof log, "%s/log.txt", root);
    /* offline with nothing there: a one-line error naming HF_HUB_OFFLINE */
    setenv("HF_HUB_OFFLINE", "1", 1);
    snprintf(args, sizeof args, "imagine --model acme/pipe --steps 1 --width 16 --height 16 -o '%s/a.png' 'a red shoe'", root);
    assert_int_equal(cli(args, log), 1);
    assert_true(log_has(log, "HF_HUB_OFFLINE"));
    unsetenv("HF_HUB_OFFLINE");
    /* online: downloaded into the cache, then generated */
    int api0 = H.api_gets;
    if (cli(args, log)) fail_msg("deepc %s failed; see %s", args, log);
    assert_int_equal(H.api_gets, api0 + 1);
    snprintf(path, sizeof path, "%s/a.png", root);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/models/acme--pipe", root);
    check_pipe(path, false);
    /* again, online and offline: straight from the cache, no request */
    assert_int_equal(cli(args, log), 0);
    setenv("HF_HUB_OFFLINE", "1", 1);
    assert_int_equal(cli(args, log), 0);
    unsetenv("HF_HUB_OFFLINE");
    assert_int_equal(H.api_gets, api0 + 1);
    /* a DDPMPipeline repo (model_index.json, but not Stable Diffusion): several images, one
     * PNG each; and every class in one grid */
    snprintf(args, sizeof args, "imagine --model acme/ddpm --steps 1 --num-images 2 --separate -o '%s/d.png' 3", root);
    if (cli(args, log)) fail_msg("deepc %s failed; see %s", args, log);
    snprintf(path, sizeof path, "%s/d-000.png", root);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/d-001.png", root);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(args, sizeof args, "imagine --model acme/ddpm --steps 1 --all-classes --scale 2 -o '%s/g.png'", root);
    if (cli(args, log)) fail_msg("deepc %s failed; see %s", args, log);
    snprintf(path, sizeof path, "%s/g.png", root);
    int w = 0, h = 0, c = 0;
    uint8_t *pix = dc_image_read(path, &w, &h, &c);
    assert_non_null(pix);
    free(pix);
    assert_int_equal(w, 24);      /* 1 image per class, 12 px, x2 */
    assert_int_equal(h, 11 * 24); /* 11 classes (the null class has a name too here), one row each */
    /* a repo the hub does not have: the command names it */
    snprintf(args, sizeof args, "imagine --model acme/nothing -o '%s/n.png' x", root);
    assert_int_equal(cli(args, log), 1);
    assert_true(log_has(log, "acme/nothing"));
    unsetenv("DEEPC_CACHE_DIR");
    rm_rf(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_download_and_load),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_corrupted),
        cmocka_unit_test(test_gated_and_errors),
        cmocka_unit_test(test_cache_and_offline),
        cmocka_unit_test(test_diffusers_pipeline),
        cmocka_unit_test(test_diffusers_ddpm_and_bin),
        cmocka_unit_test(test_imagine_repo_id),
    };
    const struct CMUnitTest *t = tests;
    if (hub_start(NULL)) {
        fprintf(stderr, "test_hf_download: cannot start the local server\n");
        return 1;
    }
    int rc = TL_RUN(tests);
    (void)t;
    hub_stop(NULL);
    return rc;
}
