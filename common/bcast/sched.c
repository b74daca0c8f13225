/* sched.c: a broadcast's schedule (--at) and sending window (--window,
 * --skip-days), stored by create and reschedule, read by run and status.
 * Every decision takes its time from wa_clock_now() and hands it to SQL as
 * a parameter: WA_NOW moves them all together in tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "base/wa_cli.h"
#include "base/wa_clock.h"
#include "base/wa_sched.h"
#include "record/wa_rec.h"

time_t
bc_wall(void)
{
	return (time_t)wa_clock_now();
}

const char *
bc_epoch(char *buf, size_t len, time_t t)
{
	snprintf(buf, len, "%lld", (long long)t);
	return buf;
}

/* The business's zone (wa_business_schedule), else the default one. */
static int
business_zone(struct bc_db *d, long long business_id, char *tz, size_t len,
    int *theirs)
{
	char k[32];
	const char *v[1] = { bc_ll(k, sizeof k, business_id) };
	PGresult *r = bc_q(d, "SELECT time_zone FROM wa_business_schedule"
	    " WHERE business_id = $1 AND time_zone IS NOT NULL", 1, v);

	if (!r)
		return -1;
	*theirs = PQntuples(r) == 1;
	if (*theirs)
		snprintf(tz, len, "%s", PQgetvalue(r, 0, 0));
	else
		wa_tz_default(tz, len);
	PQclear(r);
	return 0;
}

int
bc_sched_prepare(struct bc_db *d, const struct wa_bcast_new *n,
    struct bc_sched *s)
{
	char err[300];

	memset(s, 0, sizeof *s);
	if (n->tz && !wa_tz_valid(n->tz))
		return wa_usage_error("--tz: not a zone of the system's time-zone "
		    "database: '%s' (e.g. Asia/Jerusalem)", n->tz);
	if (wa_window_parse(&s->win, n->window, n->skip_days, err, sizeof err) != 0)
		return wa_usage_error("%s", err);
	if (n->tz)
		snprintf(s->tz, sizeof s->tz, "%s", n->tz);
	else if (business_zone(d, n->business_id, s->tz, sizeof s->tz, &s->bad) != 0)
		return bc_db_fail(d);
	if (!wa_tz_valid(s->tz)) {
		wa_err("time zone '%s' (WA_TZ, or the business's) is not in the "
		    "system's time-zone database", s->tz);
		return WA_EXIT_CONFIG;
	}
	if (n->at) {
		if (wa_time_parse(n->at, s->tz, &s->at, err, sizeof err) != 0)
			return wa_usage_error("--at: %s", err);
		s->has_at = 1;
	}
	snprintf(s->window, sizeof s->window, "%s", n->window ? n->window : "");
	snprintf(s->skip, sizeof s->skip, "%s", n->skip_days ? n->skip_days : "");
	return 0;
}

int
bc_sched_store(struct bc_db *d, long long bid, const struct bc_sched *s)
{
	static const char sql[] =
	    "UPDATE whatsapp_broadcasts SET time_zone = $2, send_window = $3,"
	    " skip_days = $4, scheduled_at = to_timestamp($5::bigint),"
	    " status = CASE WHEN $5::bigint > $6::bigint THEN 'scheduled'"
	    "  ELSE status END WHERE id = $1";
	char k[32], at[32], now[32];
	/* The business's zone is followed, not copied: a change to it
	 * applies; otherwise the zone of the host that created it. */
	const char *v[6] = { bc_ll(k, sizeof k, bid), s->bad ? NULL : s->tz,
		s->window[0] ? s->window : NULL, s->skip[0] ? s->skip : NULL,
		s->has_at ? bc_epoch(at, sizeof at, s->at) : NULL,
		bc_epoch(now, sizeof now, bc_wall()) };

	return bc_cmd(d, sql, 6, v);
}

void
bc_sched_summary(const struct bc_sched *s, yajl_val rec)
{
	char buf[64];

	if (!rec || !s->has_at)
		return;
	wa_time_format(s->at, s->tz, buf, sizeof buf);
	wa_set_str(rec, "scheduled_at", buf);
}

int
bc_sched_load(struct bc_db *d, long long bid, struct bc_sched *s)
{
	static const char sql[] =
	    "SELECT coalesce(b.time_zone, z.time_zone, ''),"
	    " coalesce(b.send_window, z.send_window, ''),"
	    " coalesce(b.skip_days, z.skip_days, ''),"
	    " extract(epoch FROM b.scheduled_at)::bigint, b.status"
	    " FROM whatsapp_broadcasts b LEFT JOIN wa_business_schedule z"
	    " ON z.business_id = b.business_id WHERE b.id = $1";
	char k[32], err[300];
	const char *v[1] = { bc_ll(k, sizeof k, bid) };
	PGresult *r = bc_q(d, sql, 1, v);

	memset(s, 0, sizeof *s);
	if (!r)
		return -1;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return 0;
	}
	snprintf(s->tz, sizeof s->tz, "%s", PQgetvalue(r, 0, 0));
	snprintf(s->window, sizeof s->window, "%s", PQgetvalue(r, 0, 1));
	snprintf(s->skip, sizeof s->skip, "%s", PQgetvalue(r, 0, 2));
	s->has_at = !PQgetisnull(r, 0, 3);
	s->at = s->has_at ? (time_t)strtoll(PQgetvalue(r, 0, 3), NULL, 10) : 0;
	snprintf(s->status, sizeof s->status, "%s", PQgetvalue(r, 0, 4));
	PQclear(r);
	if (s->tz[0] && !wa_tz_valid(s->tz)) {
		wa_warn("broadcast_id=%lld: time zone '%s' is not in the system's "
		    "time-zone database: the local zone is used", bid, s->tz);
		s->tz[0] = '\0';
	}
	if (wa_window_parse(&s->win, s->window, s->skip, err, sizeof err) != 0) {
		/* Changed by hand into something unreadable: sending would
		 * break the quiet hours the operator meant; hold it. */
		wa_warn("broadcast_id=%lld: stored window: %s: not sent until it "
		    "is mended", bid, err);
		s->bad = 1;
	}
	return 1;
}

int
bc_sched_open(const struct bc_sched *s, time_t now, time_t *change)
{
	if (s->bad) {
		if (change)
			*change = -1;
		return 0;
	}
	return wa_window_at(&s->win, s->tz, now, change);
}

void
bc_sched_when(const struct bc_sched *s, time_t t, char *buf, size_t len)
{
	if (t < 0)
		snprintf(buf, len, "never (the stored window is unreadable)");
	else
		wa_time_format(t, s->tz, buf, len);
}

void
bc_sched_status(struct bc_db *d, long long id, yajl_val o)
{
	struct bc_sched s;
	char buf[64];
	time_t next, now = bc_wall();
	const char *st;

	if (bc_sched_load(d, id, &s) != 1)
		return;
	if (s.has_at) {
		wa_time_format(s.at, s.tz, buf, sizeof buf);
		wa_set_str(o, "scheduled_at", buf);
	}
	if (s.window[0])
		wa_set_str(o, "window", s.window);
	if (s.skip[0])
		wa_set_str(o, "skip_days", s.skip);
	if (s.tz[0] && (s.has_at || s.win.any))
		wa_set_str(o, "time_zone", s.tz);
	st = s.status;
	if (strcmp(st, "queued") && strcmp(st, "running") && strcmp(st, "scheduled"))
		return;
	if (!strcmp(st, "scheduled") && s.has_at && s.at > now)
		now = s.at; /* the window as it will be then */
	if (!bc_sched_open(&s, now, &next)) {
		bc_sched_when(&s, next, buf, sizeof buf);
		wa_set_str(o, "waiting_for_window", buf);
	}
}

/* A broadcast scheduled for later, or outside its sending window, is left
 * alone: -1 when it may run now, else the exit code (75: run again then;
 * it is neither failed nor paused), said at log level `level`. */
int
bc_sched_wait(struct bc_db *d, const struct bc_bcast *b, int level)
{
	struct bc_sched s;
	char when[64];
	time_t now = bc_wall(), next;
	int st;

	if (strcmp(b->status, "scheduled") && strcmp(b->status, "queued") &&
	    strcmp(b->status, "running"))
		return -1;
	st = bc_sched_load(d, b->id, &s);
	if (st < 0) {
		wa_err("%s", d->err);
		return d->lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
	}
	if (st == 0)
		return -1;
	if (!strcmp(b->status, "scheduled") && s.has_at && s.at > now) {
		bc_sched_when(&s, s.at, when, sizeof when);
		wa_log(level, "[WA_BROADCAST] "
		    "broadcast_id=%lld scheduled for %s: not started", b->id, when);
		return WA_EXIT_TEMP;
	}
	if (bc_sched_open(&s, now, &next))
		return -1;
	bc_sched_when(&s, next, when, sizeof when);
	wa_log(level, "[WA_BROADCAST] "
	    "broadcast_id=%lld waiting_for_window: outside its sending window "
	    "until %s", b->id, when);
	return WA_EXIT_TEMP;
}

int
wa_bcast_reschedule(PGconn *db, long long id, const char *at, const char *tz,
    yajl_val *out)
{
	static const char sql[] =
	    "UPDATE whatsapp_broadcasts SET scheduled_at = to_timestamp($2::bigint),"
	    " status = CASE WHEN $2::bigint > $3::bigint THEN 'scheduled'"
	    "  ELSE 'queued' END, time_zone = coalesce($4, time_zone),"
	    " updated_at = now()"
	    " WHERE id = $1 AND status IN ('scheduled', 'queued', 'pending')"
	    " AND started_at IS NULL AND NOT coalesce(cancel_requested, false)"
	    " RETURNING status";
	struct bc_db d = { .conn = db };
	struct bc_sched s;
	char k[32], when[32], now[32], err[300], buf[64];
	const char *v[4];
	time_t t;
	PGresult *r;
	int st;

	*out = NULL;
	if (tz && !wa_tz_valid(tz))
		return wa_usage_error("--tz: not a zone of the system's time-zone "
		    "database: '%s' (e.g. Asia/Jerusalem)", tz);
	st = bc_sched_load(&d, id, &s);
	if (st <= 0) {
		if (st == 0) {
			wa_err("broadcast %lld: no such broadcast", id);
			return WA_EXIT_DATA;
		}
		return bc_db_fail(&d);
	}
	if (tz)
		snprintf(s.tz, sizeof s.tz, "%s", tz);
	if (wa_time_parse(at, s.tz[0] ? s.tz : NULL, &t, err, sizeof err) != 0)
		return wa_usage_error("--at: %s", err);
	v[0] = bc_ll(k, sizeof k, id);
	v[1] = bc_epoch(when, sizeof when, t);
	v[2] = bc_epoch(now, sizeof now, bc_wall());
	v[3] = tz;
	r = bc_q(&d, sql, 4, v);
	if (!r)
		return bc_db_fail(&d);
	st = PQntuples(r);
	PQclear(r);
	if (st != 1) {
		wa_err("broadcast %lld is %s: only one not started yet is rescheduled "
		    "(pause or cancel it instead)", id, s.status);
		return WA_EXIT_DATA;
	}
	wa_time_format(t, s.tz[0] ? s.tz : NULL, buf, sizeof buf);
	wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld scheduled for %s",
	    id, buf);
	*out = bc_status_record(&d, id);
	if (!*out)
		return bc_db_fail(&d);
	return WA_EXIT_OK;
}
