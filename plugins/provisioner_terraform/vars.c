/* vars.c — the variables a Terraform root module declares.
 *
 * Terraform refuses a .tfvars file that sets an undeclared variable only
 * with a warning, but -var and TF_VAR_ behave differently between versions;
 * writing only declared ones keeps every template's plan quiet. No
 * Terraform command lists them, so the files are scanned here:
 *
 *  - *.tf: `variable "NAME" {` (or `variable NAME {`) at the top level,
 *    outside comments, strings and heredocs;
 *  - *.tf.json: the keys of the top-level "variable" object (or of each
 *    object in a "variable" array).
 *
 * Like Terraform, files whose names start with "." or "#" or end with "~"
 * are not part of the module. Only the root directory counts (modules get
 * their values from the root module).
 */
#include "internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct scan {
  const char *s;
  size_t n;
  size_t i;
} scan_t;

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool ident_char(char ch) {
  return isalnum((unsigned char)ch) || ch == '_' || ch == '-';
}

static char at(const scan_t *sc, size_t k) {
  return sc->i + k < sc->n ? sc->s[sc->i + k] : '\0';
}

/* Adds name (len bytes) unless it is there already. */
static int names_add(tf_names_t *names, const char *name, size_t len) {
  for (size_t i = 0; i < names->n; i++) {
    if (strlen(names->v[i]) == len && strncmp(names->v[i], name, len) == 0)
      return 0;
  }
  char **v = realloc(names->v, (names->n + 1) * sizeof *v);
  if (v == NULL)
    return ATR_ENOMEM;
  names->v = v;
  if ((v[names->n] = strndup(name, len)) == NULL)
    return ATR_ENOMEM;
  names->n++;
  return 0;
}

bool tf_names_has(const tf_names_t *names, const char *name) {
  for (size_t i = 0; i < names->n; i++) {
    if (strcmp(names->v[i], name) == 0)
      return true;
  }
  return false;
}

void tf_names_free(tf_names_t *names) {
  for (size_t i = 0; i < names->n; i++)
    free(names->v[i]);
  free(names->v);
  names->v = NULL;
  names->n = 0;
}

static void skip_expr(scan_t *sc);

/* From an opening quote to past its closing one (or the end of the line),
 * over escapes and ${ } / %{ } templates, which may hold strings. */
static void skip_string(scan_t *sc) {
  sc->i++;
  while (sc->i < sc->n && sc->s[sc->i] != '"' && sc->s[sc->i] != '\n') {
    char ch = sc->s[sc->i];
    if (ch == '\\' || ((ch == '$' || ch == '%') && at(sc, 1) == ch)) {
      sc->i += 2;
    } else if ((ch == '$' || ch == '%') && at(sc, 1) == '{') {
      sc->i += 2;
      skip_expr(sc);
    } else {
      sc->i++;
    }
  }
  if (sc->i < sc->n)
    sc->i++;
}

/* Inside a template's braces: to past the matching '}'. */
static void skip_expr(scan_t *sc) {
  int depth = 1;
  while (sc->i < sc->n && depth > 0) {
    char ch = sc->s[sc->i];
    if (ch == '"') {
      skip_string(sc);
      continue;
    }
    if (ch == '{')
      depth++;
    else if (ch == '}')
      depth--;
    sc->i++;
  }
}

/* From "<<" to past the heredoc's closing marker line. */
static void skip_heredoc(scan_t *sc) {
  size_t i = sc->i + 2;
  if (i < sc->n && sc->s[i] == '-')
    i++;
  size_t start = i;
  while (i < sc->n && ident_char(sc->s[i]))
    i++;
  size_t len = i - start;
  if (len == 0) { /* not a heredoc ("<<" in an expression) */
    sc->i += 2;
    return;
  }
  const char *marker = sc->s + start;
  while (i < sc->n) {
    while (i < sc->n && sc->s[i] != '\n')
      i++;
    i++; /* the newline */
    size_t k = i;
    while (k < sc->n && (sc->s[k] == ' ' || sc->s[k] == '\t'))
      k++;
    if (k + len <= sc->n && strncmp(sc->s + k, marker, len) == 0 &&
        (k + len == sc->n || !ident_char(sc->s[k + len]))) {
      sc->i = k + len;
      return;
    }
  }
  sc->i = sc->n;
}

static void skip_comment(scan_t *sc) {
  if (sc->s[sc->i] == '/' && at(sc, 1) == '*') {
    const char *end = NULL;
    for (size_t k = sc->i + 2; k + 1 < sc->n && end == NULL; k++) {
      if (sc->s[k] == '*' && sc->s[k + 1] == '/')
        end = sc->s + k;
    }
    sc->i = end != NULL ? (size_t)(end - sc->s) + 2 : sc->n;
    return;
  }
  while (sc->i < sc->n && sc->s[sc->i] != '\n')
    sc->i++;
}

static void skip_blanks(scan_t *sc) {
  while (sc->i < sc->n && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t'))
    sc->i++;
}

/* After the word "variable" at the top level: its label, if a block
 * follows. */
static int variable_block(scan_t *sc, tf_names_t *out) {
  skip_blanks(sc);
  size_t start, len;
  if (at(sc, 0) == '"') {
    start = sc->i + 1;
    skip_string(sc);
    len = sc->i - start - 1;
  } else {
    start = sc->i;
    while (sc->i < sc->n && ident_char(sc->s[sc->i]))
      sc->i++;
    len = sc->i - start;
  }
  skip_blanks(sc);
  if (len == 0 || at(sc, 0) != '{')
    return 0;
  return names_add(out, sc->s + start, len);
}

static int scan_hcl(const char *text, size_t n, tf_names_t *out) {
  scan_t sc = {.s = text, .n = n};
  int depth = 0;
  while (sc.i < sc.n) {
    char ch = sc.s[sc.i];
    if (ch == '#' || (ch == '/' && (at(&sc, 1) == '/' || at(&sc, 1) == '*'))) {
      skip_comment(&sc);
    } else if (ch == '"') {
      skip_string(&sc);
    } else if (ch == '<' && at(&sc, 1) == '<') {
      skip_heredoc(&sc);
    } else if (depth == 0 && ident_char(ch) &&
               (sc.i == 0 || !ident_char(sc.s[sc.i - 1]))) {
      size_t start = sc.i;
      while (sc.i < sc.n && ident_char(sc.s[sc.i]))
        sc.i++;
      if (sc.i - start == 8 && strncmp(sc.s + start, "variable", 8) == 0) {
        int rc = variable_block(&sc, out);
        if (rc != 0)
          return rc;
      }
    } else {
      if (ch == '{' || ch == '[' || ch == '(')
        depth++;
      else if ((ch == '}' || ch == ']' || ch == ')') && depth > 0)
        depth--;
      sc.i++;
    }
  }
  return 0;
}

/* A .tf.json file that is not JSON declares nothing here; terraform
 * itself reports it. */
static int scan_json(const char *text, size_t n, tf_names_t *out) {
  json_t *doc = json_loadb(text, n, 0, NULL);
  json_t *var = json_object_get(doc, "variable");
  json_t *objs = json_is_array(var) ? var : NULL;
  size_t count = objs ? json_array_size(objs) : 1;
  int rc = 0;
  for (size_t k = 0; rc == 0 && k < count; k++) {
    json_t *o = objs ? json_array_get(objs, k) : var;
    const char *key;
    json_t *value;
    json_object_foreach(o, key, value) {
      if (rc == 0)
        rc = names_add(out, key, strlen(key));
    }
  }
  json_decref(doc);
  return rc;
}

static bool module_file(const char *name, bool *json) {
  if (name[0] == '.' || name[0] == '#' || ends_with(name, "~"))
    return false;
  *json = ends_with(name, ".tf.json");
  return *json || ends_with(name, ".tf");
}

static int scan_file(const char *dir, const char *name, bool json,
                     tf_names_t *out, char **err) {
  char *path = tf_path(dir, name);
  if (path == NULL)
    return ATR_ENOMEM;
  char *text = NULL;
  size_t len = 0;
  int e = tf_file_read(path, &text, &len);
  free(path);
  if (e != 0)
    return tf_failf(err, ATR_EIO, "cannot read %s: %s", name, strerror(-e));
  int rc = json ? scan_json(text, len, out) : scan_hcl(text, len, out);
  free(text);
  return rc;
}

int tf_vars_declared(const char *dir, tf_names_t *out, size_t *ntf,
                     char **err) {
  *ntf = 0;
  DIR *d = opendir(dir);
  if (d == NULL)
    return tf_failf(err, ATR_EIO, "cannot open the template directory %s: %s",
                    dir, strerror(errno));
  int rc = 0;
  const struct dirent *e;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    bool json = false;
    if (e->d_type == DT_DIR || !module_file(e->d_name, &json))
      continue;
    (*ntf)++;
    rc = scan_file(dir, e->d_name, json, out, err);
  }
  closedir(d);
  if (rc != 0)
    tf_names_free(out);
  return rc == ATR_ENOMEM ? tf_failf(err, rc, "out of memory") : rc;
}
