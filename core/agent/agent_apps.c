/* core/agent/agent_apps.c — app health checks: every interval a plain
 * HTTP/1.1 GET of the app's healthcheck URL (uv_tcp + http-parser); a
 * status below 500 is healthy, `threshold` failures in a row (no answer
 * within the interval counts) unhealthy. POST /me/app-health when any
 * app's health changed. */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_apps.h"
#include "agent_internal.h"
#include "agent_util.h"
#include "atrium/error.h"
#include "log.h"

#define MAX_APPS 32

typedef struct app_check app_check_t;

typedef struct app {
  struct agent_apps *apps;
  char *id;
  char host[256], port[8], path[1024];
  int64_t interval_ms;
  int threshold, fails;
  const char *health; /* "initializing", "healthy", "unhealthy" */
  uv_timer_t timer;
  app_check_t *check; /* in progress */
} app_t;

struct app_check {
  app_t *app; /* NULL once abandoned */
  uv_getaddrinfo_t gai;
  uv_connect_t connect;
  uv_tcp_t tcp;
  uv_write_t write;
  http_parser parser;
  char req[1400];
  char buf[4096];
  bool tcp_open;
};

struct agent_apps {
  agent_t *a;
  app_t app[MAX_APPS];
  size_t n;
  bool stopping, dirty, in_flight;
};

int agent_url_split(const char *url, char *host, size_t host_size, char *port,
                    size_t port_size, char *path, size_t path_size) {
  if (strncmp(url, "http://", 7) != 0)
    return ATR_EINVAL;
  const char *h = url + 7;
  const char *slash = strchr(h, '/');
  const char *end = slash ? slash : h + strlen(h);
  const char *colon = NULL;
  const char *hend = end;
  if (*h == '[') {
    const char *rb = memchr(h, ']', (size_t)(end - h));
    if (!rb)
      return ATR_EINVAL;
    h++;
    hend = rb;
    colon = rb[1] == ':' ? rb + 1 : NULL;
  } else {
    colon = memchr(h, ':', (size_t)(end - h));
    if (colon)
      hend = colon;
  }
  size_t hl = (size_t)(hend - h);
  size_t pl = colon ? (size_t)(end - colon - 1) : 2;
  if (hl == 0 || hl >= host_size || pl == 0 || pl >= port_size ||
      strlen(slash ? slash : "/") >= path_size)
    return ATR_EINVAL;
  memcpy(host, h, hl);
  host[hl] = '\0';
  if (colon) {
    memcpy(port, colon + 1, pl);
    port[pl] = '\0';
  } else {
    snprintf(port, port_size, "80");
  }
  for (const char *c = port; *c; c++)
    if (*c < '0' || *c > '9')
      return ATR_EINVAL;
  snprintf(path, path_size, "%s", slash ? slash : "/");
  return 0;
}

static void on_health_reply(void *ud, int status, const char *b, size_t n) {
  (void)b;
  (void)n;
  agent_apps_t *p = ud;
  p->in_flight = false;
  if (status < 200 || status >= 300)
    p->dirty = true; /* sent again on the next change or tick */
}

static void report(agent_apps_t *p) {
  if (!p->dirty || p->in_flight || !agent_conn_up(p->a->conn))
    return;
  json_t *h = json_object();
  for (size_t i = 0; i < p->n; i++)
    json_object_set_new(h, p->app[i].id, json_string(p->app[i].health));
  json_t *body = json_pack("{so}", "healths", h);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  if (text && agent_conn_request(p->a->conn, "POST", AGENT_API "/app-health",
                                 text, on_health_reply, p) == 0) {
    p->in_flight = true;
    p->dirty = false;
  }
  free(text);
  json_decref(body);
}

static void result(app_t *app, bool ok) {
  const char *before = app->health;
  app->fails = ok ? 0 : app->fails + 1;
  if (ok)
    app->health = "healthy";
  else if (app->fails >= app->threshold)
    app->health = "unhealthy";
  if (strcmp(before, app->health) != 0) {
    atr_log(ATR_LOG_INFO, "agent", "app %s: %s", app->id, app->health);
    app->apps->dirty = true;
  }
  report(app->apps);
}

static void on_check_closed(uv_handle_t *h) {
  free(h->data);
}

/* The check is over (answered, failed or abandoned): free it once its
 * socket closed. */
static void end_check(app_check_t *c, int ok) {
  if (c->app) {
    app_t *app = c->app;
    app->check = NULL;
    c->app = NULL;
    if (ok >= 0)
      result(app, ok == 1);
  }
  if (c->tcp_open) {
    c->tcp_open = false;
    c->tcp.data = c;
    uv_close((uv_handle_t *)&c->tcp, on_check_closed);
  }
}

static int on_headers_complete(http_parser *hp) {
  app_check_t *c = hp->data;
  end_check(c, hp->status_code > 0 && hp->status_code < 500);
  return 1;
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf) {
  (void)sz;
  app_check_t *c = h->data;
  *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  app_check_t *c = st->data;
  static const http_parser_settings settings = {.on_headers_complete =
                                                    on_headers_complete};
  if (n > 0 && c->app) {
    size_t used =
        http_parser_execute(&c->parser, &settings, buf->base, (size_t)n);
    if (c->app && (used != (size_t)n || c->parser.http_errno != HPE_OK))
      end_check(c, 0);
  } else if (n < 0) {
    end_check(c, 0);
  }
}

static void on_written(uv_write_t *w, int status) {
  app_check_t *c = w->data;
  if (status != 0)
    end_check(c, 0);
}

static void on_connect(uv_connect_t *req, int status) {
  app_check_t *c = req->data;
  if (status != 0 || !c->app) {
    end_check(c, status != 0 ? 0 : -1);
    return;
  }
  http_parser_init(&c->parser, HTTP_RESPONSE);
  c->parser.data = c;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  uv_buf_t b = uv_buf_init(c->req, (unsigned)strlen(c->req));
  c->write.data = c;
  uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  app_check_t *c = req->data;
  if (status != 0 || !c->app || !res) {
    if (res)
      uv_freeaddrinfo(res);
    if (c->app)
      end_check(c, 0);
    else
      free(c);
    return;
  }
  app_t *app = c->app;
  uv_tcp_init(app->apps->a->loop, &c->tcp);
  c->tcp.data = c;
  c->tcp_open = true;
  c->connect.data = c;
  int rc = uv_tcp_connect(&c->connect, &c->tcp, res->ai_addr, on_connect);
  uv_freeaddrinfo(res);
  if (rc != 0)
    end_check(c, 0);
}

static void start_check(app_t *app) {
  app_check_t *c = calloc(1, sizeof *c);
  if (!c)
    return;
  c->app = app;
  snprintf(c->req, sizeof c->req,
           "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: atrium-agent\r\n"
           "Connection: close\r\n\r\n",
           app->path, app->host, app->port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  c->gai.data = c;
  app->check = c;
  if (uv_getaddrinfo(app->apps->a->loop, &c->gai, on_resolved, app->host,
                     app->port, &hints) != 0) {
    app->check = NULL;
    free(c);
    result(app, false);
  }
}

/* Abandon a check still running: it counts as a failure (when counted). */
static void abandon(app_t *app, bool count) {
  app_check_t *c = app->check;
  if (!c)
    return;
  if (!c->tcp_open) {
    /* still resolving: on_resolved frees it */
    app->check = NULL;
    c->app = NULL;
    uv_cancel((uv_req_t *)&c->gai);
    if (count)
      result(app, false);
    return;
  }
  end_check(c, count ? 0 : -1);
}

static void on_tick(uv_timer_t *t) {
  app_t *app = t->data;
  abandon(app, true);
  start_check(app);
}

static bool add_app(agent_apps_t *p, const json_t *o) {
  const json_t *hc = json_object_get(o, "healthcheck");
  const char *url = json_string_value(json_object_get(hc, "url"));
  const char *id = json_string_value(json_object_get(o, "id"));
  if (!id)
    id = json_string_value(json_object_get(o, "slug"));
  if (!url || !*url || !id || p->n == MAX_APPS)
    return false;
  app_t *app = &p->app[p->n];
  if (agent_url_split(url, app->host, sizeof app->host, app->port,
                      sizeof app->port, app->path, sizeof app->path) != 0) {
    atr_log(ATR_LOG_WARN, "agent", "app %s: cannot check %s (http:// only)", id,
            url);
    return false;
  }
  p->n++;
  app->apps = p;
  app->id = strdup(id);
  app->health = "initializing";
  int64_t every = agent_json_seconds(hc, "interval", "interval_s");
  app->interval_ms = (every > 0 ? every : 5) * 1000;
  json_int_t th = json_integer_value(json_object_get(hc, "threshold"));
  app->threshold = th > 0 && th <= 100 ? (int)th : 3;
  uv_timer_init(p->a->loop, &app->timer);
  app->timer.data = app;
  uv_timer_start(&app->timer, on_tick, 0, (uint64_t)app->interval_ms);
  return true;
}

agent_apps_t *agent_apps_start(agent_t *a, const json_t *apps) {
  agent_apps_t *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->a = a;
  size_t i;
  json_t *o;
  json_array_foreach(apps, i, o) {
    add_app(p, o);
  }
  p->dirty = p->n > 0; /* "initializing" */
  report(p);
  return p;
}

void agent_apps_stop(agent_apps_t *p) {
  if (!p || p->stopping)
    return;
  p->stopping = true;
  for (size_t i = 0; i < p->n; i++) {
    abandon(&p->app[i], false);
    uv_close((uv_handle_t *)&p->app[i].timer, NULL);
  }
}

void agent_apps_free(agent_apps_t *p) {
  if (!p)
    return;
  for (size_t i = 0; i < p->n; i++)
    free(p->app[i].id);
  free(p);
}
