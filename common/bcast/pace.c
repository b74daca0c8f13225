/* bc_pace.c: --rate R for a business sender across every worker on every
 * host. The pacing state is one row per sender in wa_send_pacing: its
 * next_slot advances atomically by 1/R per send. A worker takes a small
 * block of slots at a time (about 50 ms worth) so the database sees one
 * statement per block, not one per send; slots are spaced 1/R apart over
 * all workers, so the sum of their rates is R. A throttle from the
 * provider lowers the share of R in use for every worker at once
 * (wa_send.h's adaptive pace, migration 0009). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "base/wa_cli.h"
#include "send/wa_send.h"

void
bc_pace_init(struct bc_pace *p, double rate, const char *sender)
{
	memset(p, 0, sizeof *p);
	p->rate = rate;
	snprintf(p->sender, sizeof p->sender, "%s", sender);
}

void
bc_pace_drop(struct bc_pace *p)
{
	p->n = p->pos = 0;
}

/* The share of the rate in use now, from the row p (migration 0009):
 * $3 the quiet period, $4 the creep per second, $5 the floor. */
#define EFF "least(1, greatest($5::double precision, p.factor + CASE WHEN" \
	" p.throttled_at IS NULL THEN 0 ELSE greatest(0, extract(epoch FROM" \
	" now() - p.throttled_at)::double precision - $3::double precision)" \
	" * $4::double precision END))"

static void
pace_params(char (*b)[32], const char **v)
{
	snprintf(b[0], sizeof b[0], "%.3f", WA_PACE_QUIET_S);
	snprintf(b[1], sizeof b[1], "%.6f", WA_PACE_CREEP);
	snprintf(b[2], sizeof b[2], "%.6f", WA_PACE_MIN);
	v[2] = b[0];
	v[3] = b[1];
	v[4] = b[2];
}

static int
take_block(struct bc_db *d, struct bc_pace *p)
{
	/* The block [first, first + k/(R*f)) is ours, f the share of the
	 * rate in use; the delay to its start is measured on the database's
	 * clock, so hosts need not agree on time. */
	static const char sql[] =
	    "INSERT INTO wa_send_pacing AS p (sender, next_slot)"
	    " VALUES ($1, now() + $2::double precision * interval '1 second')"
	    " ON CONFLICT (sender) DO UPDATE SET next_slot ="
	    "  greatest(p.next_slot, now()) + $2::double precision / " EFF
	    "  * interval '1 second'"
	    " RETURNING extract(epoch FROM p.next_slot - now())::double precision"
	    "  - $2::double precision / " EFF ", " EFF;
	char span[32], b[3][32];
	const char *v[5];
	PGresult *r;
	double first, t0, f;
	int k, i;

	k = (int)ceil(p->rate * 0.05);
	if (k < 1)
		k = 1;
	if (k > (int)(sizeof p->slot / sizeof p->slot[0]))
		k = (int)(sizeof p->slot / sizeof p->slot[0]);
	snprintf(span, sizeof span, "%.9f", k / p->rate);
	v[0] = p->sender;
	v[1] = span;
	pace_params(b, v);
	r = bc_qp(d, sql, 5, v);
	if (!r)
		return -1;
	t0 = bc_now();
	first = strtod(PQgetvalue(r, 0, 0), NULL);
	f = strtod(PQgetvalue(r, 0, 1), NULL);
	PQclear(r);
	if (!(f > 0 && f <= 1))
		f = 1;
	for (i = 0; i < k; i++)
		p->slot[i] = t0 + first + i / (p->rate * f);
	p->n = k;
	p->pos = 0;
	return 0;
}

int
bc_pace_next(struct bc_db *d, struct bc_pace *p, double *when)
{
	double now;

	if (p->rate <= 0) {
		/* unlimited: count what goes, for a first throttle */
		now = bc_now();
		if (now - p->win_t >= 1) {
			p->win_rate = now - p->win_t < 2 ? p->win_n / (now - p->win_t) : 0;
			p->win_t = now;
			p->win_n = 0;
		}
		p->win_n++;
		*when = 0;
		return 0;
	}
	if (p->pos >= p->n && take_block(d, p) != 0)
		return -1;
	*when = p->slot[p->pos++];
	return 0;
}

int
bc_pace_throttle(struct bc_db *d, struct bc_pace *p)
{
	/* Halve the share in use, once per hold period however many workers
	 * heard it, and push the next slot one new gap on: the sends of
	 * every worker wait for it. */
	static const char sql[] =
	    "INSERT INTO wa_send_pacing AS p (sender, next_slot, factor, throttled_at)"
	    " VALUES ($1, now() + $2::double precision * 2 * interval '1 second',"
	    "  0.5, now())"
	    " ON CONFLICT (sender) DO UPDATE SET"
	    "  factor = greatest($5::double precision, " EFF " / 2),"
	    "  throttled_at = now(),"
	    "  next_slot = greatest(p.next_slot, now()) + $2::double precision /"
	    "   greatest($5::double precision, " EFF " / 2) * interval '1 second'"
	    " WHERE p.throttled_at IS NULL"
	    "  OR p.throttled_at < now() - $6::double precision * interval '1 second'";
	char gap[32], hold[32], b[3][32];
	const char *v[6];
	PGresult *r;

	if (p->rate <= 0) {
		/* Unlimited so far: from now on at most what was going out
		 * (halved by the row like any rate). */
		p->rate = p->win_rate >= 1 ? p->win_rate : p->win_n >= 1 ? p->win_n : 1;
		wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] sender=%s throttled: paced from "
		    "%.0f/s (no --rate was set)", p->sender, p->rate);
	}
	snprintf(gap, sizeof gap, "%.9f", 1 / p->rate);
	snprintf(hold, sizeof hold, "%.3f", WA_PACE_HOLD_S);
	v[0] = p->sender;
	v[1] = gap;
	pace_params(b, v);
	v[5] = hold;
	r = bc_qp(d, sql, 6, v);
	if (!r)
		return -1;
	PQclear(r);
	bc_pace_drop(p);
	return 0;
}
