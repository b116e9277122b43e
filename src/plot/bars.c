/* bars.c: bar charts: one bar per category (test accuracy per model) or grouped bars (per-class
 * F1, one bar per model in each class), y grid with nice ticks, category names under the
 * groups (slanted when they would collide), values above the bars, legend on the right. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plot_internal.h"

dc_status dc_plot_bars(const char *path, const dc_bar_chart *c)
{
    const char *what = "plot_bars";
    if (!c || c->ngroups < 1 || c->nseries < 1 || !c->values)
        return dc_set_error(DC_ERR_ARG, "%s: need at least one group, one series and values", what);
    int W = c->width > 0 ? c->width : PLOT_DEFAULT_W, H = c->height > 0 ? c->height : PLOT_DEFAULT_H;
    const int G = c->ngroups, S = c->nseries;

    double vmin = INFINITY, vmax = -INFINITY;
    for (int i = 0; i < G * S; i++)
        if (isfinite(c->values[i])) {
            vmin = fmin(vmin, c->values[i]);
            vmax = fmax(vmax, c->values[i]);
        }
    if (!(vmin <= vmax)) vmin = 0, vmax = 1;
    double ylo, yhi, ystep;
    if (c->y_min != 0 || c->y_max != 0) {
        plot_ticks(c->y_min, c->y_max, 6, false, &ylo, &yhi, &ystep);
        ylo = c->y_min;
        yhi = c->y_max;
    } else {
        double lo = fmin(0, vmin), hi = fmax(0, vmax);
        /* headroom for the value labels above the tallest bar */
        if (c->value_format) hi += (hi - lo) * 0.08;
        plot_ticks(lo, hi, 6, false, &ylo, &yhi, &ystep);
    }

    plot_canvas pc;
    if (plot_begin(&pc, path, W, H, what)) return dc_last_status();
    cairo_t *cr = pc.cr;
    char buf[128];

    plot_font(cr, 13, false);
    double tick_w = 0;
    for (double v = ceil(ylo / ystep - 1e-9) * ystep; v <= yhi + ystep * 1e-6; v += ystep) {
        plot_tick_label(v, ystep, buf, sizeof buf);
        tick_w = fmax(tick_w, plot_text_width(cr, buf));
    }
    double legend_w = 0;
    if (S > 1 && c->series_names) {
        for (int s = 0; s < S; s++) legend_w = fmax(legend_w, plot_text_width(cr, c->series_names[s]));
        legend_w += 44;
    }
    double top = c->title && *c->title ? 56 : 22;
    double left = 18 + (c->ylabel && *c->ylabel ? 26 : 0) + tick_w + 10;
    double right = 24 + legend_w;
    /* category labels: slanted when the widest does not fit its group */
    double label_w = 0;
    for (int g = 0; g < G; g++)
        if (c->group_names) label_w = fmax(label_w, plot_text_width(cr, c->group_names[g]));
    double gw_est = (W - left - right) / G;
    bool slant = label_w > gw_est - 8;
    const double angle = -35 * M_PI / 180;
    double label_h = slant ? label_w * sin(-angle) + 16 : 18;
    double bottom = 22 + label_h + (c->xlabel && *c->xlabel ? 26 : 0);
    double px0 = left, px1 = W - right, py0 = top, py1 = H - bottom;
    if (px1 - px0 < 40 || py1 - py0 < 40) {
        plot_abort(&pc);
        return dc_set_error(DC_ERR_ARG, "%s: %dx%d is too small for the labels", what, W, H);
    }
#define MAPY(y) (py1 - (fmin(fmax((y), ylo), yhi) - ylo) / (yhi - ylo) * (py1 - py0))

    cairo_set_line_width(cr, 1);
    for (double v = ceil(ylo / ystep - 1e-9) * ystep; v <= yhi + ystep * 1e-6; v += ystep) {
        double y = MAPY(v);
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        cairo_move_to(cr, px0, y);
        cairo_line_to(cr, px1, y);
        cairo_stroke(cr);
        plot_tick_label(v, ystep, buf, sizeof buf);
        cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
        plot_text(cr, px0 - 8, y, buf, 1, 0.5, 0);
    }

    double gw = (px1 - px0) / G;
    double bw = gw * 0.8 / S;
    double base = MAPY(fmax(ylo, fmin(0, yhi)));
    for (int g = 0; g < G; g++) {
        double gx = px0 + g * gw + gw * 0.1;
        for (int s = 0; s < S; s++) {
            double v = c->values[s * G + g];
            if (!isfinite(v)) continue;
            double rgb[3];
            plot_series_color(s, rgb);
            double x = gx + s * bw, y = MAPY(v);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_rectangle(cr, x + 0.5, fmin(y, base), bw - 1, fabs(base - y));
            cairo_fill(cr);
            if (c->value_format) {
                snprintf(buf, sizeof buf, c->value_format, v);
                plot_font(cr, 12, false);
                double tw = plot_text_width(cr, buf);
                cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
                if (tw <= bw + 6) plot_text(cr, x + bw / 2, fmin(y, base) - 4, buf, 0.5, 1, 0);
                else if (bw >= 10) plot_text(cr, x + bw / 2, fmin(y, base) - 4, buf, 0, 0.5, -M_PI / 2);
            }
        }
        if (c->group_names) {
            plot_font(cr, 13, false);
            cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
            double cx = px0 + (g + 0.5) * gw;
            if (slant) plot_text(cr, cx + 4, py1 + 8, c->group_names[g], 1, 0, angle);
            else plot_text(cr, cx, py1 + 8, c->group_names[g], 0.5, 0, 0);
        }
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, px0, py0, px1 - px0, py1 - py0);
    cairo_stroke(cr);

    plot_font(cr, 15, false);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    if (c->xlabel) plot_text(cr, (px0 + px1) / 2, H - 12, c->xlabel, 0.5, 1, 0);
    if (c->ylabel) plot_text(cr, 14, (py0 + py1) / 2, c->ylabel, 0.5, 0, -M_PI / 2);
    plot_title(cr, (int)(px0 + px1), 18, c->title);

    if (legend_w > 0) {
        plot_font(cr, 13, false);
        double lx = px1 + 16, ly = py0 + 10;
        for (int s = 0; s < S; s++) {
            double rgb[3];
            plot_series_color(s, rgb);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_rectangle(cr, lx, ly - 7, 16, 14);
            cairo_fill(cr);
            cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
            plot_text(cr, lx + 24, ly, c->series_names[s], 0, 0.5, 0);
            ly += 22;
        }
    }
#undef MAPY
    return plot_end(&pc, what);
}
