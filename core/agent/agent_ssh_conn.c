/* core/agent/agent_ssh_conn.c — one SSH connection on its own thread:
 * key exchange, authentication, channel opens and requests (libssh's
 * messages), and the loop that polls the session, every channel's fds
 * and the children's pidfds together.
 *
 * Authentication: the tunnel that carries this connection was opened by
 * the server for a user it authenticated and authorized (the workspace's
 * owner, or a site owner; docs/design/connect.md §1, §3), and nothing but
 * a tunnel reaches this server (workspaces open no port). So "none", any
 * password and any public key are accepted: asking for a key would only
 * make every client configure one for nothing.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_ssh_internal.h"
#include "log.h"

static int auth_ok(ssh_conn_t *c) {
  c->authed = true;
  return SSH_AUTH_SUCCESS;
}

static int on_auth_none(ssh_session session, const char *user, void *ud) {
  (void)session, (void)user;
  return auth_ok(ud);
}

static int on_auth_password(ssh_session session, const char *user,
                            const char *password, void *ud) {
  (void)session, (void)user, (void)password;
  return auth_ok(ud);
}

/* Called twice for a key: offered (state NONE: "it would do"), then
 * signed (VALID); libssh checked the signature. */
static int on_auth_pubkey(ssh_session session, const char *user,
                          struct ssh_key_struct *key, char state, void *ud) {
  (void)session, (void)user, (void)key;
  if (state == SSH_PUBLICKEY_STATE_NONE)
    return SSH_AUTH_SUCCESS;
  return state == SSH_PUBLICKEY_STATE_VALID ? auth_ok(ud) : SSH_AUTH_DENIED;
}

static int on_open(ssh_conn_t *c, ssh_message msg) {
  int sub = ssh_message_subtype(msg);
  if (!c->authed || c->closing ||
      (sub != SSH_CHANNEL_SESSION && sub != SSH_CHANNEL_DIRECT_TCPIP))
    return 1;
  int slot = 0;
  while (slot < SSH_MAX_CHANNELS && c->chans[slot])
    slot++;
  if (slot == SSH_MAX_CHANNELS) {
    atr_log(ATR_LOG_WARN, "agent",
            "ssh: a connection asked for more than %d channels: refused",
            SSH_MAX_CHANNELS);
    return 1;
  }
  int fd = -1;
  if (sub == SSH_CHANNEL_DIRECT_TCPIP) {
    const char *host = ssh_message_channel_request_open_destination(msg);
    int port = ssh_message_channel_request_open_destination_port(msg);
    fd = ssh_chan_dial(host, port);
    if (fd < 0) {
      /* The host is the client's text: named only when it is ours. */
      if (ssh_chan_host_allowed(host))
        atr_log(ATR_LOG_INFO, "agent",
                "ssh: direct-tcpip to %s port %d: nothing accepted", host,
                port);
      else
        atr_log(ATR_LOG_INFO, "agent",
                "ssh: direct-tcpip refused: only 127.0.0.1, localhost and "
                "::1 may be reached");
      return 1;
    }
  }
  ssh_channel ch = ssh_message_channel_request_open_reply_accept(msg);
  ssh_chan_t *chan = ch ? ssh_chan_new(c, ch, fd >= 0) : NULL;
  if (!chan) {
    if (fd >= 0)
      close(fd);
    if (!ch)
      return 1;
    ssh_channel_close(ch);
    ssh_channel_free(ch);
    return 0;
  }
  if (fd >= 0)
    ssh_chan_set_socket(chan, fd);
  c->chans[slot] = chan;
  return 0;
}

/* libssh's one entry for what the client asks: 0 answered here, 1 libssh
 * answers with its default (a refusal). */
static int on_message(ssh_session session, ssh_message msg, void *ud) {
  (void)session;
  ssh_conn_t *c = ud;
  /* Authentication and channel requests have callbacks (on_auth_*,
   * agent_ssh_chan.c); what is left: opens, the userauth service (accepted
   * by default), global requests (remote forwarding: refused). */
  if (ssh_message_type(msg) == SSH_REQUEST_CHANNEL_OPEN)
    return on_open(c, msg);
  return 1;
}

/* --- orphans ----------------------------------------------------------------- */

static void wait_blocking(pid_t pid) {
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  ssh_spawn_forget(pid);
}

void ssh_conn_orphan(ssh_conn_t *c, pid_t pid, int pidfd) {
  if (c->norphans == SSH_MAX_ORPHANS) {
    kill(pid, SIGKILL);
    wait_blocking(pid);
    if (pidfd >= 0)
      close(pidfd);
    return;
  }
  struct ssh_orphan *o = &c->orphans[c->norphans++];
  *o = (struct ssh_orphan){.pid = pid,
                           .pidfd = pidfd,
                           .w = {.fd = -1},
                           .kill_at = ssh_now_ms() + SSH_HANGUP_GRACE_MS};
}

/* Waits for the orphans that exited, kills those past their grace. */
static void reap_orphans(ssh_conn_t *c, bool use_watch) {
  int64_t now = ssh_now_ms();
  for (int i = 0; i < c->norphans;) {
    struct ssh_orphan *o = &c->orphans[i];
    pid_t r = waitpid(o->pid, NULL, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) {
      if (now >= o->kill_at) {
        kill(o->pid, SIGKILL);
        o->kill_at = INT64_MAX;
      }
      i++;
      continue;
    }
    ssh_spawn_forget(o->pid);
    if (use_watch)
      ssh_watch_set(c, &o->w, -1, 0);
    if (o->pidfd >= 0)
      close(o->pidfd);
    /* The last one moves here: libssh knows its watch by address. */
    struct ssh_orphan *last = &c->orphans[--c->norphans];
    if (use_watch)
      ssh_watch_set(c, &last->w, -1, 0);
    *o = *last;
  }
}

static int orphans_timeout(const ssh_conn_t *c, int64_t now) {
  int t = -1;
  for (int i = 0; i < c->norphans; i++) {
    const struct ssh_orphan *o = &c->orphans[i];
    int ot = o->pidfd < 0 ? 200 : -1;
    if (o->kill_at != INT64_MAX) {
      int64_t left = o->kill_at - now;
      int kt = left <= 0 ? 0 : (int)left;
      ot = ot < 0 || kt < ot ? kt : ot;
    }
    if (ot >= 0 && (t < 0 || ot < t))
      t = ot;
  }
  return t;
}

static int min_timeout(int a, int b) {
  return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* --- the loop ------------------------------------------------------------------ */

static void serve(ssh_conn_t *c) {
  while (!atomic_load(&c->s->stopping)) {
    int64_t now = ssh_now_ms();
    if (!c->authed && now >= c->auth_deadline) {
      atr_log(ATR_LOG_INFO, "agent",
              "ssh: a client did not authenticate within %d s",
              SSH_AUTH_TIMEOUT_S);
      return;
    }
    int timeout = c->authed ? -1 : (int)(c->auth_deadline - now);
    for (int i = 0; i < SSH_MAX_CHANNELS; i++)
      if (c->chans[i]) {
        ssh_chan_watch(c->chans[i]);
        timeout = min_timeout(timeout, ssh_chan_timeout(c->chans[i], now));
      }
    for (int i = 0; i < c->norphans; i++)
      ssh_watch_set(c, &c->orphans[i].w, c->orphans[i].pidfd, POLLIN);
    timeout = min_timeout(timeout, orphans_timeout(c, now));
    ssh_event_dopoll(c->event, timeout);
    if (!ssh_is_connected(c->session) ||
        (ssh_get_status(c->session) & (SSH_CLOSED | SSH_CLOSED_ERROR)))
      return;
    for (int i = 0; i < SSH_MAX_CHANNELS; i++)
      if (c->chans[i] && ssh_chan_io(c->chans[i])) {
        ssh_chan_t *done = c->chans[i];
        c->chans[i] = NULL;
        ssh_chan_free(done);
      }
    reap_orphans(c, true);
  }
}

/* The connection is over: its channels end, their children are hung up
 * and waited for (SIGKILL after the grace), so no thread outlives them. */
static void finish(ssh_conn_t *c) {
  c->closing = true;
  for (int i = 0; i < SSH_MAX_CHANNELS; i++)
    if (c->chans[i]) {
      ssh_chan_t *done = c->chans[i];
      c->chans[i] = NULL;
      ssh_chan_free(done);
    }
  for (int i = 0; i < c->norphans; i++)
    ssh_watch_set(c, &c->orphans[i].w, -1, 0);
  if (ssh_is_connected(c->session))
    ssh_disconnect(c->session);
  reap_orphans(c, false);
  while (c->norphans > 0) {
    struct pollfd p[SSH_MAX_ORPHANS];
    nfds_t n = 0;
    for (int i = 0; i < c->norphans; i++)
      if (c->orphans[i].pidfd >= 0)
        p[n++] = (struct pollfd){.fd = c->orphans[i].pidfd, .events = POLLIN};
    poll(p, n, orphans_timeout(c, ssh_now_ms()));
    reap_orphans(c, false);
  }
}

void ssh_conn_run(ssh_conn_t *c) {
  long timeout_s = SSH_AUTH_TIMEOUT_S;
  ssh_options_set(c->session, SSH_OPTIONS_TIMEOUT, &timeout_s);
  ssh_set_auth_methods(c->session, SSH_AUTH_METHOD_NONE |
                                       SSH_AUTH_METHOD_PASSWORD |
                                       SSH_AUTH_METHOD_PUBLICKEY);
  c->server_cb = (struct ssh_server_callbacks_struct){
      .userdata = c,
      .auth_none_function = on_auth_none,
      .auth_password_function = on_auth_password,
      .auth_pubkey_function = on_auth_pubkey,
  };
  ssh_callbacks_init(&c->server_cb);
  ssh_set_server_callbacks(c->session, &c->server_cb);
  ssh_set_message_callback(c->session, on_message, c);
  if (ssh_handle_key_exchange(c->session) != SSH_OK) {
    const char *why = ssh_get_error(c->session);
    if (atomic_load(&c->s->stopping))
      return;
    if (why && *why)
      atr_log(ATR_LOG_INFO, "agent", "ssh: key exchange failed: %s", why);
    else
      atr_log(ATR_LOG_INFO, "agent",
              "ssh: key exchange failed: the client closed the connection "
              "or did not answer within %d s",
              SSH_AUTH_TIMEOUT_S);
    return;
  }
  /* From here on nothing waits inside libssh: the loop's poll does. */
  ssh_set_blocking(c->session, 0);
  c->event = ssh_event_new();
  if (!c->event || ssh_event_add_session(c->event, c->session) != SSH_OK) {
    atr_log(ATR_LOG_ERROR, "agent", "ssh: out of memory for a connection");
    if (c->event)
      ssh_event_free(c->event);
    c->event = NULL;
    return;
  }
  c->auth_deadline = ssh_now_ms() + (int64_t)SSH_AUTH_TIMEOUT_S * 1000;
  serve(c);
  finish(c);
  ssh_event_remove_session(c->event, c->session);
  ssh_event_free(c->event);
  c->event = NULL;
}
