/* A tiny SSH server (libssh) for cli_connect.py: what `atrium ssh`'s
 * client needs from the agent's (docs/design/connect.md §4), on loopback,
 * so the client is tested without the agent. Auth "none" is accepted.
 *
 *   fixture_sshd KEYFILE   (made, ed25519, when it does not exist)
 *
 * Prints "port N" once listening on 127.0.0.1 (a port the OS picked);
 * each connection is served by a child process. exec runs /bin/sh -c
 * with the env requests' LANG and TERM, stdin/stdout/stderr separate, and
 * sends its exit status. shell is a fake: it writes "pty TERM COLSxROWS
 * LANG=…\r\n", then "size COLSxROWS\r\n" at each window-change, echoes
 * what it reads, and exits with status 3 at a 'q'. */
#include <errno.h>
#include <fcntl.h>
/* The message API is deprecated in libssh 0.10 but is the shortest way to
 * a server; the agent's server (core/agent) uses the callbacks. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct conn {
  ssh_session s;
  ssh_channel ch;
  char term[64], lang[64];
  int cols, rows;
  bool pty;
} conn_t;

/* Requests after the shell started come as messages: window-change. */
static int on_message(ssh_session session, ssh_message m, void *ud) {
  (void)session;
  conn_t *c = ud;
  if (ssh_message_type(m) != SSH_REQUEST_CHANNEL ||
      ssh_message_subtype(m) != SSH_CHANNEL_REQUEST_WINDOW_CHANGE)
    return 1;
  char line[64];
  int n = snprintf(line, sizeof line, "size %dx%d\r\n",
                   ssh_message_channel_request_pty_width(m),
                   ssh_message_channel_request_pty_height(m));
  ssh_channel_write(c->ch, line, (uint32_t)n);
  return 0;
}

static int fake_shell(conn_t *c) {
  ssh_set_message_callback(c->s, on_message, c);
  char line[256], buf[4096];
  int n = snprintf(line, sizeof line, "pty %s %dx%d LANG=%s\r\n",
                   c->pty ? c->term : "none", c->cols, c->rows, c->lang);
  ssh_channel_write(c->ch, line, (uint32_t)n);
  for (;;) {
    int r = ssh_channel_read_timeout(c->ch, buf, sizeof buf, 0, 200);
    if (r == SSH_ERROR || (r == 0 && ssh_channel_is_eof(c->ch)))
      return 0;
    if (r > 0 && memchr(buf, 'q', (size_t)r)) {
      ssh_channel_request_send_exit_status(c->ch, 3);
      return 0;
    }
    if (r > 0)
      ssh_channel_write(c->ch, buf, (uint32_t)r);
  }
}

static int pump_out(ssh_channel ch, int fd, int is_err) {
  char buf[16384];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n <= 0)
    return -1;
  return is_err ? ssh_channel_write_stderr(ch, buf, (uint32_t)n)
                : ssh_channel_write(ch, buf, (uint32_t)n);
}

static int run_exec(conn_t *c, const char *command) {
  int in[2], out[2], err[2];
  if (pipe(in) || pipe(out) || pipe(err))
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0), dup2(out[1], 1), dup2(err[1], 2);
    close(in[1]), close(out[0]), close(err[0]);
    if (c->lang[0])
      setenv("LANG", c->lang, 1);
    if (c->term[0])
      setenv("TERM", c->term, 1);
    execl("/bin/sh", "sh", "-c", command, (char *)NULL);
    _exit(127);
  }
  close(in[0]), close(out[1]), close(err[1]);
  /* The child's stdin is fed without blocking: a blocked write here
   * while the child waits for its output to be read would deadlock. */
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  int to_child = in[1];
  bool out_open = true, err_open = true;
  char buf[16384];
  size_t off = 0, len = 0;
  while (out_open || err_open) {
    struct pollfd p[4] = {
        {.fd = out_open ? out[0] : -1, .events = POLLIN},
        {.fd = err_open ? err[0] : -1, .events = POLLIN},
        {.fd = ssh_get_fd(c->s), .events = POLLIN},
        {.fd = len && to_child >= 0 ? to_child : -1, .events = POLLOUT}};
    poll(p, 4, 20);
    if (p[0].revents && pump_out(c->ch, out[0], 0) < 0)
      out_open = false;
    if (p[1].revents && pump_out(c->ch, err[0], 1) < 0)
      err_open = false;
    if (len && to_child >= 0) {
      ssize_t w = write(to_child, buf + off, len);
      if (w > 0)
        off += (size_t)w, len -= (size_t)w;
      else if (w < 0 && errno != EAGAIN)
        len = 0;
    }
    int r;
    if (!len && to_child >= 0 &&
        (r = ssh_channel_read_nonblocking(c->ch, buf, sizeof buf, 0)) > 0)
      off = 0, len = (size_t)r;
    if (!len && to_child >= 0 && ssh_channel_is_eof(c->ch)) {
      close(to_child);
      to_child = -1;
    }
  }
  if (to_child >= 0)
    close(to_child);
  int status = 0;
  waitpid(pid, &status, 0);
  ssh_channel_request_send_exit_status(
      c->ch, WIFEXITED(status) ? WEXITSTATUS(status) : 255);
  return 0;
}

/* One channel request; 1 when the session's program ran (done). */
static int channel_request(conn_t *c, ssh_message m) {
  switch (ssh_message_subtype(m)) {
  case SSH_CHANNEL_REQUEST_PTY:
    c->pty = true;
    snprintf(c->term, sizeof c->term, "%s",
             ssh_message_channel_request_pty_term(m));
    c->cols = ssh_message_channel_request_pty_width(m);
    c->rows = ssh_message_channel_request_pty_height(m);
    ssh_message_channel_request_reply_success(m);
    return 0;
  case SSH_CHANNEL_REQUEST_ENV: {
    const char *name = ssh_message_channel_request_env_name(m);
    const char *value = ssh_message_channel_request_env_value(m);
    if (strcmp(name, "LANG") == 0)
      snprintf(c->lang, sizeof c->lang, "%s", value);
    else if (strcmp(name, "TERM") == 0 && !c->pty)
      snprintf(c->term, sizeof c->term, "%s", value);
    ssh_message_channel_request_reply_success(m);
    return 0;
  }
  case SSH_CHANNEL_REQUEST_EXEC: {
    char *command = strdup(ssh_message_channel_request_command(m));
    ssh_message_channel_request_reply_success(m);
    run_exec(c, command);
    free(command);
    return 1;
  }
  case SSH_CHANNEL_REQUEST_SHELL:
    ssh_message_channel_request_reply_success(m);
    fake_shell(c);
    return 1;
  default:
    ssh_message_reply_default(m);
    return 0;
  }
}

static void serve(ssh_bind b, int fd) {
  conn_t c = {.s = ssh_new(), .cols = 0, .rows = 0};
  signal(SIGCHLD, SIG_DFL); /* exec's waitpid needs its child */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (ssh_bind_accept_fd(b, c.s, fd) != SSH_OK ||
      ssh_handle_key_exchange(c.s) != SSH_OK)
    _exit(1);
  ssh_set_auth_methods(c.s, SSH_AUTH_METHOD_NONE);
  int done = 0;
  ssh_message m;
  while (!done && (m = ssh_message_get(c.s))) {
    int type = ssh_message_type(m);
    if (type == SSH_REQUEST_AUTH &&
        ssh_message_subtype(m) == SSH_AUTH_METHOD_NONE) {
      ssh_message_auth_reply_success(m, 0);
    } else if (type == SSH_REQUEST_CHANNEL_OPEN &&
               ssh_message_subtype(m) == SSH_CHANNEL_SESSION && !c.ch) {
      c.ch = ssh_message_channel_request_open_reply_accept(m);
    } else if (type == SSH_REQUEST_CHANNEL && c.ch) {
      done = channel_request(&c, m);
    } else {
      ssh_message_reply_default(m);
    }
    ssh_message_free(m);
  }
  if (c.ch) {
    ssh_channel_send_eof(c.ch);
    ssh_channel_close(c.ch);
  }
  /* The client ends the connection once it has the close: until then
   * (5 s at most) its packets are handled, so it never sees the socket
   * go first (OpenSSH would exit 255). */
  ssh_event ev = ssh_event_new();
  if (ev && ssh_event_add_session(ev, c.s) == SSH_OK)
    for (int i = 0; i < 50 && ssh_is_connected(c.s); i++)
      if (ssh_event_dopoll(ev, 100) == SSH_ERROR)
        break;
  if (ev) {
    ssh_event_remove_session(ev, c.s);
    ssh_event_free(ev);
  }
  ssh_disconnect(c.s);
  ssh_free(c.s);
  _exit(0);
}

int main(int argc, char **argv) {
  if (argc != 2)
    return 2;
  /* Never outlive the test that started it. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  ssh_key key = NULL;
  if (ssh_pki_import_privkey_file(argv[1], NULL, NULL, NULL, &key) != SSH_OK &&
      (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK ||
       ssh_pki_export_privkey_file(key, NULL, NULL, NULL, argv[1]) != SSH_OK))
    return 1;
  ssh_bind b = ssh_bind_new();
  ssh_bind_options_set(b, SSH_BIND_OPTIONS_IMPORT_KEY, key);
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 16) ||
      getsockname(ls, (struct sockaddr *)&a, &len))
    return 1;
  signal(SIGCHLD, SIG_IGN);
  printf("port %d\n", ntohs(a.sin_port));
  fflush(stdout);
  for (;;) {
    int fd = accept(ls, NULL, NULL);
    if (fd < 0 && errno == EINTR)
      continue;
    if (fd < 0)
      return 1;
    if (fork() == 0) {
      close(ls);
      serve(b, fd);
    }
    close(fd);
  }
}
