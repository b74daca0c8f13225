/* feed.c: records read ahead in a thread, into a bounded queue (see
 * wa_feed.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "record/wa_feed.h"

struct wa_feed {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t room;
	struct wa_reader *rd;
	void (*wake)(void *arg);  /* when a record arrives in an empty queue */
	void *arg;
	struct wa_feed_item *q;
	int cap, head, n, eof, quit;
};

static void *
feed_main(void *arg)
{
	struct wa_feed *f = arg;
	struct wa_feed_item s;
	int wake;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	for (;;) {
		memset(&s, 0, sizeof s);
		/* Cancelled only while blocked reading (the caller stopping). */
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		pthread_testcancel();
		s.st = wa_reader_next(f->rd, &s.rec);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (s.st < 0)
			s.err = strdup(wa_reader_error(f->rd));
		pthread_mutex_lock(&f->mu);
		while (f->n == f->cap && !f->quit)
			pthread_cond_wait(&f->room, &f->mu);
		if (f->quit) {
			pthread_mutex_unlock(&f->mu);
			wa_rec_free(&s.rec);
			free(s.err);
			break;
		}
		/* The taker may be waiting only when it found nothing. */
		wake = f->n == 0;
		if (s.st == 0)
			f->eof = 1;
		else
			f->q[(f->head + f->n++) % f->cap] = s;
		pthread_mutex_unlock(&f->mu);
		if (wake && f->wake)
			f->wake(f->arg);
		if (s.st == 0)
			break;
	}
	return NULL;
}

struct wa_feed *
wa_feed_start(char *const *files, int nfiles, size_t maxline,
    enum wa_format fmt, const char *field, int cap,
    void (*wake)(void *arg), void *arg)
{
	struct wa_feed *f = calloc(1, sizeof *f);

	if (!f)
		return NULL;
	f->cap = cap > 0 ? cap : 1;
	f->q = calloc((size_t)f->cap, sizeof *f->q);
	/* Flushing is the taker's business: no flush stream here. */
	f->rd = wa_reader_new(files, nfiles, maxline, NULL);
	if (f->rd)
		wa_reader_format(f->rd, fmt, field);
	f->wake = wake;
	f->arg = arg;
	if (!f->q || !f->rd)
		goto fail;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->room, NULL);
	if (pthread_create(&f->th, NULL, feed_main, f) != 0) {
		pthread_mutex_destroy(&f->mu);
		pthread_cond_destroy(&f->room);
		goto fail;
	}
	return f;
fail:
	wa_reader_free(f->rd);
	free(f->q);
	free(f);
	return NULL;
}

int
wa_feed_take(struct wa_feed *f, struct wa_feed_item *it)
{
	int rc;

	pthread_mutex_lock(&f->mu);
	if (f->n > 0) {
		*it = f->q[f->head];
		f->head = (f->head + 1) % f->cap;
		/* The reader, waiting on a full queue, is woken once half of
		 * it is free, to read that half in one go: not once a record. */
		if (--f->n == f->cap / 2)
			pthread_cond_signal(&f->room);
		rc = 1;
	} else
		rc = f->eof ? -1 : 0;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

void
wa_feed_stop(struct wa_feed *f)
{
	struct wa_feed_item s;

	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->quit = 1;
	pthread_cond_broadcast(&f->room);
	pthread_mutex_unlock(&f->mu);
	pthread_cancel(f->th); /* if it is blocked in read() */
	pthread_join(f->th, NULL);
	/* Items read but not taken: dropped. */
	while (f->n > 0 && wa_feed_take(f, &s) == 1) {
		wa_rec_free(&s.rec);
		free(s.err);
	}
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->room);
	wa_reader_free(f->rd);
	free(f->q);
	free(f);
}
