/*
 * tests/core/mountns.h: small file systems for full-disk tests.  A test
 * (or its child) enters a private mount namespace, so its tmpfs mounts are
 * seen by no other process and vanish with it, and mounts tmpfs file
 * systems of a few KiB or MiB, where ENOSPC is real.  Both need root or
 * CAP_SYS_ADMIN; a test without them skips (exit 77).
 */
#ifndef P2P_TESTS_CORE_MOUNTNS_H
#define P2P_TESTS_CORE_MOUNTNS_H

#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>

/* Enters a private mount namespace; 0, or -1 with errno.  The propagation
 * change names a file-system type ("none", which the kernel ignores for
 * MS_PRIVATE): memcheck reads the type string and reports a NULL one. */
static inline int tu_private_mounts(void)
{
    if (unshare(CLONE_NEWNS) != 0) return -1;
    return mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL);
}

/* Creates the directory path and mounts a tmpfs of size_kb KiB on it
 * (mode 0700); 0, or -1 with errno. */
static inline int tu_mount_tmpfs(const char *path, unsigned size_kb)
{
    char opt[64];
    snprintf(opt, sizeof opt, "size=%uk,mode=0700", size_kb);
    if (mkdir(path, 0700) != 0) return -1;
    return mount("tmpfs", path, "tmpfs", 0, opt);
}

#endif
