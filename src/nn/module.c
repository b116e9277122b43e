/* module.c: the dc_module machinery (deepc/nn.h): registration of parameters, buffers and
 * children, dotted-name lookup, train/eval, PyTorch-ordered state_dict, loading and saving
 * state dicts as safetensors, and the Sequential / ModuleList containers.
 *
 * Names: a module's entries live in three small arrays in registration order. state_dict()
 * walks the tree depth-first exactly as torch.nn.Module._save_to_state_dict does (own
 * parameters, own persistent buffers, then each child with "<child>." prepended), so the
 * key lists are the same as PyTorch's, in the same order. */
#include <math.h>

#include "core/internal.h"
#include "deepc/nn.h"

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = dc__malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* ---------------------------------------------------------------------------------------
 * Construction and registration
 * ------------------------------------------------------------------------------------- */

dc_module *dc_module_new(const dc_module_vtable *vt, size_t size)
{
    if (!vt) {
        dc_set_error(DC_ERR_ARG, "module_new: NULL vtable");
        return NULL;
    }
    if (size < sizeof(dc_module)) {
        dc_set_error(DC_ERR_ARG, "module_new (%s): size %zu is smaller than dc_module (%zu)",
                     vt->type ? vt->type : "?", size, sizeof(dc_module));
        return NULL;
    }
    dc_module *m = dc__calloc(1, size);
    if (!m) return NULL;
    m->vt = vt;
    m->training = true;
    m->name = dup_str("");
    if (!m->name) {
        free(m);
        return NULL;
    }
    return m;
}

const char *dc_module_type(const dc_module *m)
{
    return m && m->vt && m->vt->type ? m->vt->type : "Module";
}

static bool name_taken(const dc_module *m, const char *name)
{
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return true;
    for (int i = 0; i < m->n_buffers; i++)
        if (!strcmp(m->buffers[i].name, name)) return true;
    for (int i = 0; i < m->n_children; i++)
        if (!strcmp(m->children[i].name, name)) return true;
    return false;
}

/* PyTorch refuses empty names, names with dots and names already used on the module. */
static dc_status check_name(const char *op, const dc_module *m, const char *name)
{
    if (!name || !*name)
        return dc_set_error(DC_ERR_ARG, "%s (%s): empty name", op, dc_module_type(m));
    if (strchr(name, '.'))
        return dc_set_error(DC_ERR_ARG, "%s (%s): name \"%s\" must not contain \".\"", op,
                            dc_module_type(m), name);
    if (name_taken(m, name))
        return dc_set_error(DC_ERR_ARG, "%s (%s): \"%s\" already exists", op, dc_module_type(m),
                            name);
    return DC_OK;
}

/* Appends to one of the entry arrays, growing it geometrically. */
static dc_status push_entry(dc_module_entry **arr, int *n, int *cap, const char *name,
                            dc_tensor *t, bool persistent)
{
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 4;
        dc_module_entry *na = dc__realloc(*arr, (size_t)nc * sizeof *na);
        if (!na) return dc_last_status();
        *arr = na;
        *cap = nc;
    }
    char *nm = dup_str(name);
    if (!nm) return dc_last_status();
    (*arr)[*n] = (dc_module_entry){nm, dc_tensor_retain(t), persistent};
    (*n)++;
    return DC_OK;
}

dc_tensor *dc_module_add_parameter(dc_module *m, const char *name, dc_tensor *t)
{
    if (!m) {
        if (dc_last_status() == DC_OK) dc_set_error(DC_ERR_ARG, "add_parameter: NULL module");
        return NULL;
    }
    if (!t) {
        if (dc_last_status() == DC_OK)
            dc_set_error(DC_ERR_ARG, "add_parameter (%s): tensor \"%s\" is NULL", dc_module_type(m),
                         name ? name : "?");
        m->failed = true;
        return NULL;
    }
    if (check_name("add_parameter", m, name)) goto fail;
    if (t->grad_fn) {
        dc_set_error(DC_ERR_ARG, "add_parameter (%s): \"%s\" is the result of %s; parameters must be leaves (detach it)",
                     dc_module_type(m), name, t->grad_fn->op);
        goto fail;
    }
    if (dc_set_requires_grad(t, true)) goto fail;
    if (push_entry(&m->params, &m->n_params, &m->cap_params, name, t, true)) goto fail;
    return t;
fail:
    m->failed = true;
    return NULL;
}

dc_tensor *dc_module_add_buffer(dc_module *m, const char *name, dc_tensor *t, bool persistent)
{
    if (!m) {
        if (dc_last_status() == DC_OK) dc_set_error(DC_ERR_ARG, "add_buffer: NULL module");
        return NULL;
    }
    if (!t) {
        if (dc_last_status() == DC_OK)
            dc_set_error(DC_ERR_ARG, "add_buffer (%s): tensor \"%s\" is NULL", dc_module_type(m),
                         name ? name : "?");
        m->failed = true;
        return NULL;
    }
    if (check_name("add_buffer", m, name)) goto fail;
    if (push_entry(&m->buffers, &m->n_buffers, &m->cap_buffers, name, t, persistent)) goto fail;
    return t;
fail:
    m->failed = true;
    return NULL;
}

dc_module *dc_module_add_child(dc_module *m, const char *name, dc_module *child)
{
    if (!m) {
        if (dc_last_status() == DC_OK) dc_set_error(DC_ERR_ARG, "add_child: NULL module");
        dc_module_free(child);
        return NULL;
    }
    if (!child) {
        if (dc_last_status() == DC_OK)
            dc_set_error(DC_ERR_ARG, "add_child (%s): module \"%s\" is NULL", dc_module_type(m),
                         name ? name : "?");
        m->failed = true;
        return NULL;
    }
    if (child->parent) {
        dc_set_error(DC_ERR_ARG, "add_child (%s): \"%s\" already belongs to a %s as \"%s\"",
                     dc_module_type(m), name ? name : "?", dc_module_type(child->parent), child->name);
        goto fail;
    }
    if (check_name("add_child", m, name)) goto fail;
    if (m->n_children == m->cap_children) {
        int nc = m->cap_children ? m->cap_children * 2 : 4;
        dc_module_child_entry *na = dc__realloc(m->children, (size_t)nc * sizeof *na);
        if (!na) goto fail;
        m->children = na;
        m->cap_children = nc;
    }
    char *nm = dup_str(name);
    if (!nm) goto fail;
    free(child->name);
    child->name = dup_str(name);
    if (!child->name) {
        free(nm);
        goto fail;
    }
    child->parent = m;
    m->children[m->n_children++] = (dc_module_child_entry){nm, child};
    return child;
fail:
    /* the child was handed over: it is ours to free even when it could not be attached */
    if (!child->parent) dc_module_free(child);
    m->failed = true;
    return NULL;
}

dc_module *dc_module_finish(dc_module *m)
{
    if (m && m->failed) {
        dc_module_free(m);
        return NULL;
    }
    return m;
}

void dc_module_free(dc_module *m)
{
    if (!m) return;
    if (m->vt && m->vt->free) m->vt->free(m);
    for (int i = m->n_children - 1; i >= 0; i--) {
        dc_module_free(m->children[i].module);
        free(m->children[i].name);
    }
    for (int i = 0; i < m->n_params; i++) {
        dc_tensor_release(m->params[i].tensor);
        free(m->params[i].name);
    }
    for (int i = 0; i < m->n_buffers; i++) {
        dc_tensor_release(m->buffers[i].tensor);
        free(m->buffers[i].name);
    }
    free(m->children);
    free(m->params);
    free(m->buffers);
    free(m->name);
    free(m);
}

/* ---------------------------------------------------------------------------------------
 * Forward, modes, lookup
 * ------------------------------------------------------------------------------------- */

dc_tensor *dc_module_forward(dc_module *m, dc_tensor *x)
{
    if (!m || !x) {
        if (dc_last_status() == DC_OK)
            dc_set_error(DC_ERR_ARG, "module_forward: %s is NULL", m ? "input" : "module");
        return NULL;
    }
    if (!m->vt->forward) {
        dc_set_error(DC_ERR_UNSUPPORTED, "module_forward: %s has no forward (call its children)",
                     dc_module_type(m));
        return NULL;
    }
    /* The intermediates of this module's forward leave the caller's pool when it returns:
     * in inference they die at once; in training the graph keeps what backward needs and
     * backward frees it as it passes. Without this scope they would live in the caller's
     * pool until it pops, holding every activation of the network until the step ends. */
    dc_pool_mark mark = dc_pool_push();
    dc_tensor *y = dc_tensor_retain(m->vt->forward(m, x));
    dc_pool_pop(mark);
    return dc__register(y);
}

void dc_module_train(dc_module *m, bool training)
{
    if (!m) return;
    m->training = training;
    for (int i = 0; i < m->n_children; i++) dc_module_train(m->children[i].module, training);
}

void dc_module_eval(dc_module *m) { dc_module_train(m, false); }

/* The child named by the first `len` bytes of `name`. */
static dc_module *child_n(dc_module *m, const char *name, size_t len)
{
    for (int i = 0; i < m->n_children; i++)
        if (strlen(m->children[i].name) == len && !memcmp(m->children[i].name, name, len))
            return m->children[i].module;
    return NULL;
}

/* Walks the module part of a dotted path; *rest gets what follows the last module. */
static dc_module *walk(dc_module *m, const char *path, size_t len, const char *op)
{
    const char *p = path, *end = path + len;
    while (p < end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);
        dc_module *c = child_n(m, p, n);
        if (!c) {
            dc_set_error(DC_ERR_ARG, "%s: %s has no child \"%.*s\" (path \"%.*s\")", op,
                         dc_module_type(m), (int)n, p, (int)len, path);
            return NULL;
        }
        m = c;
        p = dot ? dot + 1 : end;
    }
    return m;
}

dc_module *dc_module_child(dc_module *m, const char *path)
{
    if (!m || !path) {
        dc_set_error(DC_ERR_ARG, "module_child: NULL argument");
        return NULL;
    }
    return walk(m, path, strlen(path), "module_child");
}

dc_tensor *dc_module_tensor(dc_module *m, const char *path)
{
    if (!m || !path) {
        dc_set_error(DC_ERR_ARG, "module_tensor: NULL argument");
        return NULL;
    }
    const char *last = strrchr(path, '.');
    dc_module *owner = last ? walk(m, path, (size_t)(last - path), "module_tensor") : m;
    if (!owner) return NULL;
    const char *leaf = last ? last + 1 : path;
    for (int i = 0; i < owner->n_params; i++)
        if (!strcmp(owner->params[i].name, leaf)) return owner->params[i].tensor;
    for (int i = 0; i < owner->n_buffers; i++)
        if (!strcmp(owner->buffers[i].name, leaf)) return owner->buffers[i].tensor;
    dc_set_error(DC_ERR_ARG, "module_tensor: %s has no parameter or buffer \"%s\" (path \"%s\")",
                 dc_module_type(owner), leaf, path);
    return NULL;
}

dc_status dc_module_reset_parameters(dc_module *m, dc_rng *rng)
{
    if (!m) return dc_set_error(DC_ERR_ARG, "reset_parameters: NULL module");
    if (!rng) rng = dc_default_rng();
    if (m->vt->reset_parameters) {
        dc_status st = m->vt->reset_parameters(m, rng);
        if (st) return st;
    }
    for (int i = 0; i < m->n_children; i++) {
        dc_status st = dc_module_reset_parameters(m->children[i].module, rng);
        if (st) return st;
    }
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Named tensor lists
 * ------------------------------------------------------------------------------------- */

typedef struct list_builder {
    dc_tensor_list *list;
    int cap;
    bool dedup; /* named_parameters lists a shared tensor once; state_dict lists every name */
} list_builder;

void dc_tensor_list_free(dc_tensor_list *list)
{
    if (!list) return;
    for (int i = 0; i < list->count; i++) free(list->names[i]);
    free(list->names);
    free(list->tensors);
    free(list);
}

static dc_status list_add(list_builder *b, const char *prefix, const char *name, dc_tensor *t)
{
    dc_tensor_list *l = b->list;
    if (b->dedup)
        for (int i = 0; i < l->count; i++)
            if (l->tensors[i] == t) return DC_OK;
    if (l->count == b->cap) {
        int nc = b->cap ? b->cap * 2 : 16;
        char **nn = dc__realloc(l->names, (size_t)nc * sizeof *nn);
        if (!nn) return dc_last_status();
        l->names = nn;
        dc_tensor **nt = dc__realloc(l->tensors, (size_t)nc * sizeof *nt);
        if (!nt) return dc_last_status();
        l->tensors = nt;
        b->cap = nc;
    }
    size_t lp = strlen(prefix), ln = strlen(name);
    char *full = dc__malloc(lp + ln + 1);
    if (!full) return dc_last_status();
    memcpy(full, prefix, lp);
    memcpy(full + lp, name, ln + 1);
    l->names[l->count] = full;
    l->tensors[l->count] = t;
    l->count++;
    return DC_OK;
}

enum { WANT_PARAMS = 1, WANT_BUFFERS = 2, WANT_PERSISTENT_ONLY = 4 };

/* Depth-first in registration order; `prefix` is "" or "a.b." (a heap string we extend). */
static dc_status collect(list_builder *b, dc_module *m, const char *prefix, int want)
{
    dc_status st;
    if (want & WANT_PARAMS)
        for (int i = 0; i < m->n_params; i++)
            if ((st = list_add(b, prefix, m->params[i].name, m->params[i].tensor))) return st;
    if (want & WANT_BUFFERS)
        for (int i = 0; i < m->n_buffers; i++) {
            if ((want & WANT_PERSISTENT_ONLY) && !m->buffers[i].persistent) continue;
            if ((st = list_add(b, prefix, m->buffers[i].name, m->buffers[i].tensor))) return st;
        }
    size_t lp = strlen(prefix);
    for (int i = 0; i < m->n_children; i++) {
        const char *cn = m->children[i].name;
        size_t lc = strlen(cn);
        char *sub = dc__malloc(lp + lc + 2);
        if (!sub) return dc_last_status();
        memcpy(sub, prefix, lp);
        memcpy(sub + lp, cn, lc);
        sub[lp + lc] = '.';
        sub[lp + lc + 1] = '\0';
        st = collect(b, m->children[i].module, sub, want);
        free(sub);
        if (st) return st;
    }
    return DC_OK;
}

static dc_tensor_list *make_list(dc_module *m, int want, bool dedup, const char *op)
{
    if (!m) {
        dc_set_error(DC_ERR_ARG, "%s: NULL module", op);
        return NULL;
    }
    list_builder b = {dc__calloc(1, sizeof(dc_tensor_list)), 0, dedup};
    if (!b.list) return NULL;
    if (collect(&b, m, "", want)) {
        dc_tensor_list_free(b.list);
        return NULL;
    }
    return b.list;
}

dc_tensor_list *dc_module_named_parameters(dc_module *m)
{
    return make_list(m, WANT_PARAMS, true, "named_parameters");
}

dc_tensor_list *dc_module_named_buffers(dc_module *m)
{
    return make_list(m, WANT_BUFFERS, true, "named_buffers");
}

dc_tensor_list *dc_module_state_dict(dc_module *m)
{
    return make_list(m, WANT_PARAMS | WANT_BUFFERS | WANT_PERSISTENT_ONLY, false, "state_dict");
}

int64_t dc_module_num_parameters(dc_module *m)
{
    dc_tensor_list *l = dc_module_named_parameters(m);
    if (!l) return -1;
    int64_t n = 0;
    for (int i = 0; i < l->count; i++) n += dc_numel(l->tensors[i]);
    dc_tensor_list_free(l);
    return n;
}

/* ---------------------------------------------------------------------------------------
 * Loading and saving
 * ------------------------------------------------------------------------------------- */

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && !strcmp(s + ls - lx, suffix);
}

dc_status dc_module_load_state_dict(dc_module *m, dc_safetensors *st, bool strict)
{
    if (!m || !st) return dc_set_error(DC_ERR_ARG, "load_state_dict: NULL %s", m ? "checkpoint" : "module");
    const char *file = dc_safetensors_path(st);
    dc_tensor_list *sd = dc_module_state_dict(m);
    if (!sd) return dc_last_status();
    dc_status status = DC_OK;
    char **sorted = NULL;
    int n_missing = 0, n_unexpected = 0;
    const char *first_missing = NULL, *first_unexpected = NULL;

    /* 1. every module key: present with the same shape, or missing */
    for (int i = 0; i < sd->count; i++) {
        dc_dtype dt;
        int nd;
        int64_t shape[DC_MAX_DIMS];
        dc_tensor *t = sd->tensors[i];
        if (!dc_safetensors_info(st, sd->names[i], &dt, &nd, shape)) {
            /* PyTorch's BatchNorm fills num_batches_tracked in for state dicts that predate
             * it (no version metadata), instead of calling it missing */
            if (ends_with(sd->names[i], ".num_batches_tracked") ||
                !strcmp(sd->names[i], "num_batches_tracked"))
                continue;
            if (!n_missing++) first_missing = sd->names[i];
            continue;
        }
        bool same = nd == t->ndim;
        for (int d = 0; same && d < nd; d++) same = shape[d] == t->shape[d];
        if (!same) {
            char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
            status = dc_set_error(DC_ERR_SHAPE, "load_state_dict (%s): size mismatch for \"%s\": checkpoint has %s, the %s has %s",
                                  file, sd->names[i], dc__shape_fmt(nd, shape, a, sizeof a),
                                  dc_module_type(m), dc_shape_str(t, b, sizeof b));
            goto done;
        }
        if (dt == DC_BOOL && t->dtype != DC_BOOL) {
            status = dc_set_error(DC_ERR_DTYPE, "load_state_dict (%s): \"%s\" is BOOL in the checkpoint, %s in the module",
                                  file, sd->names[i], dc_dtype_name(t->dtype));
            goto done;
        }
    }
    /* 2. checkpoint keys the module does not have */
    int nfile = dc_safetensors_count(st);
    sorted = dc__malloc((size_t)(sd->count ? sd->count : 1) * sizeof *sorted);
    if (!sorted) {
        status = dc_last_status();
        goto done;
    }
    if (sd->count) memcpy(sorted, sd->names, (size_t)sd->count * sizeof *sorted);
    qsort(sorted, (size_t)sd->count, sizeof *sorted, cmp_str_ptr);
    for (int i = 0; i < nfile; i++) {
        const char *name = dc_safetensors_name(st, i);
        if (!bsearch(&name, sorted, (size_t)sd->count, sizeof *sorted, cmp_str_ptr))
            if (!n_unexpected++) first_unexpected = name;
    }
    if (strict && (n_missing || n_unexpected)) {
        if (n_missing)
            status = dc_set_error(DC_ERR_FORMAT, "load_state_dict (%s) into %s: missing key \"%s\" (%d missing, %d unexpected%s%s%s)",
                                  file, dc_module_type(m), first_missing, n_missing, n_unexpected,
                                  n_unexpected ? ", first unexpected \"" : "",
                                  n_unexpected ? first_unexpected : "", n_unexpected ? "\"" : "");
        else
            status = dc_set_error(DC_ERR_FORMAT, "load_state_dict (%s) into %s: unexpected key \"%s\" (%d unexpected)",
                                  file, dc_module_type(m), first_unexpected, n_unexpected);
        goto done;
    }

    /* 3. copy (and convert) */
    dc_pool_mark mark = dc_pool_push();
    for (int i = 0; i < sd->count && !status; i++) {
        dc_tensor *dst = sd->tensors[i];
        if (!dc_safetensors_has(st, sd->names[i])) {
            if (ends_with(sd->names[i], "num_batches_tracked")) status = dc_fill_(dst, 0);
            continue;
        }
        dc_tensor *src = dc_safetensors_get(st, sd->names[i]);
        status = src ? dc_copy_(dst, src) : dc_last_status();
    }
    dc_pool_pop(mark);
done:
    free(sorted);
    dc_tensor_list_free(sd);
    return status;
}

dc_status dc_module_load(dc_module *m, const char *path, bool strict)
{
    if (!m || !path) return dc_set_error(DC_ERR_ARG, "module_load: NULL argument");
    dc_safetensors *st = dc_safetensors_open(path);
    if (!st) return dc_last_status();
    dc_status s = dc_module_load_state_dict(m, st, strict);
    dc_safetensors_close(st);
    return s;
}

dc_status dc_module_save(dc_module *m, const char *path, const char *const *metadata)
{
    if (!m || !path) return dc_set_error(DC_ERR_ARG, "module_save: NULL argument");
    dc_tensor_list *sd = dc_module_state_dict(m);
    if (!sd) return dc_last_status();
    dc_named_tensor *items = dc__malloc((size_t)(sd->count ? sd->count : 1) * sizeof *items);
    dc_status st;
    if (!items) {
        st = dc_last_status();
    } else {
        for (int i = 0; i < sd->count; i++) items[i] = (dc_named_tensor){sd->names[i], sd->tensors[i]};
        st = dc_safetensors_save(path, sd->count, items, metadata);
    }
    free(items);
    dc_tensor_list_free(sd);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Containers
 * ------------------------------------------------------------------------------------- */

static dc_tensor *sequential_forward(dc_module *m, dc_tensor *x)
{
    /* Each child's output is held only until the next child has run: in inference a deep
     * Sequential then keeps one or two activations alive instead of all of them (in
     * training the graph keeps what backward needs anyway). */
    dc_tensor *cur = dc_tensor_retain(x);
    for (int i = 0; i < m->n_children && cur; i++) {
        dc_pool_mark mark = dc_pool_push();
        dc_tensor *next = dc_tensor_retain(dc_module_forward(m->children[i].module, cur));
        dc_pool_pop(mark);
        dc_tensor_release(cur);
        cur = next;
    }
    return dc__register(cur);
}

static const dc_module_vtable sequential_vt = {.type = "Sequential", .forward = sequential_forward};
static const dc_module_vtable module_list_vt = {.type = "ModuleList"};

static dc_status append_indexed(dc_module *c, dc_module *m, const char *op)
{
    if (!c) {
        dc_module_free(m);
        return dc_set_error(DC_ERR_ARG, "%s: NULL container", op);
    }
    if (!m) {
        if (dc_last_status() == DC_OK) dc_set_error(DC_ERR_ARG, "%s: NULL module", op);
        return dc_last_status();
    }
    char name[24];
    snprintf(name, sizeof name, "%d", c->n_children);
    bool was_failed = c->failed;
    if (!dc_module_add_child(c, name, m)) {
        c->failed = was_failed; /* a failed append leaves the container usable */
        return dc_last_status();
    }
    return DC_OK;
}

dc_module *dc_sequential_new(int n, dc_module *const *modules)
{
    dc_module *seq = dc_module_new(&sequential_vt, sizeof(dc_module));
    bool ok = seq != NULL && n >= 0 && (n == 0 || modules);
    if (seq && !ok) dc_set_error(DC_ERR_ARG, "sequential_new: %d modules from a NULL array", n);
    for (int i = 0; i < n && modules; i++) {
        if (!ok) {
            dc_module_free(modules[i]);
            continue;
        }
        if (!modules[i]) {
            if (dc_last_status() == DC_OK)
                dc_set_error(DC_ERR_ARG, "sequential_new: module %d is NULL", i);
            ok = false;
            continue;
        }
        if (append_indexed(seq, modules[i], "sequential_new")) ok = false;
    }
    if (!ok) {
        dc_module_free(seq);
        return NULL;
    }
    return seq;
}

dc_status dc_sequential_append(dc_module *seq, dc_module *m)
{
    return append_indexed(seq, m, "sequential_append");
}

dc_module *dc_module_list_new(void) { return dc_module_new(&module_list_vt, sizeof(dc_module)); }

dc_status dc_module_list_append(dc_module *list, dc_module *m)
{
    return append_indexed(list, m, "module_list_append");
}
