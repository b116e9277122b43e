/* extractive.c: summarization without a model. TextRank (Mihalcea & Tarau, 2004): sentences
 * are the nodes of a graph whose edge weights are their similarity,
 *     sim(a, b) = |content words in both| / (log |a| + log |b|)
 * (|a| = content words of a, stop words removed, lower-cased); PageRank with damping d over
 * the weighted graph,
 *     S(i) = (1 - d) + d * sum_j  w_ji / (sum_k w_jk) * S(j),
 * iterated until the scores change by less than tol; the top n sentences are returned in
 * document order. Sentences are split at . ! ? (followed by space, a closing quote or bracket,
 * or the end) except after common abbreviations and single initials, and at blank lines.
 * Deterministic: ties keep the earlier sentence. */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "summarize_internal.h"

dc_extractive_options dc_extractive_options_default(void)
{
    dc_extractive_options o = {.sentences = 0, .damping = 0.85, .max_iter = 100, .tol = 1e-6};
    return o;
}

static const char *const ABBREV[] = {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e",
                                     "inc", "ltd", "co", "corp", "no", "fig", "gen", "col", "lt", "sgt", "capt",
                                     "rev", "hon", "mt", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
                                     "sept", "oct", "nov", "dec", "u.s", "u.k", "a.m", "p.m"};

static bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

/* true if the word ending at text[i] (the '.') is an abbreviation or a single initial */
static bool abbreviation_before(const char *text, size_t i)
{
    size_t j = i;
    while (j > 0 && !is_space(text[j - 1]) && text[j - 1] != '(' && text[j - 1] != '"') j--;
    size_t n = i - j;
    if (n == 0) return false;
    if (n == 1 && isalpha((unsigned char)text[j])) return true; /* "J. Smith" */
    char w[16];
    if (n >= sizeof w) return false;
    for (size_t k = 0; k < n; k++) w[k] = (char)tolower((unsigned char)text[j + k]);
    w[n] = '\0';
    for (size_t k = 0; k < sizeof ABBREV / sizeof *ABBREV; k++)
        if (strcmp(w, ABBREV[k]) == 0) return true;
    return false;
}

int64_t dc_split_sentences(const char *text, size_t len, size_t **starts_out, size_t **ends_out)
{
    size_t cap = 64, n = 0;
    size_t *st = malloc(cap * sizeof *st), *en = malloc(cap * sizeof *en);
    if (!st || !en) goto oom;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_space(text[i])) i++;
        if (i >= len) break;
        size_t s = i, e = len;
        while (i < len) {
            char c = text[i];
            if (c == '\n' && i + 1 < len) {
                /* a blank line ends a sentence (paragraphs, headings) */
                size_t k = i + 1;
                while (k < len && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r')) k++;
                if (k < len && text[k] == '\n') {
                    e = i;
                    break;
                }
            }
            if (c == '.' || c == '!' || c == '?') {
                size_t k = i + 1;
                while (k < len && (text[k] == '.' || text[k] == '!' || text[k] == '?')) k++;
                while (k < len && (text[k] == '"' || text[k] == '\'' || text[k] == ')' || text[k] == ']')) k++;
                /* closing curly quotes (U+201D, U+2019) */
                while (k + 2 < len + 0 && (unsigned char)text[k] == 0xE2 && (unsigned char)text[k + 1] == 0x80 &&
                       ((unsigned char)text[k + 2] == 0x9D || (unsigned char)text[k + 2] == 0x99))
                    k += 3;
                if ((k >= len || is_space(text[k])) && !(c == '.' && k == i + 1 && abbreviation_before(text, i))) {
                    e = k;
                    i = k;
                    break;
                }
                i = k;
                continue;
            }
            i++;
        }
        if (e > len) e = len;
        if (i < e) i = e;
        /* trim trailing space */
        size_t ee = e;
        while (ee > s && is_space(text[ee - 1])) ee--;
        if (ee > s) {
            if (n == cap) {
                cap *= 2;
                size_t *a = realloc(st, cap * sizeof *st);
                if (!a) goto oom;
                st = a;
                size_t *b = realloc(en, cap * sizeof *en);
                if (!b) goto oom;
                en = b;
            }
            st[n] = s;
            en[n] = ee;
            n++;
        }
    }
    *starts_out = st;
    *ends_out = en;
    return (int64_t)n;
oom:
    free(st);
    free(en);
    dc_set_error(DC_ERR_OOM, "summarize: out of memory splitting sentences");
    return -1;
}

static const char *const STOP[] = {
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do",
    "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he",
    "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its",
    "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once",
    "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "said", "same", "she", "should", "so",
    "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they",
    "this", "those", "through", "to", "too", "under", "until", "up", "upon", "very", "was", "we", "were", "what",
    "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours",
    "yourself", "yourselves", "one", "may", "might", "must", "shall", "s", "t"};

static bool is_stop(const char *w, size_t n)
{
    for (size_t k = 0; k < sizeof STOP / sizeof *STOP; k++)
        if (strlen(STOP[k]) == n && memcmp(STOP[k], w, n) == 0) return true;
    return false;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorted unique hashes of the sentence's content words. */
static int64_t words_of(const char *s, size_t n, uint64_t *out)
{
    int64_t k = 0;
    char w[64];
    size_t i = 0;
    while (i < n) {
        while (i < n && !(isalnum((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80)) i++;
        size_t wl = 0;
        while (i < n && (isalnum((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80 || s[i] == '\'')) {
            if (wl < sizeof w) w[wl++] = (char)tolower((unsigned char)s[i]);
            i++;
        }
        while (wl > 0 && w[wl - 1] == '\'') wl--;
        if (wl >= 2 && wl > 1 && w[wl - 2] == '\'' && w[wl - 1] == 's') wl -= 2; /* possessive */
        if (wl == 0 || is_stop(w, wl)) continue;
        uint64_t h = 1469598103934665603ull; /* FNV-1a */
        for (size_t c = 0; c < wl; c++) h = (h ^ (unsigned char)w[c]) * 1099511628211ull;
        out[k++] = h;
    }
    qsort(out, (size_t)k, sizeof *out, cmp_u64);
    int64_t u = 0;
    for (int64_t j = 0; j < k; j++)
        if (u == 0 || out[u - 1] != out[j]) out[u++] = out[j];
    return u;
}

char *dc_summarize_extractive(const char *text, size_t len, int n, const dc_extractive_options *opt)
{
    dc_extractive_options o = opt ? *opt : dc_extractive_options_default();
    if (!text) {
        dc_set_error(DC_ERR_ARG, "summarize: NULL text");
        return NULL;
    }
    if (len == (size_t)-1) len = strlen(text);
    if (dc_text_is_binary(text, len)) {
        dc_set_error(DC_ERR_ARG, "summarize: the input looks like binary data, not text");
        return NULL;
    }
    size_t *st = NULL, *en = NULL;
    int64_t ns = dc_split_sentences(text, len, &st, &en);
    if (ns < 0) return NULL;
    if (ns == 0) {
        free(st);
        free(en);
        dc_set_error(DC_ERR_ARG, "summarize: the input text is empty");
        return NULL;
    }
    if (ns > 20000) {
        free(st);
        free(en);
        dc_set_error(DC_ERR_ARG, "summarize: %lld sentences is more than the extractive ranker takes (20000): "
                     "split the text", (long long)ns);
        return NULL;
    }
    if (n <= 0) n = o.sentences;
    if (n <= 0) {
        n = (int)((ns + 2) / 5);
        n = n < 1 ? 1 : n > 5 ? 5 : n;
    }
    if (n > ns) n = (int)ns;
    char *result = NULL;
    int64_t *wstart = malloc((size_t)(ns + 1) * sizeof *wstart);
    uint64_t *words = malloc((len + 1) * sizeof *words); /* at most one word per byte */
    double *W = calloc((size_t)(ns * ns), sizeof *W), *outw = calloc((size_t)ns, sizeof *outw);
    double *score = malloc((size_t)ns * sizeof *score), *next = malloc((size_t)ns * sizeof *next);
    int64_t *order = malloc((size_t)ns * sizeof *order);
    char *keep = calloc((size_t)ns, 1);
    if (!wstart || !words || !W || !outw || !score || !next || !order || !keep) {
        dc_set_error(DC_ERR_OOM, "summarize: out of memory ranking %lld sentences", (long long)ns);
        goto done;
    }
    wstart[0] = 0;
    for (int64_t i = 0; i < ns; i++) wstart[i + 1] = wstart[i] + words_of(text + st[i], en[i] - st[i], words + wstart[i]);
    for (int64_t i = 0; i < ns; i++)
        for (int64_t j = i + 1; j < ns; j++) {
            int64_t a = wstart[i], ae = wstart[i + 1], b = wstart[j], be = wstart[j + 1];
            int64_t na = ae - a, nb = be - b, common = 0;
            while (a < ae && b < be) {
                if (words[a] == words[b]) {
                    common++;
                    a++;
                    b++;
                } else if (words[a] < words[b]) {
                    a++;
                } else {
                    b++;
                }
            }
            double den = log((double)na) + log((double)nb);
            double w = common > 0 && den > 0 ? (double)common / den : 0.0;
            W[i * ns + j] = W[j * ns + i] = w;
        }
    for (int64_t j = 0; j < ns; j++)
        for (int64_t k = 0; k < ns; k++) outw[j] += W[j * ns + k];
    for (int64_t i = 0; i < ns; i++) score[i] = 1.0;
    for (int it = 0; it < (o.max_iter > 0 ? o.max_iter : 100); it++) {
        double delta = 0;
        for (int64_t i = 0; i < ns; i++) {
            double s = 0;
            for (int64_t j = 0; j < ns; j++)
                if (W[j * ns + i] > 0) s += W[j * ns + i] / outw[j] * score[j];
            next[i] = (1.0 - o.damping) + o.damping * s;
            delta = fmax(delta, fabs(next[i] - score[i]));
        }
        memcpy(score, next, (size_t)ns * sizeof *score);
        if (delta < o.tol) break;
    }
    /* top n by score; ties keep the earlier sentence */
    for (int64_t i = 0; i < ns; i++) order[i] = i;
    for (int k = 0; k < n; k++) {
        int64_t best = k;
        for (int64_t i = k + 1; i < ns; i++)
            if (score[order[i]] > score[order[best]] ||
                (score[order[i]] == score[order[best]] && order[i] < order[best]))
                best = i;
        int64_t t = order[k];
        order[k] = order[best];
        order[best] = t;
        keep[order[k]] = 1;
    }
    size_t total = 1;
    for (int64_t i = 0; i < ns; i++)
        if (keep[i]) total += en[i] - st[i] + 1;
    result = malloc(total);
    if (!result) {
        dc_set_error(DC_ERR_OOM, "summarize: out of memory");
        goto done;
    }
    size_t p = 0;
    for (int64_t i = 0; i < ns; i++) {
        if (!keep[i]) continue;
        if (p) result[p++] = ' ';
        /* newlines inside a sentence (wrapped text) become spaces */
        for (size_t c = st[i]; c < en[i]; c++) {
            char ch = text[c];
            if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
            if (ch == ' ' && p && result[p - 1] == ' ') continue;
            result[p++] = ch;
        }
    }
    result[p] = '\0';
done:
    free(st);
    free(en);
    free(wstart);
    free(words);
    free(W);
    free(outw);
    free(score);
    free(next);
    free(order);
    free(keep);
    return result;
}
