/* progress.h — volctl's progress line on a terminal. While one API call is
 * in flight for longer than VD_PROGRESS_DELAY_MS, a line such as
 * "| mounting m1 2.1s" is drawn on stderr and redrawn with '\r' every
 * VD_PROGRESS_TICK_MS; it is erased when the call returns. The server does
 * not stream progress: the line says what volctl asked and how long it has
 * waited.
 *
 * Threads: vd_progress_start starts one thread that only writes the line;
 * vd_progress_stop stops and joins it. The format and the decision are
 * pure functions. */
#ifndef VD_PROGRESS_H
#define VD_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>

#define VD_PROGRESS_DELAY_MS 300
#define VD_PROGRESS_TICK_MS 100
#define VD_PROGRESS_LABEL_MAX 64   /* longer labels are cut: the line must not wrap */

/* Progress is for people: stderr on a terminal, and neither --quiet nor
 * --json asked. */
bool vd_progress_wanted(bool stderr_is_tty, bool quiet, bool json);

/* The line for label after elapsed_ms at spinner frame tick:
 * "\r| label 2.1s" ("1m05s" from a minute on). Returns the length it has
 * (snprintf's), the text cut to len. */
int vd_progress_format(char *buf, size_t len, const char *label, long elapsed_ms,
		       unsigned tick);

struct vd_progress;

/* Starts the progress thread writing label's line to fd. NULL when it
 * cannot (out of memory, no thread): the call then runs without one. */
struct vd_progress *vd_progress_start(int fd, const char *label);

/* Stops the thread, erases the line if one was drawn, frees. NULL: no-op. */
void vd_progress_stop(struct vd_progress *p);

#endif
