/* wa_optout.h: the numbers a business must not message (table
 * wa_optouts, migration 0011). Numbers are E.164 with '+', as create
 * stores a recipient's phone. */
#ifndef WA_OPTOUT_H
#define WA_OPTOUT_H

#include <stddef.h>
#include <libpq-fe.h>

/* Is number opted out of business_id? 1 yes, 0 no, -1 when the query
 * failed (a one-line reason in err). One parameterized query. */
int wa_optout_find(PGconn *db, long long business_id, const char *number,
    char *err, size_t errlen);

#endif
