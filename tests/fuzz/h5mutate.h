/* h5mutate.h — structure-aware mutation of an HDF5 file for the fuzz targets that open files
 * through the real loaders (checkpoints, adapters, results). Byte-level mutation of an HDF5 file
 * mostly tests HDF5's own parser (and a checkpoint's whole-file checksum refuses it at once);
 * these edits go through HDF5 and produce well-formed files whose *content* disagrees with
 * what the loaders expect: attributes with other values, types or missing; datasets deleted,
 * reshaped (shapes that disagree with the attributes), retyped, truncated, or with arbitrary
 * bytes in their data (NaN, huge counts, strings without a NUL); extra objects.
 *
 * The input is a program: op count, then per op an opcode, an object index and operands
 * (tests/fuzz/README.md). Returns 0, or -1 if the file could not be opened for writing. */
#ifndef PB_FUZZ_H5MUTATE_H
#define PB_FUZZ_H5MUTATE_H

#include "fuzz.h"

int pbf_h5_mutate(const char *path, pbf_in *in);
/* Copies file src to dst (bytes). */
void pbf_copy_file(const char *src, const char *dst);
/* Truncates path to `keep` bytes if smaller than its size. */
void pbf_truncate(const char *path, uint32_t keep);

#endif
