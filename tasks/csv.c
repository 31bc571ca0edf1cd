/* tasks/csv.c — the CSV/TSV reader (see csv.h).
 *
 * libcsv parses; this file keeps positions. libcsv reports fields and rows through callbacks but
 * not where they are, so the input is fed in pieces chosen such that every callback is caused by
 * the one byte just fed: a run of ordinary bytes (which can never complete a field) and then, on
 * its own, each delimiter, CR or LF. A callback therefore happens at a known offset, and the
 * field that it completes started right after the previous delimiter or line end that completed
 * something. libcsv returns early in strict mode at the offending byte, which gives the position
 * of quoting errors. Encoding (UTF-8, no NUL) is checked over the whole buffer before parsing.
 */
#include "tasks/csv.h"

#include <csv.h> /* libcsv: the system header, not this directory's csv.h */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILE_BYTES ((size_t)2 << 30) /* positions are 32-bit */

pb_csv_opts pb_csv_defaults(void) {
    return (pb_csv_opts){.delim = ',', .header = 1, .quoting = 1, .skip_bad_rows = 0, .max_field = 0};
}

/* ---- files ----------------------------------------------------------------------------------- */

pb_status pb_read_file(const char *path, const char *what, size_t max_bytes, char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return pb_errorf(PB_ENOTFOUND, "%s: no such file (expected %s)", path, what);
        return pb_errorf(PB_EIO, "%s: %s (expected %s)", path, strerror(errno), what);
    }
    if (S_ISDIR(sb.st_mode)) return pb_errorf(PB_EIO, "%s: is a directory (expected %s)", path, what);
    if (!S_ISREG(sb.st_mode)) return pb_errorf(PB_EIO, "%s: not a regular file (expected %s)", path, what);
    FILE *f = fopen(path, "rb");
    if (!f) return pb_errorf(PB_EIO, "%s: %s (expected %s)", path, strerror(errno), what);
    size_t cap = (size_t)sb.st_size + 1, n = 0;
    char *b = malloc(cap + 1);
    if (!b) {
        fclose(f);
        return pb_errorf(PB_ENOMEM, "%s: out of memory reading %zu bytes", path, cap);
    }
    for (;;) {
        if (n == cap) { /* the file grew while we read it */
            char *nb = cap < (SIZE_MAX - 1) / 2 ? realloc(b, 2 * cap + 1) : NULL;
            if (!nb) {
                free(b), fclose(f);
                return pb_errorf(PB_ENOMEM, "%s: out of memory reading the file", path);
            }
            b = nb, cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (max_bytes && n > max_bytes) {
            free(b), fclose(f);
            return pb_errorf(PB_EFORMAT, "%s: larger than %zu bytes (expected %s)", path, max_bytes, what);
        }
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b);
        return pb_errorf(PB_EIO, "%s: read error (expected %s)", path, what);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return PB_OK;
}

/* ---- encoding -------------------------------------------------------------------------------- */

/* Line and column (1-based, bytes) of offset `off`; `start` is where line 1 starts (after a BOM). */
static pb_csv_pos pos_of_offset(const unsigned char *buf, size_t start, size_t off) {
    uint32_t line = 1;
    size_t ls = start;
    for (size_t i = start; i < off; i++) {
        if (buf[i] == '\n' || (buf[i] == '\r' && buf[i + 1] != '\n')) line++, ls = i + 1;
    }
    return (pb_csv_pos){line, (uint32_t)(off - ls + 1)};
}

/* Length of the valid UTF-8 sequence at b[0..n), or 0 when invalid (overlong, surrogate, > U+10FFFF,
 * truncated, stray continuation byte). */
static size_t utf8_seq(const unsigned char *b, size_t n) {
    unsigned c = b[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c == 0xED) len = 3, hi = 0x9F; /* no surrogates */
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    else return 0;
    if (n < len) return 0;
    if (b[1] < lo || b[1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
        if ((b[k] & 0xC0) != 0x80) return 0;
    return len;
}

static size_t bom_len(const unsigned char *b, size_t n) {
    return (n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF) ? 3 : 0;
}

pb_status pb_csv_check_utf8(const char *name, const unsigned char *buf, size_t len) {
    size_t start = bom_len(buf, len);
    for (size_t i = start; i < len;) {
        if (buf[i] == 0) {
            pb_csv_pos p = pos_of_offset(buf, start, i);
            return pb_errorf(PB_EFORMAT, "%s:%u:%u: NUL byte at byte offset %zu (expected UTF-8 text)", name,
                             p.line, p.col, i);
        }
        size_t k = utf8_seq(buf + i, len - i);
        if (!k) {
            pb_csv_pos p = pos_of_offset(buf, start, i);
            return pb_errorf(PB_EFORMAT, "%s:%u:%u: invalid UTF-8 byte 0x%02x at byte offset %zu (expected UTF-8 text)",
                             name, p.line, p.col, buf[i], i);
        }
        i += k;
    }
    return PB_OK;
}

/* ---- the parser state ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const unsigned char *buf;
    size_t len, start; /* start: first byte after the BOM */
    pb_csv_opts o;
    pb_status st; /* first error; callbacks do nothing once set */

    /* positions */
    uint32_t line;     /* line of the byte being fed */
    size_t line_start; /* offset of that line's first byte */
    size_t cur;        /* offset of the byte being fed (callbacks happen here) */
    size_t fstart;     /* offset where the current field starts */
    pb_csv_pos fpos;   /* its position */
    int submitted;     /* a callback happened while feeding the current byte */
    int at_row_start;  /* no byte of a new row fed yet (blank lines are skipped) */

    /* the row being read: fields appended to the arena */
    size_t nf;
    int row_bad;
    size_t row_arena; /* arena size when the row started (for rollback) */
    size_t rf_off[PB_CSV_MAX_COLS];
    uint32_t rf_len[PB_CSV_MAX_COLS];
    pb_csv_pos rf_pos[PB_CSV_MAX_COLS];

    /* the table */
    int have_cols;
    size_t n_cols;
    size_t *hdr_off; /* (n_cols) arena offsets of the column names */
    pb_csv_pos *hdr_pos;
    char *arena;
    size_t arena_n, arena_cap;
    size_t *cell_off; /* (n_rows * n_cols) */
    uint32_t *cell_len;
    pb_csv_pos *cell_pos;
    size_t n_rows, rows_cap;
    size_t n_skipped;
    pb_csv_pos first_skipped;
} parser;

static pb_csv_pos here(const parser *p) {
    return (pb_csv_pos){p->line, (uint32_t)(p->cur - p->line_start + 1)};
}

static int arena_put(parser *p, const void *s, size_t n) {
    if (p->arena_n + n + 1 > p->arena_cap) {
        size_t cap = p->arena_cap ? p->arena_cap : 4096;
        while (cap < p->arena_n + n + 1) cap *= 2;
        char *a = realloc(p->arena, cap);
        if (!a) return 0;
        p->arena = a, p->arena_cap = cap;
    }
    if (n) memcpy(p->arena + p->arena_n, s, n);
    p->arena[p->arena_n + n] = '\0';
    p->arena_n += n + 1;
    return 1;
}

/* "text, label" — the column names, for messages. */
static void col_list(const parser *p, char *out, size_t cap) {
    size_t used = 0;
    out[0] = '\0';
    for (size_t c = 0; c < p->n_cols && used + 1 < cap; c++) {
        int k = snprintf(out + used, cap - used, "%s%s", c ? ", " : "", p->arena + p->hdr_off[c]);
        if (k < 0) break;
        used += (size_t)k;
    }
    if (used >= cap && cap > 4) strcpy(out + cap - 4, "...");
}

static void on_field(void *s, size_t len, void *data) {
    parser *p = data;
    p->submitted = 1;
    if (p->st != PB_OK) return;
    if (p->nf == 0) p->row_arena = p->arena_n;
    if (len > p->o.max_field) {
        p->st = pb_errorf(PB_EFORMAT,
                          "%s:%u:%u: field of %zu bytes is larger than the maximum of %zu bytes (expected a shorter "
                          "field; raise max_field=BYTES for larger ones)",
                          p->name, p->fpos.line, p->fpos.col, len, p->o.max_field);
        return;
    }
    size_t limit = p->have_cols ? p->n_cols : PB_CSV_MAX_COLS;
    if (p->nf >= limit) {
        if (!p->have_cols) {
            p->st = pb_errorf(PB_EFORMAT, "%s:%u:%u: more than %d columns (expected at most %d)", p->name,
                              p->fpos.line, p->fpos.col, PB_CSV_MAX_COLS, PB_CSV_MAX_COLS);
            return;
        }
        if (p->o.skip_bad_rows) {
            p->row_bad = 1;
            return;
        }
        char cols[256];
        col_list(p, cols, sizeof cols);
        p->st = pb_errorf(PB_EFORMAT, "%s:%u:%u: row has more than %zu fields (expected %zu: %s)", p->name,
                          p->fpos.line, p->fpos.col, p->n_cols, p->n_cols, cols);
        return;
    }
    if (p->row_bad) return;
    p->rf_off[p->nf] = p->arena_n;
    p->rf_len[p->nf] = (uint32_t)len;
    p->rf_pos[p->nf] = p->fpos;
    if (!arena_put(p, s, len)) {
        p->st = pb_errorf(PB_ENOMEM, "%s: out of memory", p->name);
        return;
    }
    p->nf++;
}

static int set_columns(parser *p, int named) {
    p->n_cols = p->nf;
    p->hdr_off = malloc((p->n_cols ? p->n_cols : 1) * sizeof *p->hdr_off);
    p->hdr_pos = malloc((p->n_cols ? p->n_cols : 1) * sizeof *p->hdr_pos);
    if (!p->hdr_off || !p->hdr_pos) return 0;
    for (size_t c = 0; c < p->n_cols; c++) {
        if (named) {
            p->hdr_off[c] = p->rf_off[c];
            p->hdr_pos[c] = p->rf_pos[c];
        } else {
            char num[24];
            snprintf(num, sizeof num, "%zu", c + 1);
            p->hdr_off[c] = p->arena_n;
            p->hdr_pos[c] = (pb_csv_pos){0, 0};
            if (!arena_put(p, num, strlen(num))) return 0;
        }
    }
    p->have_cols = 1;
    return 1;
}

static int add_row(parser *p) {
    if (p->n_rows == p->rows_cap) {
        size_t cap = p->rows_cap ? 2 * p->rows_cap : 256, cells = cap * p->n_cols;
        size_t *o = realloc(p->cell_off, (cells ? cells : 1) * sizeof *o);
        if (o) p->cell_off = o;
        uint32_t *l = realloc(p->cell_len, (cells ? cells : 1) * sizeof *l);
        if (l) p->cell_len = l;
        pb_csv_pos *q = realloc(p->cell_pos, (cells ? cells : 1) * sizeof *q);
        if (q) p->cell_pos = q;
        if (!o || !l || !q) return 0;
        p->rows_cap = cap;
    }
    size_t base = p->n_rows * p->n_cols;
    for (size_t c = 0; c < p->n_cols; c++) {
        p->cell_off[base + c] = p->rf_off[c];
        p->cell_len[base + c] = p->rf_len[c];
        p->cell_pos[base + c] = p->rf_pos[c];
    }
    p->n_rows++;
    return 1;
}

static void on_row(int c, void *data) {
    (void)c;
    parser *p = data;
    p->submitted = 1;
    p->at_row_start = 1;
    if (p->st != PB_OK) return;
    if (!p->have_cols) {
        if (!set_columns(p, p->o.header)) {
            p->st = pb_errorf(PB_ENOMEM, "%s: out of memory", p->name);
            return;
        }
        if (p->o.header) { /* names must be distinct to be looked up */
            for (size_t i = 0; i < p->n_cols; i++)
                for (size_t j = 0; j < i; j++)
                    if (strcmp(p->arena + p->hdr_off[i], p->arena + p->hdr_off[j]) == 0) {
                        p->st = pb_errorf(PB_EFORMAT,
                                          "%s:%u:%u: duplicate column name '%s' (also column %zu; expected distinct "
                                          "names in the header)",
                                          p->name, p->hdr_pos[i].line, p->hdr_pos[i].col, p->arena + p->hdr_off[i],
                                          j + 1);
                        return;
                    }
            p->nf = 0;
            return;
        }
    }
    if (p->row_bad || p->nf != p->n_cols) {
        if (p->o.skip_bad_rows) {
            if (!p->n_skipped) p->first_skipped = p->rf_pos[0];
            p->n_skipped++;
            p->arena_n = p->row_arena; /* drop the row's bytes */
            p->nf = 0;
            p->row_bad = 0;
            return;
        }
        char cols[256];
        col_list(p, cols, sizeof cols);
        pb_csv_pos at = here(p);
        p->st = pb_errorf(PB_EFORMAT, "%s:%u:%u: row has %zu field%s, expected %zu (%s)", p->name, at.line, at.col,
                          p->nf, p->nf == 1 ? "" : "s", p->n_cols, cols);
        return;
    }
    if (!add_row(p)) p->st = pb_errorf(PB_ENOMEM, "%s: out of memory after %zu rows", p->name, p->n_rows);
    p->nf = 0;
}

static int never_space(unsigned char c) {
    (void)c;
    return 0; /* RFC 4180: spaces are part of a field; libcsv would trim them by default */
}

/* Describes a strict-mode error at offset `off` (libcsv stopped there). */
static pb_status quote_error(parser *p, size_t off) {
    p->cur = off;
    pb_csv_pos at = here(p);
    unsigned char c = p->buf[off];
    int quoted = p->fstart < p->len && p->buf[p->fstart] == '"';
    if (!quoted)
        return pb_errorf(PB_EFORMAT,
                         "%s:%u:%u: '\"' inside an unquoted field (expected the whole field in quotes, with each '\"' "
                         "inside written as '\"\"')",
                         p->name, at.line, at.col);
    char shown[8];
    if (c >= 0x20 && c < 0x7f) snprintf(shown, sizeof shown, "'%c'", c);
    else snprintf(shown, sizeof shown, "0x%02x", c);
    return pb_errorf(PB_EFORMAT,
                     "%s:%u:%u: %s after the closing quote of the field that starts at column %u (expected '%s' or "
                     "the end of the line; write a literal '\"' as '\"\"')",
                     p->name, at.line, at.col, shown, p->fpos.col, p->o.delim == '\t' ? "\\t" : ",");
}

static pb_status libcsv_error(parser *p, struct csv_parser *cp, size_t off) {
    int e = csv_error(cp);
    if (e == CSV_EPARSE) return quote_error(p, off);
    if (e == CSV_ENOMEM) return pb_errorf(PB_ENOMEM, "%s: out of memory in libcsv", p->name);
    p->cur = off;
    pb_csv_pos at = here(p);
    return pb_errorf(PB_EFORMAT, "%s:%u:%u: %s", p->name, at.line, at.col, csv_strerror(e));
}

static void parser_free(parser *p) {
    free(p->hdr_off), free(p->hdr_pos), free(p->arena);
    free(p->cell_off), free(p->cell_len), free(p->cell_pos);
}

/* Moves the parsed table into *out (pointers into one arena). */
static pb_status finish_table(parser *p, pb_csv_table *out) {
    size_t cells = p->n_rows * p->n_cols;
    out->name = strdup(p->name);
    out->col_names = malloc((p->n_cols ? p->n_cols : 1) * sizeof *out->col_names);
    out->cells = malloc((cells ? cells : 1) * sizeof *out->cells);
    if (!out->name || !out->col_names || !out->cells) {
        pb_csv_free(out);
        return pb_errorf(PB_ENOMEM, "%s: out of memory", p->name);
    }
    out->n_cols = p->n_cols;
    out->n_rows = p->n_rows;
    out->arena = p->arena, p->arena = NULL;
    for (size_t c = 0; c < p->n_cols; c++) out->col_names[c] = out->arena + p->hdr_off[c];
    for (size_t i = 0; i < cells; i++) out->cells[i] = out->arena + p->cell_off[i];
    out->lens = p->cell_len, p->cell_len = NULL;
    out->pos = p->cell_pos, p->cell_pos = NULL;
    out->header_pos = p->hdr_pos, p->hdr_pos = NULL;
    out->n_skipped = p->n_skipped;
    out->first_skipped = p->first_skipped;
    if (!out->lens) out->lens = malloc(sizeof *out->lens); /* no rows: keep the pointers valid */
    if (!out->pos) out->pos = malloc(sizeof *out->pos);
    if (!out->header_pos) out->header_pos = malloc(sizeof *out->header_pos);
    if (!out->lens || !out->pos || !out->header_pos) {
        pb_csv_free(out);
        return pb_errorf(PB_ENOMEM, "%s: out of memory", p->name);
    }
    return PB_OK;
}

static int is_special(const parser *p, unsigned char c) { return c == '\n' || c == '\r' || c == (unsigned char)p->o.delim; }

pb_status pb_csv_parse(const char *name, const void *buf, size_t len, const pb_csv_opts *opts, pb_csv_table *out) {
    memset(out, 0, sizeof *out);
    pb_csv_opts o = opts ? *opts : pb_csv_defaults();
    if (o.delim != ',' && o.delim != '\t' && o.delim != ';' && o.delim != '|')
        return pb_errorf(PB_EINVAL, "%s: unsupported delimiter 0x%02x (expected ',' or tab)", name,
                         (unsigned char)o.delim);
    if (o.max_field == 0) o.max_field = PB_CSV_MAX_FIELD_DEFAULT;
    if (o.max_field > UINT32_MAX - 1) o.max_field = UINT32_MAX - 1;
    if (len > MAX_FILE_BYTES)
        return pb_errorf(PB_EFORMAT, "%s: %zu bytes is larger than the maximum of %zu (expected a smaller file)",
                         name, len, MAX_FILE_BYTES);
    const unsigned char *b = buf;
    pb_status st = pb_csv_check_utf8(name, b, len);
    if (st != PB_OK) return st;

    parser *p = calloc(1, sizeof *p);
    if (!p) return pb_errorf(PB_ENOMEM, "%s: out of memory", name);
    p->name = name, p->buf = b, p->len = len, p->o = o;
    p->start = bom_len(b, len);
    p->line = 1, p->line_start = p->start, p->cur = p->start;
    p->fstart = p->start, p->fpos = (pb_csv_pos){1, 1};
    p->at_row_start = 1;
    p->st = PB_OK;

    struct csv_parser cp;
    if (csv_init(&cp, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        free(p);
        return pb_errorf(PB_ENOMEM, "%s: cannot initialise libcsv", name);
    }
    csv_set_delim(&cp, (unsigned char)o.delim);
    /* Without quoting, the quote character is NUL, which the encoding check has ruled out. */
    csv_set_quote(&cp, o.quoting ? CSV_QUOTE : 0);
    csv_set_space_func(&cp, never_space);
    csv_set_blk_size(&cp, (size_t)1 << 16); /* grow long fields in 64 KiB steps, not 128 bytes */

    size_t off = p->start;
    while (off < len && p->st == PB_OK) {
        if (!is_special(p, b[off])) {
            size_t end = off;
            while (end < len && !is_special(p, b[end])) end++;
            /* Fields cannot shrink below half their raw bytes ("" -> "), so stop runaway fields early. */
            if (end - p->fstart > 2 * o.max_field + 2) {
                p->st = pb_errorf(PB_EFORMAT,
                                  "%s:%u:%u: field larger than the maximum of %zu bytes (expected a shorter field; "
                                  "raise max_field=BYTES for larger ones)",
                                  name, p->fpos.line, p->fpos.col, o.max_field);
                break;
            }
            p->at_row_start = 0;
            p->cur = off;
            size_t got = csv_parse(&cp, b + off, end - off, on_field, on_row, p);
            if (got < end - off) {
                if (p->st == PB_OK) p->st = libcsv_error(p, &cp, off + got);
                break;
            }
            off = end;
            continue;
        }
        /* one special byte: a delimiter or a line end */
        unsigned char c = b[off];
        int term = c == '\n' || c == '\r';
        p->cur = off;
        p->submitted = 0;
        int was_row_start = p->at_row_start;
        if (!term) p->at_row_start = 0;
        size_t got = csv_parse(&cp, b + off, 1, on_field, on_row, p);
        if (got < 1) {
            if (p->st == PB_OK) p->st = libcsv_error(p, &cp, off);
            break;
        }
        if (c == '\n' || (c == '\r' && (off + 1 >= len || b[off + 1] != '\n'))) p->line++, p->line_start = off + 1;
        if (p->submitted || (term && was_row_start)) {
            p->fstart = off + 1;
            p->fpos = (pb_csv_pos){p->line, (uint32_t)(off + 1 - p->line_start + 1)};
        }
        off++;
    }
    if (p->st == PB_OK) {
        p->cur = len;
        if (csv_fini(&cp, on_field, on_row, p) != 0 && p->st == PB_OK) {
            if (csv_error(&cp) == CSV_EPARSE)
                p->st = pb_errorf(PB_EFORMAT,
                                  "%s:%u:%u: unterminated quoted field (expected a closing '\"' before the end of the "
                                  "file)",
                                  name, p->fpos.line, p->fpos.col);
            else p->st = libcsv_error(p, &cp, len);
        }
    }
    csv_free(&cp);
    if (p->st == PB_OK && !p->have_cols)
        p->st = pb_errorf(PB_EFORMAT, "%s:1:1: empty file (expected %s)", name,
                          o.header ? "a header row naming the columns" : "at least one row");
    st = p->st;
    if (st == PB_OK) st = finish_table(p, out);
    parser_free(p);
    free(p);
    if (st != PB_OK) memset(out, 0, sizeof *out);
    return st;
}

pb_status pb_csv_read(const char *path, const pb_csv_opts *opts, pb_csv_table *out) {
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    pb_status st = pb_read_file(path, opts && opts->delim == '\t' ? "a TSV file" : "a CSV file", MAX_FILE_BYTES,
                                &buf, &len);
    if (st != PB_OK) return st;
    st = pb_csv_parse(path, buf, len, opts, out);
    free(buf);
    return st;
}

void pb_csv_free(pb_csv_table *t) {
    if (!t) return;
    free(t->name), free(t->col_names), free(t->cells), free(t->lens), free(t->pos), free(t->header_pos);
    free(t->arena);
    memset(t, 0, sizeof *t);
}

int pb_csv_col(const pb_csv_table *t, const char *name) {
    for (size_t c = 0; c < t->n_cols; c++)
        if (strcmp(t->col_names[c], name) == 0) return (int)c;
    return -1;
}

pb_status pb_csv_require_col(const pb_csv_table *t, const char *name, const char *why, int *idx) {
    int c = pb_csv_col(t, name);
    if (c >= 0) {
        *idx = c;
        return PB_OK;
    }
    char cols[512];
    size_t used = 0;
    cols[0] = '\0';
    for (size_t i = 0; i < t->n_cols && used + 1 < sizeof cols; i++) {
        int k = snprintf(cols + used, sizeof cols - used, "%s%s", i ? ", " : "", t->col_names[i]);
        if (k < 0) break;
        used += (size_t)k;
    }
    return pb_errorf(PB_EFORMAT, "%s:1:1: missing column '%s'%s%s (columns found: %s)", t->name, name,
                     why ? " " : "", why ? why : "", cols);
}
