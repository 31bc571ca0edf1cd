/* tasks/csv.h — reading CSV/TSV files into a table of strings, through libcsv.
 *
 * What it is: a strict RFC 4180 reader (quoted fields, embedded delimiters and newlines, "" for a
 * literal quote, CRLF or LF or CR line ends, an optional UTF-8 BOM, comma or tab delimiter, an
 * optional header row naming the columns) that keeps the line and column where every cell starts,
 * so that later checks (a label never seen in train, a bad number) can name the exact place.
 * libcsv (Debian libcsv-dev, <csv.h>) does the parsing in strict mode; this file feeds it, checks
 * encoding and shape, and turns its outcome into pb_status plus a message of the form
 *
 *     FILE:LINE:COL: what is wrong (expected what)
 *
 * LINE is 1-based, counting LF, CRLF and a lone CR; COL is the 1-based byte column within the
 * line, the BOM not counted. On any error the table is left empty: no partial data on success.
 *
 * What it is not: a type converter or a streaming reader. The whole file is read into memory.
 * Blank lines are skipped (libcsv's behaviour), so a one-column file cannot hold empty values.
 */
#ifndef PB_TASKS_CSV_H
#define PB_TASKS_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "pb_error.h"

#define PB_CSV_MAX_FIELD_DEFAULT ((size_t)1 << 20) /* 1 MiB */
#define PB_CSV_MAX_COLS 1024

typedef struct {
    char delim;       /* ',' or '\t' */
    int header;       /* 1: the first row names the columns; 0: columns are named "1", "2", ... */
    int quoting;      /* 1: RFC 4180 quotes; 0: '"' is an ordinary character (GLUE TSVs) */
    int skip_bad_rows; /* 1: rows with the wrong number of fields are skipped and counted */
    size_t max_field; /* largest field in bytes (0: PB_CSV_MAX_FIELD_DEFAULT) */
} pb_csv_opts;

/* Comma, header, quoting, strict rows, 1 MiB fields. */
pb_csv_opts pb_csv_defaults(void);

typedef struct {
    uint32_t line; /* 1-based physical line where the cell starts */
    uint32_t col;  /* 1-based byte column */
} pb_csv_pos;

typedef struct {
    char *name;        /* file name used in messages (a copy) */
    size_t n_cols;
    char **col_names;  /* (n_cols) header names, or "1".."n" without a header */
    size_t n_rows;     /* data rows (the header is not one) */
    char **cells;      /* (n_rows, n_cols) NUL-terminated UTF-8, row-major */
    uint32_t *lens;    /* (n_rows, n_cols) byte lengths */
    pb_csv_pos *pos;   /* (n_rows, n_cols) where each cell starts */
    pb_csv_pos *header_pos; /* (n_cols) where each header name starts (line 1 w/o header: 0) */
    size_t n_skipped;  /* rows skipped by skip_bad_rows */
    pb_csv_pos first_skipped; /* where the first skipped row starts (0 when none) */
    char *arena;       /* storage behind cells and col_names */
} pb_csv_table;

/* Reads and parses `path`. Errors: PB_ENOTFOUND (missing), PB_EIO (a directory, unreadable),
 * PB_EFORMAT (empty file, quoting, field count, encoding, field too large), PB_ENOMEM. On error
 * *out is zeroed; on success free it with pb_csv_free. */
pb_status pb_csv_read(const char *path, const pb_csv_opts *opts, pb_csv_table *out);
/* Parses an in-memory buffer; `name` is used in messages. Same rules as pb_csv_read. */
pb_status pb_csv_parse(const char *name, const void *buf, size_t len, const pb_csv_opts *opts, pb_csv_table *out);
void pb_csv_free(pb_csv_table *t);

/* Index of the column called `name`, or -1. */
int pb_csv_col(const pb_csv_table *t, const char *name);
/* Like pb_csv_col but a missing column is PB_EFORMAT: "FILE:1:1: missing column 'label' (columns
 * found: text, lbl)"; `why` (may be NULL) is appended, e.g. "for the label". */
pb_status pb_csv_require_col(const pb_csv_table *t, const char *name, const char *why, int *idx);
/* Cell accessors. */
static inline const char *pb_csv_cell(const pb_csv_table *t, size_t row, size_t col) {
    return t->cells[row * t->n_cols + col];
}
static inline pb_csv_pos pb_csv_cell_pos(const pb_csv_table *t, size_t row, size_t col) {
    return t->pos[row * t->n_cols + col];
}

/* Checks that buf[0..len) is UTF-8 without NUL bytes; on failure sets the message
 * "NAME:LINE:COL: invalid UTF-8 byte 0xff at byte offset N (expected UTF-8 text)" and returns
 * PB_EFORMAT. Exposed for tests and for files read outside the CSV reader (labels.txt). */
pb_status pb_csv_check_utf8(const char *name, const unsigned char *buf, size_t len);

/* Reads a whole regular file into a NUL-terminated buffer (*len excludes the NUL). A missing path
 * is PB_ENOTFOUND, a directory or other non-regular file PB_EIO; `what` names what was expected
 * ("a CSV file"). Larger than max_bytes (0: no limit) is PB_EFORMAT. Caller frees. */
pb_status pb_read_file(const char *path, const char *what, size_t max_bytes, char **buf, size_t *len);

#endif
