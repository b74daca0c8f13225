/* copy.c: COPY ... FROM STDIN in text format: rows written into a buffer,
 * escaped here and nowhere else, then sent in one go. */
#include <string.h>

#include "db/wa_db.h"

/* In text format a backslash starts an escape, a tab ends the field and a
 * newline (or CR) the row; everything else is taken as it is. */
static void
field(struct wa_buf *b, const char *v)
{
	char e[2] = { '\\', 0 };
	size_t n;

	for (;;) {
		n = strcspn(v, "\\\t\n\r");
		wa_buf_add(b, v, n);
		v += n;
		if (!*v)
			return;
		e[1] = *v == '\\' ? '\\' : *v == '\t' ? 't' : *v == '\n' ? 'n' : 'r';
		wa_buf_add(b, e, 2);
		v++;
	}
}

void
wa_db_copy_row(struct wa_buf *b, int n, const char *const *v)
{
	int i;

	for (i = 0; i < n; i++) {
		if (i)
			wa_buf_add(b, "\t", 1);
		if (v[i])
			field(b, v[i]);
		else
			wa_buf_add(b, "\\N", 2);
	}
	wa_buf_add(b, "\n", 1);
}

PGresult *
wa_db_copy_in(PGconn *db, const char *sql, const char *data, size_t len)
{
	PGresult *r, *last = NULL;
	size_t n;
	int sent;

	r = PQexecParams(db, sql, 0, NULL, NULL, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_COPY_IN)
		return r;
	PQclear(r);
	/* In pieces: PQputCopyData takes an int. */
	for (sent = 1; sent && len > 0; data += n, len -= n) {
		n = len < (1u << 20) ? len : (1u << 20);
		sent = PQputCopyData(db, data, (int)n) == 1;
	}
	/* A failed send ends the COPY with an error: the server rolls the
	 * statement back, and the result says why. */
	if (PQputCopyEnd(db, sent ? NULL : "sending the rows failed") != 1)
		return NULL;
	while ((r = PQgetResult(db)) != NULL) {
		PQclear(last);
		last = r;
	}
	return last;
}
