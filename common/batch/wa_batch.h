/* wa_batch.h: records run through the send engine, wa-send's whole job.
 *
 * Records come in (from files or standard input, read ahead by a thread:
 * record/wa_feed.h), or one record {"to":NUMBER}; each is normalized
 * (phone/wa_norm.h) unless it carries a jid, given its business, routed to
 * its provider (route/wa_route.h), turned into a message
 * (send/wa_message.h) and handed to a sender (send/wa_send.h); each result
 * is written as soon as it is known, the record with its result's fields
 * (send/wa_result.h), so with parallel > 1 in completion order. A number
 * the business's opt-outs hold (route/wa_route.h, wa_route_optout) fails
 * opted_out, permanent, with no request, unless ignore_optout. A record
 * failed upstream passes untouched and is not sent; a bad line or address
 * is written failed at once.
 *
 * With parallel 8 or more (and no rate, no dry run, no `to`), the sends
 * are spread over lanes: up to one thread per CPU (4 at most), each with
 * its own sender and libcurl multi handle, taking records from the one
 * reader and writing whole records to the one output.
 *
 * A fatal outcome (or the database lost while routing) stops every lane:
 * sends in flight finish and are written, nothing more is sent. Output
 * lost stops the run the same way.
 *
 * Why a folder of its own: this composes normalization, routing and
 * sending, and send/ sits below route/ (route -> send), so it cannot live
 * in send/. Passing routing and normalization into send/ as callbacks
 * would only move the same wiring, and its locking, into each caller; a
 * folder above them, as bcast/ is, keeps every arrow pointing one way.
 *
 * Nothing here writes to stdout except records through the given stream,
 * nor exits: diagnostics go to stderr through wa_err / wa_warn / wa_log,
 * and every function returns a WA_EXIT_* code. */
#ifndef WA_BATCH_H
#define WA_BATCH_H

#include <signal.h>
#include <stdio.h>

#include "send/wa_message.h"
#include "send/wa_send.h"

struct wa_batch_opts {
	const char *to;         /* send one record {"to":to}; NULL: read files */
	char **files;           /* none, or "-": standard input */
	int nfiles;
	long maxline;           /* longest input line */
	int format;             /* enum wa_format: 0 by the files' names */
	struct wa_msg_src src;  /* the message of records that carry none */
	const char *provider;   /* forced provider name, or NULL (wa_route.h) */
	const char *region;     /* national numbers' region; NULL: the config's */
	const char *config;     /* the config file, or NULL (wa_cfg_load) */
	long long business;     /* for records without business_id; -1: none */
	enum wa_context context;
	long retries;           /* -1: the context's policy */
	int retry_ambiguous;
	int parallel;           /* sends in flight, at least 1; 1: in order */
	double rate;            /* sends per second; 0: no limit */
	int dry_run;
	int ignore_optout;      /* send to opted-out numbers too */
	long timeout_ms, media_timeout_ms, connect_timeout_ms; /* <= 0: config's */
	FILE *out;              /* the records written */
	volatile sig_atomic_t *stop; /* set by SIGINT / SIGTERM; may be NULL */
};

struct wa_batch;

/* Check the message options, load the config, set up normalization, the
 * router (which may connect to the database) and the senders. 0 with *out
 * set, or the exit code (WA_EXIT_USAGE, WA_EXIT_CONFIG, WA_EXIT_UNAVAIL,
 * WA_EXIT_TEMP, WA_EXIT_SOFTWARE) with the reason said and *out NULL. o
 * (and what it points to) must outlive *out. */
int wa_batch_new(struct wa_batch **out, const struct wa_batch_opts *o);

/* Send every record (or the one). WA_EXIT_OK all sent; WA_EXIT_FAILED some
 * failed; WA_EXIT_UNAVAIL (WA_EXIT_CONFIG for not_configured) a fatal
 * outcome stopped the run; WA_EXIT_IO output lost or input unreadable;
 * WA_EXIT_TEMP *stop set (then said on stderr); WA_EXIT_SOFTWARE. */
int wa_batch_run(struct wa_batch *b);

/* Whether the provider of o->business is ready to send: one record
 * {"provider","business_id","ready","reason","details"} to o->out.
 * WA_EXIT_OK ready, WA_EXIT_UNAVAIL not, WA_EXIT_CONFIG not configured,
 * WA_EXIT_IO output lost. */
int wa_batch_status(struct wa_batch *b);

void wa_batch_free(struct wa_batch *b);

#endif
