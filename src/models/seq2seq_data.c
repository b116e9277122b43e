/* seq2seq_data.c: the data of deepc/seq2seq.h: the seed's SyntheticDataset (random float
 * sequences whose target is the reversal), the dates task (dates written out in words ->
 * ISO form, a small translation problem with its own source and target vocabularies), and the
 * collate function that pads a batch and records each row's length. */
#include <math.h>

#include "core/internal.h"
#include "deepc/seq2seq.h"

const char *dc_s2s_task_name(dc_s2s_task task) { return task == DC_S2S_DATES ? "dates" : "reverse"; }

int dc_s2s_task_parse(const char *name)
{
    if (!name) return -1;
    if (!strcmp(name, "reverse")) return DC_S2S_REVERSE;
    if (!strcmp(name, "dates")) return DC_S2S_DATES;
    return -1;
}

/* ---------------------------------------------------------------------------------------
 * Vocabularies of the dates task
 * ------------------------------------------------------------------------------------- */

static const char *const MONTHS[12] = {"january", "february", "march", "april", "may", "june",
                                       "july", "august", "september", "october", "november", "december"};
static const char *const ONES[20] = {NULL, "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                                     "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                                     "seventeen", "eighteen", "nineteen"};
static const char *const TENS[10] = {NULL, NULL, "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
static const char *const ORDINALS[20] = {NULL, "first", "second", "third", "fourth", "fifth", "sixth", "seventh",
                                         "eighth", "ninth", "tenth", "eleventh", "twelfth", "thirteenth",
                                         "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth",
                                         "nineteenth"};

/* source vocabulary: PAD, SOS, EOS (unused in sources, kept so both vocabularies share the
 * special ids), then the words */
#define SRC_WORDS_MAX 96
static const char *src_words[SRC_WORDS_MAX];
static int n_src_words;

static void add_word(const char *w)
{
    for (int i = 0; i < n_src_words; i++)
        if (!strcmp(src_words[i], w)) return;
    src_words[n_src_words++] = w;
}

static void build_src_vocab(void)
{
    if (n_src_words) return;
    add_word("<pad>");
    add_word("<sos>");
    add_word("<eos>");
    add_word("the");
    add_word("of");
    for (int i = 0; i < 12; i++) add_word(MONTHS[i]);
    for (int i = 1; i < 20; i++) add_word(ONES[i]);
    for (int i = 2; i < 10; i++) add_word(TENS[i]);
    for (int i = 1; i < 20; i++) add_word(ORDINALS[i]);
    add_word("twentieth");
    add_word("thirtieth");
    add_word("hundred");
    add_word("thousand");
    add_word("oh");
}

/* target vocabulary: PAD, SOS, EOS, '0'..'9', '-' */
static const char *const TGT_SYMBOLS[14] = {"<pad>", "<sos>", "<eos>", "0", "1", "2", "3", "4",
                                            "5", "6", "7", "8", "9", "-"};

int64_t dc_s2s_src_vocab(dc_s2s_task task)
{
    if (task != DC_S2S_DATES) return 0;
    build_src_vocab();
    return n_src_words;
}

int64_t dc_s2s_tgt_vocab(dc_s2s_task task) { return task == DC_S2S_DATES ? 14 : 0; }

const char *dc_s2s_src_word(int64_t token)
{
    build_src_vocab();
    return token >= 0 && token < n_src_words ? src_words[token] : NULL;
}

const char *dc_s2s_tgt_symbol(int64_t token) { return token >= 0 && token < 14 ? TGT_SYMBOLS[token] : NULL; }

int64_t dc_s2s_src_token(const char *word)
{
    build_src_vocab();
    for (int i = 3; i < n_src_words; i++) /* specials cannot be typed */
        if (!strcmp(src_words[i], word)) return i;
    return -1;
}

/* ---------------------------------------------------------------------------------------
 * Dates in words
 * ------------------------------------------------------------------------------------- */

static int days_in_month(int y, int m)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

typedef struct words {
    const char *w[16];
    int n;
} words;

static void push(words *ws, const char *w) { ws->w[ws->n++] = w; }

static void cardinal(words *ws, int n) /* 1..99 */
{
    if (n < 20) {
        push(ws, ONES[n]);
    } else {
        push(ws, TENS[n / 10]);
        if (n % 10) push(ws, ONES[n % 10]);
    }
}

static void ordinal(words *ws, int d) /* 1..31 */
{
    if (d < 20) push(ws, ORDINALS[d]);
    else if (d == 20) push(ws, "twentieth");
    else if (d == 30) push(ws, "thirtieth");
    else {
        push(ws, TENS[d / 10]);
        push(ws, ORDINALS[d % 10]);
    }
}

/* year_style: 0 or 1 picks between the two spoken forms where a year has two */
static void year_words(words *ws, int y, int year_style)
{
    int yy = y % 100;
    if (y < 2000) {
        push(ws, "nineteen");
        if (yy == 0) push(ws, "hundred");
        else if (yy < 10) {
            push(ws, "oh");
            push(ws, ONES[yy]);
        } else cardinal(ws, yy);
    } else if (yy < 10 || year_style == 0) {
        push(ws, "two");
        push(ws, "thousand");
        if (yy) cardinal(ws, yy);
    } else {
        push(ws, "twenty");
        cardinal(ws, yy);
    }
}

/* form 0: "march twenty first <year>", 1: "the twenty first of march <year>",
 * 2: "twenty first march <year>" */
static void date_words(words *ws, int y, int m, int d, int form, int year_style)
{
    ws->n = 0;
    if (form == 0) {
        push(ws, MONTHS[m - 1]);
        ordinal(ws, d);
    } else if (form == 1) {
        push(ws, "the");
        ordinal(ws, d);
        push(ws, "of");
        push(ws, MONTHS[m - 1]);
    } else {
        ordinal(ws, d);
        push(ws, MONTHS[m - 1]);
    }
    year_words(ws, y, year_style);
}

static void iso_tokens(int y, int m, int d, int64_t *out)
{
    char s[48];
    snprintf(s, sizeof s, "%04d-%02d-%02d", y, m, d);
    for (int i = 0; i < 10; i++) out[i] = s[i] == '-' ? 13 : 3 + (s[i] - '0');
    out[10] = DC_S2S_EOS;
}

/* ---------------------------------------------------------------------------------------
 * Datasets
 * ------------------------------------------------------------------------------------- */

void dc_s2s_dataset_free(dc_s2s_dataset *d)
{
    if (!d) return;
    free(d->src_off);
    free(d->tgt_off);
    free(d->src_f);
    free(d->tgt_f);
    free(d->src_t);
    free(d->tgt_t);
    free(d);
}

int64_t dc_s2s_src_len(const dc_s2s_dataset *d, int64_t i) { return d->src_off[i + 1] - d->src_off[i]; }
int64_t dc_s2s_tgt_len(const dc_s2s_dataset *d, int64_t i) { return d->tgt_off[i + 1] - d->tgt_off[i]; }

dc_s2s_dataset *dc_s2s_reverse_dataset(int64_t n, int min_len, int max_len, uint64_t seed)
{
    if (n < 1 || min_len < 1 || max_len < min_len) {
        dc_set_error(DC_ERR_ARG, "reverse dataset: need n >= 1 and 1 <= min_len <= max_len (got n %lld, lengths %d..%d)",
                     (long long)n, min_len, max_len);
        return NULL;
    }
    dc_s2s_dataset *d = dc__calloc(1, sizeof *d);
    if (!d) return NULL;
    d->task = DC_S2S_REVERSE;
    d->n = n;
    d->src_off = dc__malloc((size_t)(n + 1) * sizeof(int64_t));
    d->tgt_off = dc__malloc((size_t)(n + 1) * sizeof(int64_t));
    d->src_f = dc__malloc((size_t)(n * max_len) * sizeof(float));
    d->tgt_f = dc__malloc((size_t)(n * max_len) * sizeof(float));
    if (!d->src_off || !d->tgt_off || !d->src_f || !d->tgt_f) {
        dc_s2s_dataset_free(d);
        return NULL;
    }
    dc_rng rng;
    dc_rng_seed(&rng, seed);
    int64_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t len = min_len + (int64_t)dc_rng_below(&rng, (uint64_t)(max_len - min_len + 1));
        d->src_off[i] = d->tgt_off[i] = off;
        for (int64_t j = 0; j < len; j++) d->src_f[off + j] = dc_rng_uniform_f32(&rng);
        for (int64_t j = 0; j < len; j++) d->tgt_f[off + j] = d->src_f[off + len - 1 - j];
        off += len;
    }
    d->src_off[n] = d->tgt_off[n] = off;
    return d;
}

dc_s2s_dataset *dc_s2s_dates_dataset(int64_t n, uint64_t seed)
{
    if (n < 1) {
        dc_set_error(DC_ERR_ARG, "dates dataset: need n >= 1 (got %lld)", (long long)n);
        return NULL;
    }
    build_src_vocab();
    dc_s2s_dataset *d = dc__calloc(1, sizeof *d);
    if (!d) return NULL;
    d->task = DC_S2S_DATES;
    d->n = n;
    d->src_off = dc__malloc((size_t)(n + 1) * sizeof(int64_t));
    d->tgt_off = dc__malloc((size_t)(n + 1) * sizeof(int64_t));
    d->src_t = dc__malloc((size_t)(n * DC_S2S_DATES_MAX_SRC) * sizeof(int64_t));
    d->tgt_t = dc__malloc((size_t)(n * DC_S2S_DATES_TGT) * sizeof(int64_t));
    if (!d->src_off || !d->tgt_off || !d->src_t || !d->tgt_t) {
        dc_s2s_dataset_free(d);
        return NULL;
    }
    dc_rng rng;
    dc_rng_seed(&rng, seed);
    int64_t off = 0;
    words ws;
    for (int64_t i = 0; i < n; i++) {
        int y = 1900 + (int)dc_rng_below(&rng, 200);
        int m = 1 + (int)dc_rng_below(&rng, 12);
        int day = 1 + (int)dc_rng_below(&rng, (uint64_t)days_in_month(y, m));
        int form = (int)dc_rng_below(&rng, 3), style = (int)dc_rng_below(&rng, 2);
        date_words(&ws, y, m, day, form, style);
        d->src_off[i] = off;
        for (int j = 0; j < ws.n; j++) d->src_t[off + j] = dc_s2s_src_token(ws.w[j]);
        off += ws.n;
        d->tgt_off[i] = i * DC_S2S_DATES_TGT;
        iso_tokens(y, m, day, d->tgt_t + i * DC_S2S_DATES_TGT);
    }
    d->src_off[n] = off;
    d->tgt_off[n] = n * DC_S2S_DATES_TGT;
    return d;
}

/* The ISO form of a date written in words, found by generating every written form (the
 * grammar is small: 73k dates x 6 forms). Returns false if the words are no date. */
bool dc__s2s_dates_parse(const int64_t *src, int64_t len, int64_t *iso_out);
bool dc__s2s_dates_parse(const int64_t *src, int64_t len, int64_t *iso_out)
{
    words ws;
    for (int y = 1900; y < 2100; y++)
        for (int m = 1; m <= 12; m++)
            for (int d = 1; d <= days_in_month(y, m); d++)
                for (int form = 0; form < 3; form++)
                    for (int style = 0; style < 2; style++) {
                        date_words(&ws, y, m, d, form, style);
                        if (ws.n != len) continue;
                        bool same = true;
                        for (int j = 0; j < len && same; j++) same = dc_s2s_src_token(ws.w[j]) == src[j];
                        if (same) {
                            iso_tokens(y, m, d, iso_out);
                            return true;
                        }
                    }
    return false;
}

/* ---------------------------------------------------------------------------------------
 * Collate: pad to the longest row of the batch (pad_sequence), keep the lengths
 * ------------------------------------------------------------------------------------- */

void dc_s2s_batch_free(dc_s2s_batch *b)
{
    if (!b) return;
    dc_tensor_release(b->src);
    dc_tensor_release(b->src_len);
    dc_tensor_release(b->tgt);
    dc_tensor_release(b->mask);
    memset(b, 0, sizeof *b);
}

static dc_tensor *owned_zeros(dc_dtype dtype, int ndim, const int64_t *shape)
{
    dc_tensor *t = dc_zeros(dtype, ndim, shape);
    return t && dc_pool_active() ? dc_tensor_retain(t) : t;
}

dc_status dc_s2s_collate(const dc_s2s_dataset *d, const int64_t *index, int64_t n, dc_s2s_batch *out)
{
    memset(out, 0, sizeof *out);
    if (!d || !index || n < 1) return dc_set_error(DC_ERR_ARG, "s2s collate: empty batch");
    int64_t S = 0, T = 0, real = 0;
    for (int64_t i = 0; i < n; i++) {
        if (index[i] < 0 || index[i] >= d->n)
            return dc_set_error(DC_ERR_ARG, "s2s collate: index %lld outside the dataset of %lld", (long long)index[i],
                                (long long)d->n);
        S = DC_MAX(S, dc_s2s_src_len(d, index[i]));
        T = DC_MAX(T, dc_s2s_tgt_len(d, index[i]));
        real += dc_s2s_tgt_len(d, index[i]);
    }
    out->task = d->task;
    out->B = n, out->S = S, out->T = T, out->n_real = real;
    bool rev = d->task == DC_S2S_REVERSE;
    out->src = rev ? owned_zeros(DC_F32, 3, (int64_t[]){n, S, 1}) : owned_zeros(DC_I64, 2, (int64_t[]){n, S});
    out->src_len = owned_zeros(DC_I64, 1, (int64_t[]){n});
    out->tgt = rev ? owned_zeros(DC_F32, 3, (int64_t[]){T, n, 1}) : owned_zeros(DC_I64, 2, (int64_t[]){T, n});
    out->mask = rev ? owned_zeros(DC_F32, 3, (int64_t[]){T, n, 1}) : NULL;
    if (!out->src || !out->src_len || !out->tgt || (rev && !out->mask)) {
        dc_s2s_batch_free(out);
        return dc_last_status();
    }
    int64_t *lens = dc_data(out->src_len);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = index[i], ls = dc_s2s_src_len(d, k), lt = dc_s2s_tgt_len(d, k);
        lens[i] = ls;
        if (rev) {
            memcpy(dc_data_f32(out->src) + i * S, d->src_f + d->src_off[k], (size_t)ls * sizeof(float));
            float *tg = dc_data_f32(out->tgt), *mk = dc_data_f32(out->mask);
            for (int64_t t = 0; t < lt; t++) {
                tg[t * n + i] = d->tgt_f[d->tgt_off[k] + t];
                mk[t * n + i] = 1.0f;
            }
        } else {
            memcpy((int64_t *)dc_data(out->src) + i * S, d->src_t + d->src_off[k], (size_t)ls * sizeof(int64_t));
            int64_t *tg = dc_data(out->tgt);
            for (int64_t t = 0; t < lt; t++) tg[t * n + i] = d->tgt_t[d->tgt_off[k] + t];
        }
    }
    return DC_OK;
}
