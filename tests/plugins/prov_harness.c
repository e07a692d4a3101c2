/* tests/plugins/prov_harness.c — see prov_harness.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include "prov_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prov_result.h"

void ph_job_log(atr_prov_job_t *job, atr_log_level_t level, const char *stage,
                const char *line) {
  pthread_mutex_lock(&job->lock);
  if (job->n == job->cap) {
    job->cap = job->cap ? job->cap * 2 : 64;
    job->v = realloc(job->v, job->cap * sizeof *job->v);
    assert_non_null(job->v);
  }
  job->v[job->n++] = (ph_line_t){.level = level,
                                 .stage = strdup(stage ? stage : ""),
                                 .line = strdup(line)};
  pthread_mutex_unlock(&job->lock);
}

int ph_job_canceled(atr_prov_job_t *job) {
  return atomic_load(&job->canceled);
}

void ph_job_init(atr_prov_job_t *job) {
  memset(job, 0, sizeof *job);
  pthread_mutex_init(&job->lock, NULL);
  atomic_init(&job->canceled, 0);
}

void ph_job_free(atr_prov_job_t *job) {
  for (size_t i = 0; i < job->n; i++) {
    free(job->v[i].stage);
    free(job->v[i].line);
  }
  free(job->v);
  pthread_mutex_destroy(&job->lock);
}

const ph_line_t *ph_job_find(atr_prov_job_t *job, int level,
                             const char *needle) {
  const ph_line_t *found = NULL;
  pthread_mutex_lock(&job->lock);
  for (size_t i = 0; i < job->n && found == NULL; i++) {
    if ((level < 0 || (int)job->v[i].level == level) &&
        strstr(job->v[i].line, needle) != NULL)
      found = &job->v[i];
  }
  pthread_mutex_unlock(&job->lock);
  return found;
}

static const char *no_env(const char *name) {
  (void)name;
  return NULL;
}

int ph_plugin_try(ph_plugin_t *p, const char *dir, const char *name,
                  const char *options, char **err) {
  memset(p, 0, sizeof *p);
  const char *dirs[] = {dir};
  assert_int_equal(atr_loader_init(&p->loader, dirs, 1, err), 0);
  int rc = atr_loader_open(&p->loader, name, NULL, &p->h, err);
  if (rc != 0)
    fail_msg("open: %s", *err);
  char *text = NULL;
  assert_true(asprintf(&text, "plugins:\n  %s:\n    enabled: true\n%s", name,
                       options ? options : "") >= 0);
  rc = atr_conf_parse("test.yaml", text, strlen(text), &p->conf, err);
  free(text);
  if (rc != 0)
    fail_msg("yaml: %s", *err);
  rc = atr_loader_configure(p->h, p->conf, NULL, no_env, err);
  if (rc == 0)
    rc = atr_loader_start(p->h, err);
  if (rc == 0) {
    p->ops = p->h->desc->ops;
    p->ctx = p->h->ctx;
  }
  return rc;
}

void ph_plugin_stop(ph_plugin_t *p) {
  atr_loader_shutdown(&p->loader);
  atr_conf_free(p->conf);
  p->conf = NULL;
}

void ph_result_release(atr_prov_apply_result_t *res) {
  char *err = NULL;
  if (atr_prov_result_check("test", res, &err) != 0)
    fail_msg("the core would refuse this result: %s", err);
  atr_prov_result_release(res);
}

int ph_plan_apply(const atr_provisioner_ops_t *ops, void *ctx,
                  const atr_prov_apply_request_t *req, bool skip_plan,
                  atr_prov_apply_result_t *res, char **err, char **state,
                  size_t *state_len) {
  memset(res, 0, sizeof *res);
  *err = NULL;
  int rc = skip_plan ? 0 : ops->plan(ctx, req, err);
  if (rc == 0)
    rc = ops->apply(ctx, req, res, err);
  if (res->state != NULL) { /* the host keeps what it was given */
    free(*state);
    *state = strndup(res->state, res->state_len);
    *state_len = res->state_len;
  }
  return rc;
}
