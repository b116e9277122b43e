/* batch.c: turning uint8 images into normalized float batches (torchvision's ToTensor +
 * Normalize, bit for bit), CIFAR augmentation (RandomCrop(32, padding=4) +
 * RandomHorizontalFlip), torch-compatible random permutations, the seeded train/validation
 * split and the per-epoch reshuffle. */
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

/* torchvision: ToTensor gives (float)p / 255 (a true float32 division, not a multiply by
 * 1/255: the two differ in the last bit for some p), Normalize then does sub_(mean).div_(std)
 * in float32. Each step is one correctly rounded IEEE operation, so doing exactly these
 * three operations in float32 reproduces torchvision bit for bit. (Nothing here can be
 * contracted into an FMA, and the build does not allow reassociation.) The loop vectorizes
 * (8 bytes -> 8 floats, two vdivps): twice as fast as a 256-entry table lookup, which needs
 * a gather per element. */
static void normalize_plane(const uint8_t *restrict s, float *restrict d, int64_t n, float mean, float std)
{
    for (int64_t p = 0; p < n; p++) d[p] = ((float)s[p] / 255.0f - mean) / std;
}

void dc_normalize_lut(dc_dataset_id id, float lut[3 * 256])
{
    const dc_dataset_info *info = dc_dataset_info_of(id);
    static const uint8_t all[256] = {
#define R16(b) b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11, b + 12, b + 13, b + 14, b + 15
        R16(0), R16(16), R16(32), R16(48), R16(64), R16(80), R16(96), R16(112),
        R16(128), R16(144), R16(160), R16(176), R16(192), R16(208), R16(224), R16(240)
#undef R16
    };
    for (int c = 0; c < 3; c++) {
        float mean = info && c < info->channels ? info->mean[c] : 0.0f;
        float std = info && c < info->channels ? info->std[c] : 1.0f;
        normalize_plane(all, lut + c * 256, 256, mean, std);
    }
}

dc_augment dc_augment_auto(dc_dataset_id id)
{
    if (id == DC_DATASET_CIFAR10) return (dc_augment){true, 4, true};
    return dc_augment_none();
}

dc_augment dc_augment_none(void) { return (dc_augment){false, 0, false}; }

typedef struct aug_params {
    int top, left; /* crop offsets into the padded image, in [0, 2 * padding] */
    int flip;
} aug_params;

/* The largest image of any data set (CIFAR-10: 3 x 32 x 32): augmented images are assembled
 * in a stack buffer of this size. */
#define MAX_IMAGE_BYTES 3072

/* One image cropped from the zero-padded image and optionally mirrored, still uint8:
 * out[c][y][x] = in[c][y + top - pad][x' + left - pad] with x' = W-1-x when flipped, and 0
 * (torchvision pads the uint8/PIL image with 0 before normalizing) outside. */
static void crop_flip(const uint8_t *src, uint8_t *dst, int C, int H, int W, int pad, aug_params p)
{
    const int dx = p.left - pad;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++) {
            int sy = y + p.top - pad;
            uint8_t *row = dst + ((size_t)c * H + y) * W;
            if (sy < 0 || sy >= H) {
                memset(row, 0, (size_t)W);
                continue;
            }
            const uint8_t *in = src + ((size_t)c * H + sy) * W;
            /* the output columns whose source column is inside the image: [x0, x1), clamped
             * to the row (padding wider than the image leaves it all zeros) */
            int x0 = p.flip ? dx : -dx, x1 = p.flip ? W + dx : W - dx;
            if (x0 < 0) x0 = 0;
            if (x0 > W) x0 = W;
            if (x1 > W) x1 = W;
            if (x1 < x0) x1 = x0;
            memset(row, 0, (size_t)x0);
            if (p.flip)
                for (int x = x0; x < x1; x++) row[x] = in[W - 1 - x + dx];
            else
                memcpy(row + x0, in + x0 + dx, (size_t)(x1 - x0));
            memset(row + x1, 0, (size_t)(W - x1));
        }
}

dc_status dc_dataset_batch(const dc_dataset *ds, const int64_t *idx, int64_t n,
                           const dc_augment *aug, dc_rng *rng, float *x, int64_t *y)
{
    if (!ds || (n > 0 && (!idx || !x)) || n < 0)
        return dc_set_error(DC_ERR_ARG, "dataset_batch: NULL dataset, indices or output buffer");
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= ds->count)
            return dc_set_error(DC_ERR_ARG, "dataset_batch: index %lld (batch position %lld) is outside the %lld images of %s",
                                (long long)idx[i], (long long)i, (long long)ds->count, ds->info->title);
    bool augment = aug && aug->enabled && (aug->crop_padding > 0 || aug->hflip);
    if (augment && (aug->crop_padding < 0 || aug->crop_padding > 1024))
        return dc_set_error(DC_ERR_ARG, "dataset_batch: crop padding %d outside 0..1024", aug->crop_padding);
    const int C = ds->channels, H = ds->height, W = ds->width;
    const int64_t isz = ds->image_size, hw = (int64_t)H * W;
    if (augment && isz > MAX_IMAGE_BYTES)
        return dc_set_error(DC_ERR_UNSUPPORTED, "dataset_batch: augmentation of %lld-byte images", (long long)isz);
    const float *mean = ds->info->mean, *std = ds->info->std;
    aug_params *params = NULL;
    if (augment) {
        if (!rng) rng = dc_default_rng();
        params = malloc((size_t)(n > 0 ? n : 1) * sizeof *params);
        if (!params) return dc_set_error(DC_ERR_OOM, "dataset_batch: out of memory");
        /* Drawn serially in batch order, so the batch depends only on the rng state, never on
         * the number of threads. The draws are torchvision's, on torch's generator:
         * RandomCrop: top = torch.randint(0, 2p+1), left = torch.randint(0, 2p+1) (both
         * random() % range); RandomHorizontalFlip: torch.rand(1) < 0.5 (24-bit float). So a
         * generator seeded like torch.manual_seed(s) crops and flips image by image exactly as
         * torchvision does after that seed. */
        for (int64_t i = 0; i < n; i++) {
            uint32_t span = 2u * (uint32_t)aug->crop_padding + 1u;
            params[i].top = aug->crop_padding > 0 ? (int)(dc_rng_u32(rng) % span) : aug->crop_padding;
            params[i].left = aug->crop_padding > 0 ? (int)(dc_rng_u32(rng) % span) : aug->crop_padding;
            params[i].flip = aug->hflip ? dc_rng_uniform_f32(rng) < 0.5f : 0;
        }
    }
    /* every image is independent: split the batch over threads (small batches stay serial,
     * where starting the team would cost more than the copy) */
#pragma omp parallel for schedule(static) if (n * isz >= 65536)
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *src = ds->images + idx[i] * isz;
        uint8_t tmp[MAX_IMAGE_BYTES];
        if (params) {
            crop_flip(src, tmp, C, H, W, aug->crop_padding, params[i]);
            src = tmp;
        }
        float *dst = x + i * isz;
        for (int c = 0; c < C; c++) normalize_plane(src + c * hw, dst + c * hw, hw, mean[c], std[c]);
    }
    if (y)
        for (int64_t i = 0; i < n; i++) y[i] = ds->labels[idx[i]];
    free(params);
    return DC_OK;
}

dc_status dc_normalize_images(dc_dataset_id id, const uint8_t *images, int64_t n, float *x)
{
    const dc_dataset_info *info = dc_dataset_info_of(id);
    if (!info) return dc_set_error(DC_ERR_ARG, "normalize_images: unknown dataset id %d", (int)id);
    if (n < 0 || (n > 0 && (!images || !x)))
        return dc_set_error(DC_ERR_ARG, "normalize_images: NULL images or output buffer");
    const int64_t hw = (int64_t)info->height * info->width;
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < info->channels; c++) {
            int64_t off = (i * info->channels + c) * hw;
            normalize_plane(images + off, x + off, hw, info->mean[c], info->std[c]);
        }
    return DC_OK;
}

/* torch.randperm on the CPU (aten/src/ATen/native/TensorFactories.cpp, randperm_cpu): start
 * from the identity and, for i = 0 .. n-2, swap element i with element i + (random() % (n-i))
 * where random() is the generator's next 32-bit output (64-bit for huge n). */
dc_status dc_randperm(int64_t n, dc_rng *rng, int64_t *out)
{
    if (n < 0 || (n > 0 && !out)) return dc_set_error(DC_ERR_ARG, "randperm: bad n %lld or NULL output", (long long)n);
    if (!rng) rng = dc_default_rng();
    for (int64_t i = 0; i < n; i++) out[i] = i;
    const bool small = n < (int64_t)(UINT32_MAX / 20);
    for (int64_t i = 0; i < n - 1; i++) {
        uint64_t r = small ? dc_rng_u32(rng) : dc_rng_u64(rng);
        int64_t z = (int64_t)(r % (uint64_t)(n - i));
        int64_t t = out[i];
        out[i] = out[z + i];
        out[z + i] = t;
    }
    return DC_OK;
}

dc_status dc_split_train_val(int64_t n, int64_t val_size, uint64_t seed, int64_t **train,
                             int64_t *n_train, int64_t **val, int64_t *n_val)
{
    if (!train || !n_train || !val || !n_val) return dc_set_error(DC_ERR_ARG, "split_train_val: NULL output");
    *train = *val = NULL;
    *n_train = *n_val = 0;
    if (n <= 0) return dc_set_error(DC_ERR_ARG, "split_train_val: no images to split (%lld)", (long long)n);
    if (val_size < 0 || val_size >= n)
        return dc_set_error(DC_ERR_ARG, "--val-size %lld must be between 0 and %lld (the training set has %lld images)",
                            (long long)val_size, (long long)(n - 1), (long long)n);
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    int64_t *v = val_size ? malloc((size_t)val_size * sizeof *v) : NULL;
    if (!perm || (val_size && !v)) {
        free(perm);
        free(v);
        return dc_set_error(DC_ERR_OOM, "split_train_val: out of memory");
    }
    dc_rng rng;
    dc_rng_seed(&rng, seed);
    dc_randperm(n, &rng, perm);
    if (val_size) memcpy(v, perm + (n - val_size), (size_t)val_size * sizeof *v);
    *train = perm; /* the first n - val_size entries; the tail is unused */
    *n_train = n - val_size;
    *val = v;
    *n_val = val_size;
    return DC_OK;
}

dc_status dc_shuffle_indices(int64_t *idx, int64_t n, dc_rng *rng)
{
    if (n <= 1) return DC_OK;
    if (!idx) return dc_set_error(DC_ERR_ARG, "shuffle_indices: NULL indices");
    int64_t *buf = malloc(2 * (size_t)n * sizeof *buf);
    if (!buf) return dc_set_error(DC_ERR_OOM, "shuffle_indices: out of memory");
    int64_t *perm = buf, *tmp = buf + n;
    dc_randperm(n, rng, perm);
    for (int64_t i = 0; i < n; i++) tmp[i] = idx[perm[i]];
    memcpy(idx, tmp, (size_t)n * sizeof *idx);
    free(buf);
    return DC_OK;
}
