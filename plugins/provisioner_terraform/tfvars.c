/* tfvars.c — atrium.auto.tfvars.json: the build's values as Terraform
 * variables.
 *
 * Terraform loads *.auto.tfvars.json from the root module by itself. The
 * file holds a template parameter under its own name and the workspace
 * facts under atrium_* names, but only those the configuration declares
 * as variables (vars.c): Terraform warns about values for undeclared
 * variables, and a template then sees only what it asked for. A fact that
 * the host did not give is left out, so the variable's default applies.
 *
 * Values are typed: number as a JSON number, bool as true/false,
 * list(string) as a JSON array, anything else as a string.
 *
 * A start build of a template with a workspace agent (ABI 1.3) also fills
 * atrium_agent_token (declare it sensitive), atrium_access_url,
 * atrium_agent_init_script and atrium_agent_bundle_dir, when declared;
 * other builds leave them out (declare a default, "" for example). None
 * of them goes into the environment: local-exec commands see only what
 * the template hands them.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const char *tf_transition_name(atr_transition_t t) {
  switch (t) {
  case ATR_TRANSITION_START:
    return "start";
  case ATR_TRANSITION_STOP:
    return "stop";
  case ATR_TRANSITION_DELETE:
    return "delete";
  }
  return NULL;
}

static json_t *number_value(const char *text) {
  char *end = NULL;
  errno = 0;
  long long i = strtoll(text, &end, 10);
  if (*text != '\0' && *end == '\0' && errno == 0)
    return json_integer((json_int_t)i);
  errno = 0;
  double d = strtod(text, &end);
  if (*text != '\0' && *end == '\0' && errno == 0)
    return json_real(d);
  return NULL;
}

/* The parameter's value as JSON of its type; NULL when it does not read
 * as that type. */
static json_t *param_value(const atr_param_value_t *p) {
  const char *v = p->value != NULL ? p->value : "";
  const char *type = p->type != NULL ? p->type : "string";
  if (strcmp(type, "number") == 0)
    return number_value(v);
  if (strcmp(type, "bool") == 0) {
    if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)
      return json_boolean(strcmp(v, "true") == 0);
    return NULL;
  }
  if (strcmp(type, "list(string)") == 0) {
    json_t *list = json_loads(v, JSON_DECODE_ANY, NULL);
    if (json_is_array(list))
      return list;
    json_decref(list);
    return NULL;
  }
  return json_string(v);
}

static int set_fact(json_t *vars, const tf_names_t *declared, const char *name,
                    json_t *value) {
  if (value == NULL)
    return 0;
  if (!tf_names_has(declared, name)) {
    json_decref(value);
    return 0;
  }
  return json_object_set_new(vars, name, value) == 0 ? 0 : ATR_ENOMEM;
}

static json_t *str_or_null(const char *s) {
  return s != NULL ? json_string(s) : NULL;
}

static int add_facts(json_t *vars, const atr_prov_apply_request_t *req,
                     const tf_names_t *d) {
  const char *tr = tf_transition_name(req->transition);
  int rc = 0;
  rc |=
      set_fact(vars, d, "atrium_workspace_id", str_or_null(req->workspace_id));
  rc |= set_fact(vars, d, "atrium_workspace_name",
                 str_or_null(req->workspace_name));
  rc |= set_fact(vars, d, "atrium_owner_id", str_or_null(req->owner_id));
  rc |= set_fact(vars, d, "atrium_owner_name", str_or_null(req->owner_name));
  rc |= set_fact(vars, d, "atrium_owner_email", str_or_null(req->owner_email));
  rc |= set_fact(vars, d, "atrium_organization_id",
                 str_or_null(req->organization_id));
  rc |= set_fact(vars, d, "atrium_template_name",
                 str_or_null(req->template_name));
  rc |= set_fact(vars, d, "atrium_template_version",
                 str_or_null(req->template_version_name));
  rc |= set_fact(vars, d, "atrium_transition", str_or_null(tr));
  rc |= set_fact(vars, d, "atrium_build_number",
                 json_integer((json_int_t)req->build_number));
  return rc != 0 ? ATR_ENOMEM : 0;
}

const atr_prov_agent_t *tf_agent(const atr_prov_apply_request_t *req) {
  if (!ATR_PROV_REQUEST_HAS_AGENT(req) ||
      req->transition != ATR_TRANSITION_START)
    return NULL;
  return req->agent;
}

static int add_agent(json_t *vars, const atr_prov_apply_request_t *req,
                     const tf_names_t *d) {
  const atr_prov_agent_t *a = tf_agent(req);
  if (a == NULL)
    return 0;
  int rc = 0;
  rc |= set_fact(vars, d, "atrium_agent_token", str_or_null(a->token));
  rc |= set_fact(vars, d, "atrium_access_url", str_or_null(a->access_url));
  rc |= set_fact(vars, d, "atrium_agent_init_script",
                 str_or_null(a->init_script));
  rc |=
      set_fact(vars, d, "atrium_agent_bundle_dir", str_or_null(a->bundle_dir));
  return rc != 0 ? ATR_ENOMEM : 0;
}

static int add_params(json_t *vars, const atr_prov_apply_request_t *req,
                      const tf_names_t *declared, char **err) {
  for (size_t i = 0; i < req->nparams; i++) {
    const atr_param_value_t *p = atr_param_at(req->params, i);
    if (p->name == NULL || !tf_names_has(declared, p->name))
      continue;
    json_t *v = param_value(p);
    if (v == NULL)
      return tf_failf(err, ATR_EINVAL,
                      "parameter %s: value %s%s%s is not a valid %s; fix the "
                      "value or the parameter's type in template.yaml",
                      p->name, p->sensitive ? "" : "\"",
                      p->sensitive ? "(sensitive)" : p->value,
                      p->sensitive ? "" : "\"", p->type);
    if (json_object_set_new(vars, p->name, v) != 0)
      return tf_failf(err, ATR_ENOMEM, "out of memory");
  }
  return 0;
}

int tf_tfvars_write(const atr_prov_apply_request_t *req,
                    const tf_names_t *declared, char **err) {
  json_t *vars = json_object();
  if (vars == NULL)
    return tf_failf(err, ATR_ENOMEM, "out of memory");
  int rc = add_params(vars, req, declared, err);
  if (rc == 0 && (add_facts(vars, req, declared) != 0 ||
                  add_agent(vars, req, declared) != 0))
    rc = tf_failf(err, ATR_ENOMEM, "out of memory");
  char *text =
      rc == 0 ? json_dumps(vars, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
  json_decref(vars);
  if (rc != 0)
    return rc;
  if (text == NULL)
    return tf_failf(err, ATR_ENOMEM, "out of memory");
  char *path = tf_path(req->workdir, TF_TFVARS_FILE);
  int e = path != NULL ? tf_file_write(path, text, strlen(text)) : -ENOMEM;
  free(path);
  free(text);
  if (e != 0)
    return tf_failf(err, ATR_EIO, "cannot write %s in %s: %s", TF_TFVARS_FILE,
                    req->workdir, strerror(-e));
  return 0;
}
