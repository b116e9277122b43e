/* deepc/tokenizer.h: Hugging Face tokenizers in C, with ids identical to HF's
 * (byte-level BPE: GPT-2, RoBERTa/BART; CLIP BPE; Unigram: T5/Flan-T5; SentencePiece BPE
 * with byte fallback: Llama). Needs nothing of the tensor engine.
 *
 * Usage
 * -----
 *   dc_tokenizer *tok = dc_tokenizer_load("models/gpt2");   // folder, tokenizer.json,
 *   if (!tok) { fprintf(stderr, "%s\n", dc_last_error()); return 1; }  // .model, .txt.gz
 *
 *   dc_encoding enc;
 *   if (dc_tokenizer_encode(tok, "Hello world", (size_t)-1, true, true, &enc)) { ...error... }
 *   for (size_t i = 0; i < enc.n; i++)
 *       printf("%d %s [%zu, %zu)\n", enc.ids[i], dc_tokenizer_id_to_token(tok, enc.ids[i]),
 *              enc.offsets[2 * i], enc.offsets[2 * i + 1]);
 *   char *text = dc_tokenizer_decode(tok, enc.ids, enc.n, true);  // skip special tokens
 *   free(text);
 *   dc_encoding_free(&enc);
 *   dc_tokenizer_free(tok);
 *
 * What dc_tokenizer_load takes:
 *   - a HF tokenizer.json (models BPE and Unigram, with the normalizers, pre-tokenizers,
 *     post-processors and decoders GPT-2, RoBERTa/BART, CLIP, T5 and Llama use); a
 *     tokenizer_config.json beside it is read for clean_up_tokenization_spaces;
 *   - a folder holding tokenizer.json, or vocab.json + merges.txt (GPT-2, BART/RoBERTa and
 *     CLIP as they ship; tokenizer_config.json / special_tokens_map.json are read when there);
 *   - CLIP's bpe_simple_vocab_16e6.txt.gz;
 *   - a SentencePiece .model (BPE with byte fallback as Llama, or Unigram as T5), converted
 *     as transformers' LlamaTokenizer / T5Tokenizer do (Llama: <s> is prepended).
 *
 * Encoding with add_special_tokens = true gives exactly HF's tokenizer(text)["input_ids"].
 * Offsets are byte offsets into the input text. Invalid UTF-8: byte-level tokenizers
 * without a normalizer encode the bytes as they are; the others see U+FFFD in their place.
 *
 * Errors: NULL or a non-zero dc_status, with a one-line dc_last_error() naming the file or
 * argument and what was wrong. A dc_tokenizer holds scratch buffers and a word cache: use
 * one per thread (loading is cheap enough), never the same one from two threads at once.
 */
#ifndef DEEPC_TOKENIZER_H
#define DEEPC_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deepc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_tokenizer dc_tokenizer;

/* The result of encoding one text. Free with dc_encoding_free. */
typedef struct dc_encoding {
    int32_t *ids;
    size_t n;
    size_t *offsets;         /* 2 * n byte offsets [start, end) into the text, or NULL */
    uint8_t *special_mask;   /* 1 where the token is a special token */
    uint8_t *attention_mask; /* 1 for real tokens, 0 for padding (batch encode) */
} dc_encoding;

/* Loads a tokenizer from PATH (see above). */
dc_tokenizer *dc_tokenizer_load(const char *path);
/* Loads a tokenizer.json held in memory; `name` is used in error messages. */
dc_tokenizer *dc_tokenizer_from_json(const char *json, size_t len, const char *name);
void dc_tokenizer_free(dc_tokenizer *tok);

/* Encodes text[0..len) (len (size_t)-1: up to the NUL). add_special: add the
 * post-processor's special tokens (BOS/EOS...), as HF's add_special_tokens. with_offsets:
 * fill out->offsets. */
dc_status dc_tokenizer_encode(dc_tokenizer *tok, const char *text, size_t len, bool add_special,
                              bool with_offsets, dc_encoding *out);
void dc_encoding_free(dc_encoding *enc);

/* Decodes ids into a malloc'd NUL-terminated string (free it), as HF's
 * tokenizer.decode(ids, skip_special_tokens=skip_special). An id outside the vocabulary is
 * an error (NULL). */
char *dc_tokenizer_decode(dc_tokenizer *tok, const int32_t *ids, size_t n, bool skip_special);

typedef enum dc_padding {
    DC_PAD_NONE = 0,   /* rows keep their lengths */
    DC_PAD_LONGEST,    /* pad to the longest row */
    DC_PAD_MAX_LENGTH, /* pad to max_length */
} dc_padding;

typedef struct dc_batch_options {
    bool add_special_tokens;
    size_t max_length;  /* truncation length (0: none); special tokens fit inside it */
    dc_padding padding;
    bool pad_left;      /* pad on the left instead of the right */
    int32_t pad_id;     /* -1: the tokenizer's pad token (or 0 when it has none) */
    bool with_offsets;
} dc_batch_options;

/* Default options: add_special_tokens, no truncation, no padding, tokenizer's pad id. */
dc_batch_options dc_batch_options_default(void);

/* Encodes n texts (NUL-terminated) into out[0..n) (each freed with dc_encoding_free). With
 * truncation, each text's own tokens are cut so that, with special tokens, a row has at most
 * max_length ids, as HF's truncation=True, max_length=... */
dc_status dc_tokenizer_encode_batch(dc_tokenizer *tok, const char *const *texts, size_t n,
                                    const dc_batch_options *opt, dc_encoding *out);

/* Token <-> id. token_to_id returns -1 for an unknown token; id_to_token NULL. */
int32_t dc_tokenizer_token_to_id(const dc_tokenizer *tok, const char *token);
const char *dc_tokenizer_id_to_token(const dc_tokenizer *tok, int32_t id);
bool dc_tokenizer_is_special(const dc_tokenizer *tok, int32_t id);
/* Number of ids, added tokens included (HF's len(tokenizer)). */
size_t dc_tokenizer_vocab_size(const dc_tokenizer *tok);
/* The pad token's id, or -1. */
int32_t dc_tokenizer_pad_id(const dc_tokenizer *tok);

#ifdef __cplusplus
}
#endif

#endif /* DEEPC_TOKENIZER_H */
