/* test_csv.c — the CSV/TSV reader (tasks/csv.h): RFC 4180 quoting, CRLF, BOM, TSV, positions,
 * and every bad input with assertions on the status and on the message's FILE:LINE:COL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tasks/csv.h"
#include "testutil.h"

static pb_csv_table parse_ok(const char *text, size_t len, const pb_csv_opts *o) {
    pb_csv_table t;
    pb_status st = pb_csv_parse("x.csv", text, len, o, &t);
    if (st != PB_OK) fail_msg("parse failed: %s", pb_errmsg());
    return t;
}
#define PARSE_OK(s, o) parse_ok((s), sizeof(s) - 1, (o))

/* Fails unless parsing gives `want` and a message containing every NULL-terminated needle. */
static void parse_bad(const char *text, size_t len, const pb_csv_opts *o, pb_status want, ...) {
    pb_csv_table t;
    pb_status st = pb_csv_parse("x.csv", text, len, o, &t);
    if (st != want) fail_msg("status %s, expected %s (message: %s)", pb_status_name(st), pb_status_name(want), pb_errmsg());
    assert_null(t.cells); /* nothing partial */
    assert_int_equal(t.n_rows, 0);
    va_list ap;
    va_start(ap, want);
    for (const char *needle; (needle = va_arg(ap, const char *));)
        if (!strstr(pb_errmsg(), needle)) fail_msg("message '%s' lacks '%s'", pb_errmsg(), needle);
    va_end(ap);
}
#define PARSE_BAD(s, o, st, ...) parse_bad((s), sizeof(s) - 1, (o), (st), __VA_ARGS__, (const char *)NULL)

static void assert_pos(pb_csv_pos p, unsigned line, unsigned col) {
    if (p.line != line || p.col != col) fail_msg("position %u:%u, expected %u:%u", p.line, p.col, line, col);
}

static void test_quoting_crlf_bom(void **state) {
    (void)state;
    /* BOM, CRLF, a quoted comma, a quoted CRLF and doubled quotes */
    pb_csv_table t = PARSE_OK("\xEF\xBB\xBFtext,label\r\n"
                              "\"hello, world\",pos\r\n"
                              "\"multi\r\nline \"\"quoted\"\"\",neg\r\n"
                              "plain,pos\r\n",
                              NULL);
    assert_int_equal(t.n_cols, 2);
    assert_string_equal(t.col_names[0], "text"); /* BOM not part of the name */
    assert_string_equal(t.col_names[1], "label");
    assert_int_equal(t.n_rows, 3);
    assert_string_equal(pb_csv_cell(&t, 0, 0), "hello, world");
    assert_string_equal(pb_csv_cell(&t, 1, 0), "multi\r\nline \"quoted\"");
    assert_int_equal(t.lens[1 * 2 + 0], strlen("multi\r\nline \"quoted\""));
    assert_string_equal(pb_csv_cell(&t, 1, 1), "neg");
    assert_string_equal(pb_csv_cell(&t, 2, 0), "plain");
    assert_pos(t.header_pos[0], 1, 1);         /* the BOM is not a column */
    assert_pos(pb_csv_cell_pos(&t, 0, 0), 2, 1);
    assert_pos(pb_csv_cell_pos(&t, 0, 1), 2, 16); /* "hello, world" is 14 bytes, then ',' */
    assert_pos(pb_csv_cell_pos(&t, 1, 0), 3, 1);
    assert_pos(pb_csv_cell_pos(&t, 1, 1), 4, 18); /* line 4: line ""quoted""" (16 bytes) ',' neg */
    assert_pos(pb_csv_cell_pos(&t, 2, 0), 5, 1);
    pb_csv_free(&t);
}

static void test_tsv_and_options(void **state) {
    (void)state;
    pb_csv_opts o = pb_csv_defaults();
    o.delim = '\t';
    /* a quoted tab; spaces are kept (libcsv would trim them by default) */
    pb_csv_table t = PARSE_OK("a\tb\n1\t\"x\ty\"\n  sp \t z\n", &o);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(pb_csv_cell(&t, 0, 1), "x\ty");
    assert_string_equal(pb_csv_cell(&t, 1, 0), "  sp ");
    assert_string_equal(pb_csv_cell(&t, 1, 1), " z");
    pb_csv_free(&t);
    /* GLUE mode: quotes are ordinary characters */
    o.quoting = 0;
    t = PARSE_OK("s\tl\nhe said \"hi\t1\n\"x\"\t0\n", &o);
    assert_string_equal(pb_csv_cell(&t, 0, 0), "he said \"hi");
    assert_string_equal(pb_csv_cell(&t, 1, 0), "\"x\"");
    pb_csv_free(&t);
    /* no header: columns are named 1..n and the first row is data */
    pb_csv_opts nh = pb_csv_defaults();
    nh.header = 0;
    t = PARSE_OK("a,b,c\nd,e,f", &nh);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(t.col_names[2], "3");
    assert_int_equal(pb_csv_col(&t, "2"), 1);
    assert_string_equal(pb_csv_cell(&t, 1, 2), "f"); /* last line without newline */
    pb_csv_free(&t);
}

static void test_line_ends_and_blank_lines(void **state) {
    (void)state;
    /* empty fields, blank lines skipped but counted in positions, lone CR line ends */
    pb_csv_table t = PARSE_OK("a,b\n,\n\n\n1,2\n\n", NULL);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(pb_csv_cell(&t, 0, 0), "");
    assert_int_equal(t.lens[1], 0);
    assert_pos(pb_csv_cell_pos(&t, 1, 0), 5, 1);
    assert_pos(pb_csv_cell_pos(&t, 1, 1), 5, 3);
    pb_csv_free(&t);
    t = PARSE_OK("a,b\r1,2\r\r3,4", NULL);
    assert_int_equal(t.n_rows, 2);
    assert_pos(pb_csv_cell_pos(&t, 0, 1), 2, 3);
    assert_pos(pb_csv_cell_pos(&t, 1, 0), 4, 1);
    pb_csv_free(&t);
    /* UTF-8 text passes through untouched */
    t = PARSE_OK("text\n\"Zo\xC3\xAB, \xE2\x82\xAC 5\"\n", NULL);
    assert_string_equal(pb_csv_cell(&t, 0, 0), "Zo\xC3\xAB, \xE2\x82\xAC 5");
    pb_csv_free(&t);
}

static void test_bad_shape(void **state) {
    (void)state;
    PARSE_BAD("", NULL, PB_EFORMAT, "x.csv:1:1: empty file", "expected a header row");
    PARSE_BAD("\xEF\xBB\xBF\n\r\n\n", NULL, PB_EFORMAT, "x.csv:1:1: empty file");
    /* too many fields: the position of the extra field */
    PARSE_BAD("text,label\na,b\nc,d,e\n", NULL, PB_EFORMAT, "x.csv:3:5:", "more than 2 fields", "expected 2: text, label");
    /* too few: where the missing delimiter was expected (the line end) */
    PARSE_BAD("text,label\na,b\nc\n", NULL, PB_EFORMAT, "x.csv:3:2:", "row has 1 field, expected 2 (text, label)");
    PARSE_BAD("text,label\nabc", NULL, PB_EFORMAT, "x.csv:2:4:", "row has 1 field");
    /* a quoted newline does not end the row: the short row is found on line 3 */
    PARSE_BAD("text,label\n\"a\nb\"\n", NULL, PB_EFORMAT, "x.csv:3:3:", "row has 1 field");
    PARSE_BAD("text,text\n", NULL, PB_EFORMAT, "x.csv:1:6: duplicate column name 'text'");
}

static void test_bad_quotes(void **state) {
    (void)state;
    PARSE_BAD("text,label\na,b\n\"abc,d\n", NULL, PB_EFORMAT, "x.csv:3:1: unterminated quoted field",
              "expected a closing '\"'");
    PARSE_BAD("text,label\nx,\"never closed\r\n\r\nstill\n", NULL, PB_EFORMAT, "x.csv:2:3: unterminated quoted field");
    PARSE_BAD("text,label\nab\"c,d\n", NULL, PB_EFORMAT, "x.csv:2:3:", "inside an unquoted field");
    PARSE_BAD("text,label\n\"ab\"c,d\n", NULL, PB_EFORMAT, "x.csv:2:5:", "'c' after the closing quote",
              "expected ','");
    pb_csv_opts o = pb_csv_defaults();
    o.delim = '\t';
    PARSE_BAD("a\tb\n\"x\" \ty\n", &o, PB_EFORMAT, "x.csv:2:4:", "after the closing quote", "expected '\\t'");
}

static void test_bad_encoding(void **state) {
    (void)state;
    /* offset 13 = 11 bytes of "text,label\n" + "ab" */
    PARSE_BAD("text,label\nab\xff,c\n", NULL, PB_EFORMAT, "x.csv:2:3: invalid UTF-8 byte 0xff at byte offset 13");
    PARSE_BAD("t\n\xC0\x80\n", NULL, PB_EFORMAT, "x.csv:2:1: invalid UTF-8 byte 0xc0"); /* overlong NUL */
    PARSE_BAD("t\nx\xED\xA0\x80\n", NULL, PB_EFORMAT, "x.csv:2:2: invalid UTF-8 byte 0xed");  /* surrogate */
    PARSE_BAD("t\nab\xE2\x82", NULL, PB_EFORMAT, "x.csv:2:3: invalid UTF-8 byte 0xe2");       /* cut short */
    PARSE_BAD("t\n\xF4\x90\x80\x80\n", NULL, PB_EFORMAT, "invalid UTF-8 byte 0xf4");         /* > U+10FFFF */
    PARSE_BAD("t\r\nab\0c\r\n", NULL, PB_EFORMAT, "x.csv:2:3: NUL byte at byte offset 5");
}

static char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", tu_tmpdir(), name);
    return p;
}

static void write_file(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void test_huge_field(void **state) {
    (void)state;
    /* a 10 MB single field against the default 1 MiB limit */
    size_t big = 10u << 20;
    char *buf = malloc(big + 64);
    assert_non_null(buf);
    size_t n = (size_t)sprintf(buf, "text,label\n\"");
    memset(buf + n, 'x', big);
    n += big;
    n += (size_t)sprintf(buf + n, "\",a\n");
    const char *path = tmp_path("huge.csv");
    write_file(path, buf, n);
    pb_csv_table t;
    assert_int_equal(pb_csv_read(path, NULL, &t), PB_EFORMAT);
    assert_non_null(strstr(pb_errmsg(), path));
    assert_non_null(strstr(pb_errmsg(), ":2:1: field"));
    assert_non_null(strstr(pb_errmsg(), "maximum of 1048576 bytes"));
    assert_non_null(strstr(pb_errmsg(), "max_field"));
    assert_null(t.cells);
    /* unquoted too, and the exact check in the callback (field just over a small limit) */
    pb_csv_opts o = pb_csv_defaults();
    o.max_field = 8;
    PARSE_BAD("t,l\n123456789,a\n", &o, PB_EFORMAT, "x.csv:2:1: field of 9 bytes is larger than the maximum of 8");
    t = PARSE_OK("t,l\n12345678,a\n", &o);
    pb_csv_free(&t);
    /* the limit is configurable */
    o.max_field = 16u << 20;
    assert_int_equal(pb_csv_read(path, &o, &t), PB_OK);
    assert_int_equal(t.lens[0], big);
    pb_csv_free(&t);
    free(buf);
}

static void test_files(void **state) {
    (void)state;
    pb_csv_table t;
    const char *dir = tmp_path("adir.csv");
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(pb_csv_read(dir, NULL, &t), PB_EIO);
    assert_non_null(strstr(pb_errmsg(), dir));
    assert_non_null(strstr(pb_errmsg(), "is a directory (expected a CSV file)"));
    const char *missing = tmp_path("nope.csv");
    assert_int_equal(pb_csv_read(missing, NULL, &t), PB_ENOTFOUND);
    assert_non_null(strstr(pb_errmsg(), "nope.csv: no such file"));
    const char *empty = tmp_path("empty.csv");
    write_file(empty, "", 0);
    assert_int_equal(pb_csv_read(empty, NULL, &t), PB_EFORMAT);
    assert_non_null(strstr(pb_errmsg(), "empty.csv:1:1: empty file"));
    /* a good file, and the missing-column message */
    const char *ok = tmp_path("ok.csv");
    write_file(ok, "text,lbl\nhi,x\n", 14);
    assert_int_equal(pb_csv_read(ok, NULL, &t), PB_OK);
    int c;
    assert_int_equal(pb_csv_require_col(&t, "text", NULL, &c), PB_OK);
    assert_int_equal(c, 0);
    assert_int_equal(pb_csv_require_col(&t, "label", "for the label", &c), PB_EFORMAT);
    assert_non_null(strstr(pb_errmsg(), "ok.csv:1:1: missing column 'label' for the label (columns found: text, lbl)"));
    pb_csv_free(&t);
}

static void test_skip_bad_rows(void **state) {
    (void)state;
    pb_csv_opts o = pb_csv_defaults();
    o.skip_bad_rows = 1;
    pb_csv_table t = PARSE_OK("a,b\n1,2\nshort\n3,4\n5,6,7\n8,9\n", &o);
    assert_int_equal(t.n_rows, 3);
    assert_int_equal(t.n_skipped, 2);
    assert_pos(t.first_skipped, 3, 1);
    assert_string_equal(pb_csv_cell(&t, 1, 0), "3");
    assert_string_equal(pb_csv_cell(&t, 2, 1), "9");
    pb_csv_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quoting_crlf_bom), cmocka_unit_test(test_tsv_and_options),
        cmocka_unit_test(test_line_ends_and_blank_lines), cmocka_unit_test(test_bad_shape),
        cmocka_unit_test(test_bad_quotes), cmocka_unit_test(test_bad_encoding),
        cmocka_unit_test(test_huge_field), cmocka_unit_test(test_files),
        cmocka_unit_test(test_skip_bad_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
