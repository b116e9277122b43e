/* optim_internal.h: what the optimizer, update-kernel and scheduler files of src/optim share:
 * the optimizer's group and per-parameter state layout, and the fused update loops. */
#ifndef DEEPC_OPTIM_INTERNAL_H
#define DEEPC_OPTIM_INTERNAL_H

#include "core/internal.h"
#include "deepc/optim.h"

typedef struct optim_group {
    dc_optim_options o;
    double initial_lr;   /* PyTorch's group['initial_lr'], set by the first scheduler */
    bool has_initial_lr;
    int first, count;    /* the group's parameters: opt->params[first .. first + count) */
} optim_group;

/* PyTorch's optimizer.state[p] */
typedef struct param_state {
    bool initialized;
    float step;          /* torch 1.13 keeps step as a float32 tensor */
    dc_tensor *exp_avg, *exp_avg_sq, *max_exp_avg_sq, *momentum_buffer; /* owned, or NULL */
} param_state;

struct dc_optimizer {
    dc_optim_kind kind;
    int n_groups, cap_groups;
    optim_group *groups;
    int n_params, cap_params;
    dc_tensor **params;  /* retained */
    param_state *state;  /* parallel to params */
};

/* ---- fused update loops (update.c) ---------------------------------------------------- */

typedef struct sgd_consts {
    float lr_neg, wd, momentum, one_minus_dampening;
    bool nesterov, maximize, first; /* first: the momentum buffer starts as the update */
} sgd_consts;
void dc__sgd_update(float *p, const float *g, float *buf, int64_t n, sgd_consts c);

typedef struct adam_consts {
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float wd;          /* Adam: L2 added to the gradient */
    float decay;       /* AdamW: p *= decay (= 1 - lr * wd) before the update; 1 for Adam */
    float bc2_sqrt;    /* sqrt(1 - beta2^step) */
    float eps;
    float step_size_neg; /* -lr / (1 - beta1^step) */
    bool maximize;
} adam_consts;
/* vmax NULL: no amsgrad */
void dc__adam_update(float *p, const float *g, float *m, float *v, float *vmax, int64_t n,
                     adam_consts c);

/* Scheduler helpers (optimizer.c) */
struct cJSON;
/* A JSON number that reads back as exactly v (%.17g; null if not finite). */
struct cJSON *dc__json_exact(double v);
optim_group *dc__optim_group(dc_optimizer *opt, int g);

#endif /* DEEPC_OPTIM_INTERNAL_H */
