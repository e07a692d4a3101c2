/* core/agent/agent_envfile.c — KEY=VALUE env files (agent_envfile.h). */
#include "agent_envfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrium/error.h"

static int fail(char **err, int rc, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(err, fmt, ap) < 0)
      *err = NULL;
    va_end(ap);
  }
  return rc;
}

static const char *trim(const char *s, const char *end, const char **out_end) {
  while (s < end && (*s == ' ' || *s == '\t'))
    s++;
  while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
    end--;
  *out_end = end;
  return s;
}

/* One KEY=VALUE line (already trimmed, not blank, not a comment). */
static int parse_line(const char *s, const char *end, agent_envfile_t *out,
                      int lineno, char **err) {
  if ((size_t)(end - s) > 7 && strncmp(s, "export ", 7) == 0)
    s += 7;
  const char *eq = memchr(s, '=', (size_t)(end - s));
  if (!eq || eq == s)
    return fail(err, ATR_EINVAL, "line %d: expected KEY=VALUE", lineno);
  const char *kend;
  const char *key = trim(s, eq, &kend);
  const char *vend;
  const char *val = trim(eq + 1, end, &vend);
  if (vend - val >= 2 && (*val == '"' || *val == '\'') && vend[-1] == *val) {
    val++;
    vend--;
  }
  char **slot = NULL;
  size_t klen = (size_t)(kend - key);
  if (klen == 16 && memcmp(key, "ATRIUM_AGENT_URL", 16) == 0)
    slot = &out->url;
  else if (klen == 18 && memcmp(key, "ATRIUM_AGENT_TOKEN", 18) == 0)
    slot = &out->token;
  if (!slot)
    return 0;
  char *copy = strndup(val, (size_t)(vend - val));
  if (!copy)
    return ATR_ENOMEM;
  free(*slot);
  *slot = copy;
  return 0;
}

int agent_envfile_parse(const char *text, size_t len, agent_envfile_t *out,
                        char **err) {
  memset(out, 0, sizeof *out);
  const char *p = text, *end = text + len;
  for (int lineno = 1; p < end; lineno++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *lend = nl ? nl : end;
    const char *tend;
    const char *s = trim(p, lend, &tend);
    if (memchr(s, '\0', (size_t)(tend - s))) {
      agent_envfile_free(out);
      return fail(err, ATR_EINVAL, "line %d: contains a NUL byte", lineno);
    }
    if (s < tend && *s != '#') {
      int rc = parse_line(s, tend, out, lineno, err);
      if (rc != 0) {
        agent_envfile_free(out);
        return rc;
      }
    }
    p = nl ? nl + 1 : end;
  }
  return 0;
}

int agent_envfile_load(const char *path, agent_envfile_t *out, char **err) {
  memset(out, 0, sizeof *out);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return fail(err, ATR_EIO, "%s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return fail(err, ATR_EACCES, "%s: not a regular file", path);
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    close(fd);
    return fail(err, ATR_EACCES,
                "%s: group or others may access it (mode %04o); it holds the "
                "agent token, so chmod 600 it",
                path, (unsigned)(st.st_mode & 07777));
  }
  if (st.st_size > AGENT_ENVFILE_MAX) {
    close(fd);
    return fail(err, ATR_ERANGE, "%s: larger than %d bytes", path,
                AGENT_ENVFILE_MAX);
  }
  char *buf = malloc((size_t)st.st_size + 1);
  if (!buf) {
    close(fd);
    return ATR_ENOMEM;
  }
  ssize_t n = read(fd, buf, (size_t)st.st_size);
  int saved = errno;
  close(fd);
  if (n < 0) {
    free(buf);
    return fail(err, ATR_EIO, "%s: %s", path, strerror(saved));
  }
  char *perr = NULL;
  int rc = agent_envfile_parse(buf, (size_t)n, out, &perr);
  free(buf);
  if (rc != 0) {
    fail(err, rc, "%s: %s", path, perr ? perr : atr_strerror(rc));
    free(perr);
  }
  return rc;
}

void agent_envfile_free(agent_envfile_t *e) {
  free(e->url);
  if (e->token) {
    explicit_bzero(e->token, strlen(e->token));
    free(e->token);
  }
  e->url = e->token = NULL;
}
