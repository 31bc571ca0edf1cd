/* main.c — the libFuzzer entry of every fuzz_NAME binary (-DPB_FUZZ_ENTRY=pb_fuzz_NAME). */
#include <hdf5.h>
#include <stdlib.h>

#include "fuzz.h"

int PB_FUZZ_ENTRY(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the library reports errors through pb_errmsg */
    atexit(pbf_cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pb_error_clear();
    return PB_FUZZ_ENTRY(data, size);
}
