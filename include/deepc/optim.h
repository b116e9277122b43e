/* deepc/optim.h: optimizers (SGD, Adam, AdamW), gradient clipping and learning-rate
 * schedulers, with PyTorch's update rules and formulas, and optimizer checkpoints.
 *
 *   dc_tensor_list *p = dc_module_named_parameters(net);
 *   dc_optim_options o = dc_adamw_options(1e-3);
 *   dc_optimizer *opt = dc_adamw_new(p->count, p->tensors, o);   // retains the parameters
 *   dc_tensor_list_free(p);
 *   dc_scheduler *sched = dc_one_cycle_lr_new(opt, dc_one_cycle_options(1e-2, steps));
 *   for (...) {
 *       dc_optimizer_zero_grad(opt);
 *       ... loss ...; dc_backward(loss, NULL, false);
 *       dc_clip_grad_norm_(opt_params..., 1.0, 2.0);
 *       dc_optimizer_step(opt);
 *       dc_scheduler_step(sched);
 *   }
 *   dc_optimizer_save(opt, "opt.safetensors", sched);     // resumes bit-exactly with _load
 *
 * Updates: one fused pass over each parameter (OpenMP, no temporaries), rounding as
 * PyTorch's single-tensor (foreach=False) CPU path does: scalars are cast to float, "x.add_(y,
 * alpha=a)" is one fused multiply-add, the Adam denominator is (sqrt(v) / sqrt(bc2)) + eps and
 * the step is p + (-lr/bc1 * m) / denom. Results match torch 1.13 to float rounding (see
 * tests/test_optim.c). Parameters without a gradient are skipped (and get no state), as in
 * PyTorch.
 */
#ifndef DEEPC_OPTIM_H
#define DEEPC_OPTIM_H

#include "deepc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Hyperparameters of one parameter group. Fields an optimizer does not use are ignored. */
typedef struct dc_optim_options {
    double lr;
    double weight_decay;
    bool maximize;
    /* SGD */
    double momentum;
    double dampening;
    bool nesterov;
    /* Adam / AdamW */
    double beta1, beta2;
    double eps;
    bool amsgrad;
} dc_optim_options;

/* PyTorch's defaults for each optimizer (lr is required, as in PyTorch). */
dc_optim_options dc_sgd_options(double lr);   /* momentum 0, dampening 0, nesterov off, wd 0 */
dc_optim_options dc_adam_options(double lr);  /* betas (0.9, 0.999), eps 1e-8, wd 0 */
dc_optim_options dc_adamw_options(double lr); /* as Adam with wd 1e-2 (decoupled) */

typedef enum dc_optim_kind { DC_OPTIM_SGD = 0, DC_OPTIM_ADAM, DC_OPTIM_ADAMW } dc_optim_kind;

typedef struct dc_optimizer dc_optimizer;

/* An optimizer over n parameters (F32, contiguous, CPU) as its first parameter group. The
 * optimizer retains the parameters. NULL with an error for invalid hyperparameters (the
 * checks PyTorch's constructors make). */
dc_optimizer *dc_sgd_new(int n, dc_tensor *const *params, dc_optim_options options);
dc_optimizer *dc_adam_new(int n, dc_tensor *const *params, dc_optim_options options);
dc_optimizer *dc_adamw_new(int n, dc_tensor *const *params, dc_optim_options options);
dc_optimizer *dc_optimizer_new(dc_optim_kind kind, int n, dc_tensor *const *params,
                               dc_optim_options options);
void dc_optimizer_free(dc_optimizer *opt);
dc_optim_kind dc_optimizer_kind(const dc_optimizer *opt);

/* Another parameter group with its own hyperparameters (PyTorch's add_param_group). A
 * parameter may appear in only one group. */
dc_status dc_optimizer_add_param_group(dc_optimizer *opt, int n, dc_tensor *const *params,
                                       dc_optim_options options);
int dc_optimizer_num_groups(const dc_optimizer *opt);
/* The hyperparameters of group g, writable (lr, betas, weight decay, ...); NULL if no such
 * group. Schedulers write lr (and momentum / beta1) here. */
dc_optim_options *dc_optimizer_group(dc_optimizer *opt, int g);
/* lr of group g (NAN if absent); set_lr with g < 0 sets every group. */
double dc_optimizer_get_lr(const dc_optimizer *opt, int g);
dc_status dc_optimizer_set_lr(dc_optimizer *opt, int g, double lr);
/* Parameters of all groups in order (borrowed). */
int dc_optimizer_num_params(const dc_optimizer *opt);
dc_tensor *dc_optimizer_param(const dc_optimizer *opt, int i);

/* One update of every parameter that has a gradient. */
dc_status dc_optimizer_step(dc_optimizer *opt);
/* Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)); the next
 * backward writes fresh gradients without a zeroing pass. */
void dc_optimizer_zero_grad(dc_optimizer *opt);

/* torch.nn.utils.clip_grad_norm_: total = norm over all gradients (norm_type p > 0, or
 * INFINITY for the max norm); gradients are scaled by min(1, max_norm / (total + 1e-6)).
 * Parameters without gradient are skipped. Returns total (NAN with an error on bad input;
 * 0 when no parameter has a gradient). Deterministic for any thread count. */
double dc_clip_grad_norm_(int n, dc_tensor *const *params, double max_norm, double norm_type);
/* torch.nn.utils.clip_grad_value_: clamps every gradient element to [-clip, clip]. */
dc_status dc_clip_grad_value_(int n, dc_tensor *const *params, double clip_value);

/* ---------------------------------------------------------------------------------------
 * Learning-rate schedulers. Each constructor sets the groups' initial lr (PyTorch's
 * "initial_lr") and performs PyTorch's initial step (last_epoch -1 -> 0). Call
 * dc_scheduler_step once after each dc_optimizer_step (or epoch). lr values follow PyTorch's
 * chainable (recursive) formulas in double precision, so the sequences equal PyTorch's.
 * A scheduler points at its optimizer: free it before the optimizer.
 * ------------------------------------------------------------------------------------- */

typedef struct dc_scheduler dc_scheduler;

/* lr *= gamma every step_size steps */
dc_scheduler *dc_step_lr_new(dc_optimizer *opt, int64_t step_size, double gamma);
/* lr *= gamma at each milestone (a repeated milestone multiplies repeatedly) */
dc_scheduler *dc_multi_step_lr_new(dc_optimizer *opt, int n_milestones, const int64_t *milestones,
                                   double gamma);
/* cosine from the base lr down to eta_min over T_max steps (and back up, periodically) */
dc_scheduler *dc_cosine_annealing_lr_new(dc_optimizer *opt, int64_t T_max, double eta_min);
/* factor from start_factor to end_factor linearly over total_iters steps (warm-up) */
dc_scheduler *dc_linear_lr_new(dc_optimizer *opt, double start_factor, double end_factor,
                               int64_t total_iters);

typedef struct dc_one_cycle_options {
    double max_lr;       /* for every group */
    int64_t total_steps;
    double pct_start;    /* 0.3 */
    bool anneal_linear;  /* false: cosine (PyTorch's default 'cos') */
    bool cycle_momentum; /* true: SGD momentum / Adam beta1 cycles max -> base -> max */
    double base_momentum, max_momentum; /* 0.85, 0.95 */
    double div_factor;       /* 25: initial lr = max_lr / div_factor */
    double final_div_factor; /* 1e4: min lr = initial lr / final_div_factor */
    bool three_phase;        /* false */
} dc_one_cycle_options;
dc_one_cycle_options dc_one_cycle_options_default(double max_lr, int64_t total_steps);
dc_scheduler *dc_one_cycle_lr_new(dc_optimizer *opt, dc_one_cycle_options options);

/* Advances one step and writes the new lr (and momentum) into the optimizer's groups. */
dc_status dc_scheduler_step(dc_scheduler *s);
/* The lr the last step set for group g (PyTorch's get_last_lr()[g]). */
double dc_scheduler_get_last_lr(const dc_scheduler *s, int g);
int64_t dc_scheduler_last_epoch(const dc_scheduler *s);
void dc_scheduler_free(dc_scheduler *s);

/* ---------------------------------------------------------------------------------------
 * Checkpoints: a safetensors file with PyTorch's optimizer state names
 *   state.<i>.step (F32 0-dim), state.<i>.exp_avg, state.<i>.exp_avg_sq,
 *   state.<i>.max_exp_avg_sq (amsgrad), state.<i>.momentum_buffer
 * (i = the parameter's index over all groups, as in optimizer.state_dict()), and metadata
 * "optimizer" (SGD/Adam/AdamW), "param_groups" (JSON: each group's hyperparameters,
 * initial_lr and param indices, as PyTorch's param_groups) and, when a scheduler is given,
 * "scheduler" (JSON: its type, last_epoch, step count, base lrs).
 * Resuming: build the model, optimizer and scheduler as at the start, then load; the next
 * steps equal those of an uninterrupted run bit for bit.
 * ------------------------------------------------------------------------------------- */
dc_status dc_optimizer_save(const dc_optimizer *opt, const char *path, const dc_scheduler *sched);
/* Everything is checked (optimizer type, group and parameter counts, state shapes) before
 * anything changes. sched may be NULL (a scheduler saved in the file is then ignored). */
dc_status dc_optimizer_load(dc_optimizer *opt, const char *path, dc_scheduler *sched);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_OPTIM_H */
