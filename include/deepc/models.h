/* deepc/models.h: the CNN model zoo of `deepc train/compare` (LeNet-5, AlexNet, VGG-11/16 with
 * BatchNorm, ResNet-18, ResNet-20), defined layer for layer as tools/cnn_models.py defines
 * them in PyTorch, with the same state_dict() names.
 *
 *   dc_cnn_info info;
 *   dc_module *net = dc_cnn_new("resnet20", 3, 32, 10, &info);   // info.mflops, info.params
 *
 * 28x28 inputs: lenet5's conv1 pads by 2; alexnet and vgg zero-pad the image to 32x32 before
 * the first layer; resnets take 28x28 as it is (global average pooling at the end).
 */
#ifndef DEEPC_MODELS_H
#define DEEPC_MODELS_H

#include "deepc/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_cnn_info {
    char name[32];
    int in_channels, image_size, num_classes;
    int64_t params;  /* trainable parameter elements */
    double mflops;   /* forward MFLOPs per image (2 x multiply-adds of conv and linear layers) */
} dc_cnn_info;

/* The model names, comma separated: "lenet5, alexnet, vgg11, vgg16, resnet18, resnet20". */
const char *dc_cnn_names(void);
/* True when name is a known model. */
bool dc_cnn_known(const char *name);
/* Builds a model for in_channels x image_size x image_size inputs (image_size 28 or 32),
 * initialised from dc_default_rng() as PyTorch initialises it. info may be NULL. Unknown
 * names are DC_ERR_ARG listing the valid ones. */
dc_module *dc_cnn_new(const char *name, int in_channels, int image_size, int num_classes,
                      dc_cnn_info *info);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_MODELS_H */
