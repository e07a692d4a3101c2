/* fs.c — reading and writing whole files in the workdir.
 *
 * Files the plugin writes (state, variables) may hold secrets, so they are
 * created with mode 0600.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *tf_path(const char *dir, const char *name) {
  char *p = NULL;
  if (asprintf(&p, "%s/%s", dir, name) < 0)
    return NULL;
  return p;
}

bool tf_file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The workdir may belong to the build user, who can put a link, a FIFO or
 * a hard link where the plugin (often root) reads or writes: only a
 * regular file with one name is opened, never through a final link, and
 * never blocking on a FIFO. A descriptor or -errno. */
static int open_regular(const char *path, int flags) {
  int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink > 1) {
    close(fd);
    return -EPERM;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

int tf_file_read(const char *path, char **out, size_t *len) {
  *out = NULL;
  *len = 0;
  int fd = open_regular(path, O_RDONLY);
  if (fd < 0)
    return fd;
  tf_buf_t b = {0};
  int rc = tf_buf_append(&b, "", 0) == 0 ? 0 : -ENOMEM;
  while (rc == 0) {
    char buf[16384];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      rc = -errno;
    else if (n == 0)
      break;
    else if (tf_buf_append(&b, buf, (size_t)n) != 0)
      rc = -ENOMEM;
  }
  close(fd);
  if (rc != 0) {
    tf_buf_free(&b);
    return rc;
  }
  *out = b.data;
  *len = b.len;
  return 0;
}

int tf_file_write(const char *path, const char *data, size_t len) {
  int fd = open_regular(path, O_WRONLY | O_CREAT);
  if (fd < 0)
    return fd;
  int rc = ftruncate(fd, 0) == 0 ? 0 : -errno;
  while (rc == 0 && len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = -errno;
      break;
    }
    data += n;
    len -= (size_t)n;
  }
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  return rc;
}
