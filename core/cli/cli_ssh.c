/* core/cli/cli_ssh.c — `atrium ssh WORKSPACE [--stdio] [-- COMMAND...]`
 * (cli_connect.h): libssh's client over a tunnel of kind ssh, or with
 * --stdio the tunnel's bytes on stdin/stdout for OpenSSH's ProxyCommand.
 *
 * The SSH layer does not authenticate the user (the tunnel did: the
 * session token and the server's RBAC), so auth is "none". The agent's
 * host key is stable per workspace: the first one seen is recorded in
 * <config dir>/known_hosts (OpenSSH's format, under the alias
 * "atrium.OWNER.WORKSPACE", the HostKeyAlias `config-ssh` writes) and a
 * different one later is refused, as OpenSSH does. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "atrium/error.h"
#include "cli_connect.h"
#include "cli_tunnel.h"
#include "session_file.h"

#define MAX_COMMAND 65536
#define KNOWN_LINE 8192

static const atr__cli_command_t ssh_cmd = {
    NULL,
    "ssh",
    NULL,
    0,
    1,
    1,
    "  atrium ssh WORKSPACE [--stdio] [-- COMMAND [ARG...]]\n"
    "      A shell (or COMMAND, with its exit status) in the workspace,\n"
    "      through the server. WORKSPACE: NAME, OWNER/NAME, with .AGENT\n"
    "      to pick an agent. --stdio: the raw SSH stream on stdin/stdout,\n"
    "      for OpenSSH's ProxyCommand (`atrium config-ssh` writes it).\n"};

static const atr__cli_commands_t ssh_set = {
    .list = &ssh_cmd, .n = 1, .footer = "", .group_footer = ""};

/* ---- the terminal --------------------------------------------------------- */

static struct termios saved_tty;
static volatile sig_atomic_t tty_raw, winch;

static void restore_tty(void) {
  if (tty_raw) {
    tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tty);
    tty_raw = 0;
  }
}

/* SIGTERM, SIGHUP, SIGQUIT: the terminal back as it was, then die of it. */
static void on_fatal(int sig) {
  if (tty_raw)
    tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tty);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void on_winch(int sig) {
  (void)sig;
  winch = 1;
}

static int raw_tty(void) {
  struct termios raw;
  if (tcgetattr(STDIN_FILENO, &saved_tty) != 0)
    return -1;
  raw = saved_tty;
  cfmakeraw(&raw);
  struct sigaction sa = {.sa_handler = on_fatal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sigaction(SIGQUIT, &sa, NULL);
  atexit(restore_tty);
  if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) != 0)
    return -1;
  tty_raw = 1;
  return 0;
}

static void tty_size(int *cols, int *rows) {
  struct winsize ws;
  *cols = 80;
  *rows = 24;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
    *cols = ws.ws_col;
    *rows = ws.ws_row;
  }
}

/* ---- host keys ------------------------------------------------------------ */

static int known_hosts_path(char *buf, size_t size) {
  char dir[4096];
  if (atr_client_config_dir(dir, sizeof dir) != 0)
    return -1;
  mkdir(dir, 0700);
  int n = snprintf(buf, size, "%s/known_hosts", dir);
  return n > 0 && (size_t)n < size ? 0 : -1;
}

/* 0 the key is the recorded one or was recorded now; 1 after printing why
 * it is refused. */
static int check_host_key(ssh_session s, const char *what, const char *alias,
                          const char *shown) {
  ssh_key key = NULL;
  char *b64 = NULL, path[4200], line[KNOWN_LINE], mine[KNOWN_LINE];
  if (ssh_get_server_publickey(s, &key) != SSH_OK ||
      ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK ||
      known_hosts_path(path, sizeof path) != 0) {
    fprintf(stderr, "%s: cannot read the workspace's host key\n", what);
    ssh_key_free(key);
    ssh_string_free_char(b64);
    return 1;
  }
  snprintf(mine, sizeof mine, "%s %s %s\n", alias,
           ssh_key_type_to_char(ssh_key_type(key)), b64);
  ssh_key_free(key);
  ssh_string_free_char(b64);
  FILE *f = fopen(path, "a+");
  if (!f) {
    fprintf(stderr, "%s: cannot open %s: %s\n", what, path, strerror(errno));
    return 1;
  }
  fchmod(fileno(f), 0600);
  size_t alen = strlen(alias);
  int found = 0; /* 1 same key, -1 another key under the alias */
  rewind(f);
  while (found != 1 && fgets(line, sizeof line, f))
    if (strncmp(line, alias, alen) == 0 && line[alen] == ' ')
      found = strcmp(line, mine) == 0 ? 1 : -1;
  /* Appended ("a+" writes at the end; the seek is C's rule between a
   * read and a write). */
  if (found == 0 && (fseek(f, 0, SEEK_END) != 0 || fputs(mine, f) < 0))
    found = -2;
  if (fclose(f) != 0 && found == 0)
    found = -2;
  if (found == -1)
    fprintf(stderr,
            "%s: WARNING: the host key of workspace %s changed since it was "
            "first seen.\nA workspace keeps its host key across restarts: "
            "if %s was deleted and\ncreated again, remove the lines of %s "
            "from %s;\notherwise something is impersonating it. Refusing to "
            "connect.\n",
            what, shown, shown, alias, path);
  else if (found == -2)
    fprintf(stderr, "%s: cannot record the host key in %s\n", what, path);
  return found >= 0 ? 0 : 1;
}

/* ---- the session ---------------------------------------------------------- */

static void send_env(ssh_channel ch) {
  static const char *const names[] = {"LANG", "TERM"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *v = getenv(names[i]);
    /* The agent may refuse one; that is not worth failing for. */
    if (v && *v)
      ssh_channel_request_env(ch, names[i], v);
  }
}

/* What the remote side sent, to stdout and stderr; -1 at EOF, -2 on an
 * error, else how many bytes. */
static int drain(ssh_channel ch, char *buf, size_t size) {
  int total = 0;
  for (int is_err = 0; is_err < 2; is_err++) {
    for (;;) {
      int n = ssh_channel_read_nonblocking(ch, buf, (uint32_t)size, is_err);
      /* SSH_EOF: this stream is done; the other may still hold bytes. */
      if (n == SSH_ERROR)
        return -2;
      if (n <= 0)
        break;
      int fd = is_err ? STDERR_FILENO : STDOUT_FILENO;
      for (int off = 0; off < n;) {
        ssize_t w = write(fd, buf + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
          continue;
        if (w <= 0)
          return -2;
        off += (int)w;
      }
      total += n;
    }
  }
  return total == 0 && ssh_channel_is_eof(ch) ? -1 : total;
}

/* What stdin gave that the channel has not taken yet: no more is written
 * than the remote window allows, so a write never blocks waiting for a
 * window adjust while the other side waits for ours (libssh grants
 * window only as we read). */
typedef struct pending {
  char buf[32768];
  size_t off, len;
} pending_t;

static int feed(ssh_channel ch, pending_t *in) {
  uint32_t window = ssh_channel_window_size(ch);
  size_t n = in->len < window ? in->len : window;
  if (n == 0)
    return 0;
  int w = ssh_channel_write(ch, in->buf + in->off, (uint32_t)n);
  if (w < 0)
    return -1;
  in->off += (size_t)w;
  in->len -= (size_t)w;
  return 0;
}

/* stdin to the channel, the channel to stdout/stderr, until the remote
 * side's EOF. */
static int run_channel(ssh_session s, ssh_channel ch, bool interactive) {
  char buf[32768];
  pending_t in = {.len = 0};
  bool in_eof = false, eof_sent = false;
  for (;;) {
    if (winch && interactive) {
      int cols, rows;
      winch = 0;
      tty_size(&cols, &rows);
      ssh_channel_change_pty_size(ch, cols, rows);
    }
    int got = drain(ch, buf, sizeof buf);
    if (got == -2)
      return -1;
    if (got < 0)
      break;
    if (feed(ch, &in) != 0)
      return -1;
    if (in_eof && in.len == 0 && !eof_sent) {
      ssh_channel_send_eof(ch);
      eof_sent = true;
    }
    bool want_in = !in_eof && in.len == 0;
    struct pollfd p[2] = {{.fd = want_in ? STDIN_FILENO : -1, .events = POLLIN},
                          {.fd = ssh_get_fd(s), .events = POLLIN}};
    /* Waiting for window with bytes in hand: look again soon. */
    if (poll(p, 2, in.len ? 20 : 500) < 0 && errno != EINTR)
      return -1;
    if (want_in && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(STDIN_FILENO, in.buf, sizeof in.buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        in_eof = true;
      else
        in.off = 0, in.len = (size_t)n;
    }
  }
  return 0;
}

/* COMMAND... joined by spaces, as OpenSSH does; NULL when none. */
static char *join_command(int argc, char **argv, int *too_long) {
  size_t len = 0;
  *too_long = 0;
  for (int i = 0; i < argc; i++)
    len += strlen(argv[i]) + 1;
  if (argc == 0)
    return NULL;
  if (len > MAX_COMMAND) {
    *too_long = 1;
    return NULL;
  }
  char *cmd = calloc(1, len + 1);
  size_t at = 0;
  for (int i = 0; cmd && i < argc; i++) {
    size_t n = strlen(argv[i]);
    if (i)
      cmd[at++] = ' ';
    memcpy(cmd + at, argv[i], n);
    at += n;
  }
  return cmd;
}

static int open_channel(ssh_session s, const char *what, const char *command,
                        bool pty, ssh_channel *out) {
  ssh_channel ch = ssh_channel_new(s);
  if (!ch || ssh_channel_open_session(ch) != SSH_OK) {
    fprintf(stderr, "%s: the workspace refused a session: %s\n", what,
            ssh_get_error(s));
    ssh_channel_free(ch);
    return 1;
  }
  send_env(ch);
  int cols, rows, rc = SSH_OK;
  if (pty) {
    const char *term = getenv("TERM");
    tty_size(&cols, &rows);
    rc = ssh_channel_request_pty_size(ch, term && *term ? term : "xterm", cols,
                                      rows);
  }
  if (rc == SSH_OK)
    rc = command ? ssh_channel_request_exec(ch, command)
                 : ssh_channel_request_shell(ch);
  if (rc != SSH_OK) {
    fprintf(stderr, "%s: the workspace refused to run %s: %s\n", what,
            command ? "the command" : "a shell", ssh_get_error(s));
    ssh_channel_free(ch);
    return 1;
  }
  *out = ch;
  return 0;
}

static int ssh_session_run(const atr__tunnel_target_t *t, const char *what,
                           int fd, const char *command) {
  char alias[2 * ATR__TUNNEL_FIELD_MAX + 16], shown[2 * ATR__TUNNEL_FIELD_MAX];
  snprintf(alias, sizeof alias, "atrium.%s.%s", t->owner, t->workspace);
  snprintf(shown, sizeof shown, "%s/%s", t->owner, t->workspace);
  ssh_session s = ssh_new();
  /* libssh closes the fd it is given: it gets a copy, and the tunnel's
   * own is closed (its pump joined) after ssh_free. */
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int no = 0, rc = 1;
  if (!s || copy < 0) {
    ssh_free(s);
    if (copy >= 0)
      close(copy);
    atr__tunnel_close(fd);
    return 1;
  }
  ssh_options_set(s, SSH_OPTIONS_FD, &copy);
  ssh_options_set(s, SSH_OPTIONS_HOST, alias);
  ssh_options_set(s, SSH_OPTIONS_USER, t->owner);
  /* Not ~/.ssh/config: config-ssh's block there would loop back here. */
  ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no);
  ssh_channel ch = NULL;
  bool interactive = !command && isatty(STDIN_FILENO);
  if (ssh_connect(s) != SSH_OK)
    fprintf(stderr, "%s: SSH with the workspace failed: %s\n", what,
            ssh_get_error(s));
  else if (check_host_key(s, what, alias, shown) != 0)
    ;
  else if (ssh_userauth_none(s, NULL) != SSH_AUTH_SUCCESS)
    fprintf(stderr, "%s: the workspace's SSH server refused the session: %s\n",
            what, ssh_get_error(s));
  else
    rc = open_channel(s, what, command, interactive, &ch);
  if (rc == 0) {
    struct sigaction sa = {.sa_handler = on_winch};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, NULL);
    if (interactive && raw_tty() != 0)
      fprintf(stderr, "%s: cannot set the terminal to raw mode\n", what);
    rc = run_channel(s, ch, interactive) == 0 ? 0 : 255;
    restore_tty();
    if (rc == 0) {
      int status = ssh_channel_get_exit_status(ch);
      rc = status >= 0 && status < 256 ? status : 255;
    } else {
      fprintf(stderr, "%s: the connection to the workspace broke: %s\n", what,
              ssh_get_error(s));
    }
    ssh_channel_close(ch);
    ssh_channel_free(ch);
  }
  ssh_disconnect(s);
  ssh_free(s);
  atr__tunnel_close(fd);
  return rc;
}

/* ---- the command ---------------------------------------------------------- */

int atr_cli_ssh(const char *name, int argc, char **argv) {
  (void)name;
  atr__cli_t cli = {.cmd = &ssh_cmd, .set = &ssh_set};
  snprintf(cli.what, sizeof cli.what, "atrium ssh");
  static const struct option opts[] = {{"stdio", no_argument, NULL, 's'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  bool stdio = false;
  int c;
  optind = 0;
  opterr = 0;
  /* argv[-1] is the command's name: getopt skips argv[0]. */
  while ((c = getopt_long(argc + 1, argv - 1, "+h", opts, NULL)) != -1) {
    if (c == 's')
      stdio = true;
    else if (c == 'h')
      return printf("usage:\n%s", ssh_cmd.usage) < 0 ? 1 : 0;
    else
      return atr__cli_usage_error(&cli, "unknown flag %s", argv[optind - 2]);
  }
  int first = optind - 1;
  if (first >= argc)
    return atr__cli_usage_error(&cli, "%s", "missing argument WORKSPACE");
  const char *ref = argv[first];
  int rest = first + 1;
  /* Flags may also come after WORKSPACE, up to "--". */
  for (; rest < argc && strcmp(argv[rest], "--") != 0; rest++) {
    if (strcmp(argv[rest], "--stdio") == 0)
      stdio = true;
    else
      break;
  }
  if (rest < argc && strcmp(argv[rest], "--") == 0)
    rest++;
  int too_long = 0;
  char *command = join_command(argc - rest, argv + rest, &too_long);
  if (too_long)
    return atr__cli_usage_error(&cli, "%s", "COMMAND is too long");
  if (stdio && command) {
    free(command);
    return atr__cli_usage_error(&cli, "%s", "--stdio takes no COMMAND");
  }
  atr__tunnel_target_t t;
  int rc = atr__tunnel_resolve(&cli, ref, &t);
  int fd = -1;
  signal(SIGPIPE, SIG_IGN);
  if (rc == 0)
    rc = atr__tunnel_open(&t, cli.what, "ssh", 0, &fd);
  if (rc == 0 && stdio) {
    rc = atr__tunnel_pump2(STDIN_FILENO, STDOUT_FILENO, fd, NULL) == 0 ? 0 : 1;
    atr__tunnel_close(fd);
  } else if (rc == 0) {
    rc = ssh_session_run(&t, cli.what, fd, command);
  }
  atr__tunnel_target_clear(&t);
  atr_client_free(cli.client);
  free(command);
  return rc;
}
