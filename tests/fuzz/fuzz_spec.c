/* fuzz_spec.c — sweep specs (harness/sweep.h pb_sweep_load: the INI, the grids, the tasks and
 * methods they name), read from a scratch file, with the fixture data directory.
 *
 * Input: the INI text. Checks: a refusal has a message; an accepted spec has cells, each with
 * a 16-hex-digit key, no two cells with the same key, every cell's task among the opened ones.
 *
 *   scripts/fuzz.sh spec
 */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "harness/sweep.h"

int pb_fuzz_spec(const uint8_t *data, size_t size);

int pb_fuzz_spec(const uint8_t *data, size_t size) {
    const char *path = pbf_path("spec.ini");
    pbf_write(path, data, size);
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/tasks/data", pbf_src());
    pb_sweep_spec s;
    if (pbf_check_status(pb_sweep_load(path, dir, &s))) return 0;
    if (s.n_cells == 0) pbf_fail("a spec accepted with no cells");
    for (size_t i = 0; i < s.n_cells; i++) {
        const pb_sweep_cell *c = &s.cells[i];
        if (strlen(c->key) != 16 || strspn(c->key, "0123456789abcdef") != 16) pbf_fail("cell %zu: key '%s'", i, c->key);
        if (c->task_index < 0 || c->task_index >= s.n_tasks) pbf_fail("cell %zu: task index %d", i, c->task_index);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s.cells[j].key, c->key)) pbf_fail("cells %zu and %zu have the same key %s", j, i, c->key);
    }
    pb_sweep_free(&s);
    return 0;
}
