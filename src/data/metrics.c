/* metrics.c: classification metrics as scikit-learn defines them (accuracy_score,
 * precision_recall_fscore_support with zero_division=0, confusion_matrix), all derived from
 * one confusion matrix that can be filled batch by batch.
 *
 * For class k with tp = C[k][k], fp = sum_i C[i][k] - tp, fn = sum_j C[k][j] - tp:
 *   precision = tp / (tp + fp), recall = tp / (tp + fn), f1 = 2 tp / (2 tp + fp + fn)
 * (0 when the denominator is 0), support = tp + fn. Macro averages are the unweighted means
 * over the labels sklearn uses by default: those present in y_true or y_pred. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "deepc/data.h"

dc_status dc_metrics_init(dc_metrics *m, int num_classes)
{
    if (!m) return dc_set_error(DC_ERR_ARG, "metrics: NULL");
    if (num_classes < 1 || num_classes > DC_MAX_CLASSES)
        return dc_set_error(DC_ERR_ARG, "metrics: %d classes, expected 1..%d", num_classes, DC_MAX_CLASSES);
    memset(m, 0, sizeof *m);
    m->num_classes = num_classes;
    return DC_OK;
}

dc_status dc_metrics_update(dc_metrics *m, const int64_t *y_true, const int64_t *y_pred, int64_t n)
{
    if (!m || (n > 0 && (!y_true || !y_pred)) || n < 0) return dc_set_error(DC_ERR_ARG, "metrics_update: NULL input");
    const int k = m->num_classes;
    for (int64_t i = 0; i < n; i++)
        if (y_true[i] < 0 || y_true[i] >= k || y_pred[i] < 0 || y_pred[i] >= k)
            return dc_set_error(DC_ERR_ARG, "metrics_update: pair %lld (true %lld, predicted %lld) is outside classes 0..%d",
                                (long long)i, (long long)y_true[i], (long long)y_pred[i], k - 1);
    for (int64_t i = 0; i < n; i++) m->confusion[y_true[i]][y_pred[i]]++;
    m->total += n;
    return DC_OK;
}

static double safe_div(double a, double b) { return b != 0 ? a / b : 0.0; }

void dc_metrics_finalize(dc_metrics *m)
{
    const int k = m->num_classes;
    m->correct = 0;
    m->total = 0;
    double sp = 0, sr = 0, sf = 0;
    int present = 0;
    for (int c = 0; c < k; c++) {
        int64_t tp = m->confusion[c][c], row = 0, col = 0;
        for (int j = 0; j < k; j++) {
            row += m->confusion[c][j];
            col += m->confusion[j][c];
        }
        int64_t fp = col - tp, fn = row - tp;
        dc_class_metrics *pc = &m->per_class[c];
        pc->precision = safe_div((double)tp, (double)(tp + fp));
        pc->recall = safe_div((double)tp, (double)(tp + fn));
        pc->f1 = safe_div(2.0 * (double)tp, (double)(2 * tp + fp + fn));
        pc->support = row;
        m->correct += tp;
        m->total += row;
        if (row > 0 || col > 0) {
            present++;
            sp += pc->precision;
            sr += pc->recall;
            sf += pc->f1;
        }
    }
    m->accuracy = safe_div((double)m->correct, (double)m->total);
    m->precision = safe_div(sp, present);
    m->recall = safe_div(sr, present);
    m->f1 = safe_div(sf, present);
}

dc_status dc_metrics_compute(dc_metrics *m, int num_classes, const int64_t *y_true,
                             const int64_t *y_pred, int64_t n)
{
    if (dc_metrics_init(m, num_classes) || dc_metrics_update(m, y_true, y_pred, n)) return dc_last_status();
    dc_metrics_finalize(m);
    return DC_OK;
}

void dc_argmax_rows(const float *logits, int64_t n, int k, int64_t *out)
{
    for (int64_t i = 0; i < n; i++) {
        const float *row = logits + i * k;
        int best = 0;
        /* NaN never wins a '>' comparison; torch.argmax would pick it, but a NaN logit
         * already stops training with an error upstream */
        for (int j = 1; j < k; j++)
            if (row[j] > row[best]) best = j;
        out[i] = best;
    }
}

char *dc_metrics_json(const dc_metrics *m, double loss, const char *const *class_names)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    /* JSON has no NaN: a NaN loss (no loss measured) becomes null */
    if (isfinite(loss)) cJSON_AddNumberToObject(o, "loss", loss);
    else cJSON_AddNullToObject(o, "loss");
    cJSON_AddNumberToObject(o, "accuracy", m->accuracy);
    cJSON_AddNumberToObject(o, "precision", m->precision);
    cJSON_AddNumberToObject(o, "recall", m->recall);
    cJSON_AddNumberToObject(o, "f1", m->f1);
    cJSON_AddNumberToObject(o, "correct", (double)m->correct);
    cJSON_AddNumberToObject(o, "total", (double)m->total);
    cJSON *pcs = cJSON_AddArrayToObject(o, "per_class");
    cJSON *conf = cJSON_AddArrayToObject(o, "confusion");
    for (int c = 0; c < m->num_classes && pcs && conf; c++) {
        cJSON *pc = cJSON_CreateObject();
        if (!pc) break;
        if (class_names) cJSON_AddStringToObject(pc, "class", class_names[c]);
        else cJSON_AddNumberToObject(pc, "class", c);
        cJSON_AddNumberToObject(pc, "precision", m->per_class[c].precision);
        cJSON_AddNumberToObject(pc, "recall", m->per_class[c].recall);
        cJSON_AddNumberToObject(pc, "f1", m->per_class[c].f1);
        cJSON_AddNumberToObject(pc, "support", (double)m->per_class[c].support);
        cJSON_AddItemToArray(pcs, pc);
        cJSON *row = cJSON_CreateArray();
        if (!row) break;
        for (int j = 0; j < m->num_classes; j++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)m->confusion[c][j]));
        cJSON_AddItemToArray(conf, row);
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}
