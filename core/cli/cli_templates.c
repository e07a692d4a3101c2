/* core/cli/cli_templates.c — `atrium templates push|list|versions|show`.
 *
 * push packs a directory into a tar.gz in memory (regular files and
 * directories only, by relative path, in name order so that the same
 * directory gives the same archive; .git, .terraform and *.tfstate* are
 * left out), uploads it, creates a template version from it, shows the
 * import job's logs as they come, and then creates the template or
 * (with --activate) makes the version its active one. */
#include "cli_templates_workspaces.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* core/archive.h shadows libarchive's <archive.h> on the include path, so
 * CMake names libarchive's header by its full path (core/CMakeLists.txt). */
#include ATR_LIBARCHIVE_H
#include <archive_entry.h>

#include "atrium/error.h"
#include "cli_follow.h"
#include "cli_output.h"
#include "cli_prompt.h"
#include "cli_session.h"

/* ---- packing -------------------------------------------------------------- */

typedef struct pack {
  struct archive *a;
  char *data; /* the archive so far */
  size_t len;
  size_t files;
  char *err;
} pack_t;

static ssize_t pack_write(struct archive *a, void *ud, const void *buf,
                          size_t n) {
  (void)a;
  pack_t *p = ud;
  char *grown = realloc(p->data, p->len + n);
  if (!grown)
    return -1;
  p->data = grown;
  memcpy(p->data + p->len, buf, n);
  p->len += n;
  return (ssize_t)n;
}

static bool skipped(const char *name) {
  return strcmp(name, ".git") == 0 || strcmp(name, ".terraform") == 0 ||
         strstr(name, ".tfstate") != NULL;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names) {
  for (size_t i = 0; names && names[i]; i++)
    free(names[i]);
  free(names);
}

/* The names in dir, sorted (owned, NULL-terminated); NULL on failure. */
static char **sorted_names(const char *dir, pack_t *p) {
  DIR *d = opendir(dir);
  if (!d) {
    if (asprintf(&p->err, "cannot read %s: %s", dir, strerror(errno)) < 0)
      p->err = NULL;
    return NULL;
  }
  char **names = calloc(1, sizeof *names);
  if (!names) {
    closedir(d);
    return NULL;
  }
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
        skipped(e->d_name))
      continue;
    char **grown = realloc(names, (n + 2) * sizeof *grown);
    if (grown)
      names = grown;
    if (!grown || !(names[n] = strdup(e->d_name))) {
      names[n] = NULL;
      free_names(names);
      closedir(d);
      return NULL;
    }
    names[++n] = NULL;
  }
  closedir(d);
  qsort(names, n, sizeof *names, by_name);
  return names;
}

static int add_file_data(pack_t *p, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return asprintf(&p->err, "cannot read %s: %s", path, strerror(errno)) < 0
               ? ATR_ENOMEM
               : ATR_EIO;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    if (archive_write_data(p->a, buf, (size_t)n) != n)
      break;
  close(fd);
  if (n != 0)
    return asprintf(&p->err, "cannot pack %s: %s", path,
                    n < 0 ? strerror(errno) : archive_error_string(p->a)) < 0
               ? ATR_ENOMEM
               : ATR_EIO;
  return 0;
}

/* One entry: rel is its name in the archive, path on disk. */
static int add_entry(pack_t *p, const char *path, const char *rel,
                     const struct stat *st) {
  struct archive_entry *e = archive_entry_new();
  if (!e)
    return ATR_ENOMEM;
  archive_entry_set_pathname(e, rel);
  archive_entry_set_filetype(e, S_ISDIR(st->st_mode) ? AE_IFDIR : AE_IFREG);
  archive_entry_set_perm(e, S_ISDIR(st->st_mode) ? 0755 : st->st_mode & 0755);
  archive_entry_set_size(e, S_ISDIR(st->st_mode) ? 0 : st->st_size);
  archive_entry_set_mtime(e, st->st_mtime, 0);
  int rc = 0;
  if (archive_write_header(p->a, e) != ARCHIVE_OK)
    rc = asprintf(&p->err, "cannot pack %s: %s", path,
                  archive_error_string(p->a)) < 0
             ? ATR_ENOMEM
             : ATR_EIO;
  else if (S_ISREG(st->st_mode))
    rc = add_file_data(p, path);
  archive_entry_free(e);
  if (rc == 0 && S_ISREG(st->st_mode))
    p->files++;
  return rc;
}

/* Everything under dir/rel ("" at the top), depth first. */
static int add_tree(pack_t *p, const char *dir, const char *rel) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s%s%s", dir, *rel ? "/" : "", rel);
  char **names = sorted_names(path, p);
  if (!names)
    return p->err ? ATR_EIO : ATR_ENOMEM;
  int rc = 0;
  for (size_t i = 0; rc == 0 && names[i]; i++) {
    char sub[PATH_MAX], full[PATH_MAX];
    int n = snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", names[i]);
    int m = snprintf(full, sizeof full, "%s/%s", dir, sub);
    struct stat st;
    if (n < 0 || m < 0 || (size_t)m >= sizeof full) {
      rc = asprintf(&p->err, "a path below %s is too long", dir) < 0
               ? ATR_ENOMEM
               : ATR_ERANGE;
    } else if (lstat(full, &st) != 0) {
      rc = asprintf(&p->err, "cannot read %s: %s", full, strerror(errno)) < 0
               ? ATR_ENOMEM
               : ATR_EIO;
    } else if (S_ISDIR(st.st_mode)) {
      rc = add_entry(p, full, sub, &st);
      if (rc == 0)
        rc = add_tree(p, dir, sub);
    } else if (S_ISREG(st.st_mode)) {
      rc = add_entry(p, full, sub, &st);
    } else {
      fprintf(stderr,
              "warning: %s is not a regular file or directory; left "
              "out\n",
              full);
    }
  }
  free_names(names);
  return rc;
}

/* dir as a tar.gz: *data (owned) and *len; *files regular files. */
static int pack_dir(const char *dir, char **data, size_t *len, size_t *files,
                    char **err) {
  pack_t p = {.a = archive_write_new()};
  *data = NULL;
  *err = NULL;
  int rc = p.a ? 0 : ATR_ENOMEM;
  if (rc == 0 &&
      (archive_write_set_format_pax_restricted(p.a) != ARCHIVE_OK ||
       archive_write_add_filter_gzip(p.a) != ARCHIVE_OK ||
       archive_write_set_bytes_in_last_block(p.a, 1) != ARCHIVE_OK ||
       archive_write_open(p.a, &p, NULL, pack_write, NULL) != ARCHIVE_OK))
    rc = asprintf(&p.err, "cannot make an archive: %s",
                  archive_error_string(p.a)) < 0
             ? ATR_ENOMEM
             : ATR_EIO;
  if (rc == 0)
    rc = add_tree(&p, dir, "");
  if (p.a && archive_write_close(p.a) != ARCHIVE_OK && rc == 0)
    rc = asprintf(&p.err, "cannot make an archive: %s",
                  archive_error_string(p.a)) < 0
             ? ATR_ENOMEM
             : ATR_EIO;
  archive_write_free(p.a);
  if (rc != 0) {
    free(p.data);
    *err = p.err;
    return rc;
  }
  *data = p.data;
  *len = p.len;
  *files = p.files;
  return 0;
}

/* ---- push ----------------------------------------------------------------- */

/* DIR's last component ("." and trailing slashes resolved). */
static char *dir_name(const char *dir) {
  char *real = realpath(dir, NULL);
  if (!real)
    return NULL;
  const char *slash = strrchr(real, '/');
  char *name = strdup(slash && slash[1] ? slash + 1 : real);
  free(real);
  return name;
}

/* Whether a template of that name exists: *tpl (owned) or NULL. */
static int lookup_template(atr__cli_t *cli, const char *org, const char *name,
                           json_t **tpl) {
  *tpl = NULL;
  char *path =
      atr__cli_path("/api/v2/organizations/%s/templates/%s", org, name);
  if (!path)
    return atr__cli_oom(cli);
  atr_client_res_t res;
  char *err = NULL;
  int rc = atr_client_call(cli->client, "GET", path, NULL, &res, &err);
  free(path);
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", cli->what, err ? err : atr_strerror(rc));
    rc = 1;
  } else if (res.status == 200) {
    *tpl = res.body;
    res.body = NULL;
  } else if (res.status != 404) {
    atr_client_print_error(cli->what, &res);
    rc = 1;
  }
  free(err);
  atr_client_res_free(&res);
  return rc;
}

static int upload(atr__cli_t *cli, const char *dir, char **file_id) {
  char *data = NULL, *err = NULL;
  size_t len = 0, files = 0;
  int rc = pack_dir(dir, &data, &len, &files, &err);
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", cli->what, err ? err : atr_strerror(rc));
    free(err);
    return 1;
  }
  printf("Uploading %s (%zu files, %.1f KiB)\n", dir, files,
         (double)len / 1024);
  fflush(stdout);
  atr_client_res_t res;
  rc = atr_client_upload(cli->client, "/api/v2/files", "application/gzip", data,
                         len, &res, &err);
  free(data);
  const char *hash = atr__cli_str(res.body, "hash");
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", cli->what, err ? err : atr_strerror(rc));
    rc = 1;
  } else if (res.status < 200 || res.status > 299) {
    atr_client_print_error(cli->what, &res);
    rc = 1;
  } else if (!hash) {
    fprintf(stderr, "%s: the upload's answer has no hash\n", cli->what);
    rc = 1;
  } else if (!(*file_id = strdup(hash))) {
    rc = atr__cli_oom(cli);
  }
  free(err);
  atr_client_res_free(&res);
  return rc;
}

/* Follow the import; 0 only when it succeeded. */
static int follow_import(atr__cli_t *cli, const json_t *version) {
  atr__cli_job_end_t end;
  int rc = atr__cli_follow(cli, "/api/v2/templateversions/%s",
                           atr__cli_str(version, "id"), true, &end);
  if (rc == 130)
    fprintf(stderr, "%s: stopped following; the import goes on.\n", cli->what);
  if (rc != 0) {
    atr__cli_job_end_clear(&end);
    return rc;
  }
  bool ok = strcmp(end.status, "succeeded") == 0;
  if (ok)
    printf("Template version %s imported%s.\n", atr__cli_txt(version, "name"),
           end.took);
  else
    fprintf(stderr, "%s: the import of template version %s %s%s%s%s\n",
            cli->what, atr__cli_txt(version, "name"), end.status, end.took,
            end.error[0] ? ": " : "", end.error);
  atr__cli_job_end_clear(&end);
  return ok ? 0 : 1;
}

/* After a successful import: a new template, or an activated version. */
static int settle(atr__cli_t *cli, const char *org, const char *name,
                  const json_t *tpl, const json_t *version) {
  const char *vid = atr__cli_str(version, "id");
  const char *vname = atr__cli_txt(version, "name");
  json_t *out = NULL;
  int rc = 0;
  if (!tpl) {
    json_t *body =
        json_pack("{s:s, s:s}", "name", name, "template_version_id", vid);
    char *path = atr__cli_path("/api/v2/organizations/%s/templates", org, NULL);
    rc = body && path ? atr_client_request(cli->client, cli->what, "POST", path,
                                           body, &out)
                      : atr__cli_oom(cli);
    if (rc == 0)
      printf("Template %s created; its active version is %s.\n", name, vname);
    free(path);
    json_decref(body);
  } else if (cli->o.activate) {
    json_t *body = json_pack("{s:s}", "id", vid);
    char *path = atr__cli_path("/api/v2/templates/%s/versions",
                               atr__cli_str(tpl, "id"), NULL);
    rc = body && path ? atr_client_request(cli->client, cli->what, "PATCH",
                                           path, body, &out)
                      : atr__cli_oom(cli);
    if (rc == 0)
      printf("Template %s now uses version %s.\n", name, vname);
    free(path);
    json_decref(body);
  } else {
    printf("Version %s of template %s is not active; push with --activate "
           "to make it the active one.\n",
           vname, name);
  }
  json_decref(out);
  return rc;
}

static int new_version(atr__cli_t *cli, const char *org, const char *file_id,
                       const json_t *tpl, json_t **version) {
  json_t *body = json_pack("{s:s}", "file_id", file_id);
  if (body && tpl)
    json_object_set_new(body, "template_id",
                        json_string(atr__cli_str(tpl, "id")));
  char *path =
      atr__cli_path("/api/v2/organizations/%s/templateversions", org, NULL);
  int rc = body && path ? atr_client_request(cli->client, cli->what, "POST",
                                             path, body, version)
                        : atr__cli_oom(cli);
  free(path);
  json_decref(body);
  return rc;
}

static int check_dir(const atr__cli_t *cli, const char *dir) {
  struct stat st;
  char manifest[PATH_MAX];
  snprintf(manifest, sizeof manifest, "%s/template.yaml", dir);
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "%s: %s is not a directory\n", cli->what, dir);
    return 2;
  }
  if (stat(manifest, &st) != 0) {
    fprintf(stderr,
            "%s: %s has no template.yaml; a template needs one at its root "
            "(see docs/templates.md)\n",
            cli->what, dir);
    return 2;
  }
  return 0;
}

int atr__cli_templates_push(atr__cli_t *cli) {
  const char *dir = cli->o.args[0];
  int rc = check_dir(cli, dir);
  if (rc != 0)
    return rc;
  char *name = cli->o.name ? strdup(cli->o.name) : dir_name(dir);
  char *org = NULL, *file_id = NULL, question[PATH_MAX + 64];
  json_t *tpl = NULL, *version = NULL;
  if (!name)
    return atr__cli_oom(cli);
  rc = atr__cli_connect(cli);
  if (rc == 0)
    rc = atr__cli_org(cli, &org);
  if (rc == 0)
    rc = lookup_template(cli, org, name, &tpl);
  snprintf(question, sizeof question, "Upload %s as %s template %s?", dir,
           tpl ? "a new version of" : "the new", name);
  if (rc == 0)
    rc = atr__cli_confirm(cli, false, question);
  if (rc == 0)
    rc = upload(cli, dir, &file_id);
  if (rc == 0)
    rc = new_version(cli, org, file_id, tpl, &version);
  if (rc == 0)
    rc = follow_import(cli, version);
  if (rc == 0)
    rc = settle(cli, org, name, tpl, version);
  free(name);
  free(org);
  free(file_id);
  json_decref(tpl);
  json_decref(version);
  return rc;
}

/* ---- list, versions, show ------------------------------------------------- */

static const char *const template_head[] = {"NAME", "PROVISIONER", "WORKSPACES",
                                            "CREATED BY", "LAST UPDATED"};

static const json_t *templates_of(const json_t *answer) {
  return json_is_array(answer) ? answer : json_object_get(answer, "templates");
}

int atr__cli_templates_list(atr__cli_t *cli) {
  char *org = NULL, *path = NULL;
  json_t *out = NULL;
  int rc = atr__cli_connect(cli);
  if (rc == 0)
    rc = atr__cli_org(cli, &org);
  if (rc == 0 &&
      !(path = atr__cli_path("/api/v2/organizations/%s/templates?limit=1000",
                             org, NULL)))
    rc = atr__cli_oom(cli);
  if (rc == 0)
    rc = atr__cli_get(cli, path, &out);
  if (rc == 0 && cli->json) {
    atr__cli_print_json(out);
  } else if (rc == 0) {
    atr__cli_table_t t = {.ncols = 5, .head = template_head};
    size_t i;
    json_t *x;
    json_array_foreach(templates_of(out), i, x) {
      char count[24], updated[32];
      snprintf(count, sizeof count, "%" JSON_INTEGER_FORMAT,
               json_integer_value(json_object_get(x, "workspace_count")));
      const char *row[] = {
          atr__cli_str(x, "name"), atr__cli_str(x, "provisioner"), count,
          atr__cli_str(x, "created_by_name"),
          atr__cli_time(atr__cli_str(x, "updated_at"), updated, NULL)};
      if (rc == 0 && atr__cli_table_add(&t, row) != 0)
        rc = atr__cli_oom(cli);
    }
    if (rc == 0 && t.nrows == 0)
      printf("No templates yet; push one with `atrium templates push DIR`.\n");
    else if (rc == 0)
      atr__cli_table_print(&t);
    atr__cli_table_free(&t);
  }
  free(path);
  free(org);
  json_decref(out);
  return rc;
}

int atr__cli_template_get(atr__cli_t *cli, const char *org, const char *name,
                          json_t **tpl) {
  char *path =
      atr__cli_path("/api/v2/organizations/%s/templates/%s", org, name);
  int rc = path ? atr__cli_get(cli, path, tpl) : atr__cli_oom(cli);
  free(path);
  return rc;
}

/* The template named cli->o.args[0]; *tpl owned. */
static int named_template(atr__cli_t *cli, json_t **tpl) {
  char *org = NULL;
  *tpl = NULL;
  int rc = atr__cli_connect(cli);
  if (rc == 0)
    rc = atr__cli_org(cli, &org);
  if (rc == 0)
    rc = atr__cli_template_get(cli, org, cli->o.args[0], tpl);
  free(org);
  return rc;
}

static const char *const version_head[] = {"NAME", "CREATED AT", "CREATED BY",
                                           "STATUS", "ACTIVE"};

int atr__cli_templates_versions(atr__cli_t *cli) {
  json_t *tpl = NULL, *out = NULL;
  char *path = NULL;
  int rc = named_template(cli, &tpl);
  if (rc == 0 && !(path = atr__cli_path("/api/v2/templates/%s/versions",
                                        atr__cli_str(tpl, "id"), NULL)))
    rc = atr__cli_oom(cli);
  if (rc == 0)
    rc = atr__cli_get(cli, path, &out);
  if (rc == 0 && cli->json) {
    atr__cli_print_json(out);
  } else if (rc == 0) {
    const char *active = atr__cli_str(tpl, "active_version_id");
    atr__cli_table_t t = {.ncols = 5, .head = version_head};
    size_t i;
    json_t *v;
    json_array_foreach(out, i, v) {
      char created[32];
      const char *id = atr__cli_str(v, "id");
      const char *row[] = {
          atr__cli_str(v, "name"),
          atr__cli_time(atr__cli_str(v, "created_at"), created, NULL),
          atr__cli_str(json_object_get(v, "created_by"), "username"),
          atr__cli_str(json_object_get(v, "job"), "status"),
          active && id && strcmp(active, id) == 0 ? "active" : ""};
      if (rc == 0 && atr__cli_table_add(&t, row) != 0)
        rc = atr__cli_oom(cli);
    }
    if (rc == 0)
      atr__cli_table_print(&t);
    atr__cli_table_free(&t);
  }
  free(path);
  json_decref(tpl);
  json_decref(out);
  return rc;
}

static const char *const param_head[] = {"PARAMETER", "TYPE", "DEFAULT",
                                         "REQUIRED", "MUTABLE"};

static void print_schema(const json_t *schema) {
  atr__cli_table_t t = {.ncols = 5, .head = param_head};
  size_t i;
  json_t *p;
  json_array_foreach(schema, i, p) {
    bool secret = json_is_true(json_object_get(p, "sensitive"));
    const char *def = atr__cli_str(p, "default_value");
    const char *row[] = {
        atr__cli_str(p, "name"), atr__cli_str(p, "type"),
        secret && def && *def ? "********" : def,
        json_is_true(json_object_get(p, "required")) ? "yes" : "no",
        json_is_true(json_object_get(p, "mutable")) ? "yes" : "no"};
    if (atr__cli_table_add(&t, row) != 0)
      break;
  }
  if (t.nrows > 0)
    atr__cli_table_print(&t);
  else
    printf("Parameters:   none\n");
  atr__cli_table_free(&t);
}

int atr__cli_templates_show(atr__cli_t *cli) {
  json_t *tpl = NULL, *version = NULL, *schema = NULL;
  int rc = named_template(cli, &tpl);
  if (rc != 0 || cli->json) {
    atr__cli_print_json(rc == 0 ? tpl : NULL);
    json_decref(tpl);
    return rc;
  }
  const char *vid = atr__cli_str(tpl, "active_version_id");
  char *vpath = atr__cli_path("/api/v2/templateversions/%s", vid, NULL);
  char *ppath =
      atr__cli_path("/api/v2/templateversions/%s/rich-parameters", vid, NULL);
  if (!vpath || !ppath)
    rc = atr__cli_oom(cli);
  if (rc == 0)
    rc = atr__cli_get(cli, vpath, &version);
  if (rc == 0)
    rc = atr__cli_get(cli, ppath, &schema);
  if (rc == 0) {
    const char *desc = atr__cli_str(tpl, "description");
    printf("Template:     %s\n", atr__cli_txt(tpl, "name"));
    if (desc && *desc)
      printf("Description:  %s\n", desc);
    printf("Provisioner:  %s\n", atr__cli_txt(tpl, "provisioner"));
    printf("Active:       %s\n", atr__cli_txt(version, "name"));
    printf("Workspaces:   %" JSON_INTEGER_FORMAT "\n",
           json_integer_value(json_object_get(tpl, "workspace_count")));
    print_schema(schema);
  }
  free(vpath);
  free(ppath);
  json_decref(tpl);
  json_decref(version);
  json_decref(schema);
  return rc;
}
