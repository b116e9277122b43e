/* tok_internal.h: what the tokenizer files share: the tokenizer struct (a Hugging Face
 * tokenizers pipeline: added tokens, normalizers, pre-tokenizers, model, post-processor,
 * decoders), the work buffer the encode pipeline passes between stages, and small helpers
 * (byte buffers, UTF-8, hash maps). Users see only include/deepc/tokenizer.h. */
#ifndef DC_TOK_INTERNAL_H
#define DC_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "deepc/core.h"
#include "deepc/tokenizer.h"

/* ---------------------------------------------------------------------------------------
 * Byte buffers and UTF-8
 * ------------------------------------------------------------------------------------- */

typedef struct tk_buf {
    char *s;
    size_t n, cap;
} tk_buf;

bool tk_buf_reserve(tk_buf *b, size_t extra);
bool tk_buf_put(tk_buf *b, const void *p, size_t n);
static inline bool tk_buf_putc(tk_buf *b, char c) { return tk_buf_put(b, &c, 1); }
void tk_buf_free(tk_buf *b);

/* Decodes one UTF-8 character at s[0..n) (n > 0). Returns its length in bytes and writes
 * the code point to *cp; an invalid or truncated sequence gives length 1 and *cp = -1. */
int tk_utf8_decode(const char *s, size_t n, int32_t *cp);
/* Encodes cp into out (4 bytes room); returns the length. */
int tk_utf8_encode(int32_t cp, char *out);
/* Length of the UTF-8 sequence starting with byte c (1 for invalid lead bytes). */
static inline int tk_utf8_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xC2 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 1;
}
/* Appends s[0..n) to out with invalid sequences replaced by U+FFFD, one per maximal
 * invalid subpart (as Python's errors="replace" and Rust's from_utf8_lossy). */
bool tk_utf8_lossy(tk_buf *out, const char *s, size_t n);
bool tk_utf8_valid(const char *s, size_t n);
/* Length of the maximal invalid subpart at s (>= 1): what one U+FFFD replaces. */
size_t tk_utf8_invalid_len(const char *s, size_t n);
/* Unicode White_Space (Rust char::is_whitespace and Oniguruma's \s). */
bool tk_is_space(int32_t cp);
/* \p{L} and \p{N} as HF's regex engine has them (unicode_tables.c, generated). */
extern const uint32_t tk_letter_ranges[][2], tk_number_ranges[][2];
extern const size_t tk_letter_nranges, tk_number_nranges;
bool tk_in_ranges(const uint32_t (*r)[2], size_t n, int32_t cp);
typedef struct tk_lower_entry {
    uint32_t cp;
    const char *lower;
} tk_lower_entry;
extern const tk_lower_entry tk_lower_table[];
extern const size_t tk_lower_n;
/* Python str.isspace() (what str.strip() removes). */
bool tk_is_py_space(int32_t cp);

/* ---------------------------------------------------------------------------------------
 * Hash maps: byte string -> int32, and (int32, int32) -> (rank, id)
 * ------------------------------------------------------------------------------------- */

uint64_t tk_hash(const void *p, size_t n);

typedef struct tk_strmap {
    struct tk_strmap_slot { uint64_t hash; uint32_t off, len; int32_t val; } *slots;
    size_t cap, count;
    tk_buf keys; /* the keys' bytes */
} tk_strmap;

bool tk_strmap_init(tk_strmap *m, size_t expected);
/* Inserts or overwrites. */
bool tk_strmap_put(tk_strmap *m, const char *k, size_t n, int32_t val);
/* Returns the value or -1. */
int32_t tk_strmap_get(const tk_strmap *m, const char *k, size_t n);
void tk_strmap_free(tk_strmap *m);

typedef struct tk_pairmap {
    struct tk_pair_slot { uint64_t key; int32_t rank, id; } *slots; /* key UINT64_MAX = empty */
    size_t cap, count;
} tk_pairmap;

bool tk_pairmap_init(tk_pairmap *m, size_t expected);
bool tk_pairmap_put(tk_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id);
static inline const struct tk_pair_slot *tk_pairmap_get(const tk_pairmap *m, int32_t a, int32_t b)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t mask = m->cap - 1, i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
    for (;;) {
        const struct tk_pair_slot *s = &m->slots[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
        i = (i + 1) & mask;
    }
}
void tk_pairmap_free(tk_pairmap *m);

/* ---------------------------------------------------------------------------------------
 * Regular expressions (PCRE2 with Oniguruma-compatible \s \w classes)
 * ------------------------------------------------------------------------------------- */

typedef struct tk_regex tk_regex;
/* `where` names the file for error messages. */
tk_regex *tk_regex_compile(const char *pattern, const char *where);
void tk_regex_free(tk_regex *re);
/* Finds the next non-empty match in s[0..n) at or after `from`; returns false when none. */
bool tk_regex_next(tk_regex *re, const char *s, size_t n, size_t from, size_t *ms, size_t *me);

/* A pattern: a literal string or a regex (Split, Replace). */
typedef struct tk_pattern {
    char *lit;
    size_t lit_len;
    tk_regex *re;
} tk_pattern;
/* Iterates matches of the pattern in s; returns false when none. */
bool tk_pattern_next(const tk_pattern *p, const char *s, size_t n, size_t from, size_t *ms,
                     size_t *me);
void tk_pattern_free(tk_pattern *p);
dc_status tk_pattern_parse(tk_pattern *p, const cJSON *j, const char *where);

/* ---------------------------------------------------------------------------------------
 * The work buffer of the encode pipeline
 * ------------------------------------------------------------------------------------- */

/* A piece of the text: a range of the work text, or an added token. */
typedef struct tk_piece {
    uint32_t start, len; /* range of work->text (text pieces) */
    int32_t added;       /* >= 0: an added token with this id; -1: text */
    uint32_t ostart, oend; /* original byte offsets (added tokens; and text when no align) */
    bool at_origin;      /* the piece begins at original offset 0 (Metaspace "first") */
} tk_piece;

typedef struct tk_work {
    tk_buf text;
    uint32_t *as, *ae; /* per text byte: original start and end offsets, or NULL */
    size_t acap;
    tk_piece *p;
    size_t np, pcap;
} tk_work;

bool tk_work_push(tk_work *w, tk_piece pc);
/* Appends bytes to w->text aligned to original range [os, oe). */
bool tk_work_emit(tk_work *w, const char *b, size_t n, uint32_t os, uint32_t oe);
bool tk_work_reset(tk_work *w, bool align);
void tk_work_free(tk_work *w);

/* ---------------------------------------------------------------------------------------
 * Pipeline components
 * ------------------------------------------------------------------------------------- */

typedef enum tk_norm_type {
    TK_NORM_NFC, TK_NORM_NFD, TK_NORM_NFKC, TK_NORM_NFKD, TK_NORM_LOWERCASE, TK_NORM_REPLACE,
    TK_NORM_STRIP, TK_NORM_PREPEND, TK_NORM_PRECOMPILED, TK_NORM_STRIP_ACCENTS,
} tk_norm_type;

typedef struct tk_precompiled tk_precompiled;

typedef struct tk_norm {
    tk_norm_type type;
    tk_pattern pat;    /* Replace */
    char *content;     /* Replace, Prepend */
    size_t content_len;
    bool left, right;  /* Strip */
    tk_precompiled *pc;
} tk_norm;

typedef enum tk_pre_type {
    TK_PRE_BYTELEVEL, TK_PRE_METASPACE, TK_PRE_SPLIT, TK_PRE_WHITESPACE, TK_PRE_WHITESPACE_SPLIT,
    TK_PRE_DIGITS, TK_PRE_PUNCTUATION, TK_PRE_BERT,
} tk_pre_type;

typedef enum tk_split_behavior {
    TK_SPLIT_REMOVED, TK_SPLIT_ISOLATED, TK_SPLIT_MERGED_PREV, TK_SPLIT_MERGED_NEXT,
    TK_SPLIT_CONTIGUOUS,
} tk_split_behavior;

typedef enum tk_prepend { TK_PREPEND_ALWAYS, TK_PREPEND_FIRST, TK_PREPEND_NEVER } tk_prepend;

typedef struct tk_pre {
    tk_pre_type type;
    bool add_prefix_space, use_regex, gpt2_regex; /* ByteLevel */
    tk_regex *re;                                 /* ByteLevel with a custom regex */
    char repl[8];                                 /* Metaspace replacement char (UTF-8) */
    int repl_len;
    tk_prepend prepend;
    bool split;                                   /* Metaspace */
    tk_pattern pat;                               /* Split */
    tk_split_behavior behavior;
    bool invert;
    bool individual_digits;                       /* Digits */
    bool raw_bytes;                               /* ByteLevel as the last stage: see bpe.c */
} tk_pre;

typedef enum tk_dec_type {
    TK_DEC_BYTELEVEL, TK_DEC_METASPACE, TK_DEC_BYTEFALLBACK, TK_DEC_FUSE, TK_DEC_STRIP,
    TK_DEC_REPLACE, TK_DEC_BPE, TK_DEC_WORDPIECE,
} tk_dec_type;

typedef struct tk_dec {
    tk_dec_type type;
    tk_prepend prepend;   /* Metaspace */
    char repl[8];
    int repl_len;
    int32_t strip_char;   /* Strip */
    int start, stop;
    tk_pattern pat;       /* Replace */
    char *content;
    size_t content_len;
    char *suffix;         /* BPEDecoder suffix, WordPiece prefix */
    bool cleanup;         /* WordPiece */
} tk_dec;

/* Post-processor templates: a list of items, each a special token (ids) or the sequence. */
typedef struct tk_tpl_item {
    bool is_seq;
    int32_t *ids;
    size_t n;
    int type_id;
} tk_tpl_item;

typedef struct tk_post {
    bool present;
    tk_tpl_item *single;
    size_t nsingle;
    size_t added_single; /* number of special ids added to a single sequence */
} tk_post;

/* Added tokens (the AddedVocabulary). */
typedef struct tk_added {
    char *content;
    size_t len;
    char *norm; /* normalized content (normalized tokens) */
    size_t norm_len;
    int32_t id;
    bool special, single_word, lstrip, rstrip, normalized;
} tk_added;

/* Finds added tokens, leftmost-longest: token indices bucketed by first byte, longest first. */
typedef struct tk_added_matcher {
    int32_t *idx;
    uint32_t start[257]; /* bucket of first byte b: idx[start[b] .. start[b + 1]) */
    size_t n;
} tk_added_matcher;

typedef struct tk_bpe tk_bpe;
typedef struct tk_unigram tk_unigram;

typedef enum tk_model_type { TK_MODEL_BPE, TK_MODEL_UNIGRAM } tk_model_type;

/* One token the model produced for a word: id and byte range within the word. */
typedef struct tk_tok {
    int32_t id;
    uint32_t start, end;
} tk_tok;

struct dc_tokenizer {
    char *path;           /* for error messages */
    tk_model_type model_type;
    tk_bpe *bpe;
    tk_unigram *uni;
    /* id -> token string (model vocabulary and added tokens) */
    char **id_tok;
    uint32_t *id_len;
    bool *id_special;
    size_t nids;
    size_t model_vocab;   /* number of model ids */
    tk_strmap vocab;      /* token string -> id (added tokens too) */

    tk_added *added;
    size_t nadded;
    tk_added_matcher m_raw, m_norm;

    tk_norm *norms;
    size_t nnorms;
    tk_pre *pres;
    size_t npres;
    bool raw_bytes;       /* model sees raw bytes (ByteLevel is the last pre-tokenizer) */
    bool keep_invalid;    /* invalid UTF-8 passes through (byte-level, no normalizer) */
    tk_dec *decs;
    size_t ndecs;
    tk_post post;
    bool cleanup_spaces;  /* transformers' clean_up_tokenization_spaces (non-BPE models) */
    bool clip_decode;     /* CLIP's end-of-word suffix fix-up in decode */
    char *eow_suffix;

    int32_t pad_id;       /* from the config, or -1 */
    int model_max_length; /* from tokenizer_config.json, or 0 */

    tk_work w[2];         /* scratch for encode */
    tk_tok *toks;         /* scratch: the tokens of one text */
    size_t ntoks, tokcap;
    size_t vocab_size;    /* ids that have a token */
};

/* ---- loaders ---- */
dc_status tk_load_json_tree(dc_tokenizer *t, const cJSON *root, const char *where);
/* Reads tokenizer_config.json beside a file or in a folder (optional). */
void tk_load_config(dc_tokenizer *t, const char *dir);
dc_status tk_read_file(const char *path, char **data, size_t *len);
dc_status tk_read_gzip(const char *path, char **data, size_t *len);
cJSON *tk_json_from_vocab_merges(const char *dir, const char *vocab_path, const char *merges_path);
cJSON *tk_json_from_clip_bpe(const char *gz_path);
cJSON *tk_json_from_spm(const char *path);

/* ---- normalizers.c ---- */
dc_status tk_norm_parse(tk_norm **out, size_t *n, const cJSON *j, const char *where);
void tk_norm_free(tk_norm *n);
/* Runs all normalizers over the text pieces of `in`, writing `out` (swaps as needed). */
dc_status tk_normalize(const dc_tokenizer *t, tk_work *in, tk_work *out);
/* Normalizes a plain string (added token contents); returns a malloc'd string. */
char *tk_normalize_string(const dc_tokenizer *t, const char *s, size_t n, size_t *out_len);

/* ---- precompiled.c ---- */
tk_precompiled *tk_precompiled_new(const char *b64, const char *where);
tk_precompiled *tk_precompiled_from_bytes(const uint8_t *data, size_t n, const char *where);
void tk_precompiled_free(tk_precompiled *pc);
bool tk_precompiled_run(const tk_precompiled *pc, const tk_work *in, const tk_piece *p,
                        tk_work *out);

/* ---- pretokenizers.c ---- */
dc_status tk_pre_parse(tk_pre **out, size_t *n, const cJSON *j, const char *where);
void tk_pre_free(tk_pre *p);
dc_status tk_pretokenize(const dc_tokenizer *t, tk_work *in, tk_work *out);
/* ByteLevel alphabet: the byte a character stands for, or -1. */
int tk_byte_of_char(int32_t cp);
/* Fills the static tables (once). */
void tk_tables_init(void);
/* The GPT-2 split: next piece of s[0..n) starting at i; returns its end. */
size_t tk_gpt2_next(const char *s, size_t n, size_t i);
extern const char tk_gpt2_pattern[];

/* ---- added.c ---- */
dc_status tk_added_build(dc_tokenizer *t);
void tk_added_matcher_free(tk_added_matcher *m);
/* Splits the text pieces of w on added tokens (normalized or raw ones). */
dc_status tk_added_split(const dc_tokenizer *t, tk_work *w, bool normalized);

/* ---- bpe.c ---- */
dc_status tk_bpe_parse(dc_tokenizer *t, const cJSON *model, const char *where);
void tk_bpe_free(tk_bpe *b);
/* Encodes one word; appends tokens to *toks (grown with realloc). */
dc_status tk_bpe_word(tk_bpe *b, const char *w, size_t n, tk_tok **toks, size_t *nt, size_t *cap);
/* Prepares the model for raw-byte input (ByteLevel as the last pre-tokenizer). */
dc_status tk_bpe_set_raw(dc_tokenizer *t);
const char *tk_bpe_suffix(const tk_bpe *b);

/* ---- unigram.c ---- */
dc_status tk_unigram_parse(dc_tokenizer *t, const cJSON *model, const char *where);
void tk_unigram_free(tk_unigram *u);
dc_status tk_unigram_word(tk_unigram *u, const char *w, size_t n, tk_tok **toks, size_t *nt,
                          size_t *cap);

/* ---- decoders.c ---- */
dc_status tk_dec_parse(tk_dec **out, size_t *n, const cJSON *j, const char *where);
void tk_dec_free(tk_dec *d);
/* Runs the decoders over the token strings; the result (malloc'd) in *out. */
dc_status tk_decode_tokens(const dc_tokenizer *t, const char **toks, const uint32_t *lens,
                           size_t n, tk_buf *out);

/* ---- postprocess.c ---- */
dc_status tk_post_parse(dc_tokenizer *t, const cJSON *j, const char *where);
void tk_post_free(tk_post *p);

/* ---- json helpers ---- */
const char *tk_json_str(const cJSON *o, const char *key);
bool tk_json_bool(const cJSON *o, const char *key, bool dflt);
char *tk_strdup(const char *s);
char *tk_strndup(const char *s, size_t n);

#endif /* DC_TOK_INTERNAL_H */
