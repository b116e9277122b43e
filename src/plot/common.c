/* common.c: what every chart uses: PNG/SVG/PDF canvases written atomically, text drawing,
 * nice tick steps (1, 2, 5 x 10^k), the series palette and the heat-map colour maps. */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cairo-pdf.h>
#include <cairo-svg.h>

#include "plot_internal.h"
#include "util/util.h"

static int kind_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && !strcasecmp(dot, ".svg")) return 1;
    if (dot && !strcasecmp(dot, ".pdf")) return 2;
    return 0;
}

/* cairo's font machinery keeps process-wide caches (its toy font faces, fontconfig's
 * patterns) that are never freed, which LeakSanitizer reports at exit for every program that
 * drew a chart. At exit, once nothing draws any more, both are released: cairo's with its
 * debugging reset, fontconfig's with FcFini (found at run time: libcairo loads fontconfig,
 * and deepc does not link it directly). */
static void release_font_caches(void)
{
    cairo_debug_reset_static_data();
    void (*fc_fini)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "FcFini");
    if (fc_fini) fc_fini();
}

static pthread_once_t cleanup_once = PTHREAD_ONCE_INIT;
static void register_cleanup(void) { atexit(release_font_caches); }

dc_status plot_begin(plot_canvas *pc, const char *path, int width, int height, const char *what)
{
    memset(pc, 0, sizeof *pc);
    pthread_once(&cleanup_once, register_cleanup);
    if (!path || !*path) return dc_set_error(DC_ERR_ARG, "%s: no output path", what);
    if (width < 50 || height < 50 || width > 20000 || height > 20000)
        return dc_set_error(DC_ERR_ARG, "%s: canvas %dx%d is outside 50..20000 pixels", what, width, height);
    if (strlen(path) >= sizeof pc->path) return dc_set_error(DC_ERR_ARG, "%s: path too long", what);
    dc__strlcpy(pc->path, sizeof pc->path, path);
    dc__tmp_path(path, pc->tmp, sizeof pc->tmp);
    pc->width = width;
    pc->height = height;
    pc->kind = kind_of(path);
    /* vector surfaces write to the temporary file as they go; PNG renders in memory */
    if (pc->kind == 1) pc->surface = cairo_svg_surface_create(pc->tmp, width, height);
    else if (pc->kind == 2) pc->surface = cairo_pdf_surface_create(pc->tmp, width, height);
    else pc->surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
    if (cairo_surface_status(pc->surface) != CAIRO_STATUS_SUCCESS) {
        dc_status st = dc_set_error(DC_ERR_IO, "%s: cannot create %s: %s", what, path,
                                    cairo_status_to_string(cairo_surface_status(pc->surface)));
        cairo_surface_destroy(pc->surface);
        remove(pc->tmp);
        pc->surface = NULL;
        return st;
    }
    pc->cr = cairo_create(pc->surface);
    cairo_set_source_rgb(pc->cr, 1, 1, 1);
    cairo_paint(pc->cr);
    cairo_set_line_join(pc->cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(pc->cr, CAIRO_LINE_CAP_ROUND);
    return DC_OK;
}

void plot_abort(plot_canvas *pc)
{
    if (pc->cr) cairo_destroy(pc->cr);
    if (pc->surface) {
        cairo_surface_finish(pc->surface);
        cairo_surface_destroy(pc->surface);
    }
    if (pc->kind != 0 && pc->tmp[0]) remove(pc->tmp);
    pc->cr = NULL;
    pc->surface = NULL;
}

dc_status plot_end(plot_canvas *pc, const char *what)
{
    cairo_status_t cs = cairo_status(pc->cr);
    cairo_destroy(pc->cr);
    pc->cr = NULL;
    if (cs == CAIRO_STATUS_SUCCESS && pc->kind == 0) cs = cairo_surface_write_to_png(pc->surface, pc->tmp);
    cairo_surface_finish(pc->surface);
    if (cs == CAIRO_STATUS_SUCCESS) cs = cairo_surface_status(pc->surface);
    cairo_surface_destroy(pc->surface);
    pc->surface = NULL;
    if (cs != CAIRO_STATUS_SUCCESS) {
        remove(pc->tmp);
        return dc_set_error(DC_ERR_IO, "%s: cannot write %s: %s", what, pc->path, cairo_status_to_string(cs));
    }
    return dc__commit_tmp(pc->tmp, pc->path);
}

void plot_font(cairo_t *cr, double size, bool bold)
{
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

double plot_text_width(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s ? s : "", &e);
    return e.x_advance;
}

double plot_text_height(cairo_t *cr)
{
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    return fe.ascent;
}

void plot_text(cairo_t *cr, double x, double y, const char *s, double ax, double ay, double angle)
{
    if (!s || !*s) return;
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double w = plot_text_width(cr, s);
    /* ascent-based box: ay = 0 puts the top of capitals at y, 1 the baseline */
    double h = fe.ascent * 0.8;
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, -ax * w, h * (1.0 - ay)); /* baseline: h below the top when ay = 0 */
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

int plot_ticks(double lo, double hi, int target, bool integer, double *tlo, double *thi, double *step)
{
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    if (hi < lo) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (hi - lo < 1e-12 * (fabs(hi) + fabs(lo)) || hi == lo) {
        /* a flat series: open a window around the value */
        double pad = lo != 0 ? fabs(lo) * 0.1 : 1.0;
        lo -= pad;
        hi += pad;
    }
    if (target < 2) target = 2;
    double raw = (hi - lo) / target;
    double mag = pow(10.0, floor(log10(raw)));
    double norm = raw / mag;
    double s = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    if (integer && s < 1) s = 1;
    if (integer) s = round(s);
    *step = s;
    *tlo = floor(lo / s + 1e-9) * s;
    *thi = ceil(hi / s - 1e-9) * s;
    return (int)llround((*thi - *tlo) / s) + 1;
}

void plot_tick_label(double v, double step, char *buf, size_t size)
{
    int decimals = 0;
    if (step < 1) decimals = (int)ceil(-log10(step) - 1e-9);
    if (decimals > 8) decimals = 8;
    if (fabs(v) < step * 1e-6) v = 0; /* no "-0.0" */
    snprintf(buf, size, "%.*f", decimals, v);
}

void plot_series_color(int i, double rgb[3])
{
    static const unsigned tab10[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                       0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
    unsigned c = tab10[(i % 10 + 10) % 10];
    rgb[0] = ((c >> 16) & 255) / 255.0;
    rgb[1] = ((c >> 8) & 255) / 255.0;
    rgb[2] = (c & 255) / 255.0;
}

void plot_colormap(dc_colormap map, double t, double rgb[3])
{
    /* anchor colours sampled from matplotlib's maps, linearly interpolated */
    static const unsigned viridis[] = {0x440154, 0x482878, 0x3e4989, 0x31688e, 0x26828e,
                                       0x1f9e89, 0x35b779, 0x6ece58, 0xb5de2b, 0xfde725};
    static const unsigned blues[] = {0xf7fbff, 0xdeebf7, 0xc6dbef, 0x9ecae1, 0x6baed6,
                                     0x4292c6, 0x2171b5, 0x08519c, 0x08306b};
    const unsigned *a = map == DC_CMAP_BLUES ? blues : viridis;
    int n = map == DC_CMAP_BLUES ? 9 : 10;
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    double pos = t * (n - 1);
    int i = (int)pos;
    if (i >= n - 1) i = n - 2;
    double f = pos - i;
    for (int k = 0; k < 3; k++) {
        double c0 = ((a[i] >> (16 - 8 * k)) & 255) / 255.0, c1 = ((a[i + 1] >> (16 - 8 * k)) & 255) / 255.0;
        rgb[k] = c0 + (c1 - c0) * f;
    }
}

void plot_title(cairo_t *cr, int width, double y, const char *title)
{
    if (!title || !*title) return;
    plot_font(cr, 19, true);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    plot_text(cr, width / 2.0, y, title, 0.5, 0, 0);
}
