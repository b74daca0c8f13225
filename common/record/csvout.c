/* csvout.c: the CSV writer (wa_csvout.h). Written through stdio, a cell at
 * a time, so a row never has to be held whole. */
#include <stdio.h>
#include <string.h>

#include "record/wa_csvout.h"

int
wa_csv_cell(FILE *fp, const char *s, int first)
{
	const char *p, *q;

	if (!first && putc(',', fp) == EOF)
		return -1;
	if (!s || !*s)
		return 0;
	if (!s[strcspn(s, ",\"\r\n")])
		return fputs(s, fp) == EOF ? -1 : 0;
	if (putc('"', fp) == EOF)
		return -1;
	/* Each quote doubled: up to and including it, then it again. */
	for (p = s; (q = strchr(p, '"')) != NULL; p = q + 1)
		if (fwrite(p, 1, (size_t)(q - p) + 1, fp) != (size_t)(q - p) + 1 ||
		    putc('"', fp) == EOF)
			return -1;
	if (fputs(p, fp) == EOF || putc('"', fp) == EOF)
		return -1;
	return 0;
}

int
wa_csv_end(FILE *fp)
{
	return fputs("\r\n", fp) == EOF ? -1 : 0;
}

int
wa_csv_row(FILE *fp, const char *const *cells, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (wa_csv_cell(fp, cells[i], i == 0) != 0)
			return -1;
	return wa_csv_end(fp);
}
