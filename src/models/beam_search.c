/* beam_search.c: decoding for the encoder-decoder models with transformers' generate()
 * semantics (v4.45): beam search (BeamSearchScorer + BeamHypotheses), greedy search and
 * sampling, with the logits processors in generate()'s order: repetition penalty,
 * no_repeat_ngram_size, min_length / min_new_tokens, forced_bos_token_id, forced_eos_token_id
 * (then temperature, top-k, top-p when sampling, through deepc/llm.h's warpers).
 *
 * Beam search, step by step (as _beam_search):
 *   scores = log_softmax(logits) -> processors -> + beam_score of the row
 *   take the top 2*num_beams of all num_beams*vocab scores (sorted, ties: lower index first)
 *   walk them in order: an eos among the first num_beams ranks finishes a hypothesis, scored
 *   sum_logprobs / generated_len ** length_penalty and kept among the best num_beams; any
 *   other token continues a beam, until num_beams beams are filled
 *   stop when the hypotheses are done (early_stopping) or the length reaches max_length; then
 *   the running beams are offered as hypotheses too and the best one is returned, with eos
 *   appended when it is shorter than max_length.
 * Beams start with scores {0, -1e9, -1e9, ...} so the first step expands beam 0 only.
 *
 * The decoder keeps one cache slot per beam; reordering beams copies the small slot table
 * (which slot holds each position of a row) rather than the caches. Everything is allocated
 * before the first step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "deepc/llm.h"
#include "summarize_internal.h"

dc_generate_config dc_generate_config_default(void)
{
    dc_generate_config c;
    memset(&c, 0, sizeof c);
    c.max_length = 20;
    c.min_length = 0;
    c.max_new_tokens = -1;
    c.min_new_tokens = -1;
    c.num_beams = 1;
    c.length_penalty = 1.0f;
    c.early_stopping = DC_EARLY_STOP_FALSE;
    c.no_repeat_ngram_size = 0;
    c.repetition_penalty = 1.0f;
    c.decoder_start_token_id = -1;
    c.bos_token_id = -1;
    c.forced_bos_token_id = -1;
    c.forced_eos_token_id = -1;
    c.pad_token_id = -1;
    c.n_eos = 0;
    c.do_sample = false;
    c.temperature = 1.0f;
    c.top_k = 50;
    c.top_p = 1.0f;
    c.seed = 0;
    return c;
}

void dc__gen_lengths(const dc_generate_config *cfg, int *max_length, int *min_length)
{
    /* _prepare_generated_length: the decoder prompt is the start token, one id long */
    *max_length = cfg->max_new_tokens >= 0 ? cfg->max_new_tokens + 1 : cfg->max_length;
    *min_length = cfg->min_new_tokens >= 0 ? cfg->min_new_tokens + 1 : cfg->min_length;
}

static bool is_eos(const dc_generate_config *cfg, int32_t t)
{
    for (int i = 0; i < cfg->n_eos; i++)
        if (cfg->eos_token_id[i] == t) return true;
    return false;
}

/* The logits processors on one row of scores, seq[0..cur_len) being the row's tokens. */
static void process_row(const dc_generate_config *cfg, float *s, int64_t V, const int32_t *seq, int cur_len,
                        int max_length, int min_length)
{
    if (cfg->repetition_penalty != 1.0f) {
        /* RepetitionPenaltyLogitsProcessor: gather, scale, scatter (repeats give the same value:
         * mark tokens first so each is penalised once) */
        for (int i = 0; i < cur_len; i++) {
            int32_t t = seq[i];
            if (t < 0 || t >= V) continue;
            bool seen = false;
            for (int j = 0; j < i && !seen; j++) seen = seq[j] == t;
            if (seen) continue;
            s[t] = s[t] < 0 ? s[t] * cfg->repetition_penalty : s[t] / cfg->repetition_penalty;
        }
    }
    int n = cfg->no_repeat_ngram_size;
    if (n > 0 && cur_len + 1 >= n) {
        /* NoRepeatNGramLogitsProcessor: every earlier n-gram whose first n-1 tokens equal the
         * last n-1 tokens bans its last token */
        const int32_t *tail = seq + cur_len - (n - 1);
        for (int i = 0; i + n <= cur_len; i++) {
            if (memcmp(seq + i, tail, (size_t)(n - 1) * sizeof(int32_t)) == 0) {
                int32_t t = seq[i + n - 1];
                if (t >= 0 && t < V) s[t] = -INFINITY;
            }
        }
    }
    if (cur_len < min_length)
        for (int i = 0; i < cfg->n_eos; i++)
            if (cfg->eos_token_id[i] >= 0 && cfg->eos_token_id[i] < V) s[cfg->eos_token_id[i]] = -INFINITY;
    if (cfg->forced_bos_token_id >= 0 && cfg->forced_bos_token_id < V && cur_len == 1) {
        for (int64_t j = 0; j < V; j++) s[j] = -INFINITY;
        s[cfg->forced_bos_token_id] = 0;
    }
    if (cfg->forced_eos_token_id >= 0 && cur_len == max_length - 1) {
        /* generate() passes the config's eos list to ForcedEOSTokenLogitsProcessor */
        for (int64_t j = 0; j < V; j++) s[j] = -INFINITY;
        if (cfg->forced_eos_token_id < V) s[cfg->forced_eos_token_id] = 0;
    }
}

static void log_softmax_row(float *s, int64_t V)
{
    float mx = -INFINITY;
    for (int64_t j = 0; j < V; j++) mx = s[j] > mx ? s[j] : mx;
    double sum = 0;
    for (int64_t j = 0; j < V; j++) sum += expf(s[j] - mx);
    float lse = (float)log(sum);
    for (int64_t j = 0; j < V; j++) s[j] = (s[j] - mx) - lse;
}

/* ---- BeamHypotheses ------------------------------------------------------------------------ */

typedef struct hyps {
    int num_beams, n, max_len;
    double length_penalty, worst;
    dc_early_stopping early;
    int max_length;
    double *score;
    int *len;
    int32_t *tokens; /* [num_beams + 1][max_len] */
} hyps;

static void hyps_add(hyps *h, const int32_t *seq, int len, double sum_logprobs, int generated_len)
{
    double score = sum_logprobs / pow((double)generated_len, h->length_penalty);
    if (h->n < h->num_beams || score > h->worst) {
        h->score[h->n] = score;
        h->len[h->n] = len;
        memcpy(h->tokens + (int64_t)h->n * h->max_len, seq, (size_t)len * sizeof(int32_t));
        h->n++;
        if (h->n > h->num_beams) {
            /* sorted((score, idx)): drop the smallest (lowest index among equals); the new worst
             * is the second smallest */
            int lo = 0;
            for (int i = 1; i < h->n; i++)
                if (h->score[i] < h->score[lo]) lo = i;
            double second = INFINITY;
            for (int i = 0; i < h->n; i++)
                if (i != lo && h->score[i] < second) second = h->score[i];
            for (int i = lo; i + 1 < h->n; i++) {
                h->score[i] = h->score[i + 1];
                h->len[i] = h->len[i + 1];
                memcpy(h->tokens + (int64_t)i * h->max_len, h->tokens + (int64_t)(i + 1) * h->max_len,
                       (size_t)h->len[i] * sizeof(int32_t));
            }
            h->n--;
            h->worst = second;
        } else {
            h->worst = score < h->worst ? score : h->worst;
        }
    }
}

static bool hyps_done(const hyps *h, double best_sum_logprobs, int cur_len)
{
    const int prompt = 1;
    if (h->n < h->num_beams) return false;
    if (h->early == DC_EARLY_STOP_TRUE) return true;
    double highest;
    if (h->early == DC_EARLY_STOP_FALSE || h->length_penalty <= 0.0)
        highest = best_sum_logprobs / pow((double)(cur_len - prompt), h->length_penalty);
    else
        highest = best_sum_logprobs / pow((double)(h->max_length - prompt), h->length_penalty);
    return h->worst >= highest;
}

/* ---- top-k over all beams ------------------------------------------------------------------- */

/* The k largest of v[0..n) in descending order (ties: lower index first), as torch.topk. */
static void topk(const float *v, int64_t n, int k, float *val, int64_t *idx)
{
    int have = 0;
    for (int64_t i = 0; i < n; i++) {
        float x = v[i];
        if (have == k && !(x > val[k - 1])) continue;
        int p = have < k ? have : k - 1;
        while (p > 0 && x > val[p - 1]) {
            val[p] = val[p - 1];
            idx[p] = idx[p - 1];
            p--;
        }
        val[p] = x;
        idx[p] = i;
        if (have < k) have++;
    }
}

/* ---- sampling ------------------------------------------------------------------------------- */

/* temperature, top-k, top-p through the causal-LM code's warpers (dc_llm_next_token_probs, HF's
 * order; the repetition penalty was applied above with the other processors), then one draw
 * from the distribution with deepc's RNG (so sampled text differs from PyTorch's). */
static int32_t sample_row(const dc_generate_config *cfg, const float *s, int64_t V, float *probs, float *scratch,
                          int32_t *iscratch, dc_rng *rng)
{
    dc_generation_config g;
    memset(&g, 0, sizeof g);
    g.do_sample = true;
    g.temperature = cfg->temperature;
    g.top_k = cfg->top_k;
    g.top_p = cfg->top_p;
    g.repetition_penalty = 1.0f;
    g.max_new_tokens = -1;
    g.pad_id = -1;
    dc_llm_next_token_probs(s, V, NULL, 0, &g, probs, scratch, iscratch);
    double u = dc_rng_uniform_f64(rng), c = 0;
    int64_t last = 0;
    for (int64_t j = 0; j < V; j++) {
        if (probs[j] <= 0) continue;
        last = j;
        c += probs[j];
        if (u < c) return (int32_t)j;
    }
    return (int32_t)last;
}

/* ---- the loop ------------------------------------------------------------------------------- */

dc_status dc__generate(dc_s2s_model *m, dc__s2s_state *st, const dc_generate_config *cfg,
                       dc_generate_progress_fn progress, void *pctx, int32_t **out, int64_t *n_out)
{
    int max_length, min_length;
    dc__gen_lengths(cfg, &max_length, &min_length);
    const int nb = cfg->num_beams, B = st->beams;
    const int64_t V = m->vocab, T = st->max_len;
    const bool beam = nb > 1;
    const int K = 2 * nb > (1 + cfg->n_eos) * nb ? 2 * nb : (1 + cfg->n_eos) * nb;
    dc_status status = DC_OK;

    float *logits = malloc((size_t)(B * V) * sizeof(float));
    /* sampling scratch (probabilities, 3 x V work floats, V ints), only when sampling */
    float *tmp = cfg->do_sample ? malloc((size_t)(4 * V) * sizeof(float)) : NULL;
    int32_t *itmp = cfg->do_sample ? malloc((size_t)V * sizeof(int32_t)) : NULL;
    int32_t *seq = malloc((size_t)(B * max_length + 1) * sizeof(int32_t));
    int32_t *seq2 = malloc((size_t)(B * max_length + 1) * sizeof(int32_t));
    int32_t *tokens = malloc((size_t)B * sizeof(int32_t));
    float *bscore = malloc((size_t)B * sizeof(float)), *bscore2 = malloc((size_t)B * sizeof(float));
    float *kval = malloc((size_t)K * sizeof(float));
    int64_t *kidx = malloc((size_t)K * sizeof(int64_t));
    int32_t *bidx = malloc((size_t)B * sizeof(int32_t)), *btok = malloc((size_t)B * sizeof(int32_t));
    hyps h = {.num_beams = nb, .max_len = max_length, .length_penalty = cfg->length_penalty, .worst = 1e9,
              .early = cfg->early_stopping, .max_length = max_length};
    h.score = malloc((size_t)(nb + 1) * sizeof(double));
    h.len = malloc((size_t)(nb + 1) * sizeof(int));
    h.tokens = malloc((size_t)(nb + 1) * (size_t)max_length * sizeof(int32_t));
    if (!logits || (cfg->do_sample && (!tmp || !itmp)) || !seq || !seq2 || !tokens || !bscore || !bscore2 || !kval || !kidx || !bidx || !btok ||
        !h.score || !h.len || !h.tokens) {
        status = dc_set_error(DC_ERR_OOM, "generate: out of memory");
        goto done;
    }
    dc_rng rng;
    dc_rng_seed(&rng, cfg->seed);

    for (int b = 0; b < B; b++) {
        seq[b * max_length] = cfg->decoder_start_token_id;
        bscore[b] = b == 0 ? 0.0f : -1e9f;
    }
    int cur_len = 1;
    bool finished = false, hyps_finished = false;
    while (!finished) {
        int64_t pos = cur_len - 1;
        if (pos >= T) {
            status = dc_set_error(DC_ERR_STATE, "generate: cache of %lld positions exceeded", (long long)T);
            goto done;
        }
        for (int b = 0; b < B; b++) {
            tokens[b] = seq[b * max_length + pos];
            st->slot[b * T + pos] = b; /* this step's keys/values go to the row's own slot */
        }
        m->step(m, st, tokens, pos, logits);

        if (beam) {
            for (int b = 0; b < B; b++) {
                float *s = logits + b * V;
                log_softmax_row(s, V);
                process_row(cfg, s, V, seq + b * max_length, cur_len, max_length, min_length);
                for (int64_t j = 0; j < V; j++) s[j] += bscore[b];
            }
            topk(logits, B * V, K, kval, kidx);
            /* BeamSearchScorer.process */
            int filled = 0;
            const int proc_len = cur_len + 1;
            for (int r = 0; r < K && filled < nb; r++) {
                int32_t tok = (int32_t)(kidx[r] % V);
                int32_t from = (int32_t)(kidx[r] / V);
                if (is_eos(cfg, tok)) {
                    if (r >= nb) continue;
                    hyps_add(&h, seq + from * max_length, cur_len, (double)kval[r], proc_len - 1);
                } else {
                    bscore2[filled] = kval[r];
                    btok[filled] = tok;
                    bidx[filled] = from;
                    filled++;
                }
            }
            if (filled < nb) {
                status = dc_set_error(DC_ERR_STATE, "generate: fewer than %d non-eos candidates", nb);
                goto done;
            }
            hyps_finished = hyps_finished || hyps_done(&h, (double)kval[0], proc_len);
            /* reorder: rows, scores and cache slots follow their parent beam */
            for (int b = 0; b < B; b++) {
                memcpy(seq2 + b * max_length, seq + bidx[b] * max_length, (size_t)cur_len * sizeof(int32_t));
                seq2[b * max_length + cur_len] = btok[b];
                memcpy(st->slot_tmp + b * T, st->slot + (int64_t)bidx[b] * T, (size_t)cur_len * sizeof(int32_t));
            }
            int32_t *ts = seq;
            seq = seq2;
            seq2 = ts;
            ts = st->slot;
            st->slot = st->slot_tmp;
            st->slot_tmp = ts;
            float *tf = bscore;
            bscore = bscore2;
            bscore2 = tf;
            cur_len++;
            finished = hyps_finished || cur_len >= max_length;
        } else {
            float *s = logits;
            process_row(cfg, s, V, seq, cur_len, max_length, min_length);
            int32_t next;
            if (cfg->do_sample) {
                next = sample_row(cfg, s, V, tmp, tmp + V, itmp, &rng);
            } else {
                int64_t best = 0;
                for (int64_t j = 1; j < V; j++)
                    if (s[j] > s[best]) best = j; /* first maximum, as torch.argmax */
                next = (int32_t)best;
            }
            seq[cur_len++] = next;
            finished = is_eos(cfg, next) || cur_len >= max_length;
        }
        if (progress && !progress(pctx, cur_len - 1, max_length - 1)) {
            status = dc_set_error(DC_ERR_INTERRUPTED, "generate: stopped after %d tokens", cur_len - 1);
            goto done;
        }
    }

    int32_t *result;
    int64_t n;
    if (beam) {
        /* finalize: running beams join the hypotheses unless already done */
        if (!hyps_finished)
            for (int b = 0; b < nb; b++) hyps_add(&h, seq + b * max_length, cur_len, (double)bscore[b], cur_len - 1);
        int best = 0;
        for (int i = 1; i < h.n; i++)
            if (h.score[i] >= h.score[best]) best = i; /* sorted(...).pop(): the last among equals */
        int len = h.len[best];
        n = len < max_length ? len + 1 : len;
        result = malloc((size_t)n * sizeof(int32_t));
        if (!result) {
            status = dc_set_error(DC_ERR_OOM, "generate: out of memory");
            goto done;
        }
        memcpy(result, h.tokens + (int64_t)best * max_length, (size_t)len * sizeof(int32_t));
        if (n > len) result[len] = cfg->n_eos ? cfg->eos_token_id[0] : cfg->pad_token_id;
    } else {
        n = cur_len;
        result = malloc((size_t)n * sizeof(int32_t));
        if (!result) {
            status = dc_set_error(DC_ERR_OOM, "generate: out of memory");
            goto done;
        }
        memcpy(result, seq, (size_t)n * sizeof(int32_t));
    }
    *out = result;
    *n_out = n;
done:
    free(logits);
    free(tmp);
    free(itmp);
    free(seq);
    free(seq2);
    free(tokens);
    free(bscore);
    free(bscore2);
    free(kval);
    free(kidx);
    free(bidx);
    free(btok);
    free(h.score);
    free(h.len);
    free(h.tokens);
    return status;
}
