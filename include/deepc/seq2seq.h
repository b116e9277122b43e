/* deepc/seq2seq.h: sequence-to-sequence with attention, as PyTorch's Seq2SeqWithAttention seed
 * builds it, and the two tasks it is trained on:
 *
 *   reverse  random U[0,1) float sequences, length uniform in [min_len, max_len], target =
 *            the reversed sequence; MSE over the real (non-padded) positions
 *   dates    a translation-like token task generated in C: a date written out in words
 *            ("the twenty first of march nineteen ninety nine", "march fifth two thousand
 *            twelve") -> its ISO form "1999-03-21"; cross-entropy, exact match with greedy
 *            decoding and beam search
 *
 * Model (state_dict names in brackets, PyTorch's; tools/seq2seq_reference.py is the same model):
 *   [src_embed, tgt_embed]  Embedding(vocab, embed) for the token task
 *   [encoder]               RNN / GRU / LSTM (batch_first) over the padded source, stopping
 *                           at each row's length (pack_padded_sequence)
 *   [attention]             dot / general / additive over the encoder outputs, padding masked
 *   [decoder]               RNNCell / GRUCell / LSTMCell, input [previous output (or target
 *                           under teacher forcing, or its embedding), context], initial state
 *                           the encoder's final state
 *   [fc_out]                Linear(2 * hidden, out) on [decoder state, context]
 */
#ifndef DEEPC_SEQ2SEQ_H
#define DEEPC_SEQ2SEQ_H

#include <stdio.h>

#include "deepc/core.h"
#include "deepc/nn.h"
#include "deepc/rnn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dc_s2s_task { DC_S2S_REVERSE = 0, DC_S2S_DATES = 1 } dc_s2s_task;
const char *dc_s2s_task_name(dc_s2s_task task); /* "reverse", "dates" */
int dc_s2s_task_parse(const char *name);         /* -1 if unknown */

typedef struct dc_s2s_config {
    dc_s2s_task task;
    dc_rnn_mode cell;           /* DC_RNN_TANH (the "rnn" choice), DC_GRU, DC_LSTM */
    dc_attention_kind attention;
    int64_t hidden;             /* 64 */
    int64_t embed;              /* token task: embedding size (0 = hidden) */
    int min_len, max_len;       /* reverse task: sequence lengths (5, 15) */
} dc_s2s_config;

/* ---- data ----------------------------------------------------------------------------- */

/* Token ids of the dates task. Source and target have their own vocabularies; 0 is padding. */
enum { DC_S2S_PAD = 0, DC_S2S_SOS = 1, DC_S2S_EOS = 2 };
int64_t dc_s2s_src_vocab(dc_s2s_task task);  /* 0 for reverse */
int64_t dc_s2s_tgt_vocab(dc_s2s_task task);
const char *dc_s2s_src_word(int64_t token);  /* "march", ...; NULL if out of range */
const char *dc_s2s_tgt_symbol(int64_t token); /* "1", "-", "<eos>", ... */
/* Source token of a word, -1 if the word is not in the vocabulary. */
int64_t dc_s2s_src_token(const char *word);
#define DC_S2S_DATES_MAX_SRC 10 /* longest date in words */
#define DC_S2S_DATES_TGT 11     /* YYYY-MM-DD + EOS */

/* A set of variable-length examples (all examples of one task). */
typedef struct dc_s2s_dataset {
    dc_s2s_task task;
    int64_t n;
    int64_t *src_off, *tgt_off;  /* [n + 1] offsets into the value arrays */
    float *src_f, *tgt_f;        /* reverse */
    int64_t *src_t, *tgt_t;      /* dates (target ends with EOS) */
} dc_s2s_dataset;

/* SyntheticDataset: n sequences of U[0,1) floats, lengths uniform in [min_len, max_len]. */
dc_s2s_dataset *dc_s2s_reverse_dataset(int64_t n, int min_len, int max_len, uint64_t seed);
/* n random dates from 1900-01-01 to 2099-12-31 in one of the written forms. */
dc_s2s_dataset *dc_s2s_dates_dataset(int64_t n, uint64_t seed);
void dc_s2s_dataset_free(dc_s2s_dataset *d);
int64_t dc_s2s_src_len(const dc_s2s_dataset *d, int64_t i);
int64_t dc_s2s_tgt_len(const dc_s2s_dataset *d, int64_t i);

/* A padded batch (the collate function): tensors owned by the batch. */
typedef struct dc_s2s_batch {
    dc_s2s_task task;
    int64_t B, S, T;     /* batch, longest source, longest target */
    dc_tensor *src;      /* reverse: F32 [B, S, 1]; dates: I64 [B, S] (PAD after the length) */
    dc_tensor *src_len;  /* I64 [B] */
    dc_tensor *tgt;      /* time-major: reverse F32 [T, B, 1]; dates I64 [T, B] (PAD after EOS) */
    dc_tensor *mask;     /* reverse: F32 [T, B, 1], 1 at real positions */
    int64_t n_real;      /* number of real target positions */
} dc_s2s_batch;
dc_status dc_s2s_collate(const dc_s2s_dataset *d, const int64_t *index, int64_t n, dc_s2s_batch *out);
void dc_s2s_batch_free(dc_s2s_batch *b);

/* ---- model ---------------------------------------------------------------------------- */

/* Parameters initialised from dc_default_rng() in PyTorch's registration order. */
dc_module *dc_seq2seq_new(const dc_s2s_config *cfg);
/* The model's config (NULL if m is not a seq2seq model). */
const dc_s2s_config *dc_seq2seq_config(const dc_module *m);
/* Config as checkpoint metadata (NULL-terminated key/value list, static storage until the
 * next call) and back. */
const char *const *dc_s2s_config_metadata(const dc_s2s_config *cfg);
dc_status dc_s2s_config_from_file(dc_safetensors *st, dc_s2s_config *cfg);

/* The training loss of one batch (a 0-dim op result): masked MSE (reverse) or cross-entropy
 * over real target tokens (dates). At each decoder step the previous target is fed with
 * probability teacher_forcing (drawn from rng), else the model's own previous output. */
dc_tensor *dc_seq2seq_loss(dc_module *m, const dc_s2s_batch *b, double teacher_forcing, dc_rng *rng);

/* Greedy decoding without teacher forcing, grad off, for T steps (batch->T when T <= 0).
 * values (reverse, [B * T], time-major [T][B]) or tokens (dates, [T][B]) receive the outputs;
 * attn, if not NULL, [B][T][S] attention weights. Either output may be NULL. */
dc_status dc_seq2seq_greedy(dc_module *m, const dc_s2s_batch *b, int64_t T, float *values, int64_t *tokens,
                            float *attn);
/* Beam search for one source sequence (dates): writes up to max_out tokens (EOS excluded),
 * returns their count or -1 on error. */
int64_t dc_seq2seq_beam(dc_module *m, const int64_t *src, int64_t src_len, int beam, int64_t max_out,
                        int64_t *out);

/* Evaluation over a whole dataset (no teacher forcing): reverse -> *metric = MSE over real
 * positions; dates -> *metric = greedy exact match (0..1), *loss = cross-entropy. beam > 1
 * also reports *beam_metric (exact match with beam search) for dates. */
typedef struct dc_s2s_eval {
    double loss;          /* the training loss, teacher forcing 0 */
    double mse;           /* reverse */
    double exact_match;   /* dates, greedy */
    double beam_exact;    /* dates, beam search (NAN if not run) */
    double token_accuracy;/* dates, greedy */
} dc_s2s_eval;
dc_status dc_seq2seq_evaluate(dc_module *m, const dc_s2s_dataset *d, int64_t batch_size, int beam,
                              dc_s2s_eval *out);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_SEQ2SEQ_H */
