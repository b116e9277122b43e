/* deepc/nn.h: modules with PyTorch's parameter names, buffer names and initialisation.
 *
 * A module is a dc_module: a vtable (forward, free), named parameters, named buffers and named
 * children, and a train/eval flag. Names compose into PyTorch's state_dict() keys, in
 * PyTorch's order (a module's own parameters, then its own buffers, then each child in
 * registration order), so a checkpoint written by torch (converted to safetensors) loads by
 * name and a deepc checkpoint loads into torch:
 *
 *   dc_manual_seed(0);                         // same draws as torch.manual_seed(0)
 *   dc_module *net = DC_SEQUENTIAL(dc_conv2d_new(1, 6, 5, 5, (dc_conv2d_args){.groups = 1}, true),
 *                                  dc_relu_new(), dc_flatten_new(1, -1),
 *                                  dc_linear_new(6 * 24 * 24, 10, true));
 *   // keys: "0.weight", "0.bias", "3.weight", "3.bias"
 *   dc_tensor *y = dc_module_forward(net, x);  // an op result: pool rules of deepc/core.h
 *   dc_module_save(net, "net.safetensors");
 *   dc_module_free(net);                        // frees children, parameters, buffers
 *
 * Ownership: a module owns one reference to each of its parameters and buffers and owns its
 * children (dc_module_add_child hands the child over). Tensors returned by accessors and
 * held in a dc_tensor_list are borrowed from the module.
 *
 * Initialisation: constructors draw from dc_default_rng() in the order PyTorch's
 * reset_parameters does (weight, then bias), with torch's CPU transforms, so after
 * dc_manual_seed(s) the weights of Linear, Conv2d, ConvTranspose2d and Embedding are
 * bit-identical to torch.manual_seed(s) followed by constructing the torch modules in the same
 * order (torch 1.13; for Embedding's normal_ that is torch's AVX2 kernel, see src/nn/init.c),
 * and the generator ends where torch's does.
 *
 * Custom modules embed dc_module as their first member:
 *
 *   typedef struct block { dc_module base; dc_module *conv1, *bn1; } block;
 *   static dc_tensor *block_forward(dc_module *m, dc_tensor *x) {
 *       block *b = (block *)m;
 *       return dc_relu(dc_module_forward(b->bn1, dc_module_forward(b->conv1, x)));
 *   }
 *   static const dc_module_vtable block_vt = {.type = "Block", .forward = block_forward};
 *   dc_module *block_new(void) {
 *       block *b = (block *)dc_module_new(&block_vt, sizeof(block));
 *       if (!b) return NULL;
 *       b->conv1 = dc_module_add_child(&b->base, "conv1", dc_conv2d_new(...));
 *       b->bn1 = dc_module_add_child(&b->base, "bn1", dc_batch_norm2d_new(64));
 *       return dc_module_finish(&b->base);   // NULL (all freed) if any step above failed
 *   }
 */
#ifndef DEEPC_NN_H
#define DEEPC_NN_H

#include "deepc/core.h"
#include "deepc/io.h"
#include "deepc/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------
 * The module structure
 * ------------------------------------------------------------------------------------- */

typedef struct dc_module dc_module;

typedef struct dc_module_vtable {
    const char *type; /* "Linear", "BatchNorm2d", "BasicBlock", ... */
    /* The computation; NULL for containers that have none (ModuleList). Returns an op
     * result (pool rules of deepc/core.h) or NULL with an error set. */
    dc_tensor *(*forward)(dc_module *m, dc_tensor *x);
    /* Optional: re-draws the module's own parameters (not its children's) as PyTorch's
     * reset_parameters does. */
    dc_status (*reset_parameters)(dc_module *m, dc_rng *rng);
    /* Optional: frees what the module allocated beyond the dc_module fields. Parameters,
     * buffers and children are released by dc_module_free itself. */
    void (*free)(dc_module *m);
} dc_module_vtable;

typedef struct dc_module_entry {
    char *name;
    dc_tensor *tensor;  /* owned reference */
    bool persistent;    /* buffers: part of the state_dict (parameters always are) */
} dc_module_entry;

typedef struct dc_module_child_entry {
    char *name;
    dc_module *module;  /* owned */
} dc_module_child_entry;

struct dc_module {
    const dc_module_vtable *vt;
    char *name;         /* the name in its parent, "" for a root */
    dc_module *parent;
    bool training;      /* PyTorch's default: true */
    bool failed;        /* a registration failed; dc_module_finish frees the module */
    int n_params, cap_params;
    dc_module_entry *params;
    int n_buffers, cap_buffers;
    dc_module_entry *buffers;
    int n_children, cap_children;
    dc_module_child_entry *children;
};

/* Runs m's forward. NULL m or x: NULL (errors propagate as for ops). */
dc_tensor *dc_module_forward(dc_module *m, dc_tensor *x);
/* Frees m, its children, and its references to parameters and buffers. NULL is a no-op. */
void dc_module_free(dc_module *m);
/* Sets the training flag of m and all its descendants (PyTorch's m.train(mode)). */
void dc_module_train(dc_module *m, bool training);
void dc_module_eval(dc_module *m); /* dc_module_train(m, false) */
const char *dc_module_type(const dc_module *m);

/* ---- building modules --------------------------------------------------------------------- */

/* A zeroed module struct of `size` bytes (>= sizeof(dc_module)), in training mode. */
dc_module *dc_module_new(const dc_module_vtable *vt, size_t size);
/* Registers t under `name` (no dots, unique within m) as a parameter: the module retains t
 * and marks it requires_grad. Returns t (borrowed), or NULL on error; a NULL t (a failed
 * constructor) also returns NULL. Any failure marks m as failed (see dc_module_finish). */
dc_tensor *dc_module_add_parameter(dc_module *m, const char *name, dc_tensor *t);
/* Registers a buffer (running statistics and the like; never requires grad). Non-persistent
 * buffers are left out of the state_dict, as in PyTorch. */
dc_tensor *dc_module_add_buffer(dc_module *m, const char *name, dc_tensor *t, bool persistent);
/* Hands `child` to m under `name`. Returns child, or NULL (freeing child) on error. */
dc_module *dc_module_add_child(dc_module *m, const char *name, dc_module *child);
/* Returns m, or frees it and returns NULL if a registration into it failed. */
dc_module *dc_module_finish(dc_module *m);

/* ---- looking things up ------------------------------------------------------------------ */

/* A descendant by dotted path ("layer1.0.bn1"); "" is m itself. NULL (with error) if absent. */
dc_module *dc_module_child(dc_module *m, const char *path);
/* A parameter or buffer by dotted path ("layer1.0.bn1.running_mean"); NULL if absent. */
dc_tensor *dc_module_tensor(dc_module *m, const char *path);
/* Re-draws every parameter of m and its descendants (registration order) from rng
 * (NULL: dc_default_rng()), as constructing the modules again would. */
dc_status dc_module_reset_parameters(dc_module *m, dc_rng *rng);

/* ---- state ------------------------------------------------------------------------------- */

/* Dotted names and borrowed tensors, in PyTorch's order. */
typedef struct dc_tensor_list {
    int count;
    char **names;
    dc_tensor **tensors;
} dc_tensor_list;
void dc_tensor_list_free(dc_tensor_list *list);

/* named_parameters(): each parameter once (shared tensors are listed at their first name). */
dc_tensor_list *dc_module_named_parameters(dc_module *m);
/* named_buffers(): persistent and non-persistent buffers. */
dc_tensor_list *dc_module_named_buffers(dc_module *m);
/* state_dict(): parameters and persistent buffers, module by module (own parameters, own
 * buffers, then children), as torch.nn.Module.state_dict() orders them. */
dc_tensor_list *dc_module_state_dict(dc_module *m);
/* Number of parameter elements (each shared tensor counted once). -1 on error. */
int64_t dc_module_num_parameters(dc_module *m);

/* Copies the tensors of st into m by state_dict name, converting F16/BF16 (and any other
 * dtype) to the module tensor's dtype. Everything is checked before anything is copied, so
 * on error m is unchanged; the error names the first mis-shaped tensor, the first missing
 * key (strict), or the first unexpected key (strict), with counts of the others. As in
 * PyTorch for a state dict without version metadata, a missing BatchNorm
 * "num_batches_tracked" is not an error: it is set to 0. Non-strict loads skip missing and
 * unexpected keys but still refuse shape mismatches. */
dc_status dc_module_load_state_dict(dc_module *m, dc_safetensors *st, bool strict);
/* Opens path, loads it (as above) and closes it. */
dc_status dc_module_load(dc_module *m, const char *path, bool strict);
/* Writes the state_dict to a safetensors file (atomically); metadata may be NULL or a
 * NULL-terminated key, value, ... list as for dc_safetensors_save. */
dc_status dc_module_save(dc_module *m, const char *path, const char *const *metadata);

/* ---------------------------------------------------------------------------------------
 * Initialisation (torch.nn.init), drawing as torch's CPU generator does. Tensors must be
 * contiguous F32 on the CPU; rng NULL means dc_default_rng(). Not recorded by autograd.
 * ------------------------------------------------------------------------------------- */

typedef enum dc_fan_mode { DC_FAN_IN = 0, DC_FAN_OUT = 1 } dc_fan_mode;

/* fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (>= 2 dims). */
dc_status dc_init_fans(const dc_tensor *t, int64_t *fan_in, int64_t *fan_out);
/* torch.nn.init.calculate_gain: "linear", "conv2d", "sigmoid", "tanh", "relu",
 * "leaky_relu" (param = negative slope, NAN for the default 0.01), "selu". NAN if unknown. */
double dc_init_calculate_gain(const char *nonlinearity, double param);
/* U(low, high): float draws x in [0,1) with 24 bits, then x * (high - low) + low in float. */
dc_status dc_init_uniform_(dc_tensor *t, double low, double high, dc_rng *rng);
/* N(mean, std) with torch's normal_ algorithm (Box-Muller over blocks of 16 uniforms for
 * tensors of 16+ elements, as torch's AVX2 kernel computes it; the double-precision
 * generator otherwise): bit-identical to torch 1.13 on AVX2 machines. */
dc_status dc_init_normal_(dc_tensor *t, double mean, double std, dc_rng *rng);
dc_status dc_init_kaiming_uniform_(dc_tensor *t, double a, dc_fan_mode mode,
                                   const char *nonlinearity, dc_rng *rng);
dc_status dc_init_kaiming_normal_(dc_tensor *t, double a, dc_fan_mode mode,
                                  const char *nonlinearity, dc_rng *rng);
dc_status dc_init_xavier_uniform_(dc_tensor *t, double gain, dc_rng *rng);
dc_status dc_init_xavier_normal_(dc_tensor *t, double gain, dc_rng *rng);

/* ---------------------------------------------------------------------------------------
 * Layers. Constructors return NULL with an error on bad arguments; defaults are PyTorch's.
 * ------------------------------------------------------------------------------------- */

/* weight [out, in], bias [out]: U(-1/sqrt(in), 1/sqrt(in)) for both (kaiming_uniform_ with
 * a = sqrt(5) gives exactly that bound for the weight). */
dc_module *dc_linear_new(int64_t in_features, int64_t out_features, bool bias);
/* weight [out, in/groups, kh, kw], bias [out]. */
dc_module *dc_conv2d_new(int64_t in_channels, int64_t out_channels, int kernel_h, int kernel_w,
                         dc_conv2d_args args, bool bias);
/* weight [in, out/groups, kh, kw], bias [out]; fan_in is (out/groups) * kh * kw, as PyTorch
 * computes it from the weight's second dim. */
dc_module *dc_conv_transpose2d_new(int64_t in_channels, int64_t out_channels, int kernel_h,
                                   int kernel_w, dc_conv_transpose2d_args args, bool bias);

/* PyTorch's momentum=None: running statistics are a cumulative average (factor
 * 1/num_batches_tracked). */
#define DC_BN_MOMENTUM_NONE (-1.0f)
/* weight [C] = 1, bias [C] = 0 (affine), buffers running_mean [C] = 0, running_var [C] = 1,
 * num_batches_tracked (I64, 0-dim) = 0 (track_running_stats). Training uses batch
 * statistics and updates the running ones; eval uses the running ones. */
dc_module *dc_batch_norm1d_new(int64_t num_features); /* eps 1e-5, momentum 0.1 */
dc_module *dc_batch_norm2d_new(int64_t num_features);
dc_module *dc_batch_norm1d_new_ex(int64_t num_features, float eps, float momentum, bool affine,
                                  bool track_running_stats);
dc_module *dc_batch_norm2d_new_ex(int64_t num_features, float eps, float momentum, bool affine,
                                  bool track_running_stats);
/* normalized_shape = shape[0..n); weight ones, bias zeros of that shape (elementwise_affine). */
dc_module *dc_layer_norm_new(int n, const int64_t *normalized_shape, float eps, bool elementwise_affine);
dc_module *dc_group_norm_new(int num_groups, int64_t num_channels, float eps, bool affine);
dc_module *dc_dropout_new(float p); /* draws masks from dc_default_rng() */
/* Dropout drawing from rng (kept by pointer: it must outlive the module). */
dc_module *dc_dropout_new_rng(float p, dc_rng *rng);
#define DC_EMBEDDING_NO_PADDING INT64_MIN
/* weight [num, dim] ~ N(0, 1); a padding_idx row (negative counts from the end) starts at
 * zero and receives no gradient. */
dc_module *dc_embedding_new(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx);

dc_module *dc_relu_new(void);
dc_module *dc_relu_inplace_new(void); /* nn.ReLU(inplace=True): forwards with dc_relu_ */
dc_module *dc_leaky_relu_new(float negative_slope); /* PyTorch's default slope is 0.01 */
dc_module *dc_gelu_new(dc_gelu_approx approximate);
dc_module *dc_silu_new(void);
dc_module *dc_tanh_new(void);
dc_module *dc_sigmoid_new(void);
dc_module *dc_identity_new(void);
dc_module *dc_max_pool2d_new(dc_pool2d_args args);
dc_module *dc_avg_pool2d_new(dc_pool2d_args args);
dc_module *dc_adaptive_avg_pool2d_new(int out_h, int out_w);
dc_module *dc_flatten_new(int start_dim, int end_dim); /* PyTorch's default: 1, -1 */

/* ---- containers --------------------------------------------------------------------------- */

/* Children named "0", "1", ...; forward chains them. Takes ownership of the modules; if one
 * is NULL (a failed constructor) all are freed and NULL is returned. */
dc_module *dc_sequential_new(int n, dc_module *const *modules);
#define DC_SEQUENTIAL(...)                                                              \
    dc_sequential_new((int)(sizeof((dc_module *[]){__VA_ARGS__}) / sizeof(dc_module *)), \
                      (dc_module *[]){__VA_ARGS__})
/* Appends under the next index. Takes ownership of m (freed on error). */
dc_status dc_sequential_append(dc_module *seq, dc_module *m);
/* PyTorch's ModuleList: children "0", "1", ... and no forward of its own. */
dc_module *dc_module_list_new(void);
dc_status dc_module_list_append(dc_module *list, dc_module *m);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_NN_H */
