/* pb_h5.c — see pb_h5.h. */
#include "pb_h5.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

hid_t pb_h5_create_mem(hid_t fcpl) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    hid_t f = -1;
    if (H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) >= 0)
        f = H5Fcreate("pb-h5-in-memory", H5F_ACC_TRUNC, fcpl, fapl); /* the name is never a file */
    H5Pclose(fapl);
    return f;
}

pb_status pb_h5_close_to_file(hid_t f, const char *path) {
    /* The image starts at the superblock: a user block (the checkpoint's sealed header) is
     * left out of it and written here as zeros, for the caller to fill. */
    hsize_t ub = 0;
    hid_t fcpl = H5Fget_create_plist(f);
    if (fcpl < 0 || H5Pget_userblock(fcpl, &ub) < 0) ub = 0;
    if (fcpl >= 0) H5Pclose(fcpl);
    ssize_t n = H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(f, NULL, 0);
    unsigned char *buf = n > 0 ? calloc(1, (size_t)ub + (size_t)n) : NULL;
    if (buf && H5Fget_file_image(f, buf + ub, (size_t)n) != n) n = -1;
    H5Fclose(f);
    n += (ssize_t)ub;
    if (n <= (ssize_t)ub || !buf) {
        free(buf);
        return pb_errorf(PB_EHDF5, "%s: HDF5 could not produce the file's bytes", path);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    int e = fd < 0 ? errno : 0;
    for (size_t done = 0; !e && done < (size_t)n;) {
        ssize_t w = write(fd, buf + done, (size_t)n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) e = w < 0 ? errno : EIO;
        else done += (size_t)w;
    }
    if (fd >= 0 && close(fd) != 0 && !e) e = errno;
    free(buf);
    if (e) {
        if (fd >= 0) unlink(path);
        return pb_errorf(PB_EIO, "%s: cannot write: %s%s", path, strerror(e),
                         e == ENOENT || e == EACCES ? " (does the directory exist and is it writable?)" : "");
    }
    return PB_OK;
}
