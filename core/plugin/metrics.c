/* core/metrics.c — the process-wide metric registry (see metrics.h).
 *
 * Families live in one array kept sorted by name, so collect() needs no
 * sorting and find() can bisect. Each family keeps its series as an array of
 * atr_metric_sample_t that the registry owns: collect() hands that array to
 * the visitor as it is, so a scrape allocates nothing. One mutex,
 * families_lock, guards the array and every value in it; the visitor runs
 * under it and must not call back into the registry.
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"

struct atr_metric {
  atr_metric_family_t fam; /* the public view; its strings are owned here */
  atr_metric_sample_t *series;
  size_t nseries;
  size_t cap;
};

static const double default_buckets[] = {.005, .01, .025, .05, .1, .25,
                                         .5,   1,   2.5,  5,   10};

static pthread_mutex_t families_lock = PTHREAD_MUTEX_INITIALIZER;
static atr_metric_t **families;
static size_t nfamilies;
static size_t families_cap;

static bool valid_metric_name(const char *s) {
  if (s == NULL || *s == '\0')
    return false;
  for (size_t i = 0; s[i]; i++) {
    char c = s[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
      return false;
  }
  return true;
}

/* Prometheus reserves labels starting with "__" for its own use. */
static bool valid_label_name(const char *s) {
  if (s == NULL || *s == '\0' || strncmp(s, "__", 2) == 0)
    return false;
  for (size_t i = 0; s[i]; i++) {
    char c = s[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
      return false;
  }
  return true;
}

/* Label names must be valid and distinct; a histogram cannot use "le",
 * which the exposition format needs for its buckets. */
static int check_labels(atr_metric_type_t type, const char *const *names,
                        size_t *n) {
  *n = 0;
  if (names == NULL)
    return 0;
  for (size_t i = 0; names[i]; i++) {
    if (!valid_label_name(names[i]))
      return ATR_EINVAL;
    if (type == ATR_METRIC_HISTOGRAM && strcmp(names[i], "le") == 0)
      return ATR_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(names[i], names[j]) == 0)
        return ATR_EINVAL;
    (*n)++;
  }
  return 0;
}

static int check_buckets(const double *b, size_t n) {
  if (n == 0)
    return ATR_EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(b[i]) || (i > 0 && b[i] <= b[i - 1]))
      return ATR_EINVAL;
  }
  return 0;
}

static void free_strings(char **v, size_t n) {
  if (v == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static char **copy_strings(const char *const *v, size_t n) {
  char **out = calloc(n ? n : 1, sizeof(*out));
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if ((out[i] = strdup(v[i] ? v[i] : "")) == NULL) {
      free_strings(out, i);
      return NULL;
    }
  }
  return out;
}

static void family_free(atr_metric_t *m) {
  if (m == NULL)
    return;
  for (size_t i = 0; i < m->nseries; i++) {
    atr_metric_sample_t *s = &m->series[i];
    free_strings((char **)s->label_values, m->fam.nlabels);
    free((void *)s->bucket_counts);
  }
  free(m->series);
  free((char *)m->fam.name);
  free((char *)m->fam.help);
  free((char *)m->fam.owner);
  free_strings((char **)m->fam.label_names, m->fam.nlabels);
  free((void *)m->fam.buckets);
  free(m);
}

static atr_metric_t *family_new(const char *owner, atr_metric_type_t type,
                                const char *name, const char *help,
                                const char *const *labels, size_t nlabels,
                                const double *buckets, size_t nbuckets) {
  atr_metric_t *m = calloc(1, sizeof(*m));
  if (m == NULL)
    return NULL;
  m->fam.struct_size = sizeof(m->fam);
  m->fam.type = type;
  m->fam.nlabels = nlabels;
  m->fam.name = strdup(name);
  m->fam.help = strdup(help ? help : "");
  m->fam.owner = strdup(owner ? owner : "core");
  m->fam.label_names = (const char *const *)copy_strings(labels, nlabels);
  bool ok = m->fam.name && m->fam.help && m->fam.owner && m->fam.label_names;
  if (ok && type == ATR_METRIC_HISTOGRAM) {
    double *b = malloc(nbuckets * sizeof(*b));
    if (b != NULL)
      memcpy(b, buckets, nbuckets * sizeof(*b));
    m->fam.buckets = b;
    m->fam.nbuckets = nbuckets;
    ok = b != NULL;
  }
  if (!ok) {
    family_free(m);
    return NULL;
  }
  return m;
}

/* Index of `name` in families, or where it would be inserted. Caller holds
 * families_lock. */
static size_t family_index(const char *name, bool *found) {
  size_t lo = 0, hi = nfamilies;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(families[mid]->fam.name, name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

static int family_insert(atr_metric_t *m) {
  bool found;
  size_t at = family_index(m->fam.name, &found);
  if (found)
    return ATR_EEXIST;
  if (nfamilies == families_cap) {
    size_t cap = families_cap ? families_cap * 2 : 16;
    atr_metric_t **grown = realloc(families, cap * sizeof(*grown));
    if (grown == NULL)
      return ATR_ENOMEM;
    families = grown;
    families_cap = cap;
  }
  memmove(&families[at + 1], &families[at],
          (nfamilies - at) * sizeof(*families));
  families[at] = m;
  nfamilies++;
  return 0;
}

int atr_metrics_register(const char *owner, atr_metric_type_t type,
                         const char *name, const char *help,
                         const char *const *label_names, const double *buckets,
                         size_t nbuckets, atr_metric_t **out) {
  size_t nlabels;
  if (out != NULL)
    *out = NULL;
  if (type < ATR_METRIC_COUNTER || type > ATR_METRIC_HISTOGRAM ||
      !valid_metric_name(name) || check_labels(type, label_names, &nlabels))
    return ATR_EINVAL;
  if (type == ATR_METRIC_HISTOGRAM && buckets == NULL) {
    buckets = default_buckets;
    nbuckets = sizeof(default_buckets) / sizeof(default_buckets[0]);
  }
  if (type == ATR_METRIC_HISTOGRAM && check_buckets(buckets, nbuckets))
    return ATR_EINVAL;
  atr_metric_t *m = family_new(owner, type, name, help, label_names, nlabels,
                               buckets, nbuckets);
  if (m == NULL)
    return ATR_ENOMEM;
  pthread_mutex_lock(&families_lock);
  int rc = family_insert(m);
  pthread_mutex_unlock(&families_lock);
  if (rc != 0) {
    family_free(m);
    return rc;
  }
  if (out != NULL)
    *out = m;
  return 0;
}

static bool same_values(const atr_metric_sample_t *s, const char *const *values,
                        size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s->label_values[i], values[i]) != 0)
      return false;
  return true;
}

static atr_metric_sample_t *series_add(atr_metric_t *m,
                                       const char *const *values) {
  if (m->nseries == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 4;
    atr_metric_sample_t *grown = realloc(m->series, cap * sizeof(*grown));
    if (grown == NULL)
      return NULL;
    m->series = grown;
    m->cap = cap;
  }
  atr_metric_sample_t s = {.struct_size = sizeof(s)};
  s.label_values = (const char *const *)copy_strings(values, m->fam.nlabels);
  if (s.label_values == NULL)
    return NULL;
  if (m->fam.type == ATR_METRIC_HISTOGRAM) {
    s.bucket_counts = calloc(m->fam.nbuckets, sizeof(uint64_t));
    if (s.bucket_counts == NULL) {
      free_strings((char **)s.label_values, m->fam.nlabels);
      return NULL;
    }
  }
  m->series[m->nseries] = s;
  return &m->series[m->nseries++];
}

/* The series for `values`, created on first use. Caller holds the lock.
 * NULL when the values do not fit the family (or out of memory): the update
 * is then dropped, as a metric must never take its caller down. */
static atr_metric_sample_t *series_get(atr_metric_t *m,
                                       const char *const *values) {
  size_t n = m->fam.nlabels;
  if (n > 0 && values == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (values[i] == NULL)
      return NULL;
  for (size_t i = 0; i < m->nseries; i++)
    if (same_values(&m->series[i], values, n))
      return &m->series[i];
  return series_add(m, values);
}

void atr_metric_add(atr_metric_t *m, const char *const *label_values,
                    double v) {
  if (m == NULL || m->fam.type == ATR_METRIC_HISTOGRAM || isnan(v))
    return;
  if (m->fam.type == ATR_METRIC_COUNTER && !(v >= 0))
    return;
  pthread_mutex_lock(&families_lock);
  atr_metric_sample_t *s = series_get(m, label_values);
  if (s != NULL)
    s->value += v;
  pthread_mutex_unlock(&families_lock);
}

void atr_metric_set(atr_metric_t *m, const char *const *label_values,
                    double v) {
  if (m == NULL || m->fam.type != ATR_METRIC_GAUGE)
    return;
  pthread_mutex_lock(&families_lock);
  atr_metric_sample_t *s = series_get(m, label_values);
  if (s != NULL)
    s->value = v;
  pthread_mutex_unlock(&families_lock);
}

void atr_metric_observe(atr_metric_t *m, const char *const *label_values,
                        double v) {
  if (m == NULL || m->fam.type != ATR_METRIC_HISTOGRAM || isnan(v))
    return;
  pthread_mutex_lock(&families_lock);
  atr_metric_sample_t *s = series_get(m, label_values);
  if (s != NULL) {
    uint64_t *counts = (uint64_t *)s->bucket_counts;
    for (size_t i = 0; i < m->fam.nbuckets; i++)
      if (v <= m->fam.buckets[i])
        counts[i]++;
    s->count++;
    s->sum += v;
  }
  pthread_mutex_unlock(&families_lock);
}

void atr_metrics_collect(atr_metric_visit_fn visit, void *user_data) {
  if (visit == NULL)
    return;
  pthread_mutex_lock(&families_lock);
  for (size_t i = 0; i < nfamilies; i++) {
    const atr_metric_t *m = families[i];
    visit(user_data, &m->fam, m->series, m->nseries);
  }
  pthread_mutex_unlock(&families_lock);
}

size_t atr_metrics_remove_owner(const char *owner) {
  size_t removed = 0, kept = 0;
  if (owner == NULL)
    return 0;
  pthread_mutex_lock(&families_lock);
  for (size_t i = 0; i < nfamilies; i++) {
    if (strcmp(families[i]->fam.owner, owner) == 0) {
      family_free(families[i]);
      removed++;
    } else {
      families[kept++] = families[i];
    }
  }
  nfamilies = kept;
  pthread_mutex_unlock(&families_lock);
  return removed;
}

atr_metric_t *atr_metrics_find(const char *name) {
  bool found = false;
  size_t at = 0;
  if (name == NULL)
    return NULL;
  pthread_mutex_lock(&families_lock);
  at = family_index(name, &found);
  atr_metric_t *m = found ? families[at] : NULL;
  pthread_mutex_unlock(&families_lock);
  return m;
}

atr_metric_t *atr_metrics_core(atr_metric_type_t type, const char *name,
                               const char *help, const char *const *label_names,
                               const double *buckets, size_t nbuckets) {
  atr_metric_t *m = atr_metrics_find(name);
  if (!m)
    atr_metrics_register("core", type, name, help, label_names, buckets,
                         nbuckets, &m);
  return m;
}

void atr_metrics_reset(void) {
  pthread_mutex_lock(&families_lock);
  for (size_t i = 0; i < nfamilies; i++)
    family_free(families[i]);
  free(families);
  families = NULL;
  nfamilies = 0;
  families_cap = 0;
  pthread_mutex_unlock(&families_lock);
}
