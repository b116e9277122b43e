/* image.c: image files for `deepc predict`: PNG (libpng), JPEG (stb_image, from Debian's
 * libstb-dev, when present at build time) and PGM/PPM (a small reader here), then the same
 * conversion a PyTorch script does with PIL: Image.open(f).convert('L' or 'RGB')
 * .resize((W, H), Image.BILINEAR), then ToTensor + Normalize. The conversion and the resize
 * reproduce Pillow's integer arithmetic, so PNG and PGM inputs give PIL's exact pixels. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "data_internal.h"
#include "util/util.h"

#if defined(__has_include)
#if __has_include(<stb/stb_image.h>)
#define DC_HAVE_STB 1
/* Only the decoders libpng and the PNM reader below do not cover. The header lives in a
 * system include folder, so its own warnings do not trip -Werror. */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
/* static linkage keeps stb's symbols private to this file; the API functions left unused
 * (GIF, HDR...) would otherwise warn at the end of the file */
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb/stb_image.h>
#endif
#endif

/* Larger images are refused rather than decoded: 64 megapixels is far beyond a photo that
 * is about to be shrunk to 28x28. */
#define MAX_PIXELS (64ll << 20)

/* ---------------------------------------------------------------------------------------
 * PNG (libpng, low-level API so the channels come out as stored, like PIL reads them)
 * ------------------------------------------------------------------------------------- */

typedef struct png_err {
    jmp_buf jmp;
    char msg[256];
} png_err;

static void png_error_fn(png_structp png, png_const_charp msg)
{
    png_err *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    longjmp(e->jmp, 1);
}

static void png_warning_fn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* warnings (e.g. a bad sRGB chunk) do not stop the decode */
}

static uint8_t *read_png(const char *path, FILE *fp, int *w, int *h, int *c)
{
    png_err err;
    err.msg[0] = '\0';
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_error_fn, png_warning_fn);
    if (!png) {
        dc_set_error(DC_ERR_OOM, "%s: out of memory", path);
        return NULL;
    }
    png_infop info = png_create_info_struct(png);
    /* volatile: these change after setjmp and are read after a longjmp */
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(err.jmp)) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        dc_set_error(DC_ERR_FORMAT, "%s: cannot decode PNG: %s", path, err.msg[0] ? err.msg : "out of memory");
        return NULL;
    }
    png_init_io(png, fp);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if ((int64_t)width * height > MAX_PIXELS) {
        snprintf(err.msg, sizeof err.msg, "%ux%u pixels is too large", (unsigned)width, (unsigned)height);
        longjmp(err.jmp, 1);
    }
    /* expand everything to 8-bit gray, gray+alpha, RGB or RGBA */
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    pixels = malloc(height ? rowbytes * height : 1);
    rows = malloc(sizeof(png_bytep) * (height ? height : 1));
    if (!pixels || !rows) {
        snprintf(err.msg, sizeof err.msg, "out of memory");
        longjmp(err.jmp, 1);
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    *w = (int)width;
    *h = (int)height;
    *c = channels;
    return pixels;
}

/* ---------------------------------------------------------------------------------------
 * PGM / PPM (P2, P3 ASCII; P5, P6 binary; maxval up to 65535)
 * ------------------------------------------------------------------------------------- */

/* Reads the next header integer, skipping whitespace and # comments. -1 on error. */
static long pnm_int(FILE *fp)
{
    int ch = fgetc(fp);
    for (;;) {
        while (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') ch = fgetc(fp);
        if (ch != '#') break;
        while (ch != '\n' && ch != EOF) ch = fgetc(fp);
    }
    if (ch < '0' || ch > '9') return -1;
    long v = 0;
    while (ch >= '0' && ch <= '9') {
        v = v * 10 + (ch - '0');
        if (v > 1000000000L) return -1;
        ch = fgetc(fp);
    }
    /* the single whitespace after the last header field is consumed here (ch) */
    if (ch != EOF && ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') return -1;
    return v;
}

static uint8_t *read_pnm(const char *path, FILE *fp, int *w, int *h, int *c)
{
    char magic[2];
    if (fread(magic, 1, 2, fp) != 2 || magic[0] != 'P') goto bad;
    int kind = magic[1] - '0';
    if (kind == 1 || kind == 4) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: PBM bitmaps (P1/P4) are not supported; use PGM, PNG or JPEG", path);
        return NULL;
    }
    if (kind != 2 && kind != 3 && kind != 5 && kind != 6) goto bad;
    long width = pnm_int(fp), height = pnm_int(fp), maxval = pnm_int(fp);
    if (width <= 0 || height <= 0 || maxval <= 0 || maxval > 65535) goto bad;
    if ((int64_t)width * height > MAX_PIXELS) {
        dc_set_error(DC_ERR_FORMAT, "%s: %ldx%ld pixels is too large", path, width, height);
        return NULL;
    }
    int channels = (kind == 3 || kind == 6) ? 3 : 1;
    size_t n = (size_t)width * (size_t)height * (size_t)channels;
    uint8_t *out = malloc(n);
    if (!out) {
        dc_set_error(DC_ERR_OOM, "%s: out of memory", path);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        long v;
        if (kind == 2 || kind == 3) {
            v = pnm_int(fp);
        } else if (maxval < 256) {
            int b = fgetc(fp);
            v = b == EOF ? -1 : b;
        } else {
            int hi = fgetc(fp), lo = fgetc(fp);
            v = (hi == EOF || lo == EOF) ? -1 : (hi << 8 | lo);
        }
        if (v < 0 || v > maxval) {
            free(out);
            dc_set_error(DC_ERR_FORMAT, "%s: %s after %zu of %zu samples", path,
                         v < 0 ? "pixel data ends (truncated?)" : "sample above maxval", i, n);
            return NULL;
        }
        /* rescale to 0..255 with rounding */
        out[i] = maxval == 255 ? (uint8_t)v : (uint8_t)((v * 255 + maxval / 2) / maxval);
    }
    *w = (int)width;
    *h = (int)height;
    *c = channels;
    return out;
bad:
    dc_set_error(DC_ERR_FORMAT, "%s: malformed PGM/PPM header", path);
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Reading any of them
 * ------------------------------------------------------------------------------------- */

/* Drops an alpha channel (PIL's convert('RGB'/'L') ignores alpha): 2 → 1, 4 → 3. */
static void drop_alpha(uint8_t *p, int64_t npix, int *c)
{
    if (*c != 2 && *c != 4) return;
    int keep = *c - 1;
    for (int64_t i = 0; i < npix; i++)
        for (int k = 0; k < keep; k++) p[i * keep + k] = p[i * *c + k];
    *c = keep;
}

uint8_t *dc_image_read(const char *path, int *width, int *height, int *channels)
{
    if (!path || !width || !height || !channels) {
        dc_set_error(DC_ERR_ARG, "image_read: NULL argument");
        return NULL;
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        dc_set_error(DC_ERR_IO, "cannot open image %s: %s", path, strerror(errno));
        return NULL;
    }
    uint8_t sig[8] = {0};
    size_t got = fread(sig, 1, sizeof sig, fp);
    rewind(fp);
    uint8_t *px = NULL;
    int w = 0, h = 0, c = 0;
    if (got >= 8 && !png_sig_cmp(sig, 0, 8)) {
        px = read_png(path, fp, &w, &h, &c);
    } else if (got >= 2 && sig[0] == 'P' && sig[1] >= '1' && sig[1] <= '6') {
        px = read_pnm(path, fp, &w, &h, &c);
    } else if ((got >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff) ||
               (got >= 2 && sig[0] == 'B' && sig[1] == 'M')) {
#ifdef DC_HAVE_STB
        int n = 0;
        px = stbi_load_from_file(fp, &w, &h, &n, 0);
        if (!px) {
            dc_set_error(DC_ERR_FORMAT, "%s: cannot decode %s: %s", path, sig[0] == 'B' ? "BMP" : "JPEG",
                         stbi_failure_reason());
        } else if ((int64_t)w * h > MAX_PIXELS) {
            stbi_image_free(px);
            px = NULL;
            dc_set_error(DC_ERR_FORMAT, "%s: %dx%d pixels is too large", path, w, h);
        } else {
            /* stb's buffer came from its own malloc: copy into ours so callers free() it */
            size_t bytes = (size_t)w * (size_t)h * (size_t)n;
            uint8_t *mine = malloc(bytes ? bytes : 1);
            if (mine) memcpy(mine, px, bytes);
            else dc_set_error(DC_ERR_OOM, "%s: out of memory", path);
            stbi_image_free(px);
            px = mine;
            c = n;
        }
#else
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: JPEG/BMP support was not built in (install libstb-dev and rebuild)", path);
#endif
    } else {
        dc_set_error(DC_ERR_FORMAT, "%s: not a PNG, JPEG or PGM/PPM image (unrecognised signature)", path);
    }
    fclose(fp);
    if (!px) return NULL;
    if (w <= 0 || h <= 0 || c < 1 || c > 4) {
        free(px);
        dc_set_error(DC_ERR_FORMAT, "%s: empty or odd image (%dx%d, %d channels)", path, w, h, c);
        return NULL;
    }
    drop_alpha(px, (int64_t)w * h, &c);
    *width = w;
    *height = h;
    *channels = c;
    return px;
}

/* ---------------------------------------------------------------------------------------
 * Pillow's resize (libImaging/Resample.c): separable, antialiased (the filter widens by the
 * downscale factor), coefficients in fixed point with 22 fractional bits, horizontal pass
 * first with a uint8 intermediate, each pass skipped when its size does not change.
 * ------------------------------------------------------------------------------------- */

#define PIL_PRECISION_BITS (32 - 8 - 2)

static double bilinear_filter(double x)
{
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Per output position: first input index, tap count and ksize fixed-point weights. */
static int pil_coeffs(int in_size, int out_size, int **bounds_out, int32_t **kk_out)
{
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *pre = malloc((size_t)out_size * ksize * sizeof *pre);
    int32_t *kk = malloc((size_t)out_size * ksize * sizeof *kk);
    int *bounds = malloc((size_t)out_size * 2 * sizeof *bounds);
    if (!pre || !kk || !bounds) {
        free(pre);
        free(kk);
        free(bounds);
        return -1;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double *k = pre + (size_t)xx * ksize;
        int x = 0;
        for (; x < xmax; x++) {
            double w = bilinear_filter((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (; x < ksize; x++) k[x] = 0;
        bounds[xx * 2] = xmin;
        bounds[xx * 2 + 1] = xmax;
    }
    for (int i = 0; i < out_size * ksize; i++)
        kk[i] = pre[i] < 0 ? (int32_t)(-0.5 + pre[i] * (1 << PIL_PRECISION_BITS))
                           : (int32_t)(0.5 + pre[i] * (1 << PIL_PRECISION_BITS));
    free(pre);
    *bounds_out = bounds;
    *kk_out = kk;
    return ksize;
}

static uint8_t clip8(int32_t v)
{
    if (v >= (1 << PIL_PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PIL_PRECISION_BITS);
}

/* Resizes one plane (w x h) to (ow x oh). Returns malloc'ed pixels. */
static uint8_t *pil_resize_plane(const uint8_t *in, int w, int h, int ow, int oh)
{
    int *bx = NULL, *by = NULL;
    int32_t *kx = NULL, *ky = NULL;
    uint8_t *tmp = NULL, *out = NULL;
    int ksx = 0, ksy = 0;
    if (ow != w && (ksx = pil_coeffs(w, ow, &bx, &kx)) < 0) goto done;
    if (oh != h && (ksy = pil_coeffs(h, oh, &by, &ky)) < 0) goto done;
    /* horizontal pass over the rows the vertical pass will read (Pillow crops them the same
     * way; the values are identical either way) */
    const uint8_t *cur = in;
    int cw = w;
    if (ow != w) {
        tmp = malloc((size_t)ow * h);
        if (!tmp) goto done;
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < ow; xx++) {
                int xmin = bx[xx * 2], xmax = bx[xx * 2 + 1];
                const int32_t *k = kx + (size_t)xx * ksx;
                int32_t ss = 1 << (PIL_PRECISION_BITS - 1);
                for (int x = 0; x < xmax; x++) ss += in[(size_t)y * w + xmin + x] * k[x];
                tmp[(size_t)y * ow + xx] = clip8(ss);
            }
        cur = tmp;
        cw = ow;
    }
    out = malloc((size_t)ow * oh);
    if (!out) goto done;
    if (oh != h) {
        for (int yy = 0; yy < oh; yy++) {
            int ymin = by[yy * 2], ymax = by[yy * 2 + 1];
            const int32_t *k = ky + (size_t)yy * ksy;
            for (int x = 0; x < cw; x++) {
                int32_t ss = 1 << (PIL_PRECISION_BITS - 1);
                for (int y = 0; y < ymax; y++) ss += cur[(size_t)(ymin + y) * cw + x] * k[y];
                out[(size_t)yy * ow + x] = clip8(ss);
            }
        }
    } else {
        memcpy(out, cur, (size_t)ow * oh);
    }
done:
    if (!out) dc_set_error(DC_ERR_OOM, "image resize: out of memory");
    free(bx);
    free(by);
    free(kx);
    free(ky);
    free(tmp);
    return out;
}

uint8_t *dc_image_convert(const uint8_t *pixels, int width, int height, int channels,
                          int out_channels, int out_width, int out_height)
{
    if (!pixels || width <= 0 || height <= 0 || (channels != 1 && channels != 3) ||
        (out_channels != 1 && out_channels != 3) || out_width <= 0 || out_height <= 0) {
        dc_set_error(DC_ERR_ARG, "image_convert: bad arguments (%dx%dx%d to %dx%dx%d)", width, height,
                     channels, out_width, out_height, out_channels);
        return NULL;
    }
    const size_t npix = (size_t)width * height;
    /* channel conversion on the full-size image first (PIL: convert, then resize), into
     * planar form */
    uint8_t *planes = malloc(npix * out_channels);
    uint8_t *out = malloc((size_t)out_width * out_height * out_channels);
    if (!planes || !out) {
        free(planes);
        free(out);
        dc_set_error(DC_ERR_OOM, "image_convert: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *p = pixels + i * channels;
        if (out_channels == 1) {
            /* ITU-R 601-2 luma in Pillow's fixed point (libImaging/Convert.c, L24) */
            planes[i] = channels == 1 ? p[0]
                                      : (uint8_t)(((uint32_t)p[0] * 19595 + (uint32_t)p[1] * 38470 +
                                                   (uint32_t)p[2] * 7471 + 0x8000) >> 16);
        } else {
            for (int c = 0; c < 3; c++) planes[c * npix + i] = channels == 1 ? p[0] : p[c];
        }
    }
    for (int c = 0; c < out_channels; c++) {
        uint8_t *r = pil_resize_plane(planes + c * npix, width, height, out_width, out_height);
        if (!r) {
            free(planes);
            free(out);
            return NULL;
        }
        memcpy(out + (size_t)c * out_width * out_height, r, (size_t)out_width * out_height);
        free(r);
    }
    free(planes);
    return out;
}

dc_status dc_image_load_normalized(const char *path, dc_dataset_id id, bool invert, float *x)
{
    const dc_dataset_info *info = dc_dataset_info_of(id);
    if (!info) return dc_set_error(DC_ERR_ARG, "image_load: unknown dataset id %d", (int)id);
    if (!x) return dc_set_error(DC_ERR_ARG, "image_load: NULL output");
    int w, h, c;
    uint8_t *px = dc_image_read(path, &w, &h, &c);
    if (!px) return dc_last_status();
    uint8_t *chw = dc_image_convert(px, w, h, c, info->channels, info->width, info->height);
    free(px);
    if (!chw) return dc_last_status();
    int64_t n = (int64_t)info->channels * info->height * info->width;
    if (invert)
        for (int64_t i = 0; i < n; i++) chw[i] = (uint8_t)(255 - chw[i]);
    dc_status st = dc_normalize_images(id, chw, 1, x);
    free(chw);
    return st;
}
