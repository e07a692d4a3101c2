/* core/agent/agent_ssh.c — the agent's SSH server: the host key, the
 * configuration and one thread per connection (agent_ssh.h). A
 * connection's work is in agent_ssh_conn.c. */
#include "agent_ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_ssh_internal.h"
#include "agent_util.h"
#include "log.h"

#define CFG_ENV_MAX 1024

static bool executable(const char *path) {
  return path && access(path, X_OK) == 0;
}

/* sftp-server: the bundle's (libexec/ beside bin/ and lib/; when the
 * launcher runs the agent through the bundled loader /proc/self/exe is
 * lib/ld-linux…, a sibling of bin/ too), then the distributions' places,
 * then the PATH. */
static char *find_sftp_server(void) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  const char *execfn = (const char *)getauxval(AT_EXECFN);
  if (n <= 0 && execfn && *execfn == '/') /* no /proc: the path exec'd */
    n = snprintf(exe, sizeof exe, "%s", execfn);
  if (n > 0 && (size_t)n < sizeof exe) {
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = '\0';
      char *p = agent_strf("%s/../libexec/sftp-server", exe);
      if (p && executable(p))
        return p;
      free(p);
    }
  }
  static const char *const known[] = {
      "/usr/lib/openssh/sftp-server",     /* Debian, Ubuntu */
      "/usr/libexec/openssh/sftp-server", /* Fedora, RHEL */
      "/usr/lib/ssh/sftp-server",         /* Alpine, Arch */
      "/usr/libexec/sftp-server",         /* macOS, BSDs */
  };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (executable(known[i]))
      return strdup(known[i]);
  const char *path = getenv("PATH");
  while (path && *path) {
    size_t len = strcspn(path, ":");
    char *p = agent_strf("%.*s/sftp-server", (int)len, path);
    if (len > 0 && p && executable(p))
      return p;
    free(p);
    path += len + (path[len] == ':');
  }
  return NULL;
}

static void log_fingerprint(ssh_key key) {
  unsigned char *hash = NULL;
  size_t hlen = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) !=
      SSH_OK)
    return;
  char *fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
  atr_log(ATR_LOG_INFO, "agent", "ssh: host key %s %s",
          ssh_key_type_to_char(ssh_key_type(key)), fp ? fp : "?");
  ssh_string_free_char(fp);
  ssh_clean_pubkey_hash(&hash);
}

static int copy_config(agent_ssh_t *s, const agent_ssh_config_t *cfg,
                       char **err) {
  size_t n = 0;
  while (cfg->env && cfg->env[n]) {
    const char *eq = strchr(cfg->env[n], '=');
    if (!eq || eq == cfg->env[n]) {
      *err = agent_strf("ssh: env[%zu]: not NAME=value", n);
      return -1;
    }
    if (++n > CFG_ENV_MAX) {
      *err = agent_strf("ssh: env: more than %d variables", CFG_ENV_MAX);
      return -1;
    }
  }
  s->env = calloc(n + 1, sizeof *s->env);
  if (!s->env)
    goto oom;
  for (size_t i = 0; i < n; i++)
    if (!(s->env[i] = strdup(cfg->env[i])))
      goto oom;
  if ((cfg->directory && !(s->directory = strdup(cfg->directory))) ||
      (cfg->shell && !(s->shell = strdup(cfg->shell))))
    goto oom;
  s->sftp_server =
      cfg->sftp_server ? strdup(cfg->sftp_server) : find_sftp_server();
  if (cfg->sftp_server && !s->sftp_server)
    goto oom;
  if (s->sftp_server) {
    char *nss = NULL;
    const char *slash = strrchr(s->sftp_server, '/');
    if (slash && asprintf(&nss, "%.*s/../lib/libnss_wrapper.so",
                          (int)(slash - s->sftp_server), s->sftp_server) > 0)
      s->sftp_nss = access(nss, R_OK) == 0;
    free(nss);
  }
  if (!s->sftp_server)
    atr_log(ATR_LOG_WARN, "agent",
            "ssh: no sftp-server found (bundle, /usr/lib/openssh, PATH): "
            "sftp and scp will be refused");
  return 0;
oom:
  *err = agent_strf("ssh: out of memory");
  return -1;
}

static void free_config(agent_ssh_t *s) {
  for (size_t i = 0; s->env && s->env[i]; i++)
    free(s->env[i]);
  free(s->env);
  free(s->directory);
  free(s->shell);
  free(s->sftp_server);
}

agent_ssh_t *agent_ssh_new(const agent_ssh_config_t *cfg, char **err) {
  *err = NULL;
  agent_ssh_t *s = calloc(1, sizeof *s);
  if (!s) {
    *err = agent_strf("ssh: out of memory");
    return NULL;
  }
  pthread_mutex_init(&s->conns_lock, NULL);
  atomic_init(&s->stopping, false);
  ssh_key key = NULL;
  if (copy_config(s, cfg, err) < 0 ||
      !(key = ssh_host_key_load(cfg->host_key, err)))
    goto fail;
  log_fingerprint(key);
  s->bind = ssh_bind_new();
  bool no = false;
  /* The bind takes the key. No config file: the image's
   * /etc/ssh/libssh_server_config must not change the agent. */
  if (!s->bind ||
      ssh_bind_options_set(s->bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no) < 0 ||
      ssh_bind_options_set(s->bind, SSH_BIND_OPTIONS_IMPORT_KEY, key) < 0) {
    *err = agent_strf("ssh: the host key was refused: %s",
                      s->bind ? ssh_get_error(s->bind) : "out of memory");
    ssh_key_free(key);
    goto fail;
  }
  return s;
fail:
  if (s->bind)
    ssh_bind_free(s->bind);
  free_config(s);
  pthread_mutex_destroy(&s->conns_lock);
  free(s);
  return NULL;
}

static void *conn_thread(void *arg) {
  ssh_conn_t *c = arg;
  ssh_conn_run(c);
  ssh_free(c->session); /* closes the socket */
  c->session = NULL;
  pthread_mutex_lock(&c->s->conns_lock);
  close(c->wake_fd);
  c->wake_fd = -1;
  c->done = true;
  c->s->nconns--;
  pthread_mutex_unlock(&c->s->conns_lock);
  return NULL;
}

/* Joins the threads that ended, so a long-lived agent keeps none. */
static void reap_done(agent_ssh_t *s) {
  pthread_mutex_lock(&s->conns_lock);
  ssh_conn_t *done = NULL;
  for (ssh_conn_t **p = &s->conns; *p;) {
    ssh_conn_t *c = *p;
    if (c->done) {
      *p = c->next;
      c->next = done;
      done = c;
    } else {
      p = &c->next;
    }
  }
  pthread_mutex_unlock(&s->conns_lock);
  while (done) {
    ssh_conn_t *next = done->next;
    pthread_join(done->thread, NULL);
    free(done);
    done = next;
  }
}

int agent_ssh_serve(agent_ssh_t *s, int fd) {
  reap_done(s);
  if (atomic_load(&s->stopping)) {
    close(fd);
    return -1;
  }
  pthread_mutex_lock(&s->conns_lock);
  bool full = s->nconns >= SSH_MAX_CONNECTIONS;
  pthread_mutex_unlock(&s->conns_lock);
  if (full) {
    atr_log(ATR_LOG_WARN, "agent",
            "ssh: %d connections already: one more was refused",
            SSH_MAX_CONNECTIONS);
    close(fd);
    return -1;
  }
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC); /* never into a session's shell */
  /* libssh writes after POLLOUT: a short write, never a thread stuck in
   * send() while the peer is slow to read. */
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0)
    (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  ssh_conn_t *c = calloc(1, sizeof *c);
  if (!c || (c->wake_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0 ||
      !(c->session = ssh_new())) {
    atr_log(ATR_LOG_ERROR, "agent", "ssh: a connection could not start: %s",
            strerror(errno ? errno : ENOMEM));
    goto fail;
  }
  c->s = s;
  if (ssh_bind_accept_fd(s->bind, c->session, fd) != SSH_OK) {
    atr_log(ATR_LOG_ERROR, "agent", "ssh: a connection could not start: %s",
            ssh_get_error(s->bind));
    goto fail;
  }
  pthread_mutex_lock(&s->conns_lock);
  int rc = pthread_create(&c->thread, NULL, conn_thread, c);
  if (rc == 0) {
    c->next = s->conns;
    s->conns = c;
    s->nconns++;
  }
  pthread_mutex_unlock(&s->conns_lock);
  if (rc != 0) {
    atr_log(ATR_LOG_ERROR, "agent", "ssh: no thread for a connection: %s",
            strerror(rc));
    goto fail;
  }
  return 0;
fail:
  if (c && c->session) {
    /* Once accepted, the session owns fd and ssh_free closes it. */
    if (ssh_get_fd(c->session) == fd)
      fd = -1;
    ssh_free(c->session);
  }
  if (c && c->wake_fd >= 0)
    close(c->wake_fd);
  free(c);
  if (fd >= 0)
    close(fd);
  return -1;
}

int agent_ssh_connections(agent_ssh_t *s) {
  pthread_mutex_lock(&s->conns_lock);
  int n = s->nconns;
  pthread_mutex_unlock(&s->conns_lock);
  return n;
}

void agent_ssh_free(agent_ssh_t *s) {
  if (!s)
    return;
  atomic_store(&s->stopping, true);
  /* A shutdown wakes a thread wherever it waits (the key exchange, its
   * poll); the dup keeps the number ours while libssh may close its fd. */
  pthread_mutex_lock(&s->conns_lock);
  for (ssh_conn_t *c = s->conns; c; c = c->next)
    if (!c->done)
      shutdown(c->wake_fd, SHUT_RDWR);
  ssh_conn_t *all = s->conns;
  s->conns = NULL;
  pthread_mutex_unlock(&s->conns_lock);
  while (all) {
    ssh_conn_t *next = all->next;
    pthread_join(all->thread, NULL);
    free(all);
    all = next;
  }
  ssh_bind_free(s->bind);
  free_config(s);
  pthread_mutex_destroy(&s->conns_lock);
  free(s);
}
