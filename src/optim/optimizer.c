/* optimizer.c: the optimizer object of deepc/optim.h: parameter groups with their
 * hyperparameters, per-parameter state (PyTorch's optimizer.state), step dispatch to the
 * fused loops of update.c, zero_grad, and saving/loading the state as safetensors. */
#include <math.h>

#include <cjson/cJSON.h>

#include "deepc/io.h"
#include "optim_internal.h"

static const char *kind_name(dc_optim_kind k)
{
    switch (k) {
    case DC_OPTIM_SGD: return "SGD";
    case DC_OPTIM_ADAM: return "Adam";
    case DC_OPTIM_ADAMW: return "AdamW";
    }
    return "?";
}

dc_optim_options dc_sgd_options(double lr)
{
    return (dc_optim_options){.lr = lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
}

dc_optim_options dc_adam_options(double lr)
{
    return (dc_optim_options){.lr = lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
}

dc_optim_options dc_adamw_options(double lr)
{
    dc_optim_options o = dc_adam_options(lr);
    o.weight_decay = 1e-2;
    return o;
}

/* The checks of PyTorch's constructors. */
static dc_status check_options(dc_optim_kind kind, const dc_optim_options *o)
{
    const char *k = kind_name(kind);
    if (!(o->lr >= 0)) return dc_set_error(DC_ERR_ARG, "%s: invalid learning rate: %g", k, o->lr);
    if (!(o->weight_decay >= 0))
        return dc_set_error(DC_ERR_ARG, "%s: invalid weight_decay value: %g", k, o->weight_decay);
    if (kind == DC_OPTIM_SGD) {
        if (!(o->momentum >= 0)) return dc_set_error(DC_ERR_ARG, "SGD: invalid momentum value: %g", o->momentum);
        if (o->nesterov && (o->momentum <= 0 || o->dampening != 0))
            return dc_set_error(DC_ERR_ARG, "SGD: nesterov momentum requires a momentum and zero dampening (momentum %g, dampening %g)",
                                o->momentum, o->dampening);
    } else {
        if (!(o->eps >= 0)) return dc_set_error(DC_ERR_ARG, "%s: invalid epsilon value: %g", k, o->eps);
        if (!(o->beta1 >= 0 && o->beta1 < 1))
            return dc_set_error(DC_ERR_ARG, "%s: invalid beta parameter at index 0: %g", k, o->beta1);
        if (!(o->beta2 >= 0 && o->beta2 < 1))
            return dc_set_error(DC_ERR_ARG, "%s: invalid beta parameter at index 1: %g", k, o->beta2);
    }
    return DC_OK;
}

static dc_status check_param(dc_optimizer *opt, const dc_tensor *p, int i)
{
    const char *k = kind_name(opt->kind);
    if (!p) return dc_set_error(DC_ERR_ARG, "%s: parameter %d is NULL", k, i);
    if (p->dtype != DC_F32)
        return dc_set_error(DC_ERR_DTYPE, "%s: parameter %d is %s; optimizers update F32 tensors", k, i,
                            dc_dtype_name(p->dtype));
    if (p->grad_fn)
        return dc_set_error(DC_ERR_ARG, "%s: can't optimize a non-leaf tensor (parameter %d is a %s result)",
                            k, i, p->grad_fn->op);
    if (!dc_is_contiguous(p) || p->storage->device != DC_CPU)
        return dc_set_error(DC_ERR_ARG, "%s: parameter %d must be a contiguous CPU tensor", k, i);
    for (int j = 0; j < opt->n_params; j++)
        if (opt->params[j] == p)
            return dc_set_error(DC_ERR_ARG, "%s: some parameters appear in more than one parameter group (parameter %d)",
                                k, i);
    return DC_OK;
}

dc_status dc_optimizer_add_param_group(dc_optimizer *opt, int n, dc_tensor *const *params,
                                       dc_optim_options options)
{
    if (!opt) return dc_set_error(DC_ERR_ARG, "add_param_group: NULL optimizer");
    if (n < 0 || (n > 0 && !params))
        return dc_set_error(DC_ERR_ARG, "%s: %d parameters from a NULL array", kind_name(opt->kind), n);
    if (check_options(opt->kind, &options)) return dc_last_status();
    for (int i = 0; i < n; i++) {
        if (check_param(opt, params[i], i)) return dc_last_status();
        for (int j = 0; j < i; j++)
            if (params[j] == params[i])
                return dc_set_error(DC_ERR_ARG, "%s: parameter %d appears twice in the group", kind_name(opt->kind), i);
    }
    if (opt->n_groups == opt->cap_groups) {
        int nc = opt->cap_groups ? opt->cap_groups * 2 : 2;
        optim_group *g = dc__realloc(opt->groups, (size_t)nc * sizeof *g);
        if (!g) return dc_last_status();
        opt->groups = g;
        opt->cap_groups = nc;
    }
    if (opt->n_params + n > opt->cap_params) {
        int nc = opt->cap_params ? opt->cap_params : 8;
        while (nc < opt->n_params + n) nc *= 2;
        dc_tensor **np = dc__realloc(opt->params, (size_t)nc * sizeof *np);
        if (!np) return dc_last_status();
        opt->params = np;
        param_state *ns = dc__realloc(opt->state, (size_t)nc * sizeof *ns);
        if (!ns) return dc_last_status();
        opt->state = ns;
        opt->cap_params = nc;
    }
    opt->groups[opt->n_groups++] = (optim_group){.o = options, .first = opt->n_params, .count = n};
    for (int i = 0; i < n; i++) {
        opt->params[opt->n_params] = dc_tensor_retain(params[i]);
        opt->state[opt->n_params] = (param_state){0};
        opt->n_params++;
    }
    return DC_OK;
}

dc_optimizer *dc_optimizer_new(dc_optim_kind kind, int n, dc_tensor *const *params,
                               dc_optim_options options)
{
    if ((unsigned)kind > DC_OPTIM_ADAMW) {
        dc_set_error(DC_ERR_ARG, "optimizer_new: unknown kind %d", (int)kind);
        return NULL;
    }
    dc_optimizer *opt = dc__calloc(1, sizeof *opt);
    if (!opt) return NULL;
    opt->kind = kind;
    if (dc_optimizer_add_param_group(opt, n, params, options)) {
        dc_optimizer_free(opt);
        return NULL;
    }
    return opt;
}

dc_optimizer *dc_sgd_new(int n, dc_tensor *const *params, dc_optim_options o) { return dc_optimizer_new(DC_OPTIM_SGD, n, params, o); }
dc_optimizer *dc_adam_new(int n, dc_tensor *const *params, dc_optim_options o) { return dc_optimizer_new(DC_OPTIM_ADAM, n, params, o); }
dc_optimizer *dc_adamw_new(int n, dc_tensor *const *params, dc_optim_options o) { return dc_optimizer_new(DC_OPTIM_ADAMW, n, params, o); }

static void state_clear(param_state *s)
{
    dc_tensor_release(s->exp_avg);
    dc_tensor_release(s->exp_avg_sq);
    dc_tensor_release(s->max_exp_avg_sq);
    dc_tensor_release(s->momentum_buffer);
    *s = (param_state){0};
}

void dc_optimizer_free(dc_optimizer *opt)
{
    if (!opt) return;
    for (int i = 0; i < opt->n_params; i++) {
        state_clear(&opt->state[i]);
        dc_tensor_release(opt->params[i]);
    }
    free(opt->params);
    free(opt->state);
    free(opt->groups);
    free(opt);
}

dc_optim_kind dc_optimizer_kind(const dc_optimizer *opt) { return opt ? opt->kind : DC_OPTIM_SGD; }
int dc_optimizer_num_groups(const dc_optimizer *opt) { return opt ? opt->n_groups : 0; }
int dc_optimizer_num_params(const dc_optimizer *opt) { return opt ? opt->n_params : 0; }

dc_tensor *dc_optimizer_param(const dc_optimizer *opt, int i)
{
    if (!opt || i < 0 || i >= opt->n_params) {
        dc_set_error(DC_ERR_ARG, "optimizer_param: index %d out of range", i);
        return NULL;
    }
    return opt->params[i];
}

optim_group *dc__optim_group(dc_optimizer *opt, int g)
{
    if (!opt || g < 0 || g >= opt->n_groups) {
        dc_set_error(DC_ERR_ARG, "optimizer: group %d out of range (%d groups)", g, opt ? opt->n_groups : 0);
        return NULL;
    }
    return &opt->groups[g];
}

dc_optim_options *dc_optimizer_group(dc_optimizer *opt, int g)
{
    optim_group *gr = dc__optim_group(opt, g);
    return gr ? &gr->o : NULL;
}

double dc_optimizer_get_lr(const dc_optimizer *opt, int g)
{
    if (!opt || g < 0 || g >= opt->n_groups) return NAN;
    return opt->groups[g].o.lr;
}

dc_status dc_optimizer_set_lr(dc_optimizer *opt, int g, double lr)
{
    if (!opt) return dc_set_error(DC_ERR_ARG, "optimizer_set_lr: NULL optimizer");
    if (!(lr >= 0)) return dc_set_error(DC_ERR_ARG, "optimizer_set_lr: invalid learning rate %g", lr);
    if (g >= opt->n_groups) return dc_set_error(DC_ERR_ARG, "optimizer_set_lr: group %d out of range (%d groups)", g, opt->n_groups);
    for (int i = g < 0 ? 0 : g; i < (g < 0 ? opt->n_groups : g + 1); i++) opt->groups[i].o.lr = lr;
    return DC_OK;
}

void dc_optimizer_zero_grad(dc_optimizer *opt)
{
    if (!opt) return;
    for (int i = 0; i < opt->n_params; i++) dc_zero_grad(opt->params[i]);
}

/* ---------------------------------------------------------------------------------------
 * step
 * ------------------------------------------------------------------------------------- */

/* A zero-filled F32 tensor like p, owned by the state (outside any pool). */
static dc_tensor *state_zeros(const dc_tensor *p)
{
    dc_pool_mark mark = dc_pool_push();
    dc_tensor *t = dc_tensor_retain(dc_zeros(DC_F32, p->ndim, p->shape));
    dc_pool_pop(mark);
    return t;
}

static dc_status check_grad(const dc_optimizer *opt, int i, const dc_tensor *p)
{
    const dc_tensor *g = p->grad;
    if (g->dtype != DC_F32 || !dc_same_shape(g, p) || !dc_is_contiguous(g)) {
        char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
        return dc_set_error(DC_ERR_ARG, "%s.step: parameter %d %s has a %s gradient %s (expected contiguous F32 of the same shape)",
                            kind_name(opt->kind), i, dc_shape_str(p, a, sizeof a), dc_dtype_name(g->dtype),
                            dc_shape_str(g, b, sizeof b));
    }
    return DC_OK;
}

static dc_status sgd_step(dc_optimizer *opt, const optim_group *gr)
{
    const dc_optim_options *o = &gr->o;
    for (int i = gr->first; i < gr->first + gr->count; i++) {
        dc_tensor *p = opt->params[i];
        if (!p->grad) continue;
        if (check_grad(opt, i, p)) return dc_last_status();
        param_state *s = &opt->state[i];
        s->initialized = true;
        bool first = false;
        if (o->momentum != 0 && !s->momentum_buffer) {
            s->momentum_buffer = state_zeros(p);
            if (!s->momentum_buffer) return dc_last_status();
            first = true;
        }
        sgd_consts c = {
            .lr_neg = (float)(-o->lr),
            .wd = (float)o->weight_decay,
            .momentum = (float)o->momentum,
            .one_minus_dampening = (float)(1 - o->dampening),
            .nesterov = o->nesterov,
            .maximize = o->maximize,
            .first = first,
        };
        dc__sgd_update(dc_data_f32(p), dc_data_f32(p->grad),
                       o->momentum != 0 ? dc_data_f32(s->momentum_buffer) : NULL, dc_numel(p), c);
    }
    return DC_OK;
}

static dc_status adam_step(dc_optimizer *opt, const optim_group *gr, bool decoupled)
{
    const dc_optim_options *o = &gr->o;
    for (int i = gr->first; i < gr->first + gr->count; i++) {
        dc_tensor *p = opt->params[i];
        if (!p->grad) continue;
        if (check_grad(opt, i, p)) return dc_last_status();
        param_state *s = &opt->state[i];
        if (!s->exp_avg) {
            s->exp_avg = state_zeros(p);
            s->exp_avg_sq = state_zeros(p);
            if (!s->exp_avg || !s->exp_avg_sq) return dc_last_status();
            s->step = 0;
        }
        if (o->amsgrad && !s->max_exp_avg_sq) {
            s->max_exp_avg_sq = state_zeros(p);
            if (!s->max_exp_avg_sq) return dc_last_status();
        }
        s->initialized = true;
        s->step += 1.0f;
        /* the Python side: step = step_t.item(); bias corrections in double */
        double step = s->step;
        double bc1 = 1 - pow(o->beta1, step);
        double bc2 = 1 - pow(o->beta2, step);
        double step_size = o->lr / bc1;
        adam_consts c = {
            .beta1 = (float)o->beta1,
            .one_minus_beta1 = (float)(1 - o->beta1),
            .beta2 = (float)o->beta2,
            .one_minus_beta2 = (float)(1 - o->beta2),
            .wd = decoupled ? 0.0f : (float)o->weight_decay,
            .decay = decoupled ? (float)(1 - o->lr * o->weight_decay) : 1.0f,
            .bc2_sqrt = (float)sqrt(bc2),
            .eps = (float)o->eps,
            .step_size_neg = (float)(-step_size),
            .maximize = o->maximize,
        };
        dc__adam_update(dc_data_f32(p), dc_data_f32(p->grad), dc_data_f32(s->exp_avg),
                        dc_data_f32(s->exp_avg_sq),
                        o->amsgrad ? dc_data_f32(s->max_exp_avg_sq) : NULL, dc_numel(p), c);
    }
    return DC_OK;
}

dc_status dc_optimizer_step(dc_optimizer *opt)
{
    if (!opt) return dc_set_error(DC_ERR_ARG, "optimizer_step: NULL optimizer");
    for (int g = 0; g < opt->n_groups; g++) {
        dc_status st = opt->kind == DC_OPTIM_SGD ? sgd_step(opt, &opt->groups[g])
                                                 : adam_step(opt, &opt->groups[g], opt->kind == DC_OPTIM_ADAMW);
        if (st) return st;
    }
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Checkpoints
 * ------------------------------------------------------------------------------------- */

#define MAX_STATE_KEYS 5
static const char *const state_keys[MAX_STATE_KEYS] = {"step", "exp_avg", "exp_avg_sq",
                                                       "max_exp_avg_sq", "momentum_buffer"};

static dc_tensor **state_slot(param_state *s, int k)
{
    switch (k) {
    case 1: return &s->exp_avg;
    case 2: return &s->exp_avg_sq;
    case 3: return &s->max_exp_avg_sq;
    case 4: return &s->momentum_buffer;
    default: return NULL;
    }
}

/* cJSON prints doubles with 15 significant digits when that reads back within an ulp, which
 * is not exact; a resumed run must get the very same lr, so numbers are written with %.17g. */
cJSON *dc__json_exact(double v)
{
    char buf[40];
    if (!isfinite(v)) return cJSON_CreateNull();
    snprintf(buf, sizeof buf, "%.17g", v);
    return cJSON_CreateRaw(buf);
}

static void add_exact(cJSON *obj, const char *key, double v) { cJSON_AddItemToObject(obj, key, dc__json_exact(v)); }

static cJSON *groups_json(const dc_optimizer *opt)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return NULL;
    for (int g = 0; g < opt->n_groups; g++) {
        const optim_group *gr = &opt->groups[g];
        const dc_optim_options *o = &gr->o;
        cJSON *j = cJSON_CreateObject();
        if (!j) goto oom;
        cJSON_AddItemToArray(arr, j);
        add_exact(j, "lr", o->lr);
        if (opt->kind == DC_OPTIM_SGD) {
            add_exact(j, "momentum", o->momentum);
            add_exact(j, "dampening", o->dampening);
            cJSON_AddBoolToObject(j, "nesterov", o->nesterov);
        } else {
            cJSON *betas = cJSON_AddArrayToObject(j, "betas");
            if (!betas) goto oom;
            cJSON_AddItemToArray(betas, dc__json_exact(o->beta1));
            cJSON_AddItemToArray(betas, dc__json_exact(o->beta2));
            add_exact(j, "eps", o->eps);
            cJSON_AddBoolToObject(j, "amsgrad", o->amsgrad);
        }
        add_exact(j, "weight_decay", o->weight_decay);
        cJSON_AddBoolToObject(j, "maximize", o->maximize);
        if (gr->has_initial_lr) add_exact(j, "initial_lr", gr->initial_lr);
        cJSON *ps = cJSON_AddArrayToObject(j, "params");
        if (!ps) goto oom;
        for (int i = 0; i < gr->count; i++) cJSON_AddItemToArray(ps, cJSON_CreateNumber(gr->first + i));
    }
    return arr;
oom:
    cJSON_Delete(arr);
    return NULL;
}

/* scheduler.c */
char *dc__scheduler_state_json(const dc_scheduler *s);
dc_status dc__scheduler_check_json(const dc_scheduler *s, const char *json, const char *file);
void dc__scheduler_apply_json(dc_scheduler *s, const char *json);

dc_status dc_optimizer_save(const dc_optimizer *opt, const char *path, const dc_scheduler *sched)
{
    if (!opt || !path) return dc_set_error(DC_ERR_ARG, "optimizer_save: NULL argument");
    dc_status st = DC_OK;
    int cap = opt->n_params * MAX_STATE_KEYS + 1, n = 0;
    dc_named_tensor *items = dc__calloc((size_t)cap, sizeof *items);
    char **names = dc__calloc((size_t)cap, sizeof *names);
    char *groups = NULL, *sched_json = NULL;
    cJSON *gj = NULL;
    dc_pool_mark mark = dc_pool_push();
    if (!items || !names) {
        st = dc_last_status();
        goto done;
    }
    for (int i = 0; i < opt->n_params; i++) {
        param_state *s = &opt->state[i];
        if (!s->initialized) continue;
        for (int k = 0; k < MAX_STATE_KEYS; k++) {
            dc_tensor *t;
            if (k == 0) {
                if (opt->kind == DC_OPTIM_SGD) continue; /* SGD keeps no step count */
                t = dc_scalar(s->step);
            } else {
                t = *state_slot(s, k);
            }
            if (!t) continue;
            char buf[64];
            snprintf(buf, sizeof buf, "state.%d.%s", i, state_keys[k]);
            names[n] = dc__malloc(strlen(buf) + 1);
            if (!names[n]) {
                st = dc_last_status();
                goto done;
            }
            strcpy(names[n], buf);
            items[n] = (dc_named_tensor){names[n], t};
            n++;
        }
    }
    gj = groups_json(opt);
    groups = gj ? cJSON_PrintUnformatted(gj) : NULL;
    if (!groups) {
        st = dc_set_error(DC_ERR_OOM, "optimizer_save: out of memory building the metadata");
        goto done;
    }
    if (sched) {
        sched_json = dc__scheduler_state_json(sched);
        if (!sched_json) {
            st = dc_last_status();
            goto done;
        }
    }
    const char *meta[] = {"format", "deepc.optimizer.v1", "optimizer", kind_name(opt->kind),
                          "param_groups", groups, sched ? "scheduler" : NULL, sched_json, NULL};
    st = dc_safetensors_save(path, n, items, meta);
done:
    dc_pool_pop(mark);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(items);
    cJSON_Delete(gj);
    free(groups);
    free(sched_json);
    return st;
}

static bool json_num(const cJSON *o, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) return false;
    *out = v->valuedouble;
    return true;
}

static bool json_bool(const cJSON *o, const char *key, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsBool(v)) return false;
    *out = cJSON_IsTrue(v);
    return true;
}

/* Parses one group's hyperparameters into *o (starting from the current values). */
static bool parse_group(dc_optim_kind kind, const cJSON *j, dc_optim_options *o, double *initial_lr,
                        bool *has_initial_lr, int *n_params)
{
    if (!cJSON_IsObject(j)) return false;
    if (!json_num(j, "lr", &o->lr) || !json_num(j, "weight_decay", &o->weight_decay)) return false;
    json_bool(j, "maximize", &o->maximize); /* optional, as in older PyTorch */
    if (kind == DC_OPTIM_SGD) {
        if (!json_num(j, "momentum", &o->momentum) || !json_num(j, "dampening", &o->dampening) ||
            !json_bool(j, "nesterov", &o->nesterov))
            return false;
    } else {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "betas");
        if (cJSON_GetArraySize(b) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(b, 0)) ||
            !cJSON_IsNumber(cJSON_GetArrayItem(b, 1)))
            return false;
        o->beta1 = cJSON_GetArrayItem(b, 0)->valuedouble;
        o->beta2 = cJSON_GetArrayItem(b, 1)->valuedouble;
        if (!json_num(j, "eps", &o->eps) || !json_bool(j, "amsgrad", &o->amsgrad)) return false;
    }
    *has_initial_lr = json_num(j, "initial_lr", initial_lr);
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(j, "params");
    if (!cJSON_IsArray(ps)) return false;
    *n_params = cJSON_GetArraySize(ps);
    return true;
}

dc_status dc_optimizer_load(dc_optimizer *opt, const char *path, dc_scheduler *sched)
{
    if (!opt || !path) return dc_set_error(DC_ERR_ARG, "optimizer_load: NULL argument");
    dc_safetensors *st = dc_safetensors_open(path);
    if (!st) return dc_last_status();
    dc_status status = DC_OK;
    cJSON *gj = NULL;
    optim_group *groups = NULL;
    const char *kind = dc_safetensors_metadata(st, "optimizer");
    const char *gtext = dc_safetensors_metadata(st, "param_groups");
    const char *stext = dc_safetensors_metadata(st, "scheduler");
    dc_pool_mark mark = dc_pool_push();

    if (!kind || strcmp(kind, kind_name(opt->kind))) {
        status = dc_set_error(DC_ERR_FORMAT, "optimizer_load (%s): the file holds %s state, the optimizer is %s",
                              path, kind ? kind : "no optimizer", kind_name(opt->kind));
        goto done;
    }
    gj = gtext ? cJSON_Parse(gtext) : NULL;
    if (!cJSON_IsArray(gj) || cJSON_GetArraySize(gj) != opt->n_groups) {
        status = dc_set_error(DC_ERR_FORMAT, "optimizer_load (%s): param_groups metadata %s (the optimizer has %d groups)",
                              path, gj ? "has a different number of groups" : "is missing or malformed", opt->n_groups);
        goto done;
    }
    groups = dc__malloc((size_t)opt->n_groups * sizeof *groups);
    if (!groups) {
        status = dc_last_status();
        goto done;
    }
    for (int g = 0; g < opt->n_groups; g++) {
        groups[g] = opt->groups[g];
        int np = -1;
        if (!parse_group(opt->kind, cJSON_GetArrayItem(gj, g), &groups[g].o, &groups[g].initial_lr,
                         &groups[g].has_initial_lr, &np)) {
            status = dc_set_error(DC_ERR_FORMAT, "optimizer_load (%s): param group %d is malformed", path, g);
            goto done;
        }
        if (np != opt->groups[g].count) {
            status = dc_set_error(DC_ERR_FORMAT, "optimizer_load (%s): param group %d has %d parameters, the optimizer's has %d",
                                  path, g, np, opt->groups[g].count);
            goto done;
        }
        if (check_options(opt->kind, &groups[g].o)) goto fail_status;
    }
    if (sched && stext && dc__scheduler_check_json(sched, stext, path)) goto fail_status;
    /* every state tensor must belong to a parameter and have its shape */
    for (int k = 0; k < dc_safetensors_count(st); k++) {
        const char *name = dc_safetensors_name(st, k);
        int idx, used = 0;
        char key[32];
        if (sscanf(name, "state.%d.%31s%n", &idx, key, &used) != 2 || name[used] || idx < 0 ||
            idx >= opt->n_params) {
            status = dc_set_error(DC_ERR_FORMAT, "optimizer_load (%s): unexpected tensor \"%s\" (%d parameters)",
                                  path, name, opt->n_params);
            goto done;
        }
        int which = -1;
        for (int s = 0; s < MAX_STATE_KEYS; s++)
            if (!strcmp(key, state_keys[s])) which = s;
        dc_dtype dt;
        int nd;
        int64_t shape[DC_MAX_DIMS];
        dc_safetensors_info(st, name, &dt, &nd, shape);
        const dc_tensor *p = opt->params[idx];
        bool ok = which >= 0;
        if (which == 0) {
            ok = nd == 0;
        } else if (ok) {
            ok = nd == p->ndim;
            for (int d = 0; ok && d < nd; d++) ok = shape[d] == p->shape[d];
        }
        if (!ok) {
            char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
            status = dc_set_error(DC_ERR_SHAPE, "optimizer_load (%s): \"%s\" %s does not fit parameter %d %s",
                                  path, name, dc__shape_fmt(nd, shape, a, sizeof a), idx,
                                  dc_shape_str(p, b, sizeof b));
            goto done;
        }
    }

    /* apply: hyperparameters, then state (replacing whatever the optimizer had) */
    for (int g = 0; g < opt->n_groups; g++) opt->groups[g] = groups[g];
    for (int i = 0; i < opt->n_params; i++) state_clear(&opt->state[i]);
    for (int k = 0; k < dc_safetensors_count(st) && !status; k++) {
        const char *name = dc_safetensors_name(st, k);
        int idx;
        char key[32];
        sscanf(name, "state.%d.%31s", &idx, key);
        param_state *s = &opt->state[idx];
        s->initialized = true;
        dc_tensor *src = dc_safetensors_get(st, name);
        if (!src) goto fail_status;
        if (!strcmp(key, "step")) {
            s->step = (float)dc_item(src);
            continue;
        }
        for (int w = 1; w < MAX_STATE_KEYS; w++) {
            if (strcmp(key, state_keys[w])) continue;
            dc_tensor **slot = state_slot(s, w);
            *slot = state_zeros(opt->params[idx]);
            status = *slot ? dc_copy_(*slot, src) : dc_last_status();
        }
    }
    if (!status && sched && stext) dc__scheduler_apply_json(sched, stext);
    goto done;
fail_status:
    status = dc_last_status();
done:
    dc_pool_pop(mark);
    free(groups);
    cJSON_Delete(gj);
    dc_safetensors_close(st);
    return status;
}
