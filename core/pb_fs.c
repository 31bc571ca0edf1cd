/* pb_fs.c — see pb_fs.h. */
#include "pb_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

pb_status pb_mkdir_p(const char *path) {
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return pb_errorf(PB_EIO, "%s: cannot create: %s", buf, strerror(errno));
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return pb_errorf(PB_EIO, "%s: cannot create: %s", buf, strerror(errno));
    return PB_OK;
}

pb_status pb_fsync_path(const char *path, int directory) {
    int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return directory ? PB_OK : pb_errorf(PB_EIO, "%s: cannot open to sync: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && !directory) return pb_errorf(PB_EIO, "%s: fsync failed: %s", path, strerror(e));
    return PB_OK;
}

void pb_parent_dir(char *dir, size_t cap, const char *path) {
    snprintf(dir, cap, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, cap, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
}

pb_status pb_rename_durable(const char *tmp, const char *path) {
    if (rename(tmp, path) != 0) {
        pb_status st = pb_errorf(PB_EIO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        unlink(tmp);
        return st;
    }
    char dir[PATH_MAX];
    pb_parent_dir(dir, sizeof dir, path);
    return pb_fsync_path(dir, 1);
}
