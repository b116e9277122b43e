/* test_seq2seq.c: the whole Seq2SeqWithAttention model against PyTorch on one padded batch
 * (tools/seq2seq_reference.py via tools/fixtures_rnn.py): predictions, attention weights,
 * loss and every parameter gradient, for several cell/attention pairs with the outputs fed
 * back (teacher forcing 0) or the targets fed (1), and the token model with embeddings and
 * cross-entropy. Plus the data (dataset, collate, the dates grammar), a few training steps
 * that lower the loss, greedy/beam decoding, checkpoint config round trip, and bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/testlib.h"
#include "deepc/optim.h"
#include "deepc/seq2seq.h"

bool dc__s2s_dates_parse(const int64_t *src, int64_t len, int64_t *iso_out);

static dc_rnn_mode cell_of(const char *s) { return !strcmp(s, "gru") ? DC_GRU : !strcmp(s, "lstm") ? DC_LSTM : DC_RNN_TANH; }

/* a batch built from fixture tensors (borrowed from the current pool) */
static dc_s2s_batch fixture_batch(dc_safetensors *st, dc_s2s_task task)
{
    dc_s2s_batch b = {0};
    b.task = task;
    b.src = task == DC_S2S_DATES ? tl_get_i64(st, "src") : tl_get(st, "src");
    b.src_len = tl_get_i64(st, "lengths");
    b.tgt = task == DC_S2S_DATES ? tl_get_i64(st, "tgt") : tl_get(st, "tgt");
    b.B = b.src->shape[0], b.S = b.src->shape[1], b.T = b.tgt->shape[0];
    const int64_t *len = dc_data(b.src_len);
    if (task == DC_S2S_REVERSE) {
        b.mask = dc_zeros(DC_F32, DC_SHAPE(b.T, b.B, 1));
        for (int64_t i = 0; i < b.B; i++)
            for (int64_t t = 0; t < len[i]; t++) dc_data_f32(b.mask)[t * b.B + i] = 1.0f;
        for (int64_t i = 0; i < b.B; i++) b.n_real += len[i];
    }
    return b;
}

static void run_reverse_case(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "rnn/%s", name);
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = tl_fixture(path);
    const char *cell = dc_safetensors_metadata(st, "cell"), *att = dc_safetensors_metadata(st, "attention");
    dc_s2s_config cfg = {DC_S2S_REVERSE, cell_of(cell), (dc_attention_kind)dc_attention_kind_parse(att),
                         (int64_t)tl_meta_num(st, "hidden"), 0, 1, 5};
    dc_module *model = TL_CHECK(dc_seq2seq_new(&cfg));
    TL_OK(dc_module_load_state_dict(model, st, false));
    dc_tensor_list *params = TL_CHECK(dc_module_named_parameters(model));
    dc_s2s_batch b = fixture_batch(st, DC_S2S_REVERSE);
    double tf = tl_meta_num(st, "teacher_forcing");
    dc_tensor *loss = TL_CHECK(dc_seq2seq_loss(model, &b, tf, NULL));
    tl_assert_close(loss, tl_get(st, "loss"), TL_RTOL, "loss");
    TL_OK(dc_backward(loss, NULL, false));
    char key[160];
    for (int i = 0; i < params->count; i++) {
        snprintf(key, sizeof key, "grad.%s", params->names[i]);
        if (!params->tensors[i]->grad) fail_msg("%s: no gradient for %s", name, params->names[i]);
        tl_assert_close(params->tensors[i]->grad, tl_get(st, key), TL_RTOL, key);
    }
    /* greedy decoding (teacher forcing 0) gives the fixture's predictions and attention */
    if (tf == 0) {
        float pred[64], attn[256];
        TL_OK(dc_seq2seq_greedy(model, &b, 0, pred, NULL, attn));
        dc_tensor *p = dc_from_data(DC_F32, DC_SHAPE(b.T, b.B, 1), pred);
        tl_assert_close(p, tl_get(st, "pred"), TL_RTOL, "pred");
        /* fixture attn is [T, B, S]; ours [B, T, S] */
        dc_tensor *a = dc_permute(dc_from_data(DC_F32, DC_SHAPE(b.B, b.T, b.S), attn), (int[]){1, 0, 2});
        tl_assert_close(dc_contiguous(a), tl_get(st, "attn"), TL_RTOL, "attention weights");
    }
    dc_tensor_list_free(params);
    dc_module_free(model);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_model_rnn_dot(void **s) { (void)s; run_reverse_case("model_rnn_dot"); }
static void test_model_gru_general(void **s) { (void)s; run_reverse_case("model_gru_general"); }
static void test_model_lstm_additive_tf(void **s) { (void)s; run_reverse_case("model_lstm_additive"); }
static void test_model_rnn_additive(void **s) { (void)s; run_reverse_case("model_rnn_additive"); }

/* The token model of the fixture has its own small vocabularies (12 source, 7 target words);
 * this checks the token path (embeddings, argmax feedback, cross-entropy with padding
 * ignored) on a dates model whose larger tables hold the fixture's in their leading rows. */
static void run_token_case(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "rnn/%s", name);
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = tl_fixture(path);
    dc_s2s_config cfg = {DC_S2S_DATES, DC_GRU, DC_ATTN_DOT, 8, 6, 0, 0};
    dc_module *model = TL_CHECK(dc_seq2seq_new(&cfg));
    /* the fixture's vocabularies (12 source, 7 target) are prefixes of the dates ones in
     * size: copy the fixture into the leading rows and make the other output logits very
     * negative so they never win nor add to the softmax */
    dc_tensor_list *params = TL_CHECK(dc_module_named_parameters(model));
    for (int i = 0; i < params->count; i++) {
        dc_tensor *p = params->tensors[i], *f = tl_get(st, params->names[i]);
        TL_OK(dc_fill_(p, 0.0));
        if (dc_same_shape(p, f)) {
            TL_OK(dc_copy_(p, f));
        } else { /* leading rows */
            dc_tensor *dst = TL_CHECK(dc_narrow(p, 0, 0, f->shape[0]));
            TL_OK(dc_copy_(dst, f));
            if (!strcmp(params->names[i], "fc_out.bias")) {
                dc_tensor *rest = TL_CHECK(dc_narrow(p, 0, f->shape[0], p->shape[0] - f->shape[0]));
                TL_OK(dc_fill_(rest, -1e4));
            }
        }
    }
    dc_s2s_batch b = fixture_batch(st, DC_S2S_DATES);
    double tf = tl_meta_num(st, "teacher_forcing");
    dc_tensor *loss = TL_CHECK(dc_seq2seq_loss(model, &b, tf, NULL));
    tl_assert_close(loss, tl_get(st, "loss"), TL_RTOL, "loss");
    TL_OK(dc_backward(loss, NULL, false));
    char key[160];
    for (int i = 0; i < params->count; i++) {
        dc_tensor *f = tl_get(st, params->names[i]);
        snprintf(key, sizeof key, "grad.%s", params->names[i]);
        dc_tensor *g = TL_CHECK(params->tensors[i]->grad);
        if (!dc_same_shape(g, f)) g = dc_narrow(g, 0, 0, f->shape[0]);
        tl_assert_close(g, tl_get(st, key), TL_RTOL, key);
    }
    dc_tensor_list_free(params);
    dc_module_free(model);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_model_tokens_free_running(void **s) { (void)s; run_token_case("model_tokens_tf0"); }
static void test_model_tokens_teacher_forced(void **s) { (void)s; run_token_case("model_tokens_tf1"); }

/* ---- data ---------------------------------------------------------------------------------- */

static void test_reverse_data_and_collate(void **s)
{
    (void)s;
    dc_s2s_dataset *d = TL_CHECK(dc_s2s_reverse_dataset(50, 3, 7, 1));
    int64_t seen[8] = {0};
    for (int64_t i = 0; i < d->n; i++) {
        int64_t L = dc_s2s_src_len(d, i);
        assert_true(L >= 3 && L <= 7);
        seen[L]++;
        for (int64_t j = 0; j < L; j++) {
            float v = d->src_f[d->src_off[i] + j];
            assert_true(v >= 0.0f && v < 1.0f);
            assert_float_equal(d->tgt_f[d->tgt_off[i] + j], d->src_f[d->src_off[i] + L - 1 - j], 0);
        }
    }
    assert_true(seen[3] > 0 && seen[7] > 0);
    dc_s2s_batch b;
    TL_OK(dc_s2s_collate(d, (int64_t[]){4, 0, 9}, 3, &b));
    int64_t L0 = dc_s2s_src_len(d, 4);
    assert_int_equal(((int64_t *)dc_data(b.src_len))[0], L0);
    int64_t longest = L0;
    if (dc_s2s_src_len(d, 0) > longest) longest = dc_s2s_src_len(d, 0);
    if (dc_s2s_src_len(d, 9) > longest) longest = dc_s2s_src_len(d, 9);
    assert_int_equal(b.S, longest);
    /* padding is zero, the mask marks real positions, targets are time-major */
    for (int64_t t = 0; t < b.T; t++) {
        float mk = dc_data_f32(b.mask)[t * 3 + 0];
        assert_float_equal(mk, t < L0 ? 1.0f : 0.0f, 0);
        if (t >= L0) assert_float_equal(dc_data_f32(b.src)[t], 0.0f, 0);
    }
    dc_s2s_batch_free(&b);
    assert_int_not_equal(dc_s2s_collate(d, (int64_t[]){50}, 1, &b), DC_OK);
    dc_s2s_dataset_free(d);
    assert_null(dc_s2s_reverse_dataset(10, 5, 4, 0));
    dc_clear_error();
}

static void test_dates_grammar(void **s)
{
    (void)s;
    dc_s2s_dataset *d = TL_CHECK(dc_s2s_dates_dataset(200, 3));
    for (int64_t i = 0; i < d->n; i++) {
        int64_t L = dc_s2s_src_len(d, i);
        assert_true(L >= 3 && L <= DC_S2S_DATES_MAX_SRC);
        assert_int_equal(dc_s2s_tgt_len(d, i), DC_S2S_DATES_TGT);
        /* every sentence parses back to its own target */
        if (i < 20) {
            int64_t iso[DC_S2S_DATES_TGT];
            assert_true(dc__s2s_dates_parse(d->src_t + d->src_off[i], L, iso));
            assert_memory_equal(iso, d->tgt_t + d->tgt_off[i], sizeof iso);
        }
    }
    /* a known sentence */
    const char *words[] = {"the", "twenty", "first", "of", "march", "nineteen", "ninety", "nine"};
    int64_t toks[8], iso[DC_S2S_DATES_TGT];
    for (int i = 0; i < 8; i++) assert_true((toks[i] = dc_s2s_src_token(words[i])) > 2);
    assert_true(dc__s2s_dates_parse(toks, 8, iso));
    char buf[16] = "";
    for (int i = 0; i < 10; i++) strcat(buf, dc_s2s_tgt_symbol(iso[i]));
    assert_string_equal(buf, "1999-03-21");
    assert_int_equal(iso[10], DC_S2S_EOS);
    assert_int_equal(dc_s2s_src_token("smarch"), -1);
    /* february 30th is no date */
    const char *bad[] = {"february", "thirtieth", "nineteen", "ninety", "nine"};
    for (int i = 0; i < 5; i++) toks[i] = dc_s2s_src_token(bad[i]);
    assert_false(dc__s2s_dates_parse(toks, 5, iso));
    dc_s2s_dataset_free(d);
}

/* ---- training, decoding, checkpoints --------------------------------------------------------- */

static void test_training_lowers_loss_and_decodes(void **s)
{
    (void)s;
    dc_manual_seed(1);
    dc_s2s_config cfg = {DC_S2S_DATES, DC_LSTM, DC_ATTN_ADDITIVE, 16, 8, 0, 0};
    dc_module *model = TL_CHECK(dc_seq2seq_new(&cfg));
    dc_s2s_dataset *d = TL_CHECK(dc_s2s_dates_dataset(64, 9));
    dc_tensor_list *p = TL_CHECK(dc_module_named_parameters(model));
    dc_optimizer *opt = TL_CHECK(dc_adam_new(p->count, p->tensors, dc_adam_options(1e-2)));
    dc_s2s_eval before, after;
    TL_OK(dc_seq2seq_evaluate(model, d, 32, 1, &before));
    int64_t idx[32];
    for (int step = 0; step < 30; step++) {
        for (int i = 0; i < 32; i++) idx[i] = (step * 32 + i) % 64;
        dc_s2s_batch b;
        TL_OK(dc_s2s_collate(d, idx, 32, &b));
        dc_pool_mark m = dc_pool_push();
        dc_optimizer_zero_grad(opt);
        dc_tensor *loss = TL_CHECK(dc_seq2seq_loss(model, &b, 1.0, NULL));
        TL_OK(dc_backward(loss, NULL, false));
        TL_OK(dc_optimizer_step(opt));
        dc_pool_pop(m);
        dc_s2s_batch_free(&b);
    }
    TL_OK(dc_seq2seq_evaluate(model, d, 32, 3, &after));
    printf("dates model, 30 steps: loss %.4f -> %.4f, token accuracy %.3f -> %.3f\n", before.loss, after.loss,
           before.token_accuracy, after.token_accuracy);
    assert_true(after.loss < 0.8 * before.loss);
    assert_true(after.token_accuracy > before.token_accuracy);
    assert_false(isnan(after.beam_exact));
    /* beam search returns a sequence no longer than asked; beam 1 equals greedy's tokens */
    int64_t out[16];
    int64_t n = dc_seq2seq_beam(model, d->src_t, dc_s2s_src_len(d, 0), 4, 12, out);
    assert_true(n >= 0 && n <= 12);
    int64_t g1[16];
    n = dc_seq2seq_beam(model, d->src_t, dc_s2s_src_len(d, 0), 1, 12, g1);
    dc_s2s_batch b;
    TL_OK(dc_s2s_collate(d, (int64_t[]){0}, 1, &b));
    int64_t greedy[16];
    TL_OK(dc_seq2seq_greedy(model, &b, 12, NULL, greedy, NULL));
    for (int64_t t = 0; t < n; t++) assert_int_equal(g1[t], greedy[t]);
    dc_s2s_batch_free(&b);

    /* config survives the checkpoint metadata */
    const char *const *md = dc_s2s_config_metadata(dc_seq2seq_config(model));
    char file[] = "/tmp/deepc_test_s2s_XXXXXX";
    int fd = mkstemp(file);
    assert_true(fd >= 0);
    close(fd);
    TL_OK(dc_module_save(model, file, md));
    dc_safetensors *st = TL_CHECK(dc_safetensors_open(file));
    dc_s2s_config back;
    TL_OK(dc_s2s_config_from_file(st, &back));
    assert_int_equal(back.cell, DC_LSTM);
    assert_int_equal(back.attention, DC_ATTN_ADDITIVE);
    assert_int_equal(back.hidden, 16);
    assert_int_equal(back.embed, 8);
    dc_module *again = TL_CHECK(dc_seq2seq_new(&back));
    TL_OK(dc_module_load_state_dict(again, st, true));
    dc_safetensors_close(st);
    unlink(file);
    dc_module_free(again);

    dc_optimizer_free(opt);
    dc_tensor_list_free(p);
    dc_s2s_dataset_free(d);
    dc_module_free(model);
}

static void test_bad_input(void **s)
{
    (void)s;
    dc_s2s_config bad = {DC_S2S_REVERSE, DC_RNN_RELU, DC_ATTN_DOT, 8, 0, 1, 5};
    assert_null(dc_seq2seq_new(&bad));
    dc_s2s_config cfg = {DC_S2S_REVERSE, DC_GRU, DC_ATTN_DOT, 8, 0, 1, 5};
    dc_module *model = TL_CHECK(dc_seq2seq_new(&cfg));
    dc_s2s_dataset *d = TL_CHECK(dc_s2s_dates_dataset(4, 1));
    dc_s2s_batch b;
    TL_OK(dc_s2s_collate(d, (int64_t[]){0, 1}, 2, &b));
    dc_pool_mark m = dc_pool_push();
    assert_null(dc_seq2seq_loss(model, &b, 0, NULL)); /* a dates batch for a reverse model */
    assert_int_not_equal(dc_seq2seq_greedy(model, &b, 0, NULL, NULL, NULL), DC_OK);
    assert_int_equal(dc_seq2seq_beam(model, (int64_t[]){5}, 1, 3, 4, (int64_t[4]){0}), -1);
    dc_s2s_eval ev;
    assert_int_not_equal(dc_seq2seq_evaluate(model, d, 8, 1, &ev), DC_OK);
    dc_pool_pop(m);
    dc_s2s_batch_free(&b);
    /* a checkpoint of another model */
    dc_module *lin = TL_CHECK(dc_linear_new(2, 2, true));
    char file[] = "/tmp/deepc_test_s2s_XXXXXX";
    int fd = mkstemp(file);
    close(fd);
    TL_OK(dc_module_save(lin, file, NULL));
    dc_safetensors *st = TL_CHECK(dc_safetensors_open(file));
    dc_s2s_config back;
    assert_int_equal(dc_s2s_config_from_file(st, &back), DC_ERR_FORMAT);
    assert_non_null(strstr(dc_last_error(), "not a deepc seq2seq checkpoint"));
    dc_safetensors_close(st);
    unlink(file);
    dc_module_free(lin);
    dc_s2s_dataset_free(d);
    dc_module_free(model);
    dc_clear_error();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_rnn_dot),
        cmocka_unit_test(test_model_gru_general),
        cmocka_unit_test(test_model_lstm_additive_tf),
        cmocka_unit_test(test_model_rnn_additive),
        cmocka_unit_test(test_model_tokens_free_running),
        cmocka_unit_test(test_model_tokens_teacher_forced),
        cmocka_unit_test(test_reverse_data_and_collate),
        cmocka_unit_test(test_dates_grammar),
        cmocka_unit_test(test_training_lowers_loss_and_decodes),
        cmocka_unit_test(test_bad_input),
    };
    return TL_RUN(tests);
}
