/* deepc/llm.h: causal language models from Hugging Face model folders (GPT-2 and Llama),
 * with a KV cache, HF generate() semantics (greedy, sampling, stop conditions), streaming,
 * next-word prediction, and downloads from the Hugging Face hub.
 *
 * Usage
 * -----
 *   dc_llm *m = dc_llm_load("models/gpt2", NULL);    // folder, or a downloaded repo id
 *   if (!m) { fprintf(stderr, "%s\n", dc_last_error()); return 1; }
 *   dc_generation_config g = dc_llm_generation_config(m);  // generation_config.json defaults
 *   g.max_new_tokens = 50;
 *   int32_t *ids; size_t n;
 *   dc_llm_encode(m, "Once upon a time", &ids, &n);        // adds BOS where the model does
 *   dc_generation out;
 *   dc_llm_generate(m, ids, n, &g, print_piece, NULL, &out); // print_piece gets whole UTF-8
 *   ... out.text, out.ids ...
 *   dc_generation_free(&out); free(ids); dc_llm_free(m);
 *
 * A model folder holds config.json (model_type "gpt2" or "llama" and the sizes),
 * generation_config.json (optional), the weights as model.safetensors or as shards listed in
 * model.safetensors.index.json (F32, F16 or BF16), and tokenizer files (tokenizer.json,
 * vocab.json + merges.txt, or tokenizer.model). The weight matrices are copied out of the
 * mmap'd files into memory backed by 2 MB pages (the decode GEMVs stream them about twice as
 * fast as through the file's 4 KB pages) and the file pages are dropped, so the process holds
 * one copy; F16/BF16 weights are converted to F32 then, or kept in 16 bits with
 * dc_llm_options.keep_16bit (half the memory; the arithmetic is still F32 and gives the same
 * numbers). All compute is F32, in the order transformers computes it, so logits match
 * LlamaForCausalLM / GPT2LMHeadModel to about 1e-5.
 *
 * Threads: OpenMP, dc_set_num_threads. A dc_llm is not thread-safe (it owns its KV cache and
 * scratch buffers, all allocated at load; nothing is allocated per token).
 */
#ifndef DEEPC_LLM_H
#define DEEPC_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "deepc/core.h"
#include "deepc/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_llm dc_llm;

typedef enum dc_llm_arch { DC_LLM_GPT2 = 0, DC_LLM_LLAMA } dc_llm_arch;

/* The model's hyperparameters, as read from config.json. */
typedef struct dc_llm_config {
    dc_llm_arch arch;
    char model_type[32];
    int64_t vocab_size, hidden_size, n_layers, n_heads, n_kv_heads, head_dim, intermediate_size;
    int64_t max_positions;     /* n_positions / max_position_embeddings */
    double norm_eps;           /* layer_norm_epsilon / rms_norm_eps */
    double rope_theta;         /* llama */
    bool tie_word_embeddings;
    bool attention_bias, mlp_bias; /* llama */
    int32_t bos_id, pad_id;    /* -1 when absent */
    int32_t eos_ids[8];
    int n_eos;
    dc_dtype weight_dtype;     /* of the embedding as stored */
    int64_t n_params;          /* parameter elements (a tied head counted once) */
} dc_llm_config;

typedef struct dc_llm_options {
    bool keep_16bit;      /* keep F16/BF16 weights in 16 bits (converted as they are used) */
    int64_t max_context;  /* KV cache positions; 0: the model's max_positions, at most 4096 */
} dc_llm_options;

/* Loads a model folder, or a repo id ("org/name") downloaded by dc_hf_download into the
 * cache. opt may be NULL. Errors (NULL): an unknown model_type (listing the supported ones), a
 * missing or mis-shaped tensor (named), unreadable files. */
dc_llm *dc_llm_load(const char *path, const dc_llm_options *opt);
void dc_llm_free(dc_llm *m);
const dc_llm_config *dc_llm_get_config(const dc_llm *m);
/* The model's tokenizer (owned by the model). */
dc_tokenizer *dc_llm_tokenizer(dc_llm *m);
/* The folder the model was loaded from. */
const char *dc_llm_path(const dc_llm *m);
/* Positions the KV cache holds. */
int64_t dc_llm_context(const dc_llm *m);

/* ---- the forward pass ----------------------------------------------------------------- */
/* Positions currently in the KV cache. */
int64_t dc_llm_cache_len(const dc_llm *m);
/* Drops cached positions from n on (n = 0 empties the cache). */
dc_status dc_llm_truncate(dc_llm *m, int64_t n);
/* Runs ids[0..n) at positions cache_len.. (appending them to the cache). Returns the logits of
 * the last of them (vocab_size floats owned by the model, valid until the next call), or NULL
 * with an error (an id outside the vocabulary, the cache full). all_logits, when not NULL,
 * receives n x vocab_size logits, one row per id. */
const float *dc_llm_forward(dc_llm *m, const int32_t *ids, int64_t n, float *all_logits);

/* ---- text ------------------------------------------------------------------------------- */
/* Encodes a prompt as the model's tokenizer does with add_special_tokens (Llama: <s> first).
 * An empty prompt becomes [bos] when the model has a BOS token (as generate() starts), else it
 * is an error. Invalid UTF-8 is an error naming the byte offset. *ids is malloc'd. */
dc_status dc_llm_encode(dc_llm *m, const char *text, int32_t **ids, size_t *n);

/* ---- generation ------------------------------------------------------------------------- */
typedef struct dc_generation_config {
    int64_t max_new_tokens;     /* < 0: unset (then max_length applies) */
    int64_t max_length;         /* prompt + new tokens, HF's default 20 */
    int64_t min_new_tokens;     /* EOS is suppressed before this many (HF MinNewTokensLength) */
    bool do_sample;
    float temperature;          /* sampling only; 0 or do_sample false: greedy */
    int top_k;                  /* 0: off */
    float top_p;                /* 1: off */
    float repetition_penalty;   /* 1: off; applies to greedy too, as HF */
    uint64_t seed;
    int32_t eos_ids[8];
    int n_eos;
    int32_t pad_id;             /* -1: none (HF then uses eos) */
    const char *const *stop_strings; /* generation stops once one appears (it is kept) */
    int n_stop_strings;
    bool use_cache;             /* false: every step recomputes the whole sequence */
} dc_generation_config;

/* HF GenerationConfig's defaults overlaid with the model's generation_config.json (or, when
 * there is none, the ids of config.json, as GenerationConfig.from_model_config does). */
dc_generation_config dc_llm_generation_config(const dc_llm *m);
/* The model's config.json "task_specific_params": {"text-generation": {...}} (GPT-2 has
 * do_sample true, max_length 50), which HF's text-generation pipeline applies; cfg is updated
 * in place. No-op when absent. */
void dc_llm_apply_pipeline_params(const dc_llm *m, dc_generation_config *cfg);

typedef enum dc_stop_reason {
    DC_STOP_LENGTH = 0, /* max_new_tokens / max_length / the context */
    DC_STOP_EOS,
    DC_STOP_STRING,
    DC_STOP_CALLBACK,
} dc_stop_reason;

typedef struct dc_generation {
    int32_t *ids;        /* prompt + new ids, as generate() returns them */
    size_t n, n_prompt;
    char *text;          /* the new tokens decoded (special tokens skipped) */
    dc_stop_reason reason;
    int64_t truncated;   /* prompt tokens dropped on the left to fit the context (0: none) */
    double prompt_seconds, decode_seconds;
} dc_generation;

/* Text pieces for streaming: whole UTF-8 characters only. Return false to stop. */
typedef bool (*dc_llm_stream_fn)(const char *text, size_t len, void *ctx);

/* Continues prompt[0..n) as HF's model.generate(input_ids, **cfg) does for one sequence.
 * stream may be NULL. A prompt that leaves no room in the context for max_new_tokens is cut
 * from the left (out->truncated says by how much). */
dc_status dc_llm_generate(dc_llm *m, const int32_t *prompt, size_t n, const dc_generation_config *cfg,
                          dc_llm_stream_fn stream, void *ctx, dc_generation *out);
void dc_generation_free(dc_generation *g);

/* The next-token distribution generate() samples from, from raw logits: repetition penalty
 * over prev ids, then temperature, top-k, top-p (HF's processors, in HF's order), softmax.
 * Greedy configs (do_sample false) apply only the repetition penalty. probs gets vocab floats;
 * scratch needs 3 x vocab floats and iscratch vocab ints. */
void dc_llm_next_token_probs(const float *logits, int64_t vocab, const int32_t *prev, size_t n_prev,
                             const dc_generation_config *cfg, float *probs, float *scratch, int32_t *iscratch);

/* ---- next-word prediction ----------------------------------------------------------------- */
typedef struct dc_next_token { int32_t id; char *text; double prob; } dc_next_token;
typedef struct dc_next_word { char *text; double prob; } dc_next_word;
typedef struct dc_completion {
    dc_next_token *tokens; /* k most likely next tokens, most likely first */
    int n_tokens;
    dc_next_word *words;   /* k most likely next words, most likely first */
    int n_words;
} dc_completion;

/* The k most likely next tokens after text, and the k most likely next words: each of the top
 * tokens extended greedily until the next whitespace-led token (a word boundary; punctuation
 * after letters ends a word too: "time," gives "time"), with the probability of that token
 * sequence; equal words are merged. Word texts are trimmed of surrounding spaces. */
dc_status dc_llm_complete(dc_llm *m, const char *text, int k, dc_completion *out);
void dc_completion_free(dc_completion *c);

/* ---- the Hugging Face hub --------------------------------------------------------------- */
typedef struct dc_hf_download_opts {
    const char *revision; /* NULL: "main" */
    const char *dir;      /* NULL: the cache folder of the repo */
    bool quiet;           /* no progress output */
    FILE *progress;       /* NULL: stderr */
    const char *variant;  /* diffusers weights: NULL takes <name>.safetensors (F32), else the
                             .fp16 variant; "fp16" prefers <name>.fp16.safetensors */
    bool use_cache;       /* a finished earlier download is used as it is, with no request */
} dc_hf_download_opts;

/* The cache folder of a repo: $DEEPC_CACHE_DIR/models/<org>--<name> or
 * ~/.cache/deepc/models/<org>--<name>. false if it does not fit. */
bool dc_hf_cache_dir(const char *repo_id, char *out, size_t size);
/* Downloads config.json, generation_config.json, tokenizer files and safetensors weights
 * of a hub repo, or, for a diffusers pipeline (model_index.json), the folders deepc runs
 * (scheduler/, text_encoder/, tokenizer/, unet/, vae/) with one safetensors file each; a repo
 * with only .bin weights is refused (resolve/<revision>/<file> URLs on $HF_ENDPOINT, else https://huggingface.co;
 * $HF_TOKEN as a bearer token; $HF_HUB_OFFLINE=1: no network, only what is already there).
 * Partial files resume; LFS files are checked against their sha256 (X-Linked-Etag); every
 * file is renamed into place only once complete and verified. out_dir (may be NULL) receives
 * the folder. */
dc_status dc_hf_download(const char *repo_id, const dc_hf_download_opts *opts, char *out_dir, size_t out_size);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_LLM_H */
