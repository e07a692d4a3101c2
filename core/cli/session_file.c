/* core/cli/session_file.c — the session the CLI keeps between runs (see
 * session_file.h). */
#include "session_file.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrium/error.h"

static void free_secret(char *s) {
  if (s) {
    OPENSSL_cleanse(s, strlen(s));
    free(s);
  }
}

static const char *env_value(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

int atr_client_config_dir(char *buf, size_t size) {
  const char *dir = env_value("ATRIUM_CONFIG_DIR");
  const char *xdg = env_value("XDG_CONFIG_HOME");
  const char *home = env_value("HOME");
  int n;
  if (dir)
    n = snprintf(buf, size, "%s", dir);
  else if (xdg && xdg[0] == '/') /* relative ones are invalid per the spec */
    n = snprintf(buf, size, "%s/atrium", xdg);
  else if (home)
    n = snprintf(buf, size, "%s/.config/atrium", home);
  else
    return ATR_ENOENT;
  return n < 0 || (size_t)n >= size ? ATR_ERANGE : 0;
}

static int session_path(char *buf, size_t size, char **err) {
  char dir[4096];
  int rc = atr_client_config_dir(dir, sizeof dir);
  int n = rc == 0 ? snprintf(buf, size, "%s/session.json", dir) : -1;
  if (rc == 0 && (n < 0 || (size_t)n >= size))
    rc = ATR_ERANGE;
  if (rc == ATR_ENOENT)
    *err = strdup("no config directory: set HOME, XDG_CONFIG_HOME or "
                  "ATRIUM_CONFIG_DIR");
  else if (rc != 0)
    *err = strdup("the config directory's path is too long");
  return rc;
}

static int replace(char **field, const char *value) {
  char *copy = value ? strdup(value) : NULL;
  if (value && !copy)
    return ATR_ENOMEM;
  free_secret(*field);
  *field = copy;
  return 0;
}

static int read_stored(atr_client_session_t *s, char **err) {
  char path[4200];
  int rc = session_path(path, sizeof path, err);
  if (rc != 0) {
    free(*err);
    *err = NULL;
    return 0; /* nowhere to look: nothing stored */
  }
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT)
      return 0;
    return asprintf(err, "cannot read %s: %s", path, strerror(errno)) < 0
               ? ATR_ENOMEM
               : ATR_EIO;
  }
  json_error_t jerr;
  json_t *j = json_loadf(f, 0, &jerr);
  fclose(f);
  if (!json_is_object(j)) {
    json_decref(j);
    return asprintf(err, "%s is not a session file; run `atrium login URL`",
                    path) < 0
               ? ATR_ENOMEM
               : ATR_EINVAL;
  }
  rc = replace(&s->url, json_string_value(json_object_get(j, "url")));
  if (rc == 0)
    rc = replace(&s->token,
                 json_string_value(json_object_get(j, "session_token")));
  json_decref(j);
  return rc;
}

/* Equal but for trailing slashes. */
static bool same_url(const char *a, const char *b) {
  if (!b)
    return false;
  size_t na = strlen(a), nb = strlen(b);
  while (na > 0 && a[na - 1] == '/')
    na--;
  while (nb > 0 && b[nb - 1] == '/')
    nb--;
  return na == nb && strncmp(a, b, na) == 0;
}

int atr_client_session_load(atr_client_session_t *s, char **err) {
  s->url = s->token = NULL;
  *err = NULL;
  int rc = read_stored(s, err);
  const char *url = env_value("ATRIUM_URL");
  const char *token = env_value("ATRIUM_SESSION_TOKEN");
  /* A stored token belongs to the stored URL; never send it elsewhere. */
  if (rc == 0 && url && !same_url(url, s->url))
    rc = replace(&s->token, NULL);
  if (rc == 0 && url)
    rc = replace(&s->url, url);
  if (rc == 0 && token)
    rc = replace(&s->token, token);
  if (rc != 0)
    atr_client_session_clear(s);
  return rc;
}

void atr_client_session_clear(atr_client_session_t *s) {
  free(s->url);
  free_secret(s->token);
  s->url = s->token = NULL;
}

/* mkdir -p with mode 0700 for what it creates; the last directory is made
 * 0700 even when it existed, since it holds credentials. */
static int make_private_dir(const char *dir, char **err) {
  char path[4096];
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
      goto fail;
    *p = '/';
  }
  if ((mkdir(path, 0700) != 0 && errno != EEXIST) || chmod(path, 0700) != 0)
    goto fail;
  return 0;
fail:
  return asprintf(err, "cannot create the directory %s: %s", path,
                  strerror(errno)) < 0
             ? ATR_ENOMEM
             : ATR_EIO;
}

static int write_all(int fd, const char *text) {
  for (size_t off = 0, len = strlen(text); off < len;) {
    ssize_t n = write(fd, text + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    off += (size_t)n;
  }
  return 0;
}

int atr_client_session_save(const char *url, const char *token, char **err) {
  char dir[4096], path[4200], tmp[4200];
  *err = NULL;
  int rc = session_path(path, sizeof path, err);
  if (rc != 0)
    return rc;
  atr_client_config_dir(dir, sizeof dir);
  if ((rc = make_private_dir(dir, err)) != 0)
    return rc;
  json_t *j = json_pack("{s:s, s:s}", "url", url, "session_token", token);
  char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
  json_decref(j);
  if (!text)
    return ATR_ENOMEM;
  snprintf(tmp, sizeof tmp, "%s/.session.json.XXXXXX", dir);
  int fd = mkstemp(tmp); /* made 0600 */
  bool ok = fd >= 0 && fchmod(fd, 0600) == 0 && write_all(fd, text) == 0 &&
            write_all(fd, "\n") == 0 && fsync(fd) == 0;
  int saved = errno;
  free_secret(text);
  if (fd >= 0 && close(fd) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (ok && rename(tmp, path) != 0) {
    ok = false;
    saved = errno;
  }
  if (ok)
    return 0;
  if (fd >= 0)
    unlink(tmp);
  return asprintf(err, "cannot write %s: %s", path, strerror(saved)) < 0
             ? ATR_ENOMEM
             : ATR_EIO;
}

int atr_client_session_remove(bool *removed, char **err) {
  char path[4200];
  *removed = false;
  *err = NULL;
  int rc = session_path(path, sizeof path, err);
  if (rc != 0)
    return rc;
  if (unlink(path) == 0) {
    *removed = true;
    return 0;
  }
  if (errno == ENOENT)
    return 0;
  return asprintf(err, "cannot remove %s: %s", path, strerror(errno)) < 0
             ? ATR_ENOMEM
             : ATR_EIO;
}
