/* progress.c: the training progress display (see deepc/progress.h): an in-place bar on a
 * terminal, plain lines elsewhere. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "deepc/progress.h"
#include "util.h"

struct dc_progress {
    FILE *out;
    dc_progress_mode mode;
    char label[128];
    int64_t total, done, items;
    double loss;
    double start, last_draw;
    int last_tenth;
    bool plain_steps, drawn;
};

dc_progress_mode dc_progress_resolve(FILE *out, dc_progress_mode mode)
{
    if (mode != DC_PROGRESS_AUTO) return mode;
    const char *env = getenv("DEEPC_PROGRESS");
    if (env && !strcasecmp(env, "tty")) return DC_PROGRESS_TTY;
    if (env && !strcasecmp(env, "plain")) return DC_PROGRESS_PLAIN;
    if (env && (!strcasecmp(env, "quiet") || !strcasecmp(env, "none"))) return DC_PROGRESS_QUIET;
    if (!out) return DC_PROGRESS_QUIET;
    return isatty(fileno(out)) ? DC_PROGRESS_TTY : DC_PROGRESS_PLAIN;
}

const char *dc_format_duration(double s, char *buf, size_t size)
{
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, size, "?");
        return buf;
    }
    if (s < 60) {
        snprintf(buf, size, "%.1fs", s);
        return buf;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
    return buf;
}

dc_progress *dc_progress_begin(FILE *out, dc_progress_mode mode, const char *label, int64_t total,
                               bool plain_steps)
{
    dc_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->out = out;
    p->mode = dc_progress_resolve(out, mode);
    if (!out) p->mode = DC_PROGRESS_QUIET;
    dc__strlcpy(p->label, sizeof p->label, label ? label : "");
    p->total = total > 0 ? total : 0;
    p->loss = NAN;
    p->start = dc__now();
    p->plain_steps = plain_steps;
    return p;
}

double dc_progress_elapsed(const dc_progress *p) { return p ? dc__now() - p->start : 0; }

static int term_columns(FILE *out)
{
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    const char *env = getenv("COLUMNS");
    int c = env ? atoi(env) : 0;
    return c >= 20 ? c : 80;
}

/* "412/860  loss 0.2345  12345 img/s" (the part every line shares) */
static void stats(const dc_progress *p, double elapsed, char *buf, size_t size)
{
    char loss[32] = "";
    if (isfinite(p->loss)) snprintf(loss, sizeof loss, "  loss %.4f", p->loss);
    double rate = elapsed > 0 ? (double)p->items / elapsed : 0;
    if (p->total > 0)
        snprintf(buf, size, "%lld/%lld%s  %.0f img/s", (long long)p->done, (long long)p->total, loss, rate);
    else
        snprintf(buf, size, "%lld%s  %.0f img/s", (long long)p->done, loss, rate);
}

static void draw_tty(dc_progress *p, double now)
{
    double elapsed = now - p->start;
    char st[160], eta[32] = "", etabuf[24];
    stats(p, elapsed, st, sizeof st);
    if (p->total > 0 && p->done > 0 && p->done < p->total)
        snprintf(eta, sizeof eta, "  ETA %s",
                 dc_format_duration(elapsed * (double)(p->total - p->done) / (double)p->done, etabuf, sizeof etabuf));
    int cols = term_columns(p->out);
    /* the bar takes what the text leaves, between 10 and 30 cells */
    int text = (int)(strlen(p->label) + strlen(st) + strlen(eta)) + 8;
    int width = cols - 1 - text;
    if (width > 30) width = 30;
    char bar[40] = "";
    if (width >= 10 && p->total > 0) {
        int fill = (int)((double)width * (double)p->done / (double)p->total);
        if (fill > width) fill = width;
        bar[0] = '[';
        for (int i = 0; i < width; i++) bar[1 + i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[1 + width] = ']';
        bar[2 + width] = '\0';
    }
    fprintf(p->out, "\r%s  %s%s%s%s\033[K", p->label, bar, bar[0] ? "  " : "", st, eta);
    fflush(p->out);
    p->drawn = true;
}

void dc_progress_update(dc_progress *p, int64_t done, int64_t items, double loss)
{
    if (!p) return;
    p->done = done;
    p->items = items;
    p->loss = loss;
    if (p->mode == DC_PROGRESS_QUIET) return;
    double now = dc__now();
    if (p->mode == DC_PROGRESS_TTY) {
        /* redraw at most 10 times a second: a terminal write per batch would cost more than
         * a small model's step */
        if (now - p->last_draw >= 0.1 || (p->total && done >= p->total)) {
            p->last_draw = now;
            draw_tty(p, now);
        }
        return;
    }
    if (p->plain_steps && p->total > 0) {
        int tenth = (int)(10 * done / p->total);
        if (tenth > p->last_tenth && done < p->total) {
            p->last_tenth = tenth;
            double elapsed = now - p->start;
            char st[160], etabuf[24];
            stats(p, elapsed, st, sizeof st);
            fprintf(p->out, "%s  %3d%%  %s  ETA %s\n", p->label, tenth * 10, st,
                    dc_format_duration(elapsed * (double)(p->total - done) / (double)(done ? done : 1), etabuf, sizeof etabuf));
            fflush(p->out);
        }
    }
}

void dc_progress_end(dc_progress *p, const char *summary)
{
    if (!p) return;
    if (p->mode != DC_PROGRESS_QUIET) {
        double elapsed = dc__now() - p->start;
        char st[160], t[24];
        stats(p, elapsed, st, sizeof st);
        if (p->mode == DC_PROGRESS_TTY && p->drawn) fprintf(p->out, "\r\033[K");
        fprintf(p->out, "%s  %s  %s%s%s\n", p->label, st, dc_format_duration(elapsed, t, sizeof t),
                summary && *summary ? "  " : "", summary ? summary : "");
        fflush(p->out);
    }
    free(p);
}
