/*
 * tools/file_out.h: ending output the tools write (stdout, a report, a
 * trace export) so that output that was lost is never taken for whole:
 * the error of any failed write, and the removal of a partial file.
 */
#ifndef P2P_TOOLS_FILE_OUT_H
#define P2P_TOOLS_FILE_OUT_H

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* Flushes f and returns 0 when every write to it succeeded, else the
 * error: the flush's errno, or when the flush had nothing left to write
 * (glibc drops the buffer of a failed flush; ferror still tells) the
 * errno the failed earlier write left, or EIO when neither says.  Set
 * errno to 0 before the writes so that a stale errno is not taken for
 * theirs. */
static inline int file_out_error(FILE *f)
{
    int before = errno;
    errno = 0;
    if (fflush(f) == 0 && !ferror(f)) return 0;
    return errno ? errno : before ? before : EIO;
}

/* Removes path if it is a regular file: output that is not whole is not
 * left behind (a device or a pipe is left alone).  Keeps errno. */
static inline void file_out_remove_partial(const char *path)
{
    int e = errno;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) unlink(path);
    errno = e;
}

#endif
