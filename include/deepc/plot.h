/* deepc/plot.h: charts for training reports, drawn with cairo: line charts (loss curves),
 * bar charts (accuracy per model, grouped per-class F1), heat maps (confusion matrices,
 * attention weights). The file type follows the extension: ".svg" writes SVG, ".pdf" PDF,
 * anything else PNG. Files are written atomically (temporary file + rename).
 *
 *   double train[] = {0.31, 0.09, 0.06}, val[] = {0.11, 0.07, 0.06};
 *   dc_series s[] = {{"train", NULL, train, 3}, {"validation", NULL, val, 3}};
 *   dc_line_chart c = {.title = "LeNet-5 on MNIST", .xlabel = "epoch", .ylabel = "loss",
 *                      .series = s, .nseries = 2, .integer_x = true};
 *   dc_plot_lines("out/loss.png", &c);
 */
#ifndef DEEPC_PLOT_H
#define DEEPC_PLOT_H

#include <stdbool.h>
#include <stdint.h>

#include "deepc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_series {
    const char *name;  /* legend entry (NULL or "": none) */
    const double *x;   /* NULL: x = 1, 2, ..., n (epochs) */
    const double *y;   /* NaN / Inf values leave a gap */
    int n;
} dc_series;

typedef struct dc_line_chart {
    const char *title, *xlabel, *ylabel;
    const dc_series *series;
    int nseries;
    bool log_y;      /* logarithmic y axis (values <= 0 are skipped) */
    bool integer_x;  /* x ticks on whole numbers only (epochs) */
    bool markers;    /* dots on the points (also on automatically when a series has <= 30 points) */
    int width, height; /* pixels; 0: 900 x 560 */
} dc_line_chart;

dc_status dc_plot_lines(const char *path, const dc_line_chart *chart);

typedef struct dc_bar_chart {
    const char *title, *xlabel, *ylabel;
    int ngroups;                      /* categories along x (models, or classes) */
    const char *const *group_names;
    int nseries;                      /* bars per category (1, or one per model) */
    const char *const *series_names;  /* legend when nseries > 1 (may be NULL) */
    const double *values;             /* [nseries][ngroups] */
    double y_min, y_max;              /* both 0: from 0 to a nice bound above the largest value */
    const char *value_format;         /* printf format drawn above each bar ("%.2f"), NULL: none */
    int width, height;                /* 0: 900 x 560 */
} dc_bar_chart;

dc_status dc_plot_bars(const char *path, const dc_bar_chart *chart);

typedef enum dc_colormap { DC_CMAP_VIRIDIS = 0, DC_CMAP_BLUES } dc_colormap;

typedef struct dc_heatmap {
    const char *title, *xlabel, *ylabel;
    int rows, cols;
    const float *values;             /* [rows][cols], row-major */
    const char *const *row_labels;   /* NULL: 0, 1, 2, ... */
    const char *const *col_labels;
    const char *cell_format;         /* printf format for a value in each cell ("%.2f"); NULL: none
                                        (also skipped when cells are too small for text) */
    dc_colormap colormap;
    bool colorbar;
    float v_min, v_max;              /* colour scale; both 0: the data's min and max */
    int width, height;               /* 0: sized from rows and cols */
} dc_heatmap;

dc_status dc_plot_heatmap(const char *path, const dc_heatmap *map);

/* A confusion matrix (rows = true class, columns = predicted) with counts in the cells,
 * coloured by the row-normalised value (recall), class names on both axes. */
dc_status dc_plot_confusion(const char *path, const char *title, int n, const int64_t *confusion,
                            const char *const *class_names);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_PLOT_H */
