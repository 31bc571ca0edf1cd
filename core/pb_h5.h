/* pb_h5.h — HDF5 files built in memory and put on disk by our own write(2).
 *
 * Every writer of an HDF5 file (checkpoints, adapters, results) builds the new version with
 * HDF5's core driver (no backing store) and writes its bytes to PATH.tmp itself, before the
 * durable rename. Why: when HDF5 1.10 itself hits a write error (disk full, read-only file
 * system, I/O error) it reports only "HDF5 error", keeps the file open after H5Fclose fails, and
 * crashes in its exit handler trying to close it again (found by tests/test_bad_inputs.c on a
 * full tmpfs). Written by us, a failure is the system's reason (ENOSPC, EROFS, EIO) naming the
 * file, the partial file is removed, and HDF5 never sees an I/O error.
 *
 *   hid_t f = pb_h5_create_mem(fcpl);          // H5P_DEFAULT, or a user block etc.
 *   ... H5Gcreate2 / H5Dcreate2 / attributes on f as usual ...
 *   st = pb_h5_close_to_file(f, tmp);          // always closes f
 */
#ifndef PB_H5_H
#define PB_H5_H

#include <hdf5.h>

#include "pb_error.h"

/* An empty HDF5 file in memory (core driver, 1 MiB increments, nothing written to disk), or a
 * negative id (HDF5 error: no message set). */
hid_t pb_h5_create_mem(hid_t fcpl);
/* Flushes and closes f (from pb_h5_create_mem) and writes the file's bytes to path (created or
 * truncated, then closed; not fsync'd: the caller syncs and renames). Errors: PB_EIO with path
 * and the system's reason (path removed), PB_EHDF5 if HDF5 cannot give the image. f is closed
 * in every case. */
pb_status pb_h5_close_to_file(hid_t f, const char *path);

#endif
