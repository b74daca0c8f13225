/* bc_pace.c: --rate R for a business sender across every worker on every
 * host. The pacing state is one row per sender in wa_send_pacing: its
 * next_slot advances atomically by 1/R per send. A worker takes a small
 * block of slots at a time (about 50 ms worth) so the database sees one
 * statement per block, not one per send; slots are spaced 1/R apart over
 * all workers, so the sum of their rates is R. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"

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

static int
take_block(struct bc_db *d, struct bc_pace *p)
{
	/* The block [first, first + k/R) is ours; the delay to its start is
	 * measured on the database's clock, so hosts need not agree on time. */
	static const char sql[] =
	    "INSERT INTO wa_send_pacing AS p (sender, next_slot)"
	    " VALUES ($1, now() + $2::double precision * interval '1 second')"
	    " ON CONFLICT (sender) DO UPDATE SET next_slot ="
	    "  greatest(p.next_slot, now()) + $2::double precision * interval '1 second'"
	    " RETURNING extract(epoch FROM p.next_slot - now())::double precision"
	    "  - $2::double precision";
	char span[32];
	const char *v[2];
	PGresult *r;
	double first, t0;
	int k, i;

	k = (int)ceil(p->rate * 0.05);
	if (k < 1)
		k = 1;
	if (k > (int)(sizeof p->slot / sizeof p->slot[0]))
		k = (int)(sizeof p->slot / sizeof p->slot[0]);
	snprintf(span, sizeof span, "%.9f", k / p->rate);
	v[0] = p->sender;
	v[1] = span;
	r = bc_qp(d, sql, 2, v);
	if (!r)
		return -1;
	t0 = bc_now();
	first = strtod(PQgetvalue(r, 0, 0), NULL);
	PQclear(r);
	for (i = 0; i < k; i++)
		p->slot[i] = t0 + first + i / p->rate;
	p->n = k;
	p->pos = 0;
	return 0;
}

int
bc_pace_next(struct bc_db *d, struct bc_pace *p, double *when)
{
	if (p->rate <= 0) {
		*when = 0;
		return 0;
	}
	if (p->pos >= p->n && take_block(d, p) != 0)
		return -1;
	*when = p->slot[p->pos++];
	return 0;
}
