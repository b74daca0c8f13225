/* bc_int.h: what the broadcast modules (broadcast.c, bc_*.c) share.
 * Private to them; the public interface is wa_bcast.h. */
#ifndef BC_INT_H
#define BC_INT_H

#include <stddef.h>
#include <libpq-fe.h>
#include <yajl/yajl_tree.h>

#include <time.h>

#include "base/wa_buf.h"
#include "base/wa_sched.h"
#include "bcast/wa_bcast.h"

/* --- text (broadcast.c) ----------------------------------------------- */
/* 1 when s is valid UTF-8 of at most maxchars characters (0: any). */
int bc_utf8_ok(const char *s, size_t maxchars);
/* Replace each byte of s that is not part of valid UTF-8 with '?'. */
void bc_utf8_fix(char *s);
/* Cut s to at most max bytes, at a character boundary. */
void bc_utf8_cut(char *s, size_t max);
/* Copy src (NULL: "") into dst, cut at a character boundary to fit. */
void bc_copy(char *dst, size_t size, const char *src);

/* --- the connection (broadcast.c) -------------------------------------- */
struct bc_db {
	PGconn *conn;
	const char *url;  /* for reconnecting */
	long long key;    /* worker key whose advisory lock this session holds */
	int shared;       /* pipeline: the lock is taken in shared mode */
	int locked;
	int lost;         /* the last failure was a lost connection */
	int missing;      /* bc_status_record: there is no such broadcast */
	char err[512];
	const char *prep[16]; /* statements prepared on this connection */
	int nprep;
	int gen;          /* reconnections so far (bc_reconnect) */
};

/* Run a parameterized statement. The result when it succeeded (tuples or
 * command ok), else NULL with d->err and d->lost set. */
PGresult *bc_q(struct bc_db *d, const char *sql, int n, const char *const *v);
/* The same for a statement run often: prepared once per connection, so it
 * is parsed and planned once. sql must be a string that lives as long as
 * the program (a literal): it is remembered by its address. */
PGresult *bc_qp(struct bc_db *d, const char *sql, int n, const char *const *v);
/* COPY ... FROM STDIN (sql) of the rows in text format (wa_db_copy_row):
 * the result, or NULL with d->err. */
PGresult *bc_copy_in(struct bc_db *d, const char *sql, const struct wa_buf *rows);
/* Send a statement and return at once: the program goes on while the
 * server runs it. 0, or -1 with d->err. bc_result waits for its result
 * (NULL with d->err when it failed); nothing else may run in between. */
int bc_send(struct bc_db *d, const char *sql, int n, const char *const *v);
PGresult *bc_result(struct bc_db *d);
/* Run a statement that returns nothing of interest: 0, or -1. */
int bc_cmd(struct bc_db *d, const char *sql, int n, const char *const *v);
/* d's error said on stderr; its exit code: WA_EXIT_TEMP when the
 * connection is lost, else WA_EXIT_SOFTWARE. */
int bc_db_fail(const struct bc_db *d);
/* Take the advisory lock on d->key for this session. */
int bc_lock(struct bc_db *d);
/* Reconnect (and take the lock again) within wait seconds, backing off.
 * idle(arg, ms) is called between tries so sends in flight go on.
 * 0 connected; -1 gave up (d->err says why), or stop was set. */
int bc_reconnect(struct bc_db *d, double wait, volatile sig_atomic_t *stop,
    void (*idle)(void *arg, int ms), void *arg);

/* Become a worker: a new key (> 0 for a run worker, < 0 for a pipeline)
 * and its advisory lock. 0, or -1. */
int bc_worker(struct bc_db *d, int pipeline);
/* Monotonic clock, seconds. */
double bc_now(void);
void bc_sleep_ms(int ms);
/* The idempotency key of a recipient's message (buf: 40 bytes). */
void bc_idem_key(char *buf, size_t len, long long bid, long long rid);
/* Integer as text for a parameter. */
const char *bc_ll(char *buf, size_t len, long long v);

/* --- a broadcast row (broadcast.c) ------------------------------------- */
struct bc_bcast {
	long long id, business_id;
	char status[16];
	char *name, *type, *text, *template_name, *language, *params, *media,
	    *region, *pause_reason;
	long long total, sent, failed, cancelled, processed;
	int cancel_requested;
	int preview_url;   /* a text's: ask Meta for a link preview */
};
/* Load broadcast id: 1 found, 0 not found, -1 error (d->err). */
int bc_load(struct bc_db *d, long long id, struct bc_bcast *b);
void bc_bcast_free(struct bc_bcast *b);
/* The message fields of a send record (text | template | media), added to
 * rec. 0, or -1 when the stored message is unusable (msg says why). */
int bc_message(const struct bc_bcast *b, yajl_val rec, char *msg, size_t len);
/* Status record of a broadcast from its row and its rows per state. */
yajl_val bc_status_record(struct bc_db *d, long long id);

/* --- claims (bc_claim.c) ----------------------------------------------- */
struct bc_recip {
	long long id;
	char phone[64];
	char jid[128];
	int attempts;     /* HTTP sends already made */
	long long lead_id;
	yajl_val fields;  /* the record's other fields, as stored; owned */
};

/* The most bytes of JSON a recipient's fields may take. */
#define BC_FIELDS_MAX 16384

/* A field name create does not store: the address fields, lead_id (a
 * column of its own) and the names a send record sets itself. */
int bc_reserved_field(const char *k);
/* The record of a stored recipient, the one export writes and run and
 * preview turn into its message (wa_msg_content): recipient_id,
 * broadcast_id, business_id, phone, jid, lead_id, its stored fields, the
 * message fields of proto (bc_message; NULL: none), idempotency_key and
 * claim. Free with wa_val_free. */
yajl_val bc_recipient_record(const struct bc_bcast *b, const struct bc_recip *r,
    yajl_val proto, long long claim);

/* How a claimed recipient ends this round. */
enum bc_end {
	BC_SENT,      /* final: sent */
	BC_FAILED,    /* final: failed, with error */
	BC_CANCELLED, /* final: cancelled */
	BC_REQUEUE    /* back to queued: not sent (not started, fatal stop) */
};

struct bc_outcome {
	long long id;
	enum bc_end end;
	int attempts;       /* HTTP sends made this round */
	double retry_in;    /* BC_REQUEUE: seconds before it may go again */
	char message_id[256];  /* the column holds 255 */
	char code[64], klass[16], message[256];
};

struct wa_result;
struct wa_error;
/* A send's result (from the sender, or read back from wa-send's record
 * by mark) as a claimed recipient's outcome: sent, failed, or back to the
 * queue (fatal, not sent, deferred: retry_in) or cancelled (not sent
 * while cancelling, or opted_out: wa-send found the number in the
 * business's opt-outs). */
enum bc_end bc_outcome_of(struct bc_outcome *oc, long long id,
    const struct wa_result *r, int cancelling);
/* A fatal outcome's reason, "code: message", for the pause. */
void bc_fatal_reason(char *buf, size_t len, const struct wa_error *e);

struct bc_counts {
	long long total, sent, failed, cancelled, processed;
	long long recorded;  /* rows the last call changed */
};

struct wa_norm_opts;
/* A row the old system stored without a JID gets one from its phone, the
 * way create makes it. 0 when r has a JID now; -1 when its number is none,
 * with oc filled: failed, permanent, the reason. */
int bc_fill_jid(const struct wa_norm_opts *no, struct bc_recip *r,
    struct bc_outcome *oc);

/* Release the claims of workers that are gone. */
int bc_recover(struct bc_db *d, long long bid, long long *requeued,
    long long *ambiguous);
/* Claim up to max queued recipients; handed: set sending_since now (the
 * pipeline hands them over at once). Those the business's opt-outs hold
 * by now are cancelled instead (error_code opted_out, counted) in the same
 * statement. Returns the number claimed, into r[0..n), or -1; the
 * cancelled ones follow them in r (id and phone), *opted of them. */
int bc_claim(struct bc_db *d, long long bid, int max, double lease,
    int handed, struct bc_recip *r, int *opted);
/* Row i of a result whose columns are id, phone, jid, attempts, lead_id,
 * fields::text, into *r (fields parsed: the caller frees them). */
void bc_recip_read(const PGresult *res, int i, struct bc_recip *r);
/* Mark sending_since on ids (about to go out); ids that are no longer ours
 * are dropped from the array. Returns how many remain, or -1. */
int bc_mark_sending(struct bc_db *d, long long bid, long long *ids, int n);
/* Clear sending_since of our claims ids[] (waiting between tries, certainly
 * not delivered so far): 0 or -1. */
int bc_unmark_sending(struct bc_db *d, long long bid, const long long *ids, int n);
/* Record outcomes: recipient rows and counters in one statement. Only rows
 * still claimed by d->key change (a second report changes nothing). */
int bc_record(struct bc_db *d, long long bid, const struct bc_outcome *o,
    int n, struct bc_counts *c);
/* bc_record, then mark sending_since on mark[] (as bc_mark_sending), in
 * one statement. Returns how many of mark remain ours (0 when mark is
 * NULL), or -1. */
int bc_record_mark(struct bc_db *d, long long bid, const struct bc_outcome *o,
    int n, long long *mark, int nmark, struct bc_counts *c);
/* Give back every claim of this worker on bid whose send has not started. */
int bc_giveback(struct bc_db *d, long long bid, long long *n);
/* The claims of key d->key still processing when a pipeline ends:
 * requeue (never sent) or mark failed/ambiguous (may have gone out). */
int bc_leftovers(struct bc_db *d, long long bid, int requeue, long long *n);
/* Set the lease of d->key's claims on bid to `lease` seconds from now
 * where it is longer than that or has less than two thirds of it left. */
int bc_extend(struct bc_db *d, long long bid, double lease);
/* 1 when another session holds d->key's lock too (mark, beside export),
 * 0 when none does, -1 on error. */
int bc_key_shared(struct bc_db *d);
/* How long a pipeline claim is held once mark holds its key: long enough
 * for mark to reconnect to a lost database (its lock goes with it). */
#define BC_HOLD_S(db_wait) ((db_wait) + 5)
/* Claims of d->key on bid still processing, or -1. */
long long bc_outstanding(struct bc_db *d, long long bid);
/* Recipients still queued (*n), how long until the first may be claimed
 * (*first), and how long to sleep before looking again (*wait, between
 * 0.05 and 1 s). */
int bc_queued_later(struct bc_db *d, long long bid, long long *n, double *wait,
    double *first);
/* Recipients queued only for later than this (a long Retry-After) are left
 * to a later run: waiting for them would hold the worker. */
double bc_later_s(void);
/* Cancel the queued rows (and this worker's unstarted claims). */
int bc_cancel_rows(struct bc_db *d, long long bid, long long *n);
/* Set the final status when no recipient is queued or processing; the
 * status into status (unchanged when not final yet). */
int bc_finalize(struct bc_db *d, long long bid, char *status, size_t len);
/* Mark running (started_at) unless paused / final: 1 ok, 0 not runnable.
 * First the counters are made to match the rows; what was corrected goes
 * into fixed ("sent_count 4>2, …"; empty when nothing), the counters then
 * into *c (untouched when nothing). */
int bc_start(struct bc_db *d, long long bid, char *fixed, size_t len,
    struct bc_counts *c);
/* Pause with a reason (an operator's pause). */
int bc_pause(struct bc_db *d, long long bid, const char *reason);
/* After a fatal outcome: pause with the reason, or, when the provider was
 * not reached at all (unreached), leave the broadcast to the next run and
 * say so. */
int bc_halt(struct bc_db *d, long long bid, const char *reason, int unreached);

/* --- schedules and windows (sched.c) ---------------------------------- */
struct bc_sched {
	char tz[64];          /* the zone its times and days are in; "" local */
	char window[256], skip[64]; /* as given (its own, else the business's) */
	struct wa_window win;
	int bad;              /* the stored window is unreadable: held
	                         (create: the zone is the business's) */
	int has_at;
	time_t at;            /* scheduled_at */
	char status[32];
};
/* The wall clock every schedule and window decision uses (WA_NOW). */
time_t bc_wall(void);
/* t as text for a parameter (to_timestamp($n::bigint)). */
const char *bc_epoch(char *buf, size_t len, time_t t);
/* create's --tz, --at, --window, --skip-days checked and resolved (the
 * zone: --tz, the business's, WA_TZ, the system's): 0, or an exit code
 * after the message. */
int bc_sched_prepare(struct bc_db *d, const struct wa_bcast_new *n,
    struct bc_sched *s);
/* Store them on broadcast bid ('scheduled' when --at is still ahead). */
int bc_sched_store(struct bc_db *d, long long bid, const struct bc_sched *s);
/* scheduled_at into create's summary record. */
void bc_sched_summary(const struct bc_sched *s, yajl_val rec);
/* A broadcast's schedule and window (its own, else its business's): 1,
 * 0 no such broadcast, -1 error. */
int bc_sched_load(struct bc_db *d, long long bid, struct bc_sched *s);
/* 1 when its window is open at now; *change: when that changes, or -1. */
int bc_sched_open(const struct bc_sched *s, time_t now, time_t *change);
/* Scheduled for later, or outside its window now (said at log level
 * level): WA_EXIT_TEMP, or another exit code on a database error; -1 when
 * it may send now. */
int bc_sched_wait(struct bc_db *d, const struct bc_bcast *b, int level);
/* t as ISO 8601 in its zone (or what -1 means). */
void bc_sched_when(const struct bc_sched *s, time_t t, char *buf, size_t len);
/* scheduled_at, window, time_zone and waiting_for_window (the next opening,
 * when it waits for one) into a status record. */
void bc_sched_status(struct bc_db *d, long long id, yajl_val o);

/* --- pacing (bc_pace.c) ------------------------------------------------ */
struct bc_pace {
	double rate;       /* sends per second; 0: unlimited */
	char sender[64];
	double slot[64];   /* monotonic times of the slots taken, unused */
	int n, pos;
	double win_t, win_n, win_rate; /* unlimited: sends per second seen */
};
/* sender: the pacing row's key, e.g. "meta:<phone number id>",
 * "baileys:<business id>". */
void bc_pace_init(struct bc_pace *p, double rate, const char *sender);
/* The monotonic time the next send may start, taking slots from the
 * database in small blocks. 0, or -1 (d->err). */
int bc_pace_next(struct bc_db *d, struct bc_pace *p, double *when);
/* Give up the remaining slots (they are lost, the rate dips a little). */
void bc_pace_drop(struct bc_pace *p);
/* The provider said the sender is over its throughput: every worker's
 * share of the rate halves (an unlimited pace takes the rate it saw). 0,
 * or -1 (d->err). */
int bc_pace_throttle(struct bc_db *d, struct bc_pace *p);

/* --- running (bc_run.c, bc_work.c) ------------------------------------ */
struct wa_cfg;
/* The business's provider (into *provider, a wa_provider) and whether it
 * can send now: WA_EXIT_OK ready; WA_EXIT_UNAVAIL not ready,
 * WA_EXIT_CONFIG not configured (reason says why); WA_EXIT_TEMP or
 * WA_EXIT_SOFTWARE when the database failed. */
/* The business's provider (into *p, an enum wa_provider), chosen as for
 * every send (wa_route.h). 0, or an exit code with the reason in err. */
int bc_provider_of(const struct wa_cfg *cfg, long long business_id, int *p,
    char *err, size_t len);
/* The senders of businesses, for status: the key of each one's pacing
 * row ("meta:<phone number id>", "baileys:<business id>"), from the
 * settings it sends with, looked up once per business. bc_sender_of says
 * NULL when that cannot be known (no route, no database). */
struct bc_senders;
struct bc_senders *bc_senders_new(const struct wa_cfg *cfg);
const char *bc_sender_of(struct bc_senders *s, long long business_id);
void bc_senders_free(struct bc_senders *s);
/* own (if not NULL) gets the settings the business sends with (its own
 * from the config file and its business row, else the global ones: free
 * it with wa_cfg_free, also after a failure). */
int bc_preflight(struct bc_db *d, const struct wa_cfg *cfg, long long business_id,
    int *provider, struct wa_cfg *own, char *reason, size_t len);
/* Run broadcast b (taken over: b is emptied) as worker d until it is done
 * or stopped; prints its summary line and emits its status record. */
int bc_run_one(struct bc_db *d, const struct wa_bcast_run_opts *o,
    struct bc_bcast *b, int provider, const char *pace_sender);
/* The same, stepped among others (run --all, run ID...): bc_run_start sets
 * it up (NULL: not started, the exit code in *rc); each bc_run_turn does
 * what can be done now without blocking, at most slice (bc_run_share) of
 * its sends pending; when it returns 1 the run has ended as bc_run_one
 * ends (summary line, record, *rc) and u is gone. bc_run_stop stops it
 * as a signal would. bc_run_busy: it has sends in hand. */
struct run;
struct run *bc_run_start(struct bc_db *d, const struct wa_bcast_run_opts *o,
    struct bc_bcast *b, int provider, const char *pace_sender, int *rc);
void bc_run_share(struct run *u, int slice);
/* Since the last call: the most sends it had on the wire (*peak), and 1
 * when its slice alone held it back (it could use more), 0 when its pace
 * or its work did. */
int bc_run_usage(struct run *u, int *peak);
int bc_run_turn(struct run *u, int *rc);
void bc_run_stop(struct run *u);
long long bc_run_id(const struct run *u);
int bc_run_busy(const struct run *u);

#endif
