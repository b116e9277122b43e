/* deepc/data.h: image-classification data sets (MNIST, Fashion-MNIST, CIFAR-10), batching with
 * torchvision's preprocessing, train/validation splits, augmentation, classification metrics,
 * image files for prediction and dataset downloads.
 *
 *   dc_dataset *train = dc_dataset_load(DC_DATASET_MNIST, DC_SPLIT_TRAIN, data_dir);  // uint8
 *   int64_t *tr, *va, ntr, nva;
 *   dc_split_train_val(train->count, 5000, seed, &tr, &ntr, &va, &nva);               // seeded
 *   dc_rng rng; dc_rng_seed(&rng, seed);
 *   dc_augment aug = dc_augment_auto(train->id);      // crop+flip for CIFAR-10, none otherwise
 *   for (epoch...) {
 *       dc_shuffle_indices(tr, ntr, &rng);
 *       for (b...) dc_dataset_batch(train, tr + b * B, B, &aug, &rng, x, y);  // x [B,C,H,W]
 *   }
 *   dc_metrics m; dc_metrics_init(&m, 10); dc_metrics_update(&m, y_true, y_pred, n);
 *   dc_metrics_finalize(&m);
 *
 * Data sets stay uint8 in memory ([N, C, H, W] images, one label byte each); batches are
 * normalized on the fly: (pixel / 255 - mean) / std in float32, bit-identical to torchvision's
 * ToTensor() + Normalize(mean, std).
 *
 * Data folders are searched in this order: the explicit data_dir (--data-dir), $DEEPC_DATA,
 * ./data, ../shared/data, /usr/share/datasets. Inside each, a data set lives in
 *   mnist/          train-images-idx3-ubyte[.gz] train-labels-idx1-ubyte[.gz]
 *                   t10k-images-idx3-ubyte[.gz]  t10k-labels-idx1-ubyte[.gz]
 *   fashion-mnist/  the same four names
 *   cifar-10-batches-bin/  data_batch_1.bin .. data_batch_5.bin, test_batch.bin
 *                   (also cifar-10/cifar-10-batches-bin/ and cifar-10-partial/cifar-10-batches-bin/)
 * torchvision's layouts (MNIST/raw/, FashionMNIST/raw/) are accepted too, and an explicit
 * data_dir may also be the data set's own folder.
 */
#ifndef DEEPC_DATA_H
#define DEEPC_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "deepc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------
 * Data sets
 * ------------------------------------------------------------------------------------- */

#define DC_MAX_CLASSES 10

typedef enum dc_dataset_id {
    DC_DATASET_MNIST = 0,
    DC_DATASET_FASHION_MNIST,
    DC_DATASET_CIFAR10,
    DC_DATASET_COUNT
} dc_dataset_id;

typedef struct dc_dataset_info {
    dc_dataset_id id;
    const char *name;   /* command-line name: "mnist", "fashion-mnist", "cifar10" */
    const char *title;  /* for reports: "MNIST", "Fashion-MNIST", "CIFAR-10" */
    int channels, height, width;
    int num_classes;
    const char *const *class_names; /* num_classes entries */
    float mean[3], std[3];          /* Normalize() constants, per channel (channels used) */
    int64_t train_count, test_count; /* the official sizes */
} dc_dataset_info;

const dc_dataset_info *dc_dataset_info_of(dc_dataset_id id);
/* Parses a data-set name ("mnist", "fashion-mnist", "cifar10"; also "fashion_mnist", "fmnist",
 * "cifar-10", case-insensitive). Unknown names are DC_ERR_ARG with the list of valid ones. */
dc_status dc_dataset_parse(const char *name, dc_dataset_id *out);
/* "mnist, fashion-mnist, cifar10" */
const char *dc_dataset_names(void);

typedef enum dc_data_split { DC_SPLIT_TRAIN = 0, DC_SPLIT_TEST } dc_data_split;

typedef struct dc_dataset {
    dc_dataset_id id;
    const dc_dataset_info *info;
    int64_t count;
    int channels, height, width;
    int64_t image_size;  /* channels * height * width bytes */
    uint8_t *images;     /* [count, channels, height, width], row-major */
    uint8_t *labels;     /* [count], each < info->num_classes */
    char source[1024];   /* the folder (or files) it was loaded from, for messages */
} dc_dataset;

/* Finds the data set's folder (search order above) and loads one split. Errors (one line):
 * not found (naming the files expected, the folders searched and `deepc download NAME`),
 * unreadable, or malformed files (naming the file, what was expected and what was found). */
dc_dataset *dc_dataset_load(dc_dataset_id id, dc_data_split split, const char *data_dir);
void dc_dataset_free(dc_dataset *ds);

/* The folder holding the split's files, written to `out`. DC_ERR_IO (with the message above)
 * when no searched folder has them. */
dc_status dc_dataset_find(dc_dataset_id id, dc_data_split split, const char *data_dir, char *out,
                          size_t size);
/* The folder `deepc download` writes to: data_dir, else $DEEPC_DATA, else ./data. */
const char *dc_default_download_dir(const char *data_dir, char *out, size_t size);

/* IDX files (MNIST layout, gzipped or not): images (magic 2051, count, 28, 28, pixels) and
 * labels (magic 2049, count, labels < 10). Both counts must agree with each other and with
 * the (decompressed) file sizes. */
dc_dataset *dc_idx_load(dc_dataset_id id, const char *images_path, const char *labels_path);
/* The same from memory (tests, fuzzing); each buffer may be gzip-compressed. */
dc_dataset *dc_idx_parse(dc_dataset_id id, const void *images, size_t images_size,
                         const char *images_name, const void *labels, size_t labels_size,
                         const char *labels_name);
/* CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes (R, G, B planes of
 * 32x32). Record count = file size / 3073; sizes that are not a multiple are an error. */
dc_dataset *dc_cifar10_load(int n_files, const char *const *paths);
dc_dataset *dc_cifar10_parse(const void *data, size_t size, const char *name);

/* ---------------------------------------------------------------------------------------
 * Splits, shuffling, batches
 * ------------------------------------------------------------------------------------- */

/* --val-size's default: images of the training set held out for validation. */
#define DC_DEFAULT_VAL_SIZE 5000

/* torch.randperm(n, generator=g) for a generator in the same state (n < 2^32 / 20). */
dc_status dc_randperm(int64_t n, dc_rng *rng, int64_t *out);
/* torch.utils.data.random_split(range(n), [n - val_size, val_size],
 * generator=torch.Generator().manual_seed(seed)): a seeded permutation; the first
 * n - val_size indices train, the rest validate. Both arrays are malloc'ed (free them);
 * *val is NULL when val_size is 0. */
dc_status dc_split_train_val(int64_t n, int64_t val_size, uint64_t seed, int64_t **train,
                             int64_t *n_train, int64_t **val, int64_t *n_val);
/* Reorders idx[0..n) by a fresh random permutation (the per-epoch reshuffle). */
dc_status dc_shuffle_indices(int64_t *idx, int64_t n, dc_rng *rng);

typedef struct dc_augment {
    bool enabled;
    int crop_padding; /* RandomCrop(size, padding=crop_padding), zero fill; 0 = no crop */
    bool hflip;       /* RandomHorizontalFlip(p = 0.5) */
} dc_augment;

/* The `--augment auto` policy: CIFAR-10 crop 32 padding 4 + flip; none for MNIST-like sets. */
dc_augment dc_augment_auto(dc_dataset_id id);
dc_augment dc_augment_none(void);

/* Fills x [n, C, H, W] (float32, caller's buffer) with the normalized images ds[idx[i]] and
 * y [n] with their labels (y may be NULL). With aug enabled, each image gets its crop offsets
 * (top, then left) and flip drawn from rng in index order before the (parallel) copy, so
 * results depend only on the rng state, not on the thread count. */
dc_status dc_dataset_batch(const dc_dataset *ds, const int64_t *idx, int64_t n,
                           const dc_augment *aug, dc_rng *rng, float *x, int64_t *y);
/* The same from raw uint8 images [n, C, H, W] (no augmentation): predict's path. */
dc_status dc_normalize_images(dc_dataset_id id, const uint8_t *images, int64_t n, float *x);
/* The 256-entry table lut[c * 256 + p] = (p / 255 - mean[c]) / std[c] in float32. */
void dc_normalize_lut(dc_dataset_id id, float lut[3 * 256]);

/* ---------------------------------------------------------------------------------------
 * Classification metrics (scikit-learn's definitions, zero_division = 0)
 * ------------------------------------------------------------------------------------- */

typedef struct dc_class_metrics {
    double precision, recall, f1;
    int64_t support; /* true instances of the class */
} dc_class_metrics;

typedef struct dc_metrics {
    int num_classes;
    int64_t total, correct;
    double accuracy;
    /* macro averages over the classes that occur in y_true or y_pred (sklearn's default
     * labels); all num_classes are listed in per_class */
    double precision, recall, f1;
    dc_class_metrics per_class[DC_MAX_CLASSES];
    int64_t confusion[DC_MAX_CLASSES][DC_MAX_CLASSES]; /* [true][predicted] */
} dc_metrics;

dc_status dc_metrics_init(dc_metrics *m, int num_classes);
/* Adds n (true, predicted) pairs to the confusion matrix; labels outside [0, num_classes) are
 * DC_ERR_ARG. */
dc_status dc_metrics_update(dc_metrics *m, const int64_t *y_true, const int64_t *y_pred, int64_t n);
/* Computes accuracy, per-class and macro precision/recall/F1 from the confusion matrix. */
void dc_metrics_finalize(dc_metrics *m);
/* init + update + finalize. */
dc_status dc_metrics_compute(dc_metrics *m, int num_classes, const int64_t *y_true,
                             const int64_t *y_pred, int64_t n);
/* Row-wise argmax of logits [n, k] (first maximum wins, as torch.argmax). */
void dc_argmax_rows(const float *logits, int64_t n, int k, int64_t *out);
/* The `test` object of metrics.json: {"loss", "accuracy", "precision", "recall", "f1",
 * "per_class": [{"class", "precision", "recall", "f1", "support"}...], "confusion"}.
 * class_names may be NULL. Returns a malloc'ed string (free it), NULL on OOM. */
char *dc_metrics_json(const dc_metrics *m, double loss, const char *const *class_names);

/* ---------------------------------------------------------------------------------------
 * Image files (predict)
 * ------------------------------------------------------------------------------------- */

/* Reads a PNG, JPEG or PGM/PPM (P2, P3, P5, P6) file into 8-bit pixels, interleaved
 * (HWC) with *channels = 1 (gray) or 3 (RGB); alpha is dropped. Returns malloc'ed pixels. */
uint8_t *dc_image_read(const char *path, int *width, int *height, int *channels);
/* Converts HWC pixels to the wanted channel count the way PIL's convert('L'/'RGB') does
 * (L = (19595 R + 38470 G + 7471 B + 32768) >> 16) and resizes with PIL's antialiased
 * bilinear filter (Image.resize(size, BILINEAR)). Returns malloc'ed CHW pixels. */
uint8_t *dc_image_convert(const uint8_t *pixels, int width, int height, int channels,
                          int out_channels, int out_width, int out_height);
/* Reads `path`, converts it to the data set's channels and size, and writes the normalized
 * CHW floats to x (C*H*W floats). invert: 255 - p after conversion (dark digits on light
 * paper → MNIST's light-on-dark). */
dc_status dc_image_load_normalized(const char *path, dc_dataset_id id, bool invert, float *x);

/* ---------------------------------------------------------------------------------------
 * Downloads (libcurl): `deepc download mnist|fashion-mnist|cifar10 [--data-dir DIR]`
 * ------------------------------------------------------------------------------------- */

typedef struct dc_download_opts {
    bool quiet;        /* no progress output */
    FILE *progress;    /* where progress goes (NULL: stderr) */
    int max_retries;   /* resumes after a dropped connection (0: default 5) */
    long timeout_s;    /* give up when no byte arrives for this long (0: default 60) */
} dc_download_opts;

/* Downloads a data set's files into dc_default_download_dir(data_dir)/<folder>/ from the
 * canonical URLs (or $DEEPC_DOWNLOAD_BASE + file name), resuming partial downloads (*.part,
 * HTTP Range), verifying the official md5 checksums and renaming into place. CIFAR-10's
 * archive is extracted to <dir>/cifar-10-batches-bin/ and then removed. Files already
 * present with the right checksum are kept. opts may be NULL. */
dc_status dc_download_dataset(dc_dataset_id id, const char *data_dir, const dc_download_opts *opts);
/* One file: url → dest (atomic), resuming dest.part; expected_md5 (32 hex digits) or NULL. */
dc_status dc_download_file(const char *url, const char *dest, const char *expected_md5,
                           const dc_download_opts *opts);
/* Extracts a .tar.gz (or plain .tar) into dest_dir: regular files and folders only, no
 * absolute paths or "..", each file written atomically. */
dc_status dc_extract_tar_gz(const char *archive, const char *dest_dir);

/* md5 of a file as 32 lowercase hex digits + NUL. */
dc_status dc_md5_file(const char *path, char hex[33]);
void dc_md5_buffer(const void *data, size_t size, char hex[33]);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_DATA_H */
