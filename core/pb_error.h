/* pb_error.h — status codes and error messages for runtime failures.
 *
 * Two tiers of errors (docs/ARCHITECTURE.md): programmer errors assert; runtime failures
 * (I/O, bad configuration, bad data, HDF5, out of memory) return a pb_status and leave a
 * human-readable message in a thread-local buffer that the caller prints or records.
 * Library code never calls exit().
 *
 *   if (!(f = fopen(path, "rb"))) return pb_errorf(PB_EIO, "%s: %s", path, strerror(errno));
 *   ...
 *   if (st != PB_OK) fprintf(stderr, "peftbench: %s\n", pb_errmsg());
 */
#ifndef PB_ERROR_H
#define PB_ERROR_H

/* The one list of status codes: name, short description. */
#define PB_STATUS_MAP(X)                                   \
    X(OK, "success")                                       \
    X(EINVAL, "invalid argument")                          \
    X(EIO, "input/output error")                           \
    X(ENOMEM, "out of memory")                             \
    X(EFORMAT, "bad file format")                          \
    X(EDATA, "bad input data")                             \
    X(ENOTFOUND, "not found")                              \
    X(EHDF5, "HDF5 error")                                 \
    X(EDIVERGED, "training diverged (NaN or inf)")         \
    X(EINTERNAL, "internal error")

typedef enum {
#define PB_STATUS_ENUM(name, desc) PB_##name,
    PB_STATUS_MAP(PB_STATUS_ENUM)
#undef PB_STATUS_ENUM
    PB_STATUS_COUNT
} pb_status;

/* Short description of a code ("invalid argument"). */
const char *pb_status_str(pb_status st);
/* Symbolic name of a code ("EINVAL"). */
const char *pb_status_name(pb_status st);

/* Records a formatted message for this thread and returns st (so `return pb_errorf(...)`). */
pb_status pb_errorf(pb_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prepends context to the current message ("loading x.h5: " + old message); returns st. */
pb_status pb_error_context(pb_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The last message recorded on this thread ("" when none). */
const char *pb_errmsg(void);
/* Clears this thread's message. */
void pb_error_clear(void);

#endif
