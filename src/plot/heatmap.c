/* heatmap.c: heat maps: attention weights (any rows x cols matrix, viridis, colour bar) and
 * confusion matrices (counts in the cells, coloured by the row-normalised value, class names
 * on both axes). Labels thin out when cells get too small to hold them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot_internal.h"

static double luminance(const double rgb[3]) { return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]; }

/* texts: optional per-cell strings (rows * cols) drawn instead of cell_format values. */
static dc_status heatmap(const char *path, const dc_heatmap *m, const char *const *texts, const char *what)
{
    if (!m || m->rows < 1 || m->cols < 1 || !m->values)
        return dc_set_error(DC_ERR_ARG, "%s: need rows, cols >= 1 and values", what);
    const int R = m->rows, C = m->cols;
    float vmin = m->v_min, vmax = m->v_max;
    if (vmin == 0 && vmax == 0) {
        vmin = INFINITY;
        vmax = -INFINITY;
        for (int64_t i = 0; i < (int64_t)R * C; i++)
            if (isfinite(m->values[i])) {
                vmin = fminf(vmin, m->values[i]);
                vmax = fmaxf(vmax, m->values[i]);
            }
        if (!(vmin <= vmax)) vmin = 0, vmax = 1;
    }
    if (vmax <= vmin) vmax = vmin + 1;

    /* measure labels with a scratch surface (the canvas size depends on them) */
    cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
    cairo_t *sc = cairo_create(scratch);
    plot_font(sc, 13, false);
    char buf[64];
    double row_w = 0, col_w = 0;
    for (int r = 0; r < R; r++) {
        const char *s = m->row_labels ? m->row_labels[r] : (snprintf(buf, sizeof buf, "%d", r), buf);
        row_w = fmax(row_w, plot_text_width(sc, s));
    }
    for (int j = 0; j < C; j++) {
        const char *s = m->col_labels ? m->col_labels[j] : (snprintf(buf, sizeof buf, "%d", j), buf);
        col_w = fmax(col_w, plot_text_width(sc, s));
    }
    double text_h = plot_text_height(sc);
    cairo_destroy(sc);
    cairo_surface_destroy(scratch);

    double top = m->title && *m->title ? 56 : 22;
    double left = 18 + (m->ylabel && *m->ylabel ? 26 : 0) + row_w + 10;
    double right = m->colorbar ? 100 : 30;
    /* default cell size: about 600 px for the larger side, 6..64 px a cell */
    double cell = 600.0 / (R > C ? R : C);
    if (cell > 64) cell = 64;
    if (cell < 6) cell = 6;
    double cw = cell, ch = cell;
    bool slant = col_w > cw - 4;
    double col_h = slant ? col_w * sin(M_PI / 4) + 14 : 20;
    double bottom = 16 + col_h + (m->xlabel && *m->xlabel ? 26 : 0);
    int W = m->width > 0 ? m->width : (int)ceil(left + C * cw + right);
    int H = m->height > 0 ? m->height : (int)ceil(top + R * ch + bottom);
    if (m->width > 0) cw = (W - left - right) / C;
    if (m->height > 0) ch = (H - top - bottom) / R;
    if (W < 200) W = 200;
    if (cw < 1 || ch < 1) return dc_set_error(DC_ERR_ARG, "%s: %dx%d is too small for %dx%d cells", what, W, H, R, C);
    double px0 = left, py0 = top, px1 = left + C * cw, py1 = top + R * ch;

    plot_canvas pc;
    if (plot_begin(&pc, path, W, H, what)) return dc_last_status();
    cairo_t *cr = pc.cr;

    /* cells; text when it fits */
    bool cell_text = (texts || m->cell_format) && ch >= 14;
    plot_font(cr, ch >= 40 && cw >= 40 ? 14 : 11, false);
    for (int r = 0; r < R; r++)
        for (int j = 0; j < C; j++) {
            float v = m->values[(int64_t)r * C + j];
            double rgb[3];
            if (isfinite(v)) plot_colormap(m->colormap, (v - vmin) / (vmax - vmin), rgb);
            else rgb[0] = rgb[1] = rgb[2] = 0.8;
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            double x = px0 + j * cw, y = py0 + r * ch;
            /* a hair of overlap so no seams show between cells */
            cairo_rectangle(cr, x, y, cw + 0.5, ch + 0.5);
            cairo_fill(cr);
            if (cell_text) {
                const char *s = texts ? texts[(int64_t)r * C + j] : (snprintf(buf, sizeof buf, m->cell_format, (double)v), buf);
                if (plot_text_width(cr, s) <= cw - 3) {
                    double g = luminance(rgb) < 0.5 ? 1.0 : 0.1;
                    cairo_set_source_rgb(cr, g, g, g);
                    plot_text(cr, x + cw / 2, y + ch / 2, s, 0.5, 0.5, 0);
                }
            }
        }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, px0, py0, px1 - px0, py1 - py0);
    cairo_stroke(cr);

    /* labels: every k-th when the cells are smaller than the text */
    plot_font(cr, 13, false);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    int krow = (int)ceil((text_h + 4) / ch), kcol = slant ? (int)ceil((text_h + 4) / cw) : 1;
    if (krow < 1) krow = 1;
    if (kcol < 1) kcol = 1;
    for (int r = 0; r < R; r += krow) {
        const char *s = m->row_labels ? m->row_labels[r] : (snprintf(buf, sizeof buf, "%d", r), buf);
        plot_text(cr, px0 - 6, py0 + (r + 0.5) * ch, s, 1, 0.5, 0);
    }
    for (int j = 0; j < C; j += kcol) {
        const char *s = m->col_labels ? m->col_labels[j] : (snprintf(buf, sizeof buf, "%d", j), buf);
        double x = px0 + (j + 0.5) * cw;
        if (slant) plot_text(cr, x + 4, py1 + 6, s, 1, 0, -M_PI / 4);
        else plot_text(cr, x, py1 + 6, s, 0.5, 0, 0);
    }
    plot_font(cr, 15, false);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    if (m->xlabel) plot_text(cr, (px0 + px1) / 2, H - 12, m->xlabel, 0.5, 1, 0);
    if (m->ylabel) plot_text(cr, 14, (py0 + py1) / 2, m->ylabel, 0.5, 0, -M_PI / 2);
    plot_title(cr, W, 18, m->title);

    if (m->colorbar) {
        double bx = px1 + 24, bw = 18, by0 = py0, by1 = py1;
        int steps = 128;
        for (int i = 0; i < steps; i++) {
            double rgb[3];
            plot_colormap(m->colormap, (i + 0.5) / steps, rgb);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            double y = by1 - (i + 1.0) / steps * (by1 - by0);
            cairo_rectangle(cr, bx, y, bw, (by1 - by0) / steps + 0.5);
            cairo_fill(cr);
        }
        cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
        cairo_rectangle(cr, bx, by0, bw, by1 - by0);
        cairo_stroke(cr);
        double tlo, thi, step;
        plot_ticks(vmin, vmax, 5, false, &tlo, &thi, &step);
        plot_font(cr, 12, false);
        for (double v = ceil(vmin / step - 1e-9) * step; v <= vmax + step * 1e-6; v += step) {
            double y = by1 - (v - vmin) / (vmax - vmin) * (by1 - by0);
            cairo_move_to(cr, bx + bw, y);
            cairo_line_to(cr, bx + bw + 4, y);
            cairo_stroke(cr);
            plot_tick_label(v, step, buf, sizeof buf);
            plot_text(cr, bx + bw + 7, y, buf, 0, 0.5, 0);
        }
    }
    return plot_end(&pc, what);
}

dc_status dc_plot_heatmap(const char *path, const dc_heatmap *map)
{
    return heatmap(path, map, NULL, "plot_heatmap");
}

dc_status dc_plot_confusion(const char *path, const char *title, int n, const int64_t *confusion,
                            const char *const *class_names)
{
    const char *what = "plot_confusion";
    if (n < 1 || n > 1000 || !confusion) return dc_set_error(DC_ERR_ARG, "%s: need an n x n matrix (n = %d)", what, n);
    float *frac = malloc(sizeof(float) * (size_t)n * n);
    char *text = malloc((size_t)n * n * 24);
    const char **texts = malloc(sizeof(char *) * (size_t)n * n);
    dc_status st;
    if (!frac || !text || !texts) {
        st = dc_set_error(DC_ERR_OOM, "%s: out of memory", what);
        goto done;
    }
    /* colour = share of the true class (recall along the diagonal), so classes with
     * different supports compare; the text is the raw count */
    for (int r = 0; r < n; r++) {
        int64_t row = 0;
        for (int j = 0; j < n; j++) row += confusion[(int64_t)r * n + j];
        for (int j = 0; j < n; j++) {
            int64_t v = confusion[(int64_t)r * n + j];
            frac[(int64_t)r * n + j] = row ? (float)((double)v / (double)row) : 0.0f;
            char *s = text + ((int64_t)r * n + j) * 24;
            snprintf(s, 24, "%lld", (long long)v);
            texts[(int64_t)r * n + j] = s;
        }
    }
    dc_heatmap m = {.title = title, .xlabel = "predicted class", .ylabel = "true class", .rows = n, .cols = n,
                    .values = frac, .row_labels = class_names, .col_labels = class_names,
                    .colormap = DC_CMAP_BLUES, .colorbar = true, .v_min = 0, .v_max = 1};
    st = heatmap(path, &m, texts, what);
done:
    free(frac);
    free(text);
    free(texts);
    return st;
}
