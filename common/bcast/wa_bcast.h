/* wa_bcast.h: broadcasts stored in PostgreSQL.
 *
 * A broadcast is one message to a list of recipients, in the tables
 * whatsapp_broadcasts and whatsapp_broadcast_recipients. These functions
 * create one, run it through the library's send engine (the one send path
 * wa-send uses), feed it through a pipeline (export / mark), and control it
 * (cancel, pause, resume, retry, status, list).
 *
 * Every function returns a WA_EXIT_* code and never writes to stdout:
 * records go to the caller through a callback, diagnostics to stderr
 * through wa_err / wa_warn / wa_log.
 *
 * Claims. A worker claims queued recipients (status 'processing',
 * claimed_by = its worker key) and holds a session advisory lock on that
 * key while it lives. A claim whose key no session holds is dead and is
 * recovered by the next worker at once: back to 'queued' if its send had
 * not started (sending_since NULL), else 'failed' with error_class
 * 'ambiguous' and error_code 'interrupted', for review, never resent
 * except by an explicit retry --ambiguous. Pipeline claims (export / mark)
 * use negative keys and also live until claimed_until (the lease), because
 * export exits before mark has recorded its results. */
#ifndef WA_BCAST_H
#define WA_BCAST_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <libpq-fe.h>
#include <yajl/yajl_tree.h>

/* Called with each record the caller should write (a status record, an
 * exported recipient); a non-zero return stops the operation (stdout
 * failed) and the function returns WA_EXIT_IO. */
typedef int (*wa_bcast_emit_fn)(void *arg, yajl_val rec);

/* Live counts for a progress bar; rate in recipients per second. */
struct wa_bcast_progress {
	long long broadcast_id;
	long long total, sent, failed, cancelled, processed;
	double rate, eta;  /* eta in seconds; < 0 unknown */
};
/* Draw (p) or clear (p == NULL, before a log line) the progress bar. */
typedef void (*wa_bcast_progress_fn)(void *arg, const struct wa_bcast_progress *p);

/* --- create (bc_store.c) --------------------------------------------- */
struct wa_bcast_new {
	long long business_id;
	const char *name;
	const char *text;          /* one of text, template, media */
	const char *template_name;
	const char *language;
	const char *params;        /* JSON: array of strings or of components */
	const char *media;         /* JSON object: type, url|path, caption, ... */
	int preview_url;           /* with text: Meta shows its first link */
	const char *region;        /* national numbers; NULL: WA_DEFAULT_REGION */
	const char *field;         /* take the number from this field */
	const char *idempotency_key;
	char *const *files;
	int nfiles;
	size_t maxline;
	int format;                /* enum wa_format: 0 by the files' names */
	const char *at;            /* --at: 'scheduled' until then */
	const char *tz;            /* --tz: the zone of at and of the window */
	const char *window;        /* --window: sending hours (wa_sched.h) */
	const char *skip_days;     /* --skip-days */
};

/* Read the recipients, store the broadcast ('queued') and its recipients in
 * one transaction. *out gets {"broadcast_id","total","invalid","duplicates",
 * "opted_out"} (and "scheduled_at" with --at) (opted_out: numbers the business's opt-outs hold, stored
 * cancelled with error_code opted_out, counted in total, not invalid)
 * (caller frees with wa_val_free), or {"broadcast_id","existing":true} when
 * the idempotency key was used before (nothing stored). WA_EXIT_FAILED
 * when some recipient was invalid (stored failed). */
int wa_bcast_create(PGconn *db, const struct wa_bcast_new *n, yajl_val *out);

/* --- run, export, mark (bc_work.c, bc_run.c, bc_pipe.c) ---------------- */
struct wa_cfg;

struct wa_bcast_run_opts {
	const struct wa_cfg *cfg;  /* providers' settings (wa_cfg_load) */
	PGconn **db;               /* connected, schema checked; replaced on
	                              reconnect, the caller finishes it */
	const char *db_url;        /* for reconnecting; NULL: DATABASE_URL / PG* */
	long long *ids;            /* broadcasts to run; NULL with all */
	int nids;
	int all;                   /* every queued or running broadcast */
	int parallel;              /* sends in flight */
	double rate;               /* per business sender; 0 unlimited */
	int batch;                 /* recipients per claim; 0 automatic */
	double db_wait;            /* seconds to keep reconnecting */
	double lease;              /* pipeline claim lease, seconds */
	int window;                /* export: results outstanding at most */
	volatile sig_atomic_t *stop; /* set by SIGINT / SIGTERM */
	wa_bcast_emit_fn emit;
	wa_bcast_progress_fn progress; /* NULL: no bar */
	void *arg;
};

/* Run broadcasts until done, paused, cancelled, stopped or the database is
 * lost for good. One status record per broadcast through emit. The worst
 * of: WA_EXIT_OK, WA_EXIT_FAILED (partial or failed), WA_EXIT_UNAVAIL (not
 * started, paused, or a fatal outcome paused it), WA_EXIT_TEMP (*stop set,
 * or the database stayed away past db_wait). */
int wa_bcast_run(const struct wa_bcast_run_opts *o);

/* Claim the pending recipients of one broadcast and hand each to emit as a
 * record for wa-send (recipient_id, broadcast_id, business_id, jid, the
 * message, claim). */
int wa_bcast_export(const struct wa_bcast_run_opts *o, long long id);

/* Record wa-send's results from files (standard input when none). */
int wa_bcast_mark(const struct wa_bcast_run_opts *o, long long id,
    char *const *files, int nfiles, size_t maxline);

/* The first n (> 0) messages of broadcast id exactly as they would be
 * sent, one record each through emit (recipient, address, the rendered
 * message), claiming nothing and changing nothing. */
int wa_bcast_preview(const struct wa_bcast_run_opts *o, long long id,
    long long n);

/* --- control (bc_ctl.c) ------------------------------------------------ */
int wa_bcast_cancel(PGconn *db, long long id, yajl_val *out);
int wa_bcast_pause(PGconn *db, long long id, const char *reason, yajl_val *out);
int wa_bcast_resume(PGconn *db, long long id, yajl_val *out);
/* Move the start of a broadcast not started yet to at (in zone tz; NULL:
 * the broadcast's); "now" or a past time queues it. */
int wa_bcast_reschedule(PGconn *db, long long id, const char *at,
    const char *tz, yajl_val *out);
/* Re-queue failed (non-ambiguous) and/or ambiguous recipients. */
int wa_bcast_retry(PGconn *db, long long id, int failed, int ambiguous,
    yajl_val *out);
/* A status record per broadcast (ids, or every one when nids == 0; of one
 * business when business_id > 0), each with its "sender" (the key of its
 * pacing row, from its settings in cfg; null when unknown) and
 * "sender_rate" (what that sender's running broadcasts sent per second
 * over the last 60 s). */
struct wa_cfg;
int wa_bcast_status(PGconn *db, const struct wa_cfg *cfg, long long business_id,
    const long long *ids, int nids, wa_bcast_emit_fn emit, void *arg);
/* One record per broadcast, of one business when business_id > 0: as
 * status's, lighter (rate and eta_seconds of running ones only). */
int wa_bcast_list(PGconn *db, const struct wa_cfg *cfg, long long business_id,
    wa_bcast_emit_fn emit, void *arg);

/* --- the recipients (recipients.c) ------------------------------------ */
/* 0 when each given one (NULL: not given) is a value recipients takes:
 * status sent, failed, cancelled, queued or processing; class ambiguous,
 * retryable, permanent or fatal; format jsonl or csv. Else WA_EXIT_USAGE,
 * after a message naming the option. */
int wa_bcast_recipients_check(const char *status, const char *klass,
    const char *format);
/* One record per recipient of broadcast id, in id order, through emit:
 * the keys of wa_bcast_recipient_cols (fields as stored, an object or
 * null; times as the status record has them). Only those in status
 * (sent takes in delivered) and of error class klass; NULL: all. Read a
 * page at a time through a cursor: memory stays flat. WA_EXIT_DATA when
 * there is no such broadcast. */
int wa_bcast_recipients(PGconn *db, long long id, const char *status,
    const char *klass, wa_bcast_emit_fn emit, void *arg);
/* The keys of a recipient's record in order, NULL-terminated: the columns
 * of its CSV form. */
extern const char *const wa_bcast_recipient_cols[];
/* --- opt-outs (optout.c) ------------------------------------------ */
enum wa_bcast_optout_op {
	WA_BCAST_OPTOUT_ADD, WA_BCAST_OPTOUT_REMOVE, WA_BCAST_OPTOUT_IMPORT,
	WA_BCAST_OPTOUT_LIST
};
struct wa_bcast_optout {
	enum wa_bcast_optout_op op;
	long long business_id;
	const char *region;   /* national numbers; NULL: WA_DEFAULT_REGION */
	const char *source;   /* NULL: "operator" (add), "import" (import) */
	const char *note;     /* NULL: none */
	char *const *args;    /* add, remove: numbers; import: files (none:
	                         standard input) */
	int nargs;
	int format;           /* import: an enum wa_format, as create's */
	const char *field;    /* import: the CSV column of the number */
};
/* The opt-outs of a business: add (a second add keeps the one row),
 * remove (an absent number is no error), import or list. A record per
 * number through emit for add and remove ({"business_id","number",
 * "optout":"added|existing|removed|absent"}), one for import
 * ({"business_id","added","existing","invalid"}), one per row for list
 * ({"business_id","number","created_at","source","note"}). A bad number
 * is said on stderr with its position, the rest go on, and the result is
 * then WA_EXIT_FAILED; WA_EXIT_DATA when there is no such business. */
int wa_bcast_optout(PGconn *db, const struct wa_bcast_optout *o,
    wa_bcast_emit_fn emit, void *arg);
/* `optout OP [ARG]...` of the command line into o (op, args; its source
 * and note already set): 0, or WA_EXIT_USAGE said. */
int wa_bcast_optout_args(struct wa_bcast_optout *o, char *const *argv, int argc);

/* --- showing (show.c) ------------------------------------------------ */
/* Where records go: one JSON line each through w (to fp), or, with table
 * set, collected for wa_bcast_out_table. */
struct wa_bcast_out {
	struct wa_writer *w;
	FILE *fp;
	int flush_each;     /* every record leaves at once (a pipeline) */
	int table;
	yajl_val *recs;
	size_t n, cap;
	int kind;           /* the table's columns: WA_BCAST_T_* */
	size_t page;        /* table: written every page records (0: at the
	                       end), so a long list needs no more memory */
	int csv;            /* CSV rows of wa_bcast_recipient_cols instead */
	long long rows;     /* CSV rows written (the header first) */
};
/* Which columns a table has. */
enum { WA_BCAST_T_STATUS, WA_BCAST_T_LIST, WA_BCAST_T_RECIPIENTS, WA_BCAST_T_OPTOUT };
/* A wa_bcast_emit_fn over a struct wa_bcast_out. */
int wa_bcast_emit(void *out, yajl_val rec);
/* Emit rec (if any) and free it: rc, or WA_EXIT_IO when it was lost. */
int wa_bcast_emit_one(struct wa_bcast_out *o, yajl_val rec, int rc);
/* Write the records collected as a table with the columns of kind
 * (WA_BCAST_T_*; status's is followed by each broadcast's most frequent
 * errors); 0, or -1 when it could not be written. */
int wa_bcast_out_table(struct wa_bcast_out *o, int kind);
/* Set o up for recipients' records in format (jsonl, csv; NULL: a table
 * when tty, else jsonl). */
void wa_bcast_out_recipients(struct wa_bcast_out *o, const char *format, int tty);
/* After the last record: the rest of a table, a CSV header when no row
 * came. rc, or WA_EXIT_IO when that could not be written. */
int wa_bcast_out_end(struct wa_bcast_out *o, int rc);
/* The progress bar on stderr (a wa_bcast_progress_fn). */
void wa_bcast_bar(void *arg, const struct wa_bcast_progress *p);
/* A broadcast id: 0, or -1 when s is none. */
int wa_bcast_parse_id(const char *s, long long *id);
/* Each of argv as an id into *ids (malloc'd): 0, i + 1 for the first that
 * is none, -1 out of memory. */
int wa_bcast_parse_ids(char *const *argv, int argc, long long **ids);

/* Render records as an aligned table (for a terminal): the named fields as
 * columns, text cut at a character (with "…"; the records keep it whole)
 * to 40 columns. Returns a malloc'd string, or NULL when out of memory. */
char *wa_bcast_table(yajl_val *recs, size_t n, const char *const *cols);
/* The same, with no line wider than width (0: any), the text columns
 * cut to fit, the last first. Status's and list's fit
 * WA_BCAST_TABLE_WIDTH. */
#define WA_BCAST_TABLE_WIDTH 100
char *wa_bcast_table_fit(yajl_val *recs, size_t n, const char *const *cols,
    size_t width);

#endif
