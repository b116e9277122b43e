/* deepc/progress.h: the training progress display. On a terminal: one line redrawn in place
 * (at most 10 times a second) with a bar, batch i/N, running loss, images/s and ETA. Otherwise
 * (a log file, CI): plain lines, optionally one per ~10%, and one summary line at the end.
 *
 *   dc_progress *p = dc_progress_begin(stderr, DC_PROGRESS_AUTO, "epoch 3/10", n_batches, false);
 *   for (i...) { ...; dc_progress_update(p, i + 1, images_so_far, running_loss); }
 *   dc_progress_end(p, "val_loss 0.0456  val_acc 98.76%");   // prints the epoch's line, frees p
 */
#ifndef DEEPC_PROGRESS_H
#define DEEPC_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dc_progress_mode {
    DC_PROGRESS_AUTO = 0, /* $DEEPC_PROGRESS (tty|plain|quiet) if set, else TTY when out is a terminal */
    DC_PROGRESS_TTY,
    DC_PROGRESS_PLAIN,
    DC_PROGRESS_QUIET,
} dc_progress_mode;

typedef struct dc_progress dc_progress;

/* plain_steps: in plain mode, also print a line at each 10% (else only the final line).
 * NULL only when out of memory (then the other calls accept NULL and do nothing). */
dc_progress *dc_progress_begin(FILE *out, dc_progress_mode mode, const char *label, int64_t total,
                               bool plain_steps);
/* done: steps finished (1..total); items: images processed so far (for images/s);
 * loss: the running loss to show (NaN: not shown). */
void dc_progress_update(dc_progress *p, int64_t done, int64_t items, double loss);
/* Prints the final line (label, steps, loss, images/s, time, then `summary` if not NULL)
 * and frees p. */
void dc_progress_end(dc_progress *p, const char *summary);
/* Seconds since begin. */
double dc_progress_elapsed(const dc_progress *p);
/* The mode AUTO resolves to for this stream. */
dc_progress_mode dc_progress_resolve(FILE *out, dc_progress_mode mode);
/* "12.3s" under a minute, else "2:03" or "1:02:03", into buf; returns buf. */
const char *dc_format_duration(double seconds, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_PROGRESS_H */
