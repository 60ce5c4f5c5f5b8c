/* vcpuctl_file.c: local files for the subcommands, "-" standing for stdin
 * or stdout; short reads and writes and EINTR handled in one place. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vcpuctl.h"

const char *vcpuctl_file_name(const char *path)
{
    return strcmp(path, "-") == 0 ? "standard input/output" : path;
}

int vcpuctl_read_full(int fd, void *buf, size_t len, size_t *got)
{
    *got = 0;
    while (*got < len) {
        ssize_t n = read(fd, (uint8_t *)buf + *got, len - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return 0;
}

int vcpuctl_write_full(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int vcpuctl_open_in(struct vcpuctl *ctl, const char *path, int *fd)
{
    if (ctl->batch && strcmp(path, "-") == 0)
        return vcpuctl_usage(ctl, "in batch, standard input holds the "
                                  "commands: give a file name");
    *fd = strcmp(path, "-") == 0 ? STDIN_FILENO
                                 : open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return vcpuctl_failed(ctl, "cannot open %s: %s", path, strerror(errno));
    return VCPUCTL_OK;
}

void vcpuctl_close_in(int fd)
{
    if (fd != STDIN_FILENO)
        close(fd);
}

int vcpuctl_read_file(struct vcpuctl *ctl, const char *path, size_t max,
                      uint8_t **buf, size_t *len)
{
    int fd, rc;
    if ((rc = vcpuctl_open_in(ctl, path, &fd)))
        return rc;
    /* Grown as it fills: stdin and pipes have no size to ask for. One
     * byte over (max) tells a file that is too big from one that fits. */
    size_t cap = 0;
    *buf = NULL;
    *len = 0;
    for (;;) {
        if (*len == cap) {
            if (cap > max) {
                rc = vcpuctl_failed(ctl, "%s is larger than %zu bytes",
                                    vcpuctl_file_name(path), max);
                break;
            }
            cap = cap ? cap * 2 : 64 * 1024;
            if (cap > max + 1)
                cap = max + 1;
            uint8_t *p = realloc(*buf, cap);
            if (!p) {
                rc = vcpuctl_failed(ctl, "out of memory reading %s", path);
                break;
            }
            *buf = p;
        }
        size_t n;
        int e = vcpuctl_read_full(fd, *buf + *len, cap - *len, &n);
        if (e < 0) {
            rc = vcpuctl_failed(ctl, "reading %s: %s", vcpuctl_file_name(path),
                                strerror(-e));
            break;
        }
        *len += n;
        if (*len < cap)
            break; /* end of file */
    }
    vcpuctl_close_in(fd);
    if (rc) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

int vcpuctl_open_out(struct vcpuctl *ctl, const char *path, int *fd)
{
    *fd = strcmp(path, "-") == 0
              ? STDOUT_FILENO
              : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (*fd < 0)
        return vcpuctl_failed(ctl, "cannot create %s: %s", path,
                              strerror(errno));
    return VCPUCTL_OK;
}

int vcpuctl_close_out(struct vcpuctl *ctl, const char *path, int fd, int rc)
{
    if (fd == STDOUT_FILENO)
        return rc;
    if (close(fd) < 0 && rc == VCPUCTL_OK)
        rc = vcpuctl_failed(ctl, "writing %s: %s", path, strerror(errno));
    /* Half a dump would pass for the real thing. */
    if (rc)
        unlink(path);
    return rc;
}

int vcpuctl_write_file(struct vcpuctl *ctl, const char *path, const void *buf,
                       size_t len)
{
    int fd;
    int rc = vcpuctl_open_out(ctl, path, &fd);
    if (rc)
        return rc;
    int e = vcpuctl_write_full(fd, buf, len);
    if (e < 0)
        rc = vcpuctl_failed(ctl, "writing %s: %s", vcpuctl_file_name(path),
                            strerror(-e));
    return vcpuctl_close_out(ctl, path, fd, rc);
}
