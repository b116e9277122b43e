/* cnn.c: the CNN zoo (see deepc/models.h): LeNet-5, AlexNet (CIFAR adaptation), VGG-11/16
 * with BatchNorm, ResNet-18 (CIFAR variant) and ResNet-20 (He et al. 2016), as modules whose
 * state_dict names equal tools/cnn_models.py's. Builders track the feature-map size as they
 * add layers, which gives the FLOP count without running the model. */
#include <strings.h>

#include "../core/internal.h"

#include "deepc/models.h"

static const char *const cnn_names[] = {"lenet5", "alexnet", "vgg11", "vgg16", "resnet18", "resnet20"};

const char *dc_cnn_names(void) { return "lenet5, alexnet, vgg11, vgg16, resnet18, resnet20"; }

bool dc_cnn_known(const char *name)
{
    for (size_t i = 0; i < sizeof cnn_names / sizeof *cnn_names; i++)
        if (name && !strcmp(name, cnn_names[i])) return true;
    return false;
}

/* ---------------------------------------------------------------------------------------
 * Builder: layer constructors that also track spatial size and FLOPs
 * ------------------------------------------------------------------------------------- */

typedef struct builder {
    int h, w;      /* current feature-map size */
    double flops;  /* forward FLOPs per image so far */
} builder;

static int conv_out(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

static dc_module *conv(builder *b, int cin, int cout, int k, int stride, int pad, bool bias)
{
    dc_conv2d_args a = {.stride = {stride, stride}, .padding = {pad, pad}};
    b->h = conv_out(b->h, k, stride, pad);
    b->w = conv_out(b->w, k, stride, pad);
    b->flops += 2.0 * cout * b->h * b->w * (double)cin * k * k;
    return dc_conv2d_new(cin, cout, k, k, a, bias);
}

static dc_module *maxpool(builder *b, int k)
{
    b->h /= k;
    b->w /= k;
    return dc_max_pool2d_new((dc_pool2d_args){.kernel = {k, k}, .stride = {k, k}});
}

static dc_module *linear(builder *b, int in, int out)
{
    b->flops += 2.0 * in * out;
    return dc_linear_new(in, out, true);
}

/* ---------------------------------------------------------------------------------------
 * LeNet-5
 * ------------------------------------------------------------------------------------- */

typedef struct lenet5 {
    dc_module base;
    dc_module *conv1, *conv2, *fc1, *fc2, *fc3;
} lenet5;

static dc_tensor *lenet5_forward(dc_module *m, dc_tensor *x)
{
    lenet5 *n = (lenet5 *)m;
    dc_pool2d_args p2 = {.kernel = {2, 2}};
    x = dc_max_pool2d(dc_relu_(dc_module_forward(n->conv1, x)), p2);
    x = dc_max_pool2d(dc_relu_(dc_module_forward(n->conv2, x)), p2);
    x = dc_flatten(x, 1, -1);
    x = dc_relu_(dc_module_forward(n->fc1, x));
    x = dc_relu_(dc_module_forward(n->fc2, x));
    return dc_module_forward(n->fc3, x);
}

static const dc_module_vtable lenet5_vt = {.type = "LeNet5", .forward = lenet5_forward};

static dc_module *lenet5_new(builder *b, int cin, int size, int classes)
{
    lenet5 *n = (lenet5 *)dc_module_new(&lenet5_vt, sizeof *n);
    if (!n) return NULL;
    n->conv1 = dc_module_add_child(&n->base, "conv1", conv(b, cin, 6, 5, 1, size == 28 ? 2 : 0, true));
    b->h /= 2, b->w /= 2;
    n->conv2 = dc_module_add_child(&n->base, "conv2", conv(b, 6, 16, 5, 1, 0, true));
    b->h /= 2, b->w /= 2;
    n->fc1 = dc_module_add_child(&n->base, "fc1", linear(b, 16 * b->h * b->w, 120));
    n->fc2 = dc_module_add_child(&n->base, "fc2", linear(b, 120, 84));
    n->fc3 = dc_module_add_child(&n->base, "fc3", linear(b, 84, classes));
    return dc_module_finish(&n->base);
}

/* ---------------------------------------------------------------------------------------
 * AlexNet and VGG: features -> flatten -> classifier, 28x28 padded to 32x32
 * ------------------------------------------------------------------------------------- */

typedef struct features_classifier {
    dc_module base;
    dc_module *features, *classifier;
    bool pad_to_32;
} features_classifier;

static dc_tensor *fc_forward(dc_module *m, dc_tensor *x)
{
    features_classifier *n = (features_classifier *)m;
    if (x && n->pad_to_32 && x->ndim == 4 && x->shape[3] == 28) x = dc_pad2d(x, (int[]){2, 2, 2, 2}, 0.0f);
    x = dc_module_forward(n->features, x);
    return dc_module_forward(n->classifier, dc_flatten(x, 1, -1));
}

static const dc_module_vtable alexnet_vt = {.type = "AlexNet", .forward = fc_forward};
static const dc_module_vtable vgg_vt = {.type = "VGG", .forward = fc_forward};

static dc_module *alexnet_new(builder *b, int cin, int classes)
{
    features_classifier *n = (features_classifier *)dc_module_new(&alexnet_vt, sizeof *n);
    if (!n) return NULL;
    n->pad_to_32 = true;
    b->h = b->w = 32;
    dc_module *f = dc_sequential_new(0, NULL);
    if (f) {
        dc_sequential_append(f, conv(b, cin, 64, 11, 4, 5, true));
        dc_sequential_append(f, dc_relu_inplace_new());
        dc_sequential_append(f, maxpool(b, 2));
        dc_sequential_append(f, conv(b, 64, 192, 5, 1, 2, true));
        dc_sequential_append(f, dc_relu_inplace_new());
        dc_sequential_append(f, maxpool(b, 2));
        dc_sequential_append(f, conv(b, 192, 384, 3, 1, 1, true));
        dc_sequential_append(f, dc_relu_inplace_new());
        dc_sequential_append(f, conv(b, 384, 256, 3, 1, 1, true));
        dc_sequential_append(f, dc_relu_inplace_new());
        dc_sequential_append(f, conv(b, 256, 256, 3, 1, 1, true));
        dc_sequential_append(f, dc_relu_inplace_new());
        dc_sequential_append(f, maxpool(b, 2));
    }
    n->features = dc_module_add_child(&n->base, "features", f);
    n->classifier = dc_module_add_child(&n->base, "classifier",
                                        DC_SEQUENTIAL(dc_dropout_new(0.5f), linear(b, 256 * b->h * b->w, classes)));
    return dc_module_finish(&n->base);
}

static dc_module *vgg_new(builder *b, const int *cfg, int n_cfg, int cin, int classes)
{
    features_classifier *n = (features_classifier *)dc_module_new(&vgg_vt, sizeof *n);
    if (!n) return NULL;
    n->pad_to_32 = true;
    b->h = b->w = 32;
    dc_module *f = dc_sequential_new(0, NULL);
    int c = cin;
    for (int i = 0; f && i < n_cfg; i++) {
        if (cfg[i] == 0) {
            dc_sequential_append(f, maxpool(b, 2));
            continue;
        }
        dc_sequential_append(f, conv(b, c, cfg[i], 3, 1, 1, true));
        dc_sequential_append(f, dc_batch_norm2d_new(cfg[i]));
        dc_sequential_append(f, dc_relu_inplace_new());
        c = cfg[i];
    }
    n->features = dc_module_add_child(&n->base, "features", f);
    n->classifier = dc_module_add_child(&n->base, "classifier", linear(b, c * b->h * b->w, classes));
    return dc_module_finish(&n->base);
}

/* ---------------------------------------------------------------------------------------
 * ResNet: BasicBlock with projection ('B', downsample.0/.1) or parameter-free ('A') shortcut
 * ------------------------------------------------------------------------------------- */

typedef struct basic_block {
    dc_module base;
    dc_module *conv1, *bn1, *conv2, *bn2, *downsample;
    int stride;
    int pad_channels; /* option A: zero channels added to the subsampled input */
} basic_block;

static dc_tensor *basic_block_forward(dc_module *m, dc_tensor *x)
{
    basic_block *blk = (basic_block *)m;
    dc_tensor *out = dc_relu_(dc_module_forward(blk->bn1, dc_module_forward(blk->conv1, x)));
    out = dc_module_forward(blk->bn2, dc_module_forward(blk->conv2, out));
    dc_tensor *sc = x;
    if (blk->downsample) {
        sc = dc_module_forward(blk->downsample, x);
    } else if (blk->pad_channels && x) {
        /* x[:, :, ::s, ::s] with pad/2 zero channels before and the rest after */
        dc_tensor *sub = dc_slice(dc_slice(x, 2, 0, x->shape[2], blk->stride), 3, 0, x->shape[3], blk->stride);
        if (!sub) return NULL;
        int before = blk->pad_channels / 2, after = blk->pad_channels - before;
        dc_tensor *zb = dc__new_zeros(DC_F32, 4, (int64_t[]){sub->shape[0], before, sub->shape[2], sub->shape[3]}, DC_CPU);
        dc_tensor *za = dc__new_zeros(DC_F32, 4, (int64_t[]){sub->shape[0], after, sub->shape[2], sub->shape[3]}, DC_CPU);
        sc = dc_cat(3, (dc_tensor *[]){zb, sub, za}, 1);
        if (!dc_pool_active()) {
            dc_tensor_release(zb);
            dc_tensor_release(za);
        }
    }
    return dc_relu_(dc_add_(out, sc));  /* out += identity; relu, in place as torchvision */
}

static const dc_module_vtable basic_block_vt = {.type = "BasicBlock", .forward = basic_block_forward};

static dc_module *basic_block_new(builder *b, int cin, int planes, int stride, char shortcut)
{
    basic_block *blk = (basic_block *)dc_module_new(&basic_block_vt, sizeof *blk);
    if (!blk) return NULL;
    blk->stride = stride;
    int h = b->h, w = b->w;
    blk->conv1 = dc_module_add_child(&blk->base, "conv1", conv(b, cin, planes, 3, stride, 1, false));
    blk->bn1 = dc_module_add_child(&blk->base, "bn1", dc_batch_norm2d_new(planes));
    blk->conv2 = dc_module_add_child(&blk->base, "conv2", conv(b, planes, planes, 3, 1, 1, false));
    blk->bn2 = dc_module_add_child(&blk->base, "bn2", dc_batch_norm2d_new(planes));
    if (stride != 1 || cin != planes) {
        if (shortcut == 'B') {
            builder side = {h, w, 0};
            dc_module *ds = DC_SEQUENTIAL(conv(&side, cin, planes, 1, stride, 0, false), dc_batch_norm2d_new(planes));
            b->flops += side.flops;
            blk->downsample = dc_module_add_child(&blk->base, "downsample", ds);
        } else {
            blk->pad_channels = planes - cin;
        }
    }
    return dc_module_finish(&blk->base);
}

typedef struct resnet {
    dc_module base;
    dc_module *conv1, *bn1, *layers[4], *avgpool, *fc;
    int n_layers;
} resnet;

static dc_tensor *resnet_forward(dc_module *m, dc_tensor *x)
{
    resnet *r = (resnet *)m;
    x = dc_relu_(dc_module_forward(r->bn1, dc_module_forward(r->conv1, x)));
    for (int i = 0; i < r->n_layers; i++) x = dc_module_forward(r->layers[i], x);
    x = dc_flatten(dc_module_forward(r->avgpool, x), 1, -1);
    return dc_module_forward(r->fc, x);
}

static const dc_module_vtable resnet_vt = {.type = "ResNet", .forward = resnet_forward};

static dc_module *resnet_new(builder *b, const int *widths, const int *blocks, int n_layers, char shortcut,
                             int cin, int classes)
{
    resnet *r = (resnet *)dc_module_new(&resnet_vt, sizeof *r);
    if (!r) return NULL;
    r->n_layers = n_layers;
    r->conv1 = dc_module_add_child(&r->base, "conv1", conv(b, cin, widths[0], 3, 1, 1, false));
    r->bn1 = dc_module_add_child(&r->base, "bn1", dc_batch_norm2d_new(widths[0]));
    int c = widths[0];
    for (int i = 0; i < n_layers; i++) {
        dc_module *layer = dc_sequential_new(0, NULL);
        for (int j = 0; layer && j < blocks[i]; j++) {
            int stride = (i > 0 && j == 0) ? 2 : 1;
            if (dc_sequential_append(layer, basic_block_new(b, c, widths[i], stride, shortcut))) break;
            c = widths[i];
        }
        char name[16];
        snprintf(name, sizeof name, "layer%d", i + 1);
        r->layers[i] = dc_module_add_child(&r->base, name, layer);
    }
    r->avgpool = dc_module_add_child(&r->base, "avgpool", dc_adaptive_avg_pool2d_new(1, 1));
    r->fc = dc_module_add_child(&r->base, "fc", linear(b, c, classes));
    return dc_module_finish(&r->base);
}

/* ---------------------------------------------------------------------------------------
 * Entry point
 * ------------------------------------------------------------------------------------- */

dc_module *dc_cnn_new(const char *name, int in_channels, int image_size, int num_classes, dc_cnn_info *info)
{
    if (!dc_cnn_known(name)) {
        dc_set_error(DC_ERR_ARG, "unknown model '%s' (valid: %s)", name ? name : "(null)", dc_cnn_names());
        return NULL;
    }
    if ((image_size != 28 && image_size != 32) || in_channels < 1 || in_channels > 3 || num_classes < 2) {
        dc_set_error(DC_ERR_ARG, "%s: unsupported input %dx%dx%d with %d classes (expected 1 or 3 channels of 28x28 or 32x32)",
                     name, in_channels, image_size, image_size, num_classes);
        return NULL;
    }
    builder b = {image_size, image_size, 0};
    dc_module *m = NULL;
    static const int vgg11[] = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
    static const int vgg16[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
    if (!strcmp(name, "lenet5")) {
        m = lenet5_new(&b, in_channels, image_size, num_classes);
    } else if (!strcmp(name, "alexnet")) {
        m = alexnet_new(&b, in_channels, num_classes);
    } else if (!strcmp(name, "vgg11")) {
        m = vgg_new(&b, vgg11, (int)(sizeof vgg11 / sizeof *vgg11), in_channels, num_classes);
    } else if (!strcmp(name, "vgg16")) {
        m = vgg_new(&b, vgg16, (int)(sizeof vgg16 / sizeof *vgg16), in_channels, num_classes);
    } else if (!strcmp(name, "resnet18")) {
        m = resnet_new(&b, (int[]){64, 128, 256, 512}, (int[]){2, 2, 2, 2}, 4, 'B', in_channels, num_classes);
    } else {
        m = resnet_new(&b, (int[]){16, 32, 64}, (int[]){3, 3, 3}, 3, 'A', in_channels, num_classes);
    }
    if (m && info) {
        memset(info, 0, sizeof *info);
        snprintf(info->name, sizeof info->name, "%s", name);
        info->in_channels = in_channels;
        info->image_size = image_size;
        info->num_classes = num_classes;
        info->params = dc_module_num_parameters(m);
        info->mflops = b.flops / 1e6;
    }
    return m;
}
