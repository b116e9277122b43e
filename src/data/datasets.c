/* datasets.c: the data-set table (names, shapes, class names, normalization constants), the
 * data-folder search (--data-dir, $DEEPC_DATA, ./data, ../shared/data, /usr/share/datasets)
 * and dc_dataset_load, which finds a split's files and hands them to the IDX or CIFAR reader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deepc/data.h"
#include "util/util.h"

static const char *const mnist_classes[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
static const char *const fashion_classes[] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                              "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};
static const char *const cifar_classes[] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                            "dog",      "frog",       "horse", "ship", "truck"};

/* The constants are the ones the PyTorch recipes use; they are stored as float32 exactly as
 * torchvision's Normalize turns the Python floats into a float32 tensor. */
static const dc_dataset_info infos[DC_DATASET_COUNT] = {
    {DC_DATASET_MNIST, "mnist", "MNIST", 1, 28, 28, 10, mnist_classes,
     {0.1307f, 0, 0}, {0.3081f, 1, 1}, 60000, 10000},
    {DC_DATASET_FASHION_MNIST, "fashion-mnist", "Fashion-MNIST", 1, 28, 28, 10, fashion_classes,
     {0.2860f, 0, 0}, {0.3530f, 1, 1}, 60000, 10000},
    {DC_DATASET_CIFAR10, "cifar10", "CIFAR-10", 3, 32, 32, 10, cifar_classes,
     {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}, 50000, 10000},
};

const dc_dataset_info *dc_dataset_info_of(dc_dataset_id id)
{
    if ((int)id < 0 || id >= DC_DATASET_COUNT) return NULL;
    return &infos[id];
}

const char *dc_dataset_names(void) { return "mnist, fashion-mnist, cifar10"; }

dc_status dc_dataset_parse(const char *name, dc_dataset_id *out)
{
    static const struct {
        const char *name;
        dc_dataset_id id;
    } aliases[] = {
        {"mnist", DC_DATASET_MNIST},          {"fashion-mnist", DC_DATASET_FASHION_MNIST},
        {"fashion_mnist", DC_DATASET_FASHION_MNIST}, {"fashionmnist", DC_DATASET_FASHION_MNIST},
        {"fmnist", DC_DATASET_FASHION_MNIST}, {"cifar10", DC_DATASET_CIFAR10},
        {"cifar-10", DC_DATASET_CIFAR10},     {"cifar_10", DC_DATASET_CIFAR10},
    };
    if (name)
        for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
            if (!strcasecmp(name, aliases[i].name)) {
                if (out) *out = aliases[i].id;
                return DC_OK;
            }
    return dc_set_error(DC_ERR_ARG, "unknown dataset '%s' (valid: %s)", name ? name : "(none)",
                        dc_dataset_names());
}

/* ---------------------------------------------------------------------------------------
 * Where the files are
 * ------------------------------------------------------------------------------------- */

/* Folder names tried under each root, in order. torchvision's layouts come after ours. */
static const char *const mnist_dirs[] = {"mnist", "MNIST/raw", "MNIST", NULL};
static const char *const fashion_dirs[] = {"fashion-mnist", "FashionMNIST/raw", "FashionMNIST",
                                           "fashion_mnist", NULL};
static const char *const cifar_dirs[] = {"cifar-10-batches-bin", "cifar-10/cifar-10-batches-bin",
                                         "cifar-10-partial/cifar-10-batches-bin", NULL};

static const char *const *dirs_of(dc_dataset_id id)
{
    return id == DC_DATASET_MNIST ? mnist_dirs : id == DC_DATASET_FASHION_MNIST ? fashion_dirs : cifar_dirs;
}

static const char *const idx_train[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", NULL};
static const char *const idx_test[] = {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", NULL};
static const char *const cifar_train[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                          "data_batch_4.bin", "data_batch_5.bin", NULL};
static const char *const cifar_test[] = {"test_batch.bin", NULL};

static const char *const *files_of(dc_dataset_id id, dc_data_split split)
{
    if (id == DC_DATASET_CIFAR10) return split == DC_SPLIT_TRAIN ? cifar_train : cifar_test;
    return split == DC_SPLIT_TRAIN ? idx_train : idx_test;
}

/* Finds one expected file in dir. IDX names may carry .gz, and some copies spell
 * "train-images.idx3-ubyte" (a dot before idx). Writes the full path to out. */
static bool find_file(dc_dataset_id id, const char *dir, const char *base, char *out, size_t size)
{
    if (id == DC_DATASET_CIFAR10) return dc__path_join(out, size, dir, base) && dc__is_file(out);
    char dotted[128];
    snprintf(dotted, sizeof dotted, "%s", base);
    char *dash = strstr(dotted, "-idx");
    if (dash) *dash = '.';
    const char *variants[2] = {base, dotted};
    for (int v = 0; v < 2; v++)
        for (int gz = 0; gz < 2; gz++) {
            char name[160];
            snprintf(name, sizeof name, "%s%s", variants[v], gz ? ".gz" : "");
            if (dc__path_join(out, size, dir, name) && dc__is_file(out)) return true;
        }
    return false;
}

typedef struct root {
    const char *path;
    const char *why; /* how it got on the list, for the error message */
} root;

static int search_roots(const char *data_dir, root *roots)
{
    int n = 0;
    if (data_dir && *data_dir) roots[n++] = (root){data_dir, " (--data-dir)"};
    const char *env = getenv("DEEPC_DATA");
    if (env && *env) roots[n++] = (root){env, " ($DEEPC_DATA)"};
    roots[n++] = (root){"./data", ""};
    roots[n++] = (root){"../shared/data", ""};
    roots[n++] = (root){"/usr/share/datasets", ""};
    return n;
}

/* True when dir holds every file of the split; otherwise counts how many it holds. */
static bool dir_has_split(dc_dataset_id id, dc_data_split split, const char *dir, int *n_found)
{
    char path[4096];
    int found = 0, total = 0;
    for (const char *const *f = files_of(id, split); *f; f++, total++)
        if (find_file(id, dir, *f, path, sizeof path)) found++;
    *n_found = found;
    return found == total;
}

static void describe_expected(dc_dataset_id id, dc_data_split split, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    const char *const *files = files_of(id, split);
    for (int i = 0; files[i]; i++) {
        const char *sep = i == 0 ? "" : files[i + 1] ? ", " : " and ";
        len += (size_t)snprintf(out + len, len < size ? size - len : 0, "%s%s%s", sep, files[i],
                                id == DC_DATASET_CIFAR10 ? "" : "[.gz]");
        if (len >= size) break;
    }
}

dc_status dc_dataset_find(dc_dataset_id id, dc_data_split split, const char *data_dir, char *out,
                          size_t size)
{
    const dc_dataset_info *info = dc_dataset_info_of(id);
    if (!info) return dc_set_error(DC_ERR_ARG, "unknown dataset id %d (valid: %s)", (int)id, dc_dataset_names());
    root roots[5];
    int nroots = search_roots(data_dir, roots);
    char partial[4096] = "";
    for (int r = 0; r < nroots; r++) {
        char dir[4096];
        for (const char *const *d = dirs_of(id); *d; d++) {
            if (!dc__path_join(dir, sizeof dir, roots[r].path, *d) || !dc__is_dir(dir)) continue;
            int found;
            if (dir_has_split(id, split, dir, &found)) {
                if (strlen(dir) >= size) return dc_set_error(DC_ERR_IO, "path too long: %s", dir);
                memcpy(out, dir, strlen(dir) + 1);
                return DC_OK;
            }
            if (found > 0 && !partial[0])
                if (snprintf(partial, sizeof partial, " (%s holds only some of them)", dir) < 0) partial[0] = '\0';
        }
        /* an explicit --data-dir may be the data set's own folder */
        if (r == 0 && data_dir && *data_dir && roots[0].path == data_dir && dc__is_dir(data_dir)) {
            int found;
            if (dir_has_split(id, split, data_dir, &found)) {
                if (strlen(data_dir) >= size) return dc_set_error(DC_ERR_IO, "path too long: %s", data_dir);
                memcpy(out, data_dir, strlen(data_dir) + 1);
                return DC_OK;
            }
            if (found > 0 && !partial[0])
                if (snprintf(partial, sizeof partial, " (%s holds only some of them)", data_dir) < 0) partial[0] = '\0';
        }
    }
    char expected[512], folders[256] = "", searched[2048] = "";
    describe_expected(id, split, expected, sizeof expected);
    size_t len = 0;
    for (const char *const *d = dirs_of(id); *d; d++)
        len += (size_t)snprintf(folders + len, len < sizeof folders ? sizeof folders - len : 0,
                                "%s%s/", d == dirs_of(id) ? "" : ", ", *d);
    len = 0;
    for (int r = 0; r < nroots; r++)
        len += (size_t)snprintf(searched + len, len < sizeof searched ? sizeof searched - len : 0,
                                "%s%s%s", r ? ", " : "", roots[r].path, roots[r].why);
    return dc_set_error(DC_ERR_IO,
                        "%s %s set not found: expected %s in a folder %s under one of %s%s; "
                        "run 'deepc download %s' or pass --data-dir",
                        info->title, split == DC_SPLIT_TRAIN ? "training" : "test", expected,
                        folders, searched, partial, info->name);
}

const char *dc_default_download_dir(const char *data_dir, char *out, size_t size)
{
    const char *env = getenv("DEEPC_DATA");
    const char *dir = data_dir && *data_dir ? data_dir : env && *env ? env : "./data";
    snprintf(out, size, "%s", dir);
    return out;
}

dc_dataset *dc_dataset_load(dc_dataset_id id, dc_data_split split, const char *data_dir)
{
    char dir[4096];
    if (dc_dataset_find(id, split, data_dir, dir, sizeof dir)) return NULL;
    const char *const *files = files_of(id, split);
    char paths[5][4096];
    const char *ptrs[5];
    int n = 0;
    for (; files[n]; n++) {
        if (!find_file(id, dir, files[n], paths[n], sizeof paths[n])) {
            dc_set_error(DC_ERR_IO, "%s: %s disappeared while loading", dir, files[n]);
            return NULL;
        }
        ptrs[n] = paths[n];
    }
    dc_dataset *ds = id == DC_DATASET_CIFAR10 ? dc_cifar10_load(n, ptrs) : dc_idx_load(id, ptrs[0], ptrs[1]);
    if (ds) dc__strlcpy(ds->source, sizeof ds->source, dir);
    return ds;
}

void dc_dataset_free(dc_dataset *ds)
{
    if (!ds) return;
    free(ds->images);
    free(ds->labels);
    free(ds);
}
