/* scheduler.c: learning-rate schedulers (StepLR, MultiStepLR, CosineAnnealingLR, LinearLR,
 * OneCycleLR) with the formulas of torch/optim/lr_scheduler.py (torch 1.13).
 *
 * PyTorch's schedulers are "chainable": each step computes the new lr from the group's
 * current lr (a recursive form), not from a closed form in the step number. The two differ in
 * the last bits, so we evaluate the same expressions, in the same order, in double precision
 * (Python floats). The compiler must not fuse a * b + c into an FMA here, since Python does
 * not: contraction is switched off for this file (the library builds with -ffp-contract=fast).
 */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>

#include <cjson/cJSON.h>

#include "optim_internal.h"

typedef enum sched_kind { S_STEP, S_MULTISTEP, S_COSINE, S_LINEAR, S_ONECYCLE } sched_kind;

static const char *const sched_names[] = {"StepLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR",
                                          "OneCycleLR"};

/* OneCycleLR phase: the group values it anneals between */
enum { V_INITIAL, V_MAX, V_MIN, V_MAX_MOM, V_BASE_MOM, V_COUNT };
typedef struct cycle_phase {
    double end_step;
    int start_lr, end_lr, start_mom, end_mom; /* V_* */
} cycle_phase;

struct dc_scheduler {
    sched_kind kind;
    dc_optimizer *opt;
    int n_groups;
    int64_t last_epoch, step_count;
    double *base_lrs, *last_lrs;
    /* StepLR / MultiStepLR */
    int64_t step_size;
    double gamma;
    int n_milestones;
    int64_t *milestones;
    /* CosineAnnealingLR */
    int64_t T_max;
    double eta_min;
    /* LinearLR */
    double start_factor, end_factor;
    int64_t total_iters;
    /* OneCycleLR */
    dc_one_cycle_options oc;
    double (*values)[V_COUNT]; /* per group: initial, max, min lr; max, base momentum */
    int n_phases;
    cycle_phase phases[3];
};

/* ---------------------------------------------------------------------------------------
 * get_lr of each scheduler (the new lr of group g at s->last_epoch)
 * ------------------------------------------------------------------------------------- */

static double anneal(const dc_scheduler *s, double start, double end, double pct)
{
    if (s->oc.anneal_linear) return (end - start) * pct + start;
    double cos_out = cos(M_PI * pct) + 1;
    return end + (start - end) / 2.0 * cos_out;
}

static dc_status get_lr(dc_scheduler *s, int g, double *out)
{
    optim_group *gr = &s->opt->groups[g];
    double lr = gr->o.lr;
    int64_t e = s->last_epoch;
    switch (s->kind) {
    case S_STEP:
        *out = (e == 0 || e % s->step_size != 0) ? lr : lr * s->gamma;
        return DC_OK;
    case S_MULTISTEP: {
        int count = 0;
        for (int i = 0; i < s->n_milestones; i++) count += s->milestones[i] == e;
        *out = count == 0 ? lr : lr * pow(s->gamma, (double)count);
        return DC_OK;
    }
    case S_COSINE: {
        double T = (double)s->T_max, eta = s->eta_min, base = s->base_lrs[g];
        if (e == 0)
            *out = lr;
        else if (s->step_count == 1 && e > 0)
            *out = eta + (base - eta) * (1 + cos((double)e * M_PI / T)) / 2;
        else if ((e - 1 - s->T_max) % (2 * s->T_max) == 0)
            *out = lr + (base - eta) * (1 - cos(M_PI / T)) / 2;
        else
            *out = (1 + cos(M_PI * (double)e / T)) / (1 + cos(M_PI * (double)(e - 1) / T)) * (lr - eta) + eta;
        return DC_OK;
    }
    case S_LINEAR: {
        double sf = s->start_factor, ef = s->end_factor;
        if (e == 0)
            *out = lr * sf;
        else if (e > s->total_iters)
            *out = lr;
        else
            *out = lr * (1. + (ef - sf) / ((double)s->total_iters * sf + (double)(e - 1) * (ef - sf)));
        return DC_OK;
    }
    case S_ONECYCLE: {
        if (e > s->oc.total_steps)
            return dc_set_error(DC_ERR_STATE, "OneCycleLR: tried to step %lld times; the specified number of total steps is %lld",
                                (long long)(e + 1), (long long)s->oc.total_steps);
        const double *v = s->values[g];
        double start_step = 0, computed_lr = lr, computed_mom = 0;
        for (int i = 0; i < s->n_phases; i++) {
            const cycle_phase *ph = &s->phases[i];
            if ((double)e <= ph->end_step || i == s->n_phases - 1) {
                double pct = ((double)e - start_step) / (ph->end_step - start_step);
                computed_lr = anneal(s, v[ph->start_lr], v[ph->end_lr], pct);
                if (s->oc.cycle_momentum) computed_mom = anneal(s, v[ph->start_mom], v[ph->end_mom], pct);
                break;
            }
            start_step = ph->end_step;
        }
        if (s->oc.cycle_momentum) {
            if (s->opt->kind == DC_OPTIM_SGD)
                gr->o.momentum = computed_mom;
            else
                gr->o.beta1 = computed_mom;
        }
        *out = computed_lr;
        return DC_OK;
    }
    }
    return dc_set_error(DC_ERR_STATE, "scheduler: unknown kind");
}

dc_status dc_scheduler_step(dc_scheduler *s)
{
    if (!s) return dc_set_error(DC_ERR_ARG, "scheduler_step: NULL scheduler");
    if (s->n_groups != s->opt->n_groups)
        return dc_set_error(DC_ERR_STATE, "%s: the optimizer has %d parameter groups, the scheduler was made for %d",
                            sched_names[s->kind], s->opt->n_groups, s->n_groups);
    s->step_count++;
    s->last_epoch++;
    for (int g = 0; g < s->n_groups; g++) {
        double lr = 0;
        if (get_lr(s, g, &lr)) {
            s->last_epoch--; /* leave the scheduler where it was */
            s->step_count--;
            return dc_last_status();
        }
        s->opt->groups[g].o.lr = lr;
        s->last_lrs[g] = lr;
    }
    return DC_OK;
}

double dc_scheduler_get_last_lr(const dc_scheduler *s, int g)
{
    if (!s || g < 0 || g >= s->n_groups) return NAN;
    return s->last_lrs[g];
}

int64_t dc_scheduler_last_epoch(const dc_scheduler *s) { return s ? s->last_epoch : -1; }

void dc_scheduler_free(dc_scheduler *s)
{
    if (!s) return;
    free(s->base_lrs);
    free(s->last_lrs);
    free(s->milestones);
    free(s->values);
    free(s);
}

/* ---------------------------------------------------------------------------------------
 * Construction: PyTorch's _LRScheduler.__init__ (initial_lr, base_lrs, initial step)
 * ------------------------------------------------------------------------------------- */

static dc_scheduler *sched_alloc(dc_optimizer *opt, sched_kind kind)
{
    if (!opt) {
        dc_set_error(DC_ERR_ARG, "%s: NULL optimizer", sched_names[kind]);
        return NULL;
    }
    dc_scheduler *s = dc__calloc(1, sizeof *s);
    if (!s) return NULL;
    s->kind = kind;
    s->opt = opt;
    s->n_groups = opt->n_groups;
    s->last_epoch = -1;
    s->base_lrs = dc__calloc((size_t)s->n_groups + 1, sizeof(double));
    s->last_lrs = dc__calloc((size_t)s->n_groups + 1, sizeof(double));
    if (!s->base_lrs || !s->last_lrs) {
        dc_scheduler_free(s);
        return NULL;
    }
    return s;
}

static dc_scheduler *sched_start(dc_scheduler *s)
{
    for (int g = 0; g < s->n_groups; g++) {
        optim_group *gr = &s->opt->groups[g];
        if (!gr->has_initial_lr) { /* group.setdefault('initial_lr', group['lr']) */
            gr->initial_lr = gr->o.lr;
            gr->has_initial_lr = true;
        }
        s->base_lrs[g] = gr->initial_lr;
    }
    if (dc_scheduler_step(s)) {
        dc_scheduler_free(s);
        return NULL;
    }
    return s;
}

dc_scheduler *dc_step_lr_new(dc_optimizer *opt, int64_t step_size, double gamma)
{
    if (step_size <= 0) {
        dc_set_error(DC_ERR_ARG, "StepLR: step_size must be positive, got %lld", (long long)step_size);
        return NULL;
    }
    dc_scheduler *s = sched_alloc(opt, S_STEP);
    if (!s) return NULL;
    s->step_size = step_size;
    s->gamma = gamma;
    return sched_start(s);
}

dc_scheduler *dc_multi_step_lr_new(dc_optimizer *opt, int n, const int64_t *milestones, double gamma)
{
    if (n < 0 || (n > 0 && !milestones)) {
        dc_set_error(DC_ERR_ARG, "MultiStepLR: %d milestones from a NULL array", n);
        return NULL;
    }
    dc_scheduler *s = sched_alloc(opt, S_MULTISTEP);
    if (!s) return NULL;
    s->milestones = dc__malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!s->milestones) {
        dc_scheduler_free(s);
        return NULL;
    }
    if (n) memcpy(s->milestones, milestones, (size_t)n * sizeof(int64_t));
    s->n_milestones = n;
    s->gamma = gamma;
    return sched_start(s);
}

dc_scheduler *dc_cosine_annealing_lr_new(dc_optimizer *opt, int64_t T_max, double eta_min)
{
    if (T_max <= 0) {
        dc_set_error(DC_ERR_ARG, "CosineAnnealingLR: T_max must be positive, got %lld", (long long)T_max);
        return NULL;
    }
    dc_scheduler *s = sched_alloc(opt, S_COSINE);
    if (!s) return NULL;
    s->T_max = T_max;
    s->eta_min = eta_min;
    return sched_start(s);
}

dc_scheduler *dc_linear_lr_new(dc_optimizer *opt, double start_factor, double end_factor, int64_t total_iters)
{
    if (!(start_factor > 0 && start_factor <= 1) || !(end_factor >= 0 && end_factor <= 1) || total_iters <= 0) {
        /* PyTorch accepts start_factor 0 but then divides by zero on the second step */
        dc_set_error(DC_ERR_ARG, "LinearLR: need 0 < start_factor <= 1, 0 <= end_factor <= 1, total_iters > 0 (got %g, %g, %lld)",
                     start_factor, end_factor, (long long)total_iters);
        return NULL;
    }
    dc_scheduler *s = sched_alloc(opt, S_LINEAR);
    if (!s) return NULL;
    s->start_factor = start_factor;
    s->end_factor = end_factor;
    s->total_iters = total_iters;
    return sched_start(s);
}

dc_one_cycle_options dc_one_cycle_options_default(double max_lr, int64_t total_steps)
{
    return (dc_one_cycle_options){
        .max_lr = max_lr,
        .total_steps = total_steps,
        .pct_start = 0.3,
        .anneal_linear = false,
        .cycle_momentum = true,
        .base_momentum = 0.85,
        .max_momentum = 0.95,
        .div_factor = 25.,
        .final_div_factor = 1e4,
        .three_phase = false,
    };
}

dc_scheduler *dc_one_cycle_lr_new(dc_optimizer *opt, dc_one_cycle_options o)
{
    if (o.total_steps <= 0 || !(o.pct_start >= 0 && o.pct_start <= 1) || !(o.max_lr >= 0) ||
        !(o.div_factor > 0) || !(o.final_div_factor > 0)) {
        dc_set_error(DC_ERR_ARG, "OneCycleLR: bad options (total_steps %lld, pct_start %g, max_lr %g, div_factor %g, final_div_factor %g)",
                     (long long)o.total_steps, o.pct_start, o.max_lr, o.div_factor, o.final_div_factor);
        return NULL;
    }
    dc_scheduler *s = sched_alloc(opt, S_ONECYCLE);
    if (!s) return NULL;
    s->oc = o;
    double total = (double)o.total_steps;
    if (o.three_phase) {
        s->n_phases = 3;
        s->phases[0] = (cycle_phase){o.pct_start * total - 1, V_INITIAL, V_MAX, V_MAX_MOM, V_BASE_MOM};
        s->phases[1] = (cycle_phase){2 * o.pct_start * total - 2, V_MAX, V_INITIAL, V_BASE_MOM, V_MAX_MOM};
        s->phases[2] = (cycle_phase){total - 1, V_INITIAL, V_MIN, V_MAX_MOM, V_MAX_MOM};
    } else {
        s->n_phases = 2;
        s->phases[0] = (cycle_phase){o.pct_start * total - 1, V_INITIAL, V_MAX, V_MAX_MOM, V_BASE_MOM};
        s->phases[1] = (cycle_phase){total - 1, V_MAX, V_MIN, V_BASE_MOM, V_MAX_MOM};
    }
    s->values = dc__calloc((size_t)s->n_groups + 1, sizeof *s->values);
    if (!s->values) {
        dc_scheduler_free(s);
        return NULL;
    }
    for (int g = 0; g < s->n_groups; g++) {
        optim_group *gr = &opt->groups[g];
        double *v = s->values[g];
        v[V_INITIAL] = o.max_lr / o.div_factor;
        v[V_MAX] = o.max_lr;
        v[V_MIN] = v[V_INITIAL] / o.final_div_factor;
        v[V_MAX_MOM] = o.max_momentum;
        v[V_BASE_MOM] = o.base_momentum;
        gr->initial_lr = v[V_INITIAL];
        gr->has_initial_lr = true;
        if (o.cycle_momentum) {
            if (opt->kind == DC_OPTIM_SGD)
                gr->o.momentum = o.max_momentum;
            else
                gr->o.beta1 = o.max_momentum;
        }
    }
    return sched_start(s);
}

/* ---------------------------------------------------------------------------------------
 * State in optimizer checkpoints (see dc_optimizer_save)
 * ------------------------------------------------------------------------------------- */

char *dc__scheduler_state_json(const dc_scheduler *s)
{
    cJSON *j = cJSON_CreateObject();
    char *text = NULL;
    if (j) {
        cJSON_AddStringToObject(j, "type", sched_names[s->kind]);
        cJSON_AddNumberToObject(j, "last_epoch", (double)s->last_epoch);
        cJSON_AddNumberToObject(j, "step_count", (double)s->step_count);
        cJSON *b = cJSON_AddArrayToObject(j, "base_lrs"), *l = cJSON_AddArrayToObject(j, "last_lrs");
        for (int g = 0; b && l && g < s->n_groups; g++) {
            cJSON_AddItemToArray(b, dc__json_exact(s->base_lrs[g]));
            cJSON_AddItemToArray(l, dc__json_exact(s->last_lrs[g]));
        }
        text = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
    }
    if (!text) dc_set_error(DC_ERR_OOM, "optimizer_save: out of memory writing the scheduler state");
    return text;
}

static bool number_array(const cJSON *a, int n)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return false;
    for (int i = 0; i < n; i++)
        if (!cJSON_IsNumber(cJSON_GetArrayItem(a, i))) return false;
    return true;
}

dc_status dc__scheduler_check_json(const dc_scheduler *s, const char *json, const char *file)
{
    cJSON *j = cJSON_Parse(json);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    bool ok = cJSON_IsString(type) && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "last_epoch")) &&
              cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "step_count")) &&
              number_array(cJSON_GetObjectItemCaseSensitive(j, "base_lrs"), s->n_groups) &&
              number_array(cJSON_GetObjectItemCaseSensitive(j, "last_lrs"), s->n_groups);
    dc_status st = DC_OK;
    if (!ok)
        st = dc_set_error(DC_ERR_FORMAT, "optimizer_load (%s): scheduler metadata is malformed or has a different number of groups", file);
    else if (strcmp(type->valuestring, sched_names[s->kind]))
        st = dc_set_error(DC_ERR_FORMAT, "optimizer_load (%s): the file holds %s state, the scheduler is %s", file,
                          type->valuestring, sched_names[s->kind]);
    cJSON_Delete(j);
    return st;
}

void dc__scheduler_apply_json(dc_scheduler *s, const char *json)
{
    cJSON *j = cJSON_Parse(json);
    if (!j) return;
    s->last_epoch = (int64_t)cJSON_GetObjectItemCaseSensitive(j, "last_epoch")->valuedouble;
    s->step_count = (int64_t)cJSON_GetObjectItemCaseSensitive(j, "step_count")->valuedouble;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "base_lrs");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "last_lrs");
    for (int g = 0; g < s->n_groups; g++) {
        s->base_lrs[g] = cJSON_GetArrayItem(b, g)->valuedouble;
        s->last_lrs[g] = cJSON_GetArrayItem(l, g)->valuedouble;
    }
    cJSON_Delete(j);
}
