/* wa_feed.h: records read ahead, in a thread of their own, so that a slow
 * producer (a pipe, a terminal) never stalls the caller's other work.
 *
 * The thread reads with a wa_reader and keeps at most cap items in a
 * bounded queue; the caller takes them in input order from any thread.
 * When the queue goes from empty to not empty, wake(arg) is called from
 * the reading thread, so that a caller asleep waiting for input (in
 * wa_sender_step, say) can be woken. */
#ifndef WA_FEED_H
#define WA_FEED_H

#include <stddef.h>

#include "record/wa_rec.h"

/* One item read: a record, or the reader's error. */
struct wa_feed_item {
	int st;              /* 1 a record, -1 a read error, -2 a file refused
	                        (wa_reader_next) */
	struct wa_rec rec;   /* st 1: owned by the taker (wa_rec_free) */
	char *err;           /* st -1: the error, owned (free), may be NULL */
};

struct wa_feed;

/* Start reading files (none, or "-": standard input; see wa_reader_new),
 * lines of at most maxline bytes, in format fmt (field: a CSV file's number
 * column; see wa_reader_format), cap items ahead at most. wake may be
 * NULL. NULL when out of memory or the thread could not start. */
struct wa_feed *wa_feed_start(char *const *files, int nfiles, size_t maxline,
    enum wa_format fmt, const char *field, int cap,
    void (*wake)(void *arg), void *arg);

/* The next item, in input order: 1 taken, 0 none yet, -1 none ever again. */
int wa_feed_take(struct wa_feed *f, struct wa_feed_item *it);

/* Stop the thread (also while it blocks reading) and free f; items read
 * but not taken are dropped. f may be NULL. */
void wa_feed_stop(struct wa_feed *f);

#endif
