/* fuzz_csv.c — the CSV/TSV reader (tasks/csv.h), on bytes in memory.
 *
 * The first input byte picks the options (delimiter, header, quoting, skip_bad_rows, a small
 * max_field so the size limit is exercised); the rest is the file. Any table returned must be
 * consistent: every cell NUL-terminated with the recorded length, positions inside the input.
 * Any status other than PB_OK must come with a message. A crash, a leak or a sanitizer report
 * is a finding.
 *
 *   scripts/fuzz.sh csv        (tests/fuzz/README.md)
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tasks/csv.h"

int pb_fuzz_csv(const uint8_t *data, size_t size);

int pb_fuzz_csv(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    pb_csv_opts o = pb_csv_defaults();
    uint8_t f = data[0];
    o.delim = (f & 1) ? '\t' : ',';
    o.header = (f >> 1) & 1;
    o.quoting = !((f >> 2) & 1);
    o.skip_bad_rows = (f >> 3) & 1;
    o.max_field = (f >> 4) & 1 ? 64 : 0;
    pb_csv_table t;
    pb_error_clear();
    pb_status st = pb_csv_parse("fuzz.csv", data + 1, size - 1, &o, &t);
    if (st != PB_OK) {
        pbf_check_status(st);                                                 /* every failure explains itself */
        if (t.cells || t.n_rows || t.n_cols) pbf_fail("a failed parse returned a table"); /* and returns nothing */
        return 0;
    }
    if (t.n_cols < 1) abort();
    for (size_t c = 0; c < t.n_cols; c++)
        if (!t.col_names[c]) abort();
    for (size_t r = 0; r < t.n_rows; r++)
        for (size_t c = 0; c < t.n_cols; c++) {
            const char *s = pb_csv_cell(&t, r, c);
            size_t len = t.lens[r * t.n_cols + c];
            if (strlen(s) != len) abort(); /* no NUL inside a cell: the encoding check forbids them */
            if (o.max_field && len > o.max_field) abort();
            pb_csv_pos p = pb_csv_cell_pos(&t, r, c);
            if (p.line < 1 || p.col < 1 || p.line > size + 1 || p.col > size + 1) abort();
        }
    pb_csv_free(&t);
    return 0;
}
