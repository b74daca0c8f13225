/* wa_csvout.h: rows of CSV as RFC 4180 has them, for lists a spreadsheet
 * opens (wa-broadcast recipients --format csv).
 *
 * A cell holding a comma, a double quote, a CR or an LF is quoted, its
 * quotes doubled; any other cell is written as it is. Rows end in CRLF,
 * as the RFC and Excel want; readers that expect LF take it too. Cells
 * are bytes: UTF-8 text passes through unchanged. */
#ifndef WA_CSVOUT_H
#define WA_CSVOUT_H

#include <stddef.h>
#include <stdio.h>

/* One cell onto fp, preceded by a comma unless it is the first of its
 * row; s NULL is an empty cell. 0, or -1 on a write error. */
int wa_csv_cell(FILE *fp, const char *s, int first);
/* End the row. 0, or -1. */
int wa_csv_end(FILE *fp);
/* A whole row of n cells (NULL: empty). 0, or -1. */
int wa_csv_row(FILE *fp, const char *const *cells, size_t n);

#endif
