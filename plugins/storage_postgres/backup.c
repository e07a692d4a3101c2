/* backup.c — whole-database copies with pg_dump and pg_restore.
 *
 * backup(path) runs `pg_dump --format=custom` into path.tmp and renames it
 * to path when pg_dump succeeded, so path is either the old file or a
 * complete new one. pg_dump takes a consistent snapshot while the server
 * keeps working. restore(path) runs `pg_restore --clean --if-exists
 * --no-owner --single-transaction` into the connected database: every
 * object in the backup is dropped and recreated in one transaction, so a
 * failed restore changes nothing.
 *
 * The connection settings reach the child through its environment (PGHOST,
 * PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, … from the dsn),
 * never its command line, where `ps` would show a password. The child is
 * started with posix_spawn (no fork of this multi-threaded process); its
 * stdout and stderr are captured for the error message.
 *
 * Threads: any; nothing is shared but the read-only context.
 */
#include "storage_postgres.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_BIN_DIR "/usr/lib/postgresql/15/bin"
#define OUTPUT_MAX 8192 /* what is kept of the child's output */

/* A malloc'd formatted string, or NULL. */
static char *str_printf(const char *fmt, ...) ATR_PRINTF(1, 2);
static char *str_printf(const char *fmt, ...) {
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  return n < 0 ? NULL : s;
}

static char *executable(const char *dir, const char *name) {
  char *p = str_printf("%s/%s", dir, name);
  if (p != NULL && access(p, X_OK) == 0)
    return p;
  free(p);
  return NULL;
}

/* pg_bin_dir when set; else PATH, then the Debian location. */
static char *find_tool(const spg_ctx_t *c, const char *name, char **err) {
  if (c->pg_bin_dir != NULL && c->pg_bin_dir[0] != '\0') {
    char *p = executable(c->pg_bin_dir, name);
    if (p == NULL)
      spg_set_err(err, "no executable %s in pg_bin_dir %s", name,
                  c->pg_bin_dir);
    return p;
  }
  const char *path = getenv("PATH");
  char *dirs = strdup(path ? path : "");
  char *p = NULL, *save = NULL;
  for (char *d = dirs ? strtok_r(dirs, ":", &save) : NULL; d && !p;
       d = strtok_r(NULL, ":", &save))
    p = executable(d, name);
  free(dirs);
  if (p == NULL)
    p = executable(DEFAULT_BIN_DIR, name);
  if (p == NULL)
    spg_set_err(err,
                "%s not found in PATH or %s; install postgresql-client-15 "
                "or set pg_bin_dir",
                name, DEFAULT_BIN_DIR);
  return p;
}

typedef struct strv {
  char **v;
  size_t n;
} strv_t;

static bool strv_push(strv_t *s, char *item) {
  char **grown = item ? realloc(s->v, (s->n + 2) * sizeof *s->v) : NULL;
  if (grown == NULL) {
    free(item);
    return false;
  }
  s->v = grown;
  s->v[s->n++] = item;
  s->v[s->n] = NULL;
  return true;
}

static void strv_free(strv_t *s) {
  for (size_t i = 0; i < s->n; i++)
    free(s->v[i]);
  free(s->v);
  *s = (strv_t){0};
}

static char *kv(const char *key, const char *val) {
  return str_printf("%s=%s", key, val);
}

/* Is "NAME=..." one of the variables in ours? */
static bool overridden(const strv_t *ours, const char *entry) {
  size_t n = strcspn(entry, "=");
  for (size_t i = 0; i < ours->n; i++)
    if (strncmp(ours->v[i], entry, n) == 0 && ours->v[i][n] == '=')
      return true;
  return false;
}

/* Our environment plus the dsn's settings as PG* variables. */
static int child_env(const spg_ctx_t *c, strv_t *env, char **err) {
  strv_t ours = {0};
  bool ok = true;
  PQconninfoOption *opts = PQconninfoParse(c->dsn, NULL);
  for (PQconninfoOption *o = opts; ok && o && o->keyword; o++)
    if (o->envvar != NULL && o->val != NULL && o->val[0] != '\0')
      ok = strv_push(&ours, kv(o->envvar, o->val));
  if (ok && opts == NULL) /* a bare database name */
    ok = strv_push(&ours, kv("PGDATABASE", c->dsn));
  PQconninfoFree(opts);
  if (ok && !overridden(&ours, "PGCONNECT_TIMEOUT="))
    ok = strv_push(&ours, kv("PGCONNECT_TIMEOUT", c->conn_num[0]));
  if (ok && !overridden(&ours, "PGAPPNAME="))
    ok = strv_push(&ours, kv("PGAPPNAME", "atrium"));
  *env = (strv_t){0};
  for (char **e = environ; ok && e && *e; e++)
    if (!overridden(&ours, *e))
      ok = strv_push(env, strdup(*e));
  for (size_t i = 0; ok && i < ours.n; i++) {
    ok = strv_push(env, ours.v[i]);
    ours.v[i] = NULL;
  }
  strv_free(&ours);
  if (!ok) {
    strv_free(env);
    spg_set_err(err, "out of memory");
    return ATR_ENOMEM;
  }
  return 0;
}

/* The child's output as one line: newlines become "; ". */
static void one_line(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
    s[--n] = '\0';
  for (char *p = s; *p; p++)
    if (*p == '\n' || *p == '\t' || *p == '\r')
      *p = ' ';
}

static pid_t spawn(const char *path, char *const argv[], char *const envp[],
                   int out_fd, int *error) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  /* Nothing else of the server's (sockets, files) goes to the child. */
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
  /* The host's signal mask and handlers are not the child's business. */
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  *error = posix_spawn(&pid, path, &fa, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return *error == 0 ? pid : -1;
}

/* Run argv[0]'s tool with the dsn in its environment. */
static int run_tool(const spg_ctx_t *c, const char *tool, char *const argv[],
                    char **err) {
  strv_t env;
  int rc = child_env(c, &env, err);
  if (rc != 0)
    return rc;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    strv_free(&env);
    spg_set_err(err, "cannot run %s: %s", tool, strerror(errno));
    return ATR_EIO;
  }
  int error = 0;
  pid_t pid = spawn(tool, argv, env.v, fds[1], &error);
  close(fds[1]);
  strv_free(&env);
  if (pid < 0) {
    close(fds[0]);
    spg_set_err(err, "cannot run %s: %s", tool, strerror(error));
    return ATR_EIO;
  }
  char out[OUTPUT_MAX + 1];
  size_t used = 0;
  for (;;) {
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    size_t take = (size_t)n < OUTPUT_MAX - used ? (size_t)n : OUTPUT_MAX - used;
    memcpy(out + used, buf, take);
    used += take;
  }
  out[used] = '\0';
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  one_line(out);
  spg_scrub(c, out);
  const char *name = strrchr(tool, '/') ? strrchr(tool, '/') + 1 : tool;
  if (WIFEXITED(status))
    spg_set_err(err, "%s failed (exit status %d): %s", name,
                WEXITSTATUS(status), used ? out : "no output");
  else
    spg_set_err(err, "%s was killed by signal %d: %s", name,
                WIFSIGNALED(status) ? WTERMSIG(status) : 0,
                used ? out : "no output");
  return ATR_EIO;
}

int spg_backup(void *ctx, const char *path, char **err) {
  spg_ctx_t *c = ctx;
  if (path == NULL || path[0] == '\0') {
    spg_set_err(err, "backup needs a file name");
    return ATR_EINVAL;
  }
  char *tool = find_tool(c, "pg_dump", err);
  if (tool == NULL)
    return ATR_EIO;
  char *tmp = str_printf("%s.tmp", path);
  char *file_arg = tmp ? str_printf("--file=%s", tmp) : NULL;
  if (file_arg == NULL) {
    free(tool);
    free(tmp);
    spg_set_err(err, "out of memory");
    return ATR_ENOMEM;
  }
  unlink(tmp);
  char *argv[] = {tool, "--format=custom", "--no-password", file_arg, NULL};
  int rc = run_tool(c, tool, argv, err);
  if (rc == 0) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      fsync(fd); /* the rename must not publish an incomplete file */
      close(fd);
    }
    if (rename(tmp, path) != 0) {
      spg_set_err(err, "cannot rename %s to %s: %s", tmp, path,
                  strerror(errno));
      rc = ATR_EIO;
    }
  }
  if (rc != 0)
    unlink(tmp);
  else
    c->host->log(c->h, ATR_LOG_INFO, "backed up %s to %s", c->where, path);
  free(file_arg);
  free(tmp);
  free(tool);
  return rc;
}

/* The name of the database we are connected to (what pg_restore targets). */
static char *current_db(spg_ctx_t *c, char **err) {
  atr_db_conn_t *conn = NULL;
  if (spg_get(c, &conn, err) != 0)
    return NULL;
  char *db = strdup(PQdb(conn->pg));
  spg_put(c, conn);
  if (db == NULL)
    spg_set_err(err, "out of memory");
  return db;
}

int spg_restore(void *ctx, const char *path, char **err) {
  spg_ctx_t *c = ctx;
  if (path == NULL || access(path, R_OK) != 0) {
    spg_set_err(err, "cannot read the backup %s: %s", path ? path : "(null)",
                path ? strerror(errno) : "no file name");
    return ATR_EINVAL;
  }
  char *tool = find_tool(c, "pg_restore", err);
  if (tool == NULL)
    return ATR_EIO;
  char *db = current_db(c, err);
  if (db == NULL) {
    free(tool);
    return ATR_EUNAVAIL;
  }
  int rc = ATR_ENOMEM;
  char *db_arg = str_printf("--dbname=%s", db);
  /* A file named like an option must not be read as one. */
  char *file = str_printf("%s%s", path[0] == '-' ? "./" : "", path);
  if (db_arg != NULL && file != NULL) {
    char *argv[] = {tool,
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--single-transaction",
                    "--no-password",
                    db_arg,
                    file,
                    NULL};
    rc = run_tool(c, tool, argv, err);
  } else {
    spg_set_err(err, "out of memory");
  }
  if (rc == 0)
    c->host->log(c->h, ATR_LOG_INFO, "restored %s from %s", c->where, path);
  free(db_arg);
  free(file);
  free(db);
  free(tool);
  return rc;
}
