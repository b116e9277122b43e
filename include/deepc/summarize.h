/* deepc/summarize.h: text summarization. Abstractive, with encoder-decoder transformers loaded
 * from Hugging Face model folders (BART / DistilBART, T5 v1.0 and v1.1 / Flan-T5) and decoded
 * with the same beam search, greedy search or sampling as transformers' generate(); and
 * extractive (TextRank over sentences), which needs no model at all.
 *
 *   dc_s2s_model *m = dc_s2s_load("models/distilbart-cnn-12-6");   // config.json, safetensors,
 *   if (!m) { fprintf(stderr, "%s\n", dc_last_error()); ... }       // tokenizer files
 *   dc_summarize_options o = dc_summarize_options_default();        // the model's own settings
 *   dc_summary s;
 *   if (dc_summarize(m, text, &o, &s) == DC_OK) puts(s.text);
 *   dc_summary_free(&s);
 *   dc_s2s_free(m);
 *
 *   char *x = dc_summarize_extractive(text, (size_t)-1, 3, NULL);   // no model: top 3 sentences
 *
 * Numerics: the model computes in F32 (F16/BF16 weights are widened at load) exactly the
 * functions transformers' BartForConditionalGeneration / T5ForConditionalGeneration compute;
 * logits agree with PyTorch's to about 1e-6 relative. The encoder runs once per input; the
 * decoder keeps a self-attention cache per beam and one cross-attention K/V per layer shared
 * by all beams, and runs one step for all beams at once.
 */
#ifndef DEEPC_SUMMARIZE_H
#define DEEPC_SUMMARIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "deepc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- models ----------------------------------------------------------------------------- */

typedef struct dc_s2s_model dc_s2s_model;

/* Loads a Hugging Face folder: config.json (model_type "bart" or "t5"; also mbart-free
 * BART variants such as distilbart), model.safetensors or model.safetensors.index.json with
 * shards (F32/F16/BF16), generation_config.json if present, and the tokenizer
 * (tokenizer.json, vocab.json + merges.txt, or spiece.model) unless `load_tokenizer` is false.
 * Errors name the folder and what is missing or wrong ("... has no decoder weights"). */
dc_s2s_model *dc_s2s_load(const char *dir, bool load_tokenizer);
void dc_s2s_free(dc_s2s_model *m);

const char *dc_s2s_arch(const dc_s2s_model *m);          /* "bart" or "t5" */
int64_t dc_s2s_vocab_size(const dc_s2s_model *m);        /* rows of the logits */
int64_t dc_s2s_d_model(const dc_s2s_model *m);
int64_t dc_s2s_max_source_length(const dc_s2s_model *m); /* BART: max_position_embeddings; T5: n_positions or 512 */
struct dc_tokenizer *dc_s2s_tokenizer(dc_s2s_model *m);  /* NULL if not loaded */

/* The encoder's last hidden state for ids[0..n): out [n, d_model]. */
dc_status dc_s2s_encode(dc_s2s_model *m, const int32_t *src, int64_t n_src, float *out);
/* Teacher-forced decoder logits: logits [n_dec, vocab] for decoder inputs dec[0..n_dec)
 * given the source (what model(input_ids=src, decoder_input_ids=dec).logits is). The
 * decoder runs one token at a time through its caches, as generation does. */
dc_status dc_s2s_decoder_logits(dc_s2s_model *m, const int32_t *src, int64_t n_src,
                                const int32_t *dec, int64_t n_dec, float *logits);

/* ---- generation (transformers' GenerationConfig fields and defaults) ------------------------ */

#define DC_GEN_MAX_EOS 4

typedef enum dc_early_stopping {
    DC_EARLY_STOP_FALSE = 0, /* stop when no running beam can beat the worst kept one (heuristic) */
    DC_EARLY_STOP_TRUE = 1,  /* stop as soon as num_beams hypotheses are finished */
    DC_EARLY_STOP_NEVER = 2, /* canonical beam search: stop when nothing can get better */
} dc_early_stopping;

typedef struct dc_generate_config {
    int max_length;        /* decoder length, counting decoder_start_token_id (HF: 20) */
    int min_length;        /* (HF: 0) */
    int max_new_tokens;    /* -1: unset; else overrides max_length (= max_new_tokens + 1) */
    int min_new_tokens;    /* -1: unset; else overrides min_length */
    int num_beams;         /* 1: greedy or sampling */
    float length_penalty;  /* score = sum logprobs / generated_len ^ length_penalty (HF: 1.0) */
    dc_early_stopping early_stopping;
    int no_repeat_ngram_size;
    float repetition_penalty; /* 1.0: off (HF's RepetitionPenaltyLogitsProcessor) */
    int32_t decoder_start_token_id;
    int32_t bos_token_id;          /* -1: none */
    int32_t forced_bos_token_id;   /* -1: none */
    int32_t forced_eos_token_id;   /* -1: none */
    int32_t pad_token_id;          /* -1: none */
    int n_eos;
    int32_t eos_token_id[DC_GEN_MAX_EOS];
    bool do_sample;
    float temperature;     /* sampling (HF: 1.0) */
    int top_k;             /* sampling (HF: 50; 0: off) */
    float top_p;           /* sampling (HF: 1.0: off) */
    uint64_t seed;         /* sampling RNG seed */
} dc_generate_config;

/* transformers' GenerationConfig() defaults (token ids -1). */
dc_generate_config dc_generate_config_default(void);
/* What generate() would use for this model: the defaults, then generation_config.json (or,
 * without one, the generation keys of config.json, as GenerationConfig.from_model_config),
 * then config.json's task_specific_params[task] when task is not NULL (as pipeline(task)). */
dc_status dc_s2s_generation_config(const dc_s2s_model *m, const char *task, dc_generate_config *out);

/* Called after each decoding step (step = tokens generated so far, max = the most there can be).
 * Return false to stop (DC_ERR_INTERRUPTED). */
typedef bool (*dc_generate_progress_fn)(void *ctx, int step, int max);

/* Generates from src[0..n_src) (already tokenized, special tokens included). *out receives a
 * malloc'd array of *n_out ids (the decoder start token first, exactly generate()'s output
 * row for batch 1); free it. */
dc_status dc_s2s_generate(dc_s2s_model *m, const int32_t *src, int64_t n_src,
                          const dc_generate_config *cfg, dc_generate_progress_fn progress,
                          void *progress_ctx, int32_t **out, int64_t *n_out);

/* ---- the summarization pipeline ------------------------------------------------------------ */

typedef struct dc_summarize_options {
    dc_generate_config gen; /* filled by dc_summarize_options_for(model); edit to override */
    bool chunk;             /* long inputs: summarize overlapping chunks and join (else truncate) */
    int chunk_overlap;      /* tokens shared by consecutive chunks (default 64) */
    FILE *warn;             /* where warnings go (truncation); NULL: stderr */
    dc_generate_progress_fn progress;
    void *progress_ctx;
} dc_summarize_options;

/* The pipeline's settings for this model: dc_s2s_generation_config(m, "summarization"). */
dc_status dc_summarize_options_for(const dc_s2s_model *m, dc_summarize_options *out);

typedef struct dc_summary {
    char *text;            /* malloc'd */
    int64_t tokens;        /* tokens generated (all chunks, without decoder start / eos) */
    int64_t source_tokens; /* source tokens after the prefix ("summarize: " for T5) */
    int chunks;            /* 1 unless chunked */
    bool truncated;
    double seconds;
} dc_summary;

/* pipeline("summarization")(text): prefix (config's or task_specific_params', T5: "summarize: "),
 * tokenize, generate, decode skipping special tokens. Empty or binary text: DC_ERR_ARG. */
dc_status dc_summarize(dc_s2s_model *m, const char *text, const dc_summarize_options *opt,
                       dc_summary *out);
void dc_summary_free(dc_summary *s);

/* ---- extractive summarization (no model) ------------------------------------------------- */

typedef struct dc_extractive_options {
    int sentences;        /* how many sentences to keep; <= 0: about a fifth, 1..5 */
    double damping;       /* PageRank damping (0.85) */
    int max_iter;         /* power iterations (100) */
    double tol;           /* convergence (1e-6) */
} dc_extractive_options;

dc_extractive_options dc_extractive_options_default(void);

/* Splits text into sentences, ranks them with TextRank (PageRank over a graph whose edge
 * weights are sentence similarities: shared content words / (log|a| + log|b|), as Mihalcea &
 * Tarau 2004) and returns the top `n` in document order, joined by spaces (malloc'd).
 * n <= 0: the options' default. Empty or binary text: NULL with DC_ERR_ARG. */
char *dc_summarize_extractive(const char *text, size_t len, int n, const dc_extractive_options *opt);

/* Splits text into sentences (for tests): *starts and *ends are malloc'd byte offsets; returns the
 * count, -1 on error. */
int64_t dc_split_sentences(const char *text, size_t len, size_t **starts, size_t **ends);

/* True if the bytes look like binary data (NUL bytes, or invalid UTF-8 / control bytes
 * over 1% of the text). */
bool dc_text_is_binary(const char *text, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_SUMMARIZE_H */
