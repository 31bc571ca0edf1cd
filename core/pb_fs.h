/* pb_fs.h — the few file-system operations the project repeats: mkdir -p, fsync, and the
 * durable rename that every atomic writer (checkpoints, results, caches) ends with. */
#ifndef PB_FS_H
#define PB_FS_H

#include <stddef.h>

#include "pb_error.h"

/* Creates path and its missing parents (mode 0777 before umask); PB_EIO naming the first
 * directory that could not be made, with the system's reason. */
pb_status pb_mkdir_p(const char *path);
/* fsync of a file (directory = 0: errors are PB_EIO naming it) or of a directory (directory = 1:
 * best effort, never an error: some file systems cannot sync directories). */
pb_status pb_fsync_path(const char *path, int directory);
/* The directory holding path ("." for a bare name, "/" for a file at the root). */
void pb_parent_dir(char *dir, size_t cap, const char *path);
/* Renames tmp over path and syncs path's directory so the rename survives a crash. On failure
 * tmp is removed and PB_EIO names both. */
pb_status pb_rename_durable(const char *tmp, const char *path);

#endif
