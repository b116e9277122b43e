/* cifar.c: the CIFAR-10 binary-batch reader. A batch file is a run of 3073-byte records
 * (1 label byte, then the 32x32 R, G and B planes); the record count is the file size / 3073,
 * so partial files (like the 1017-image test subset in ../shared/data) load as they are.
 * Records are split into the data set's planar image array and its label array. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"
#include "util/util.h"

#define CIFAR_RECORD 3073
#define CIFAR_PIXELS 3072

static dc_status check_size(const char *name, int64_t size)
{
    if (size <= 0)
        return dc_set_error(DC_ERR_FORMAT, "%s: empty file, expected CIFAR-10 records of %d bytes", name,
                            CIFAR_RECORD);
    if (size % CIFAR_RECORD)
        return dc_set_error(DC_ERR_FORMAT,
                            "%s: %lld bytes is not a whole number of %d-byte CIFAR-10 records "
                            "(1 label + 3072 pixels): %lld records and %lld bytes left over",
                            name, (long long)size, CIFAR_RECORD, (long long)(size / CIFAR_RECORD),
                            (long long)(size % CIFAR_RECORD));
    return DC_OK;
}

/* Splits `n` records into the data set at position `at`, checking labels. */
static dc_status split_records(dc_dataset *ds, int64_t at, const uint8_t *rec, int64_t n,
                               const char *name, int64_t first_record)
{
    for (int64_t i = 0; i < n; i++, rec += CIFAR_RECORD) {
        if (rec[0] >= 10)
            return dc_set_error(DC_ERR_FORMAT,
                                "%s: record %lld has label %u, expected 0..9 (is this a CIFAR-10 binary batch?)",
                                name, (long long)(first_record + i), rec[0]);
        ds->labels[at + i] = rec[0];
        memcpy(ds->images + (at + i) * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
    }
    return DC_OK;
}

dc_dataset *dc_cifar10_parse(const void *data, size_t size, const char *name)
{
    name = name ? name : "(memory)";
    if (!data && size) {
        dc_set_error(DC_ERR_ARG, "cifar10_parse: NULL buffer");
        return NULL;
    }
    if (check_size(name, (int64_t)size)) return NULL;
    int64_t n = (int64_t)size / CIFAR_RECORD;
    dc_dataset *ds = dc__dataset_new(DC_DATASET_CIFAR10, n);
    if (!ds) return NULL;
    if (split_records(ds, 0, data, n, name, 0)) {
        dc_dataset_free(ds);
        return NULL;
    }
    snprintf(ds->source, sizeof ds->source, "%s", name);
    return ds;
}

dc_dataset *dc_cifar10_load(int n_files, const char *const *paths)
{
    if (n_files <= 0 || !paths) {
        dc_set_error(DC_ERR_ARG, "cifar10_load: no files given");
        return NULL;
    }
    /* sizes first: every file is checked before anything big is allocated */
    int64_t total = 0;
    for (int f = 0; f < n_files; f++) {
        int64_t size = dc__file_size(paths[f]);
        if (size < 0) {
            dc_set_error(DC_ERR_IO, "cannot open %s: %s", paths[f],
                         dc__is_dir(paths[f]) ? "is a folder" : strerror(ENOENT));
            return NULL;
        }
        if (check_size(paths[f], size)) return NULL;
        total += size / CIFAR_RECORD;
    }
    dc_dataset *ds = dc__dataset_new(DC_DATASET_CIFAR10, total);
    if (!ds) return NULL;
    enum { CHUNK = 256 }; /* records per read: 786 KB */
    uint8_t *buf = malloc((size_t)CHUNK * CIFAR_RECORD);
    if (!buf) {
        dc_set_error(DC_ERR_OOM, "out of memory");
        dc_dataset_free(ds);
        return NULL;
    }
    int64_t at = 0;
    for (int f = 0; f < n_files; f++) {
        FILE *fp = fopen(paths[f], "rb");
        if (!fp) {
            dc_set_error(DC_ERR_IO, "cannot open %s: %s", paths[f], strerror(errno));
            goto fail;
        }
        int64_t n = dc__file_size(paths[f]) / CIFAR_RECORD, done = 0;
        while (done < n) {
            int64_t want = n - done < CHUNK ? n - done : CHUNK;
            size_t got = fread(buf, CIFAR_RECORD, (size_t)want, fp);
            if ((int64_t)got != want) {
                dc_set_error(DC_ERR_IO, "%s: read failed after %lld records (file changed while reading?)",
                             paths[f], (long long)(done + (int64_t)got));
                fclose(fp);
                goto fail;
            }
            if (split_records(ds, at + done, buf, want, paths[f], done)) {
                fclose(fp);
                goto fail;
            }
            done += want;
        }
        fclose(fp);
        at += n;
    }
    free(buf);
    snprintf(ds->source, sizeof ds->source, "%s%s", paths[0], n_files > 1 ? " ..." : "");
    return ds;
fail:
    free(buf);
    dc_dataset_free(ds);
    return NULL;
}
