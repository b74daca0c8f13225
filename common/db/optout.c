/* optout.c: looking a number up in wa_optouts. */
#include <stdio.h>

#include "db/wa_db.h"
#include "db/wa_optout.h"

int
wa_optout_find(PGconn *db, long long business_id, const char *number,
    char *err, size_t errlen)
{
	static const char sql[] = "SELECT 1 FROM wa_optouts"
	    " WHERE business_id = $1 AND number = $2";
	char id[32], buf[256];
	const char *v[2] = { id, number };
	PGresult *r;
	int found;

	snprintf(id, sizeof id, "%lld", business_id);
	r = PQexecParams(db, sql, 2, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "looking up opt-outs of business %lld: %s",
		    business_id, wa_db_errmsg(db, buf, sizeof buf));
		PQclear(r);
		return -1;
	}
	found = PQntuples(r) > 0;
	PQclear(r);
	return found;
}
