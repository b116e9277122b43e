/* bench_tokenizer.c: encode throughput of a deepc tokenizer, one thread.
 *
 *   bench_tokenizer TOKENIZER_PATH TEXT_FILE [REPEATS]
 *
 * Encodes TEXT_FILE line by line (special tokens added, as HF's encode_batch does), REPEATS
 * times (default 3), and prints the best run in MB/s with the token count. With TEXT_FILE
 * "-10MB" it instead encodes one generated 10 MB line (a check that time stays linear).
 * bench/bench_tokenizer.py runs it beside HF tokenizers on the same text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deepc/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenizer TOKENIZER_PATH TEXT_FILE [REPEATS]\n");
        return 2;
    }
    int repeats = argc > 3 ? atoi(argv[3]) : 3;
    if (repeats < 1) repeats = 1;
    double t0 = now();
    /* a .json file is read as the tokenizers library reads it (no tokenizer_config.json) */
    size_t pl = strlen(argv[1]);
    dc_tokenizer *tok = NULL;
    if (pl > 5 && !strcmp(argv[1] + pl - 5, ".json")) {
        FILE *jf = fopen(argv[1], "rb");
        if (jf) {
            fseek(jf, 0, SEEK_END);
            size_t jl = (size_t)ftell(jf);
            fseek(jf, 0, SEEK_SET);
            char *js = malloc(jl + 1);
            if (js && fread(js, 1, jl, jf) == jl) tok = dc_tokenizer_from_json(js, jl, argv[1]);
            free(js);
            fclose(jf);
        }
    } else
        tok = dc_tokenizer_load(argv[1]);
    if (!tok) {
        fprintf(stderr, "bench_tokenizer: %s\n", dc_last_error());
        return 1;
    }
    double load_s = now() - t0;
    char *data = NULL;
    size_t len = 0;
    if (!strcmp(argv[2], "-10MB")) {
        const char *words[] = {"the ", "quick ", "brown ", "fox, ", "jumps\n", "über ", "日本語 ", "42 ", "don't "};
        len = 10u << 20;
        data = malloc(len + 16);
        size_t n = 0;
        unsigned r = 1;
        while (n < len) {
            r = r * 1103515245u + 12345u;
            const char *w = words[(r >> 16) % 9];
            size_t l = strlen(w);
            memcpy(data + n, w, l);
            n += l;
        }
        for (size_t i = 0; i < n; i++)
            if (data[i] == '\n') data[i] = ' '; /* one single line */
        len = n;
        data[len] = '\0';
    } else {
        FILE *f = fopen(argv[2], "rb");
        if (!f) {
            perror(argv[2]);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        data = malloc(len + 1);
        if (!data || fread(data, 1, len, f) != len) {
            fprintf(stderr, "bench_tokenizer: cannot read %s\n", argv[2]);
            return 1;
        }
        fclose(f);
        data[len] = '\0';
    }
    double best = 1e30;
    size_t ntok = 0;
    for (int r = 0; r < repeats; r++) {
        ntok = 0;
        double s = now();
        size_t i = 0;
        while (i < len) {
            char *e = strcmp(argv[2], "-10MB") ? memchr(data + i, '\n', len - i) : NULL;
            size_t l = e ? (size_t)(e - (data + i)) : len - i;
            dc_encoding enc;
            if (dc_tokenizer_encode(tok, data + i, l, true, false, &enc)) {
                fprintf(stderr, "bench_tokenizer: %s\n", dc_last_error());
                return 1;
            }
            ntok += enc.n;
            dc_encoding_free(&enc);
            i += l + 1;
        }
        double el = now() - s;
        if (el < best) best = el;
    }
    printf("deepc %s: %.2f MB in %.3f s = %.2f MB/s, %zu tokens (load %.3f s)\n", argv[1], (double)len / 1e6, best,
           (double)len / 1e6 / best, ntok, load_s);
    free(data);
    dc_tokenizer_free(tok);
    return 0;
}
