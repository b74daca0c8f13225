/* wa_csv.h: CSV files (an Excel export, say) read as records.
 *
 * The first row names the columns; each row after it becomes a record
 * (WA_REC_OBJECT) whose fields are those columns, every value a string,
 * so a row reaches normalization, storage and {{field}} rendering as a
 * JSON line would. Parsing is libcsv's (RFC 4180 quoting, CRLF); what is
 * done here: the delimiter (, ; or tab) told from the header row, a UTF-8
 * byte order mark skipped, a UTF-16 file (Excel's "Unicode text") refused,
 * the number's column found, rows with the wrong number of cells made
 * WA_REC_BAD ("bad_row") with their line, and the line numbers counted.
 *
 * Bytes are pushed in as they are read (rec.c's reader does the reading),
 * one row is held at a time: memory does not grow with the file. */
#ifndef WA_CSV_H
#define WA_CSV_H

#include <stddef.h>

#include "record/wa_rec.h"

struct wa_csv;

/* A parser for one file. name: for messages (not copied: it must outlive
 * the parser and its records); field: the column holding the number
 * (--field), NULL to find it by its name; maxrow: the most bytes one row
 * may take (more: a "line_too_long" record). NULL when out of memory. */
struct wa_csv *wa_csv_new(const char *name, const char *field, size_t maxrow);

/* Parse from the n bytes at p until a record is ready or they are used
 * up; *used: how many were taken (the rest is to be given again).
 * 1: *rec filled (free with wa_rec_free); 0: all n taken, give more (n 0:
 * the input has ended, and 0 then means no record is left); -1: the file
 * is refused as a whole (wa_csv_error says why: UTF-16, no header, no
 * number column, a cell without end) and nothing more comes of it. */
int wa_csv_parse(struct wa_csv *c, const char *p, size_t n, size_t *used,
    struct wa_rec *rec);

const char *wa_csv_error(const struct wa_csv *c);

/* The column the number is taken from (the header's spelling, the
 * record's key): NULL before the header has been read. Valid while c is. */
const char *wa_csv_field(const struct wa_csv *c);

void wa_csv_free(struct wa_csv *c);

#endif
