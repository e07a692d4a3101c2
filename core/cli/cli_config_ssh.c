/* core/cli/cli_config_ssh.c — `atrium config-ssh [--dry-run] [--remove]
 * [--ssh-config FILE] [-y]` (cli_connect.h): a managed block in
 * ~/.ssh/config, as `coder config-ssh` writes, so that plain `ssh
 * atrium.WORKSPACE`, scp, sftp, rsync and editors' remote-SSH modes go
 * through `atrium ssh --stdio`.
 *
 * The block sits between ATR__SSH_CONFIG_START and _END; everything
 * outside it is kept byte for byte, and writing the same block again
 * changes nothing (the file is not even rewritten). The file is replaced
 * atomically (a temporary file beside it, fsync, rename; through a
 * symlink, its target is), with the old file's mode, 0600 for a new one,
 * in a 0700 directory. No backup is kept: only the block changes, and
 * --dry-run shows the diff first.
 *
 * Host keys: each Host has HostKeyAlias atrium.OWNER.NAME and the CLI's
 * own known_hosts (<config dir>/known_hosts, which `atrium ssh` records
 * into as well) with StrictHostKeyChecking accept-new: the first key is
 * recorded, a changed one is refused. A workspace keeps its host key
 * across restarts and rebuilds, so a change means it was deleted and
 * created again (remove its lines) or something is impersonating it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_connect.h"
#include "cli_output.h"
#include "cli_prompt.h"
#include "cli_session.h"
#include "session_file.h"

/* ~/.ssh/config larger than this is refused rather than read. */
#define MAX_SSH_CONFIG ((size_t)4 * 1024 * 1024)

static const atr__cli_command_t config_cmd = {
    NULL,
    "config-ssh",
    NULL,
    0,
    0,
    0,
    "  atrium config-ssh [--dry-run] [--remove] [--ssh-config FILE] [-y]\n"
    "      Write a `Host atrium.WORKSPACE` entry for each of your workspaces\n"
    "      into ~/.ssh/config (FILE), in a block of its own, so that `ssh\n"
    "      atrium.WORKSPACE`, scp, sftp and rsync work. Run it again after\n"
    "      creating or deleting workspaces. --dry-run: show the diff and\n"
    "      change nothing. --remove: remove the block.\n"};

static const atr__cli_commands_t config_set = {
    .list = &config_cmd, .n = 1, .footer = "", .group_footer = ""};

/* ---- editing the block (pure) --------------------------------------------- */

typedef struct buf {
  char *data;
  size_t len, cap;
} buf_t;

static int put(buf_t *b, const char *s, size_t n) {
  if (!b->data || b->len + n + 1 > b->cap) {
    size_t cap = (b->len + n + 1) * 2;
    char *grown = realloc(b->data, cap);
    if (!grown)
      return -1;
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

static int puts_b(buf_t *b, const char *s) {
  return put(b, s, strlen(s));
}

/* Does the line at p (up to end) hold exactly marker (then \r\n, \n or
 * the end)? */
static bool is_marker(const char *p, const char *end, const char *marker) {
  size_t m = strlen(marker);
  if ((size_t)(end - p) < m || memcmp(p, marker, m) != 0)
    return false;
  p += m;
  return p == end || *p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n');
}

static const char *line_end(const char *p, const char *end) {
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  return nl ? nl + 1 : end;
}

/* The block with its markers, each line ending in eol. */
static int put_block(buf_t *b, const char *block, const char *eol) {
  int rc = puts_b(b, ATR__SSH_CONFIG_START) | puts_b(b, eol);
  for (const char *p = block; rc == 0 && *p;) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    rc = put(b, p, n) | puts_b(b, eol);
    p += n + (nl ? 1 : 0);
  }
  return rc | puts_b(b, ATR__SSH_CONFIG_END) | puts_b(b, eol);
}

int atr__ssh_config_edit(const char *old, size_t len, const char *block,
                         char **out, size_t *out_len) {
  const char *end = old + len, *start = NULL, *stop = NULL;
  int starts = 0;
  *out = NULL;
  *out_len = 0;
  for (const char *p = old; p < end; p = line_end(p, end)) {
    if (is_marker(p, end, ATR__SSH_CONFIG_START)) {
      starts++;
      start = p;
    } else if (start && !stop && is_marker(p, end, ATR__SSH_CONFIG_END)) {
      stop = line_end(p, end);
    }
  }
  if (starts > 1 || (start && !stop))
    return -2;
  const char *first_nl = memchr(old, '\n', len);
  const char *eol =
      first_nl && first_nl > old && first_nl[-1] == '\r' ? "\r\n" : "\n";
  buf_t b = {0};
  int rc = put(&b, "", 0);
  if (start) {
    const char *keep_to = start;
    /* Removing the block at the end of the file: the blank line put
     * before it goes too. */
    if (!block && stop == end &&
        keep_to - old >= (ptrdiff_t)(2 * strlen(eol)) &&
        memcmp(keep_to - 2 * strlen(eol), eol, strlen(eol)) == 0 &&
        memcmp(keep_to - strlen(eol), eol, strlen(eol)) == 0)
      keep_to -= strlen(eol);
    rc |= put(&b, old, (size_t)(keep_to - old));
    if (block)
      rc |= put_block(&b, block, eol);
    rc |= put(&b, stop, (size_t)(end - stop));
  } else {
    rc |= put(&b, old, len);
    if (block && len > 0 && old[len - 1] != '\n')
      rc |= puts_b(&b, eol);
    if (block && len > 0)
      rc |= puts_b(&b, eol);
    if (block)
      rc |= put_block(&b, block, eol);
  }
  if (rc != 0) {
    free(b.data);
    return -1;
  }
  *out = b.data;
  *out_len = b.len;
  return 0;
}

/* ---- the diff (pure) ------------------------------------------------------ */

typedef struct lines {
  const char **at; /* start of each line */
  size_t n;
  const char *end;
} lines_t;

static int split_lines(const char *s, size_t len, lines_t *l) {
  size_t cap = 16;
  l->n = 0;
  l->end = s + len;
  l->at = malloc(cap * sizeof *l->at);
  for (const char *p = s; l->at && p < l->end; p = line_end(p, l->end)) {
    if (l->n == cap) {
      const char **grown = realloc(l->at, 2 * cap * sizeof *l->at);
      if (!grown) {
        free(l->at);
        l->at = NULL;
        break;
      }
      l->at = grown;
      cap *= 2;
    }
    l->at[l->n++] = p;
  }
  return l->at ? 0 : -1;
}

static size_t line_len(const lines_t *l, size_t i) {
  return (size_t)((i + 1 < l->n ? l->at[i + 1] : l->end) - l->at[i]);
}

static bool same_line(const lines_t *a, size_t i, const lines_t *b, size_t j) {
  size_t n = line_len(a, i);
  return n == line_len(b, j) && memcmp(a->at[i], b->at[j], n) == 0;
}

static int put_line(buf_t *o, char mark, const lines_t *l, size_t i) {
  size_t n = line_len(l, i);
  int rc = put(o, &mark, 1) | put(o, l->at[i], n);
  if (n == 0 || l->at[i][n - 1] != '\n')
    rc |= puts_b(o, "\n\\ No newline at end of file\n");
  return rc;
}

/* One hunk around what differs: the common head and tail stay out of it
 * but for three lines of context. */
static int hunk(buf_t *o, const lines_t *a, const lines_t *b) {
  size_t head = 0, tail = 0;
  while (head < a->n && head < b->n && same_line(a, head, b, head))
    head++;
  while (tail < a->n - head && tail < b->n - head &&
         same_line(a, a->n - 1 - tail, b, b->n - 1 - tail))
    tail++;
  size_t ctx0 = head < 3 ? head : 3, ctx1 = tail < 3 ? tail : 3;
  size_t from = head - ctx0;
  size_t acount = a->n - head - tail + ctx0 + ctx1;
  size_t bcount = b->n - head - tail + ctx0 + ctx1;
  char line[96];
  snprintf(line, sizeof line, "@@ -%zu,%zu +%zu,%zu @@\n",
           acount ? from + 1 : from, acount, bcount ? from + 1 : from, bcount);
  int rc = puts_b(o, line);
  for (size_t i = from; i < head; i++)
    rc |= put_line(o, ' ', a, i);
  for (size_t i = head; i < a->n - tail; i++)
    rc |= put_line(o, '-', a, i);
  for (size_t i = head; i < b->n - tail; i++)
    rc |= put_line(o, '+', b, i);
  for (size_t i = a->n - tail; i < a->n - tail + ctx1; i++)
    rc |= put_line(o, ' ', a, i);
  return rc;
}

char *atr__ssh_config_diff(const char *path, const char *a, size_t alen,
                           const char *b, size_t blen) {
  buf_t o = {0};
  if (put(&o, "", 0) != 0)
    return NULL;
  if (alen == blen && memcmp(a, b, alen) == 0)
    return o.data;
  lines_t la = {0}, lb = {0};
  int rc = split_lines(a, alen, &la) | split_lines(b, blen, &lb);
  rc |= puts_b(&o, "--- ") | puts_b(&o, path) | puts_b(&o, "\n+++ ") |
        puts_b(&o, path) | puts_b(&o, "\n");
  if (rc == 0)
    rc = hunk(&o, &la, &lb);
  free(la.at);
  free(lb.at);
  if (rc != 0) {
    free(o.data);
    return NULL;
  }
  return o.data;
}

/* ---- the block for this user ---------------------------------------------- */

/* Only names that need no quoting in ssh_config nor in a shell. */
static bool plain_name(const char *s) {
  if (!s || !*s || strlen(s) > 128)
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
      return false;
  return true;
}

/* s single-quoted for the shell that runs ProxyCommand, with ssh_config's
 * '%' escaped. */
static int put_shell_word(buf_t *b, const char *s) {
  int rc = puts_b(b, "'");
  for (; *s; s++)
    rc |= *s == '\''  ? puts_b(b, "'\\''")
          : *s == '%' ? puts_b(b, "%%")
                      : put(b, s, 1);
  return rc | puts_b(b, "'");
}

/* s double-quoted for ssh_config (a path), '%' escaped. */
static int put_config_path(buf_t *b, const char *s) {
  int rc = puts_b(b, "\"");
  for (; *s; s++)
    rc |= *s == '%' ? puts_b(b, "%%") : put(b, s, 1);
  return rc | puts_b(b, "\"");
}

/* One Host: atrium.NAME, or atrium.NAME.AGENT when agent is not NULL. The
 * host key is the workspace's, whichever agent serves it. */
static int host_entry(buf_t *b, const char *self, const char *config_dir,
                      const char *owner, const char *name, const char *agent) {
  char known[PATH_MAX + 16];
  snprintf(known, sizeof known, "%s/known_hosts", config_dir);
  int rc = puts_b(b, "Host atrium.") | puts_b(b, name) |
           (agent ? puts_b(b, ".") | puts_b(b, agent) : 0) |
           puts_b(b, "\n  ProxyCommand env ATRIUM_CONFIG_DIR=") |
           put_shell_word(b, config_dir) | puts_b(b, " ") |
           put_shell_word(b, self) | puts_b(b, " ssh --stdio ") |
           puts_b(b, owner) | puts_b(b, "/") | puts_b(b, name) |
           (agent ? puts_b(b, ".") | puts_b(b, agent) : 0) |
           puts_b(b, "\n  HostKeyAlias atrium.") | puts_b(b, owner) |
           puts_b(b, ".") | puts_b(b, name) |
           puts_b(b, "\n  UserKnownHostsFile ") | put_config_path(b, known) |
           puts_b(b, "\n  StrictHostKeyChecking accept-new\n"
                     "  HashKnownHosts no\n"
                     "  ConnectTimeout 0\n"
                     "  LogLevel ERROR\n");
  return rc;
}

/* The names of the latest build's agents (borrowed), at most max. */
static size_t agent_names(const json_t *ws, const char **names, size_t max) {
  size_t n = 0, i, j;
  json_t *res, *agent;
  json_array_foreach(
      json_object_get(json_object_get(ws, "latest_build"), "resources"), i,
      res) {
    json_array_foreach(json_object_get(res, "agents"), j, agent) {
      if (n < max)
        names[n] = atr__cli_str(agent, "name");
      n++;
    }
  }
  return n;
}

static int by_string(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One workspace's entries: one Host, or one per agent when it has
 * several (`atrium ssh` asks which one otherwise). */
static int workspace_entries(atr__cli_t *cli, buf_t *b, const char *self,
                             const char *dir, const json_t *w) {
  const char *name = atr__cli_str(w, "name");
  const char *owner = atr__cli_str(w, "owner_name");
  const char *agents[16];
  size_t n = agent_names(w, agents, 16);
  bool ok = plain_name(name) && plain_name(owner) && n <= 16;
  for (size_t i = 0; ok && n > 1 && i < n; i++)
    ok = plain_name(agents[i]);
  if (!ok) {
    fprintf(stderr,
            "%s: skipped workspace \"%s\": its name, its owner's or an "
            "agent's cannot be a host name\n",
            cli->what, name ? name : "?");
    return 0;
  }
  if (n <= 1)
    return puts_b(b, "\n") | host_entry(b, self, dir, owner, name, NULL);
  qsort(agents, n, sizeof *agents, by_string);
  int rc = 0;
  for (size_t i = 0; i < n; i++)
    rc |= puts_b(b, "\n") | host_entry(b, self, dir, owner, name, agents[i]);
  return rc;
}

static int by_name(const void *a, const void *b) {
  const char *x = atr__cli_str(*(json_t *const *)a, "name");
  const char *y = atr__cli_str(*(json_t *const *)b, "name");
  return strcmp(x ? x : "", y ? y : "");
}

static int make_block(atr__cli_t *cli, const json_t *workspaces, char **out) {
  char self[PATH_MAX], dir[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0 || atr_client_config_dir(dir, sizeof dir) != 0) {
    fprintf(stderr,
            "%s: cannot tell where this atrium binary or its config "
            "directory is\n",
            cli->what);
    return 1;
  }
  self[n] = '\0';
  /* Sorted by name: the server's order may change, the file should not. */
  size_t count = json_array_size(workspaces);
  json_t **sorted = calloc(count ? count : 1, sizeof *sorted);
  if (!sorted)
    return atr__cli_oom(cli);
  for (size_t i = 0; i < count; i++)
    sorted[i] = json_array_get(workspaces, i);
  qsort(sorted, count, sizeof *sorted, by_name);
  buf_t b = {0};
  int rc = puts_b(&b, "# Managed by `atrium config-ssh`: run it again to "
                      "update this block,\n"
                      "# `atrium config-ssh --remove` to remove it. Edits "
                      "here are lost.\n");
  for (size_t i = 0; i < count; i++)
    rc |= workspace_entries(cli, &b, self, dir, sorted[i]);
  free(sorted);
  if (rc != 0) {
    free(b.data);
    return atr__cli_oom(cli);
  }
  *out = b.data;
  return 0;
}

/* ---- the file ------------------------------------------------------------- */

/* The file's content (empty when it does not exist); *mode its mode. */
static int read_config(const char *what, const char *path, buf_t *b,
                       mode_t *mode) {
  *mode = 0600;
  int rc = put(b, "", 0);
  FILE *f = fopen(path, "rb");
  if (!f)
    return errno == ENOENT && rc == 0 ? 0 : -1;
  struct stat st;
  if (fstat(fileno(f), &st) == 0)
    *mode = st.st_mode & 07777;
  char chunk[8192];
  size_t n;
  while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (b->len + n > MAX_SSH_CONFIG) {
      fprintf(stderr, "%s: %s is larger than %zu bytes; not editing it\n", what,
              path, MAX_SSH_CONFIG);
      rc = -2;
    } else {
      rc = put(b, chunk, n);
    }
  }
  if (ferror(f))
    rc = -1;
  fclose(f);
  return rc;
}

static int write_atomically(const char *path, const char *data, size_t len,
                            mode_t mode) {
  char tmp[PATH_MAX + 32], dir_copy[PATH_MAX];
  snprintf(dir_copy, sizeof dir_copy, "%s", path);
  const char *dir = dirname(dir_copy);
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return -1;
  snprintf(tmp, sizeof tmp, "%s.atrium-XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0)
    return -1;
  int rc = fchmod(fd, mode);
  for (size_t off = 0; rc == 0 && off < len;) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      rc = -1;
    else
      off += (size_t)w;
  }
  if (rc == 0)
    rc = fsync(fd);
  if (close(fd) != 0)
    rc = -1;
  if (rc == 0)
    rc = rename(tmp, path);
  if (rc != 0) {
    int e = errno;
    unlink(tmp);
    errno = e;
  }
  return rc;
}

/* The file to edit: --ssh-config, else ~/.ssh/config; through a symlink,
 * its target (so a dotfiles link stays a link). */
static int config_path(atr__cli_t *cli, const char *given, char *path,
                       size_t size) {
  /* OpenSSH reads the passwd entry's home, not $HOME: so do we. */
  const struct passwd *pw = getpwuid(getuid());
  const char *home =
      pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : getenv("HOME");
  int n = given  ? snprintf(path, size, "%s", given)
          : home ? snprintf(path, size, "%s/.ssh/config", home)
                 : -1;
  if (n <= 0 || (size_t)n >= size) {
    fprintf(stderr, "%s: no --ssh-config and no home directory\n", cli->what);
    return 1;
  }
  char real[PATH_MAX];
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && realpath(path, real))
    snprintf(path, size, "%s", real);
  return 0;
}

static int apply(atr__cli_t *cli, const char *path, const char *block,
                 bool dry_run) {
  buf_t old = {0};
  mode_t mode;
  int rc = read_config(cli->what, path, &old, &mode);
  char *next = NULL;
  size_t next_len = 0;
  if (rc == -1)
    fprintf(stderr, "%s: cannot read %s: %s\n", cli->what, path,
            strerror(errno));
  if (rc == 0)
    rc = atr__ssh_config_edit(old.data, old.len, block, &next, &next_len);
  if (rc == -2 && next == NULL && old.data)
    fprintf(stderr,
            "%s: %s has a \"%s\" line without its \"%s\" line (or two "
            "blocks); fix it by hand, then run this again\n",
            cli->what, path, ATR__SSH_CONFIG_START, ATR__SSH_CONFIG_END);
  bool same =
      rc == 0 && next_len == old.len && memcmp(next, old.data, old.len) == 0;
  if (rc == 0 && dry_run) {
    char *diff = atr__ssh_config_diff(path, old.data, old.len, next, next_len);
    fputs(diff ? diff : "", stdout);
    if (same)
      printf("%s is up to date; nothing would change.\n", path);
    free(diff);
  } else if (rc == 0 && same) {
    printf("%s is up to date.\n", path);
  } else if (rc == 0 &&
             (rc = atr__cli_confirm(
                  cli, false,
                  block ? "Update the atrium block of your SSH config?"
                        : "Remove the atrium block from your SSH "
                          "config?")) == 0) {
    rc = write_atomically(path, next, next_len, mode);
    if (rc != 0)
      fprintf(stderr, "%s: cannot write %s: %s\n", cli->what, path,
              strerror(errno));
    else
      printf("%s %s.\n", block ? "Updated" : "Removed the atrium block from",
             path);
  }
  free(old.data);
  free(next);
  return rc == 0 ? 0 : 1;
}

int atr_cli_config_ssh(const char *name, int argc, char **argv) {
  (void)name;
  atr__cli_t cli = {.cmd = &config_cmd, .set = &config_set};
  snprintf(cli.what, sizeof cli.what, "atrium config-ssh");
  static const struct option opts[] = {
      {"dry-run", no_argument, NULL, 'n'},
      {"remove", no_argument, NULL, 'r'},
      {"ssh-config", required_argument, NULL, 'f'},
      {"yes", no_argument, NULL, 'y'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  bool dry_run = false, remove = false;
  const char *file = NULL;
  int c;
  optind = 0;
  opterr = 0;
  while ((c = getopt_long(argc + 1, argv - 1, "yh", opts, NULL)) != -1) {
    if (c == 'h')
      return printf("usage:\n%s", config_cmd.usage) < 0 ? 1 : 0;
    if (c == 'n')
      dry_run = true;
    else if (c == 'r')
      remove = true;
    else if (c == 'f')
      file = optarg;
    else if (c == 'y')
      cli.o.yes = true;
    else if (optopt == 'f')
      return atr__cli_usage_error(&cli, "%s", "--ssh-config needs a FILE");
    else
      return atr__cli_usage_error(&cli, "unknown flag %s", argv[optind - 2]);
  }
  if (optind - 1 < argc)
    return atr__cli_usage_error(&cli, "unexpected argument %s",
                                argv[optind - 1]);
  char path[PATH_MAX];
  char *block = NULL;
  json_t *all = NULL;
  json_int_t count = 0;
  int rc = config_path(&cli, file, path, sizeof path);
  if (rc == 0 && !remove)
    rc = atr__cli_connect(&cli);
  if (rc == 0 && !remove)
    rc = atr__cli_get_all(&cli, "/api/v2/workspaces?owner=me&", 100,
                          "workspaces", &all, &count);
  if (rc == 0 && !remove)
    rc = make_block(&cli, all, &block);
  if (rc == 0)
    rc = apply(&cli, path, block, dry_run);
  free(block);
  json_decref(all);
  atr_client_free(cli.client);
  return rc;
}
