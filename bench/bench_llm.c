/* bench_llm.c: deepc's side of bench/run_llm.sh: greedy generation from a model folder with
 * a prompt of P tokens (the first P tokens of the same English text bench_llm.py uses,
 * repeated as needed) and N new tokens (EOS ignored), R timed runs after one warm-up.
 *
 *   bench_llm MODEL_DIR [--prompt-tokens 128] [--new-tokens 128] [--runs 3] [--keep-16bit]
 *
 * Prints one line of JSON: prompt processing in prompt tokens/s (the prompt's forward pass),
 * new tokens/s ((N - 1) tokens over the time from the first new token to the last, as
 * bench_llm.py measures transformers), the best of the runs, and the process's peak RSS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "deepc/llm.h"

static const char *TEXT =
    "The history of natural language processing generally started in the 1950s, although work "
    "can be found from earlier periods. In 1950, Alan Turing published an article titled "
    "Computing Machinery and Intelligence which proposed what is now called the Turing test "
    "as a criterion of intelligence. The Georgetown experiment in 1954 involved fully automatic "
    "translation of more than sixty Russian sentences into English. ";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_llm MODEL_DIR [--prompt-tokens P] [--new-tokens N] [--runs R] [--keep-16bit]\n");
        return 2;
    }
    int P = 128, N = 128, R = 3;
    dc_llm_options opt = {0};
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--prompt-tokens") && i + 1 < argc) P = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--new-tokens") && i + 1 < argc) N = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) R = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep-16bit")) opt.keep_16bit = true;
        else {
            fprintf(stderr, "bench_llm: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    dc_llm *m = dc_llm_load(argv[1], &opt);
    if (!m) {
        fprintf(stderr, "bench_llm: %s\n", dc_last_error());
        return 1;
    }
    int32_t *ids = malloc((size_t)P * sizeof *ids);
    int have = 0;
    while (have < P) {
        int32_t *t;
        size_t n;
        if (dc_llm_encode(m, TEXT, &t, &n)) {
            fprintf(stderr, "bench_llm: %s\n", dc_last_error());
            return 1;
        }
        for (size_t i = 0; i < n && have < P; i++) ids[have++] = t[i];
        free(t);
    }
    dc_generation_config g = dc_llm_generation_config(m);
    g.do_sample = false;
    g.max_new_tokens = N;
    g.n_eos = 0;
    g.repetition_penalty = 1.0f;
    double best_prompt = 0, best_new = 0;
    int32_t first[16];
    int nfirst = 0;
    for (int r = 0; r <= R; r++) {
        dc_generation out;
        if (dc_llm_generate(m, ids, (size_t)P, &g, NULL, NULL, &out)) {
            fprintf(stderr, "bench_llm: %s\n", dc_last_error());
            return 1;
        }
        double ps = (double)P / out.prompt_seconds, ns = (double)(out.n - out.n_prompt - 1) / out.decode_seconds;
        if (r > 0) {
            if (ps > best_prompt) best_prompt = ps;
            if (ns > best_new) best_new = ns;
        }
        nfirst = 0;
        for (size_t i = out.n_prompt; i < out.n && nfirst < 16; i++) first[nfirst++] = out.ids[i];
        dc_generation_free(&out);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"prompt_tok_s\": %.3f, \"new_tok_s\": %.3f, \"new_ids\": [", best_prompt, best_new);
    for (int i = 0; i < nfirst; i++) printf("%s%d", i ? ", " : "", first[i]);
    printf("], \"peak_rss_mb\": %.1f, \"impl\": \"deepc\", \"threads\": %d}\n", (double)ru.ru_maxrss / 1024.0,
           dc_get_num_threads());
    free(ids);
    dc_llm_free(m);
    return 0;
}
