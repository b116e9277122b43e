/* lines.c: line charts (loss curves per epoch, validation loss of several models): axes with
 * nice ticks and grid, one coloured line per series (dots on short series), a legend to the
 * right of the plot area so it never hides a curve, optional log-scale y. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plot_internal.h"

static double xval(const dc_series *s, int i) { return s->x ? s->x[i] : (double)(i + 1); }

static bool usable(double x, double y, bool log_y) { return isfinite(x) && isfinite(y) && (!log_y || y > 0); }

dc_status dc_plot_lines(const char *path, const dc_line_chart *c)
{
    const char *what = "plot_lines";
    if (!c || c->nseries < 0 || (c->nseries > 0 && !c->series)) return dc_set_error(DC_ERR_ARG, "%s: no chart", what);
    for (int s = 0; s < c->nseries; s++)
        if (c->series[s].n < 0 || (c->series[s].n > 0 && !c->series[s].y))
            return dc_set_error(DC_ERR_ARG, "%s: series %d has no y values", what, s);
    int W = c->width > 0 ? c->width : PLOT_DEFAULT_W, H = c->height > 0 ? c->height : PLOT_DEFAULT_H;

    /* data ranges */
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    int maxn = 0;
    for (int s = 0; s < c->nseries; s++) {
        const dc_series *se = &c->series[s];
        if (se->n > maxn) maxn = se->n;
        for (int i = 0; i < se->n; i++) {
            double x = xval(se, i), y = se->y[i];
            if (!usable(x, y, c->log_y)) continue;
            xmin = fmin(xmin, x);
            xmax = fmax(xmax, x);
            ymin = fmin(ymin, y);
            ymax = fmax(ymax, y);
        }
    }
    bool empty = !(xmin <= xmax);
    if (empty) {
        xmin = 0, xmax = 1, ymin = c->log_y ? 0.1 : 0, ymax = 1;
    }
    if (xmin == xmax) xmin -= 1, xmax += 1; /* a single epoch: centre it */

    double xlo, xhi, xstep, ylo, yhi, ystep;
    plot_ticks(xmin, xmax, 8, c->integer_x, &xlo, &xhi, &xstep);
    /* the x axis spans the data (epoch 1 to N, not rounded out to ticks), with a margin so
     * the end points' dots are not cut */
    double xpad = (xmax - xmin) * 0.03;
    xlo = xmin - xpad;
    xhi = xmax + xpad;
    double lylo = 0, lyhi = 0; /* log10 range */
    if (c->log_y) {
        lylo = floor(log10(ymin) + 1e-9);
        lyhi = ceil(log10(ymax) - 1e-9);
        if (lyhi <= lylo) lyhi = lylo + 1;
    } else {
        /* a little air so no point sits on the frame (nice ticks then round outwards) */
        double ypad = (ymax - ymin) * 0.02;
        plot_ticks(ymin - ypad, ymax + ypad, 6, false, &ylo, &yhi, &ystep);
    }

    plot_canvas pc;
    if (plot_begin(&pc, path, W, H, what)) return dc_last_status();
    cairo_t *cr = pc.cr;

    /* y tick labels decide the left margin */
    char buf[64];
    double tick_w = 0;
    plot_font(cr, 13, false);
    if (c->log_y) {
        for (double e = lylo; e <= lyhi + 1e-9; e++) {
            snprintf(buf, sizeof buf, "%g", pow(10, e));
            tick_w = fmax(tick_w, plot_text_width(cr, buf));
        }
    } else {
        for (double v = ylo; v <= yhi + ystep * 1e-6; v += ystep) {
            plot_tick_label(v, ystep, buf, sizeof buf);
            tick_w = fmax(tick_w, plot_text_width(cr, buf));
        }
    }
    double legend_w = 0;
    int named = 0;
    for (int s = 0; s < c->nseries; s++)
        if (c->series[s].name && *c->series[s].name) {
            named++;
            legend_w = fmax(legend_w, plot_text_width(cr, c->series[s].name));
        }
    if (named) legend_w += 50;
    double top = c->title && *c->title ? 56 : 22;
    double left = 18 + (c->ylabel && *c->ylabel ? 26 : 0) + tick_w + 10;
    double right = 24 + legend_w;
    double bottom = 34 + (c->xlabel && *c->xlabel ? 26 : 0);
    double px0 = left, px1 = W - right, py0 = top, py1 = H - bottom;
    if (px1 - px0 < 40 || py1 - py0 < 40) {
        plot_abort(&pc);
        return dc_set_error(DC_ERR_ARG, "%s: %dx%d is too small for the labels", what, W, H);
    }
#define MAPX(x) (px0 + ((x) - xlo) / (xhi - xlo) * (px1 - px0))
#define MAPY(y) (c->log_y ? py1 - (log10(y) - lylo) / (lyhi - lylo) * (py1 - py0) \
                          : py1 - ((y) - ylo) / (yhi - ylo) * (py1 - py0))

    /* grid and tick labels */
    cairo_set_line_width(cr, 1);
    plot_font(cr, 13, false);
    if (c->log_y) {
        int decades = (int)(lyhi - lylo);
        for (double e = lylo; e <= lyhi + 1e-9; e++)
            for (int m = 1; m <= 9; m++) {
                double v = m * pow(10, e);
                if (log10(v) > lyhi + 1e-9) break;
                bool major = m == 1, labelled = major || (decades <= 2 && (m == 2 || m == 5));
                double y = MAPY(v);
                cairo_set_source_rgb(cr, major ? 0.85 : 0.93, major ? 0.85 : 0.93, major ? 0.85 : 0.93);
                cairo_move_to(cr, px0, y);
                cairo_line_to(cr, px1, y);
                cairo_stroke(cr);
                if (labelled) {
                    snprintf(buf, sizeof buf, "%g", v);
                    cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
                    plot_text(cr, px0 - 8, y, buf, 1, 0.5, 0);
                }
            }
    } else {
        for (double v = ylo; v <= yhi + ystep * 1e-6; v += ystep) {
            double y = MAPY(v);
            cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
            cairo_move_to(cr, px0, y);
            cairo_line_to(cr, px1, y);
            cairo_stroke(cr);
            plot_tick_label(v, ystep, buf, sizeof buf);
            cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
            plot_text(cr, px0 - 8, y, buf, 1, 0.5, 0);
        }
    }
    /* x ticks: on multiples of the step inside [xlo, xhi] */
    for (double v = ceil(xlo / xstep - 1e-9) * xstep; v <= xhi + xstep * 1e-6; v += xstep) {
        double x = MAPX(v);
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        cairo_move_to(cr, x, py0);
        cairo_line_to(cr, x, py1);
        cairo_stroke(cr);
        plot_tick_label(v, xstep, buf, sizeof buf);
        cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
        plot_text(cr, x, py1 + 8, buf, 0.5, 0, 0);
    }
    /* frame */
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_rectangle(cr, px0, py0, px1 - px0, py1 - py0);
    cairo_stroke(cr);
    /* axis labels and title */
    plot_font(cr, 15, false);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    if (c->xlabel) plot_text(cr, (px0 + px1) / 2, H - 12, c->xlabel, 0.5, 1, 0);
    if (c->ylabel) plot_text(cr, 14, (py0 + py1) / 2, c->ylabel, 0.5, 0, -M_PI / 2);
    plot_title(cr, (int)(px0 + px1), 18, c->title);
    if (empty) {
        plot_font(cr, 15, false);
        cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
        plot_text(cr, (px0 + px1) / 2, (py0 + py1) / 2, "no data", 0.5, 0.5, 0);
    }

    /* the series, clipped to the plot area */
    cairo_save(cr);
    /* clip a dot's radius outside the frame, so dots on the edge stay whole */
    cairo_rectangle(cr, px0 - 5, py0 - 5, px1 - px0 + 10, py1 - py0 + 10);
    cairo_clip(cr);
    for (int s = 0; s < c->nseries; s++) {
        const dc_series *se = &c->series[s];
        double rgb[3];
        plot_series_color(s, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_set_line_width(cr, 2.4);
        bool pen = false;
        for (int i = 0; i < se->n; i++) {
            double x = xval(se, i), y = se->y[i];
            if (!usable(x, y, c->log_y)) {
                pen = false; /* a gap */
                continue;
            }
            if (pen) cairo_line_to(cr, MAPX(x), MAPY(y));
            else cairo_move_to(cr, MAPX(x), MAPY(y));
            pen = true;
        }
        cairo_stroke(cr);
        if (c->markers || se->n <= 30)
            for (int i = 0; i < se->n; i++) {
                double x = xval(se, i), y = se->y[i];
                if (!usable(x, y, c->log_y)) continue;
                cairo_arc(cr, MAPX(x), MAPY(y), 3.6, 0, 2 * M_PI);
                cairo_fill(cr);
            }
    }
    cairo_restore(cr);

    /* legend, outside on the right */
    if (named) {
        plot_font(cr, 13, false);
        double lx = px1 + 16, ly = py0 + 10;
        for (int s = 0; s < c->nseries; s++) {
            if (!c->series[s].name || !*c->series[s].name) continue;
            double rgb[3];
            plot_series_color(s, rgb);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_set_line_width(cr, 2.4);
            cairo_move_to(cr, lx, ly);
            cairo_line_to(cr, lx + 24, ly);
            cairo_stroke(cr);
            cairo_arc(cr, lx + 12, ly, 3.6, 0, 2 * M_PI);
            cairo_fill(cr);
            cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
            plot_text(cr, lx + 32, ly, c->series[s].name, 0, 0.5, 0);
            ly += 22;
        }
    }
#undef MAPX
#undef MAPY
    return plot_end(&pc, what);
}
