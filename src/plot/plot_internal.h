/* plot_internal.h: what the chart files share: surfaces that write atomically, text, nice
 * axis ticks, colours. */
#ifndef DEEPC_PLOT_INTERNAL_H
#define DEEPC_PLOT_INTERNAL_H

#include <cairo.h>

#include "deepc/plot.h"

typedef struct plot_canvas {
    cairo_surface_t *surface;
    cairo_t *cr;
    int width, height;
    int kind;           /* 0 PNG, 1 SVG, 2 PDF */
    char path[4096];
    char tmp[4200];
} plot_canvas;

/* Opens a canvas for path (kind from the extension) on a white background. */
dc_status plot_begin(plot_canvas *pc, const char *path, int width, int height, const char *what);
/* Writes the file (temporary name, then rename) and frees the canvas. */
dc_status plot_end(plot_canvas *pc, const char *what);
/* Frees the canvas without writing (error paths). */
void plot_abort(plot_canvas *pc);

/* Text: font size in pixels; anchor: x alignment 0 left, 0.5 centre, 1 right, y alignment
 * likewise (0 top, 0.5 middle, 1 baseline-ish bottom); angle in radians around the anchor. */
void plot_font(cairo_t *cr, double size, bool bold);
double plot_text_width(cairo_t *cr, const char *s);
double plot_text_height(cairo_t *cr);
void plot_text(cairo_t *cr, double x, double y, const char *s, double ax, double ay, double angle);

/* Nice ticks covering [lo, hi]: *step and the expanded range [*tlo, *thi]; returns the tick
 * count. integer: steps of at least 1. */
int plot_ticks(double lo, double hi, int target, bool integer, double *tlo, double *thi, double *step);
/* Formats a tick value with as many decimals as the step needs. */
void plot_tick_label(double v, double step, char *buf, size_t size);

/* The i-th series colour (matplotlib's tab10). */
void plot_series_color(int i, double rgb[3]);
/* A colour map lookup, t in [0, 1]. */
void plot_colormap(dc_colormap map, double t, double rgb[3]);

/* The chart title, centred, its top at y. */
void plot_title(cairo_t *cr, int width, double y, const char *title);

#define PLOT_DEFAULT_W 900
#define PLOT_DEFAULT_H 560

#endif
