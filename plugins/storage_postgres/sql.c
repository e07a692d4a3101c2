/* sql.c — statements, results and transactions on one pooled connection.
 *
 * The core's portable SQL is translated here: `?` becomes $1, $2, …
 * (never inside '…', E'…', "…", $tag$…$tag$, line or block comments) and
 * ATR_DB_SQL_SKIP_LOCKED becomes FOR UPDATE SKIP LOCKED. Parameters are
 * sent as text with their types left for the server to infer, except
 * blobs, which go as binary bytea. Results are read whole, in text format,
 * and converted on rows_get() (convert.c).
 *
 * Errors map SQLSTATE classes onto atrium's codes (23 constraint; 40001 and
 * 40P01 again; 55P03 busy; 42 and 22 invalid; 08 and 57P0x unavailable;
 * anything else I/O) with the message "postgres: <primary> (SQLSTATE x)"
 * and the detail when there is one. A statement after which libpq reports
 * the connection gone fails with ATR_EUNAVAIL and marks the connection for
 * a reset at its next get().
 *
 * Threads: a connection and its rows belong to the thread that got it.
 * Memory: a rows object owns its PGresult and the blobs decoded for the
 * current row; both go at the next rows_next() or rows_close().
 */
#include "storage_postgres.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SKIP_LOCKED_SQL "FOR UPDATE SKIP LOCKED"
#define MAX_PARAMS 65535 /* the protocol's limit */

struct atr_db_rows {
  PGresult *res;
  int nrows;
  int ncols;
  int row;                 /* current row; -1 before the first rows_next() */
  unsigned char **decoded; /* per column: bytea decoded for the current row */
  size_t *decoded_len;
};

/* ---- translation ---- */

static bool ident_char(char ch) {
  return isalnum((unsigned char)ch) || ch == '_' || ch == '$' ||
         (unsigned char)ch >= 0x80;
}

/* Length of the dollar-quote opener at s ("$$", "$tag$"), or 0. */
static size_t dollar_tag(const char *s) {
  size_t i = 1;
  if (s[i] != '$') {
    if (!(isalpha((unsigned char)s[i]) || s[i] == '_'))
      return 0;
    while (isalnum((unsigned char)s[i]) || s[i] == '_')
      i++;
    if (s[i] != '$')
      return 0;
  }
  return i + 1;
}

/* End (one past) of the quoted text starting at s[0] == quote. */
static size_t quoted_end(const char *s, char quote, bool backslashes) {
  size_t i = 1;
  for (; s[i] != '\0'; i++) {
    if (backslashes && s[i] == '\\' && s[i + 1] != '\0') {
      i++;
    } else if (s[i] == quote) {
      if (s[i + 1] != quote)
        return i + 1;
      i++; /* a doubled quote stands for one */
    }
  }
  return i;
}

/* End of the block comment at s (slash-star); they nest in PostgreSQL. */
static size_t comment_end(const char *s) {
  size_t i = 2;
  int depth = 1;
  while (s[i] != '\0' && depth > 0) {
    if (s[i] == '/' && s[i + 1] == '*') {
      depth++;
      i += 2;
    } else if (s[i] == '*' && s[i + 1] == '/') {
      depth--;
      i += 2;
    } else {
      i++;
    }
  }
  return i;
}

/* How many bytes at sql[i] are copied unchanged because they are a string,
 * identifier or comment (0 when sql[i] starts none of them). */
static size_t opaque_len(const char *sql, size_t i) {
  const char *s = sql + i;
  char prev = i > 0 ? sql[i - 1] : ' ';
  switch (s[0]) {
  case '\'': {
    bool e = i > 0 && (prev == 'E' || prev == 'e') &&
             (i < 2 || !ident_char(sql[i - 2]));
    return quoted_end(s, '\'', e);
  }
  case '"':
    return quoted_end(s, '"', false);
  case '-':
    if (s[1] == '-') {
      size_t n = strcspn(s, "\n");
      return n;
    }
    return 0;
  case '/':
    return s[1] == '*' ? comment_end(s) : 0;
  case '$': {
    size_t tag = ident_char(prev) ? 0 : dollar_tag(s);
    if (tag == 0)
      return 0;
    char close[128];
    if (tag >= sizeof close)
      return strlen(s);
    memcpy(close, s, tag);
    close[tag] = '\0';
    const char *end = strstr(s + tag, close);
    return end ? (size_t)(end - s) + tag : strlen(s);
  }
  default:
    return 0;
  }
}

char *spg_translate(const char *sql, size_t *nplaceholders) {
  size_t len = strlen(sql), marks = 0, width = 1;
  for (const char *p = sql; (p = strchr(p, '?')) != NULL; p++)
    marks++;
  for (size_t m = marks; m >= 10; m /= 10)
    width++;
  /* Each "?" grows by at most `width` ("$" and the digits, less the "?");
   * the marker and its replacement are equally long. */
  char *out = malloc(len + marks * width + sizeof SKIP_LOCKED_SQL);
  if (out == NULL)
    return NULL;
  size_t o = 0, n = 0, marker_len = strlen(ATR_DB_SQL_SKIP_LOCKED);
  for (size_t i = 0; i < len;) {
    if (strncmp(sql + i, ATR_DB_SQL_SKIP_LOCKED, marker_len) == 0) {
      memcpy(out + o, SKIP_LOCKED_SQL, strlen(SKIP_LOCKED_SQL));
      o += strlen(SKIP_LOCKED_SQL);
      i += marker_len;
      continue;
    }
    size_t skip = opaque_len(sql, i);
    if (skip > 0) {
      memcpy(out + o, sql + i, skip);
      o += skip;
      i += skip;
    } else if (sql[i] == '?') {
      o += (size_t)sprintf(out + o, "$%zu", ++n);
      i++;
    } else {
      out[o++] = sql[i++];
    }
  }
  out[o] = '\0';
  *nplaceholders = n;
  return out;
}

/* ---- errors ---- */

static int classify(const char *state) {
  if (state == NULL || strlen(state) != 5)
    return ATR_EIO;
  if (strncmp(state, "23", 2) == 0)
    return ATR_ECONSTRAINT;
  if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
    return ATR_EAGAIN;
  if (strcmp(state, "55P03") == 0)
    return ATR_EBUSY;
  if (strncmp(state, "42", 2) == 0 || strncmp(state, "22", 2) == 0)
    return ATR_EINVAL;
  if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
      strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0)
    return ATR_EUNAVAIL;
  return ATR_EIO;
}

int spg_result_error(atr_db_conn_t *conn, const PGresult *res, char **err) {
  spg_ctx_t *c = conn->ctx;
  if (PQstatus(conn->pg) != CONNECTION_OK) {
    conn->broken = true;
    char *m = spg_conn_message(c, conn->pg);
    spg_set_err(err, "lost the connection to the database at %s: %s", c->where,
                m ? m : "out of memory");
    free(m);
    return ATR_EUNAVAIL;
  }
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
  char *fallback = NULL;
  if (primary == NULL)
    primary = fallback = spg_conn_message(c, conn->pg);
  if (err != NULL) {
    spg_set_err(err, "%s%s%s%s%s%s", primary ? primary : "unknown error",
                state ? " (SQLSTATE " : "", state ? state : "",
                state ? ")" : "", detail ? ". DETAIL: " : "",
                detail ? detail : "");
    spg_scrub(c, *err);
  }
  free(fallback);
  return classify(state);
}

static int lost_err(atr_db_conn_t *conn, char **err) {
  conn->broken = true;
  spg_set_err(err,
              "the connection to the database at %s was lost; get a new one",
              conn->ctx->where);
  return ATR_EUNAVAIL;
}

/* A COPY started by a statement: end it so the connection stays usable. */
static void abandon_copy(PGconn *pg, ExecStatusType st) {
  if (st == PGRES_COPY_IN || st == PGRES_COPY_BOTH)
    PQputCopyEnd(pg, "atrium does not feed COPY FROM STDIN");
  if (st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
    char *buf = NULL;
    while (PQgetCopyData(pg, &buf, 0) > 0)
      PQfreemem(buf);
  }
  PGresult *r;
  while ((r = PQgetResult(pg)) != NULL)
    PQclear(r);
}

/* 0 when res is a success, else the error (res is cleared then). */
static int check_result(atr_db_conn_t *conn, PGresult *res, char **err) {
  ExecStatusType st = PQresultStatus(res);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ||
      st == PGRES_EMPTY_QUERY)
    return 0;
  if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
    PQclear(res);
    abandon_copy(conn->pg, st);
    spg_set_err(err, "COPY is not supported; use INSERT or SELECT");
    return ATR_EINVAL;
  }
  int rc = spg_result_error(conn, res, err);
  PQclear(res);
  return rc;
}

/* ---- parameters ---- */

typedef struct params {
  const char **values;
  int *lengths;
  int *formats;
  Oid *types;
  char (*nums)[48]; /* text of numbers, booleans and times */
  char **texts;     /* NUL-terminated copies of TEXT values */
  size_t n;
} params_t;

static void params_free(params_t *p) {
  for (size_t i = 0; p->texts != NULL && i < p->n; i++)
    free(p->texts[i]);
  free(p->values);
  free(p->lengths);
  free(p->formats);
  free(p->types);
  free(p->nums);
  free(p->texts);
}

static int param_one(params_t *p, size_t i, const atr_value_t *v, char **err) {
  char *num = p->nums[i];
  switch (v->type) {
  case ATR_VAL_NULL:
    return 0;
  case ATR_VAL_INT:
    snprintf(num, sizeof p->nums[i], "%" PRId64, v->v.i);
    break;
  case ATR_VAL_DOUBLE:
    snprintf(num, sizeof p->nums[i], "%.17g", v->v.d);
    break;
  case ATR_VAL_BOOL:
    snprintf(num, sizeof p->nums[i], "%s", v->v.b ? "true" : "false");
    break;
  case ATR_VAL_TIME:
    spg_format_time(v->v.time_us, num, sizeof p->nums[i]);
    break;
  case ATR_VAL_TEXT:
    if (v->v.bytes.len > 0 && memchr(v->v.bytes.ptr, 0, v->v.bytes.len)) {
      spg_set_err(err,
                  "parameter %zu is TEXT with a NUL byte, which PostgreSQL "
                  "text cannot hold; pass it as a BLOB",
                  i + 1);
      return ATR_EINVAL;
    }
    p->texts[i] = malloc(v->v.bytes.len + 1);
    if (p->texts[i] == NULL)
      return ATR_ENOMEM;
    if (v->v.bytes.len > 0)
      memcpy(p->texts[i], v->v.bytes.ptr, v->v.bytes.len);
    p->texts[i][v->v.bytes.len] = '\0';
    p->values[i] = p->texts[i];
    return 0;
  case ATR_VAL_BLOB:
    if (v->v.bytes.len > INT32_MAX) {
      spg_set_err(err, "parameter %zu is a BLOB of %zu bytes; at most 2 GiB",
                  i + 1, v->v.bytes.len);
      return ATR_EINVAL;
    }
    p->values[i] = v->v.bytes.len > 0 ? (const char *)v->v.bytes.ptr : "";
    p->lengths[i] = (int)v->v.bytes.len;
    p->formats[i] = 1;
    p->types[i] = SPG_OID_BYTEA;
    return 0;
  default:
    spg_set_err(err, "parameter %zu has unknown type %d", i + 1, (int)v->type);
    return ATR_EINVAL;
  }
  p->values[i] = num;
  return 0;
}

static int params_make(params_t *p, const atr_value_t *params, size_t n,
                       char **err) {
  *p = (params_t){.n = n};
  if (n == 0)
    return 0;
  p->values = calloc(n, sizeof *p->values);
  p->lengths = calloc(n, sizeof *p->lengths);
  p->formats = calloc(n, sizeof *p->formats);
  p->types = calloc(n, sizeof *p->types);
  p->nums = calloc(n, sizeof *p->nums);
  p->texts = calloc(n, sizeof *p->texts);
  int rc = 0;
  if (!p->values || !p->lengths || !p->formats || !p->types || !p->nums ||
      !p->texts)
    rc = ATR_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = param_one(p, i, &params[i], err);
  if (rc == ATR_ENOMEM && err != NULL && *err == NULL)
    spg_set_err(err, "out of memory");
  if (rc != 0)
    params_free(p);
  return rc;
}

/* Translate, bind and run one statement; *out is a successful result. */
static int run(atr_db_conn_t *conn, const char *sql, const atr_value_t *params,
               size_t nparams, PGresult **out, char **err) {
  *out = NULL;
  if (conn == NULL || conn->pg == NULL || sql == NULL ||
      (nparams > 0 && params == NULL)) {
    spg_set_err(err, "no connection, statement or parameters");
    return ATR_EINVAL;
  }
  if (PQstatus(conn->pg) != CONNECTION_OK)
    return lost_err(conn, err);
  size_t nph = 0;
  char *text = spg_translate(sql, &nph);
  if (text == NULL) {
    spg_set_err(err, "out of memory");
    return ATR_ENOMEM;
  }
  if (nph != nparams || nparams > MAX_PARAMS) {
    if (nph != nparams)
      spg_set_err(err,
                  "the statement has %zu ? placeholders but %zu parameters "
                  "were given",
                  nph, nparams);
    else
      spg_set_err(err, "%zu parameters; PostgreSQL takes at most %d", nparams,
                  MAX_PARAMS);
    free(text);
    return ATR_EINVAL;
  }
  params_t p;
  int rc = params_make(&p, params, nparams, err);
  if (rc != 0) {
    free(text);
    return rc;
  }
  PGresult *res = PQexecParams(conn->pg, text, (int)nparams, p.types, p.values,
                               p.lengths, p.formats, 0);
  params_free(&p);
  free(text);
  rc = check_result(conn, res, err);
  if (rc == 0)
    *out = res;
  return rc;
}

/* ---- statements ---- */

int spg_exec(atr_db_conn_t *conn, const char *sql, const atr_value_t *params,
             size_t nparams, int64_t *changes, char **err) {
  PGresult *res = NULL;
  int rc = run(conn, sql, params, nparams, &res, err);
  if (rc != 0)
    return rc;
  if (changes != NULL) {
    const char *n = PQcmdTuples(res);
    bool select = strncmp(PQcmdStatus(res), "SELECT", 6) == 0;
    *changes = (n[0] != '\0' && !select) ? strtoll(n, NULL, 10) : 0;
  }
  PQclear(res);
  return 0;
}

int spg_exec_script(atr_db_conn_t *conn, const char *sql, char **err) {
  if (conn == NULL || conn->pg == NULL || sql == NULL) {
    spg_set_err(err, "no connection or script");
    return ATR_EINVAL;
  }
  if (PQstatus(conn->pg) != CONNECTION_OK)
    return lost_err(conn, err);
  PGresult *res = PQexec(conn->pg, sql);
  int rc = check_result(conn, res, err);
  if (rc == 0)
    PQclear(res);
  return rc;
}

int spg_query(atr_db_conn_t *conn, const char *sql, const atr_value_t *params,
              size_t nparams, atr_db_rows_t **out, char **err) {
  *out = NULL;
  PGresult *res = NULL;
  int rc = run(conn, sql, params, nparams, &res, err);
  if (rc != 0)
    return rc;
  atr_db_rows_t *r = calloc(1, sizeof *r);
  int ncols = PQnfields(res);
  if (r != NULL && ncols > 0) {
    r->decoded = calloc((size_t)ncols, sizeof *r->decoded);
    r->decoded_len = calloc((size_t)ncols, sizeof *r->decoded_len);
  }
  if (r == NULL || (ncols > 0 && (!r->decoded || !r->decoded_len))) {
    if (r != NULL) {
      free(r->decoded);
      free(r->decoded_len);
    }
    free(r);
    PQclear(res);
    spg_set_err(err, "out of memory");
    return ATR_ENOMEM;
  }
  r->res = res;
  r->nrows = PQntuples(res);
  r->ncols = ncols;
  r->row = -1;
  *out = r;
  return 0;
}

static void drop_decoded(atr_db_rows_t *r) {
  for (int i = 0; i < r->ncols; i++) {
    free(r->decoded[i]);
    r->decoded[i] = NULL;
  }
}

int spg_rows_next(atr_db_rows_t *rows, char **err) {
  (void)err; /* the whole result is already here */
  if (rows == NULL)
    return ATR_EINVAL;
  drop_decoded(rows);
  if (rows->row < rows->nrows)
    rows->row++;
  return rows->row < rows->nrows ? 1 : 0;
}

size_t spg_rows_ncols(atr_db_rows_t *rows) {
  return rows ? (size_t)rows->ncols : 0;
}

static atr_value_type_t natural_type(Oid t) {
  switch (t) {
  case SPG_OID_INT2:
  case SPG_OID_INT4:
  case SPG_OID_INT8:
    return ATR_VAL_INT;
  case SPG_OID_FLOAT4:
  case SPG_OID_FLOAT8:
  case SPG_OID_NUMERIC:
    return ATR_VAL_DOUBLE;
  case SPG_OID_BOOL:
    return ATR_VAL_BOOL;
  case SPG_OID_TIMESTAMP:
  case SPG_OID_TIMESTAMPTZ:
    return ATR_VAL_TIME;
  case SPG_OID_BYTEA:
    return ATR_VAL_BLOB;
  default:
    return ATR_VAL_TEXT;
  }
}

/* The current row's bytea in column col, decoded once per row. */
static int decoded(atr_db_rows_t *r, int col, const unsigned char **p,
                   size_t *len) {
  if (r->decoded[col] == NULL) {
    r->decoded[col] = spg_decode_bytea(PQgetvalue(r->res, r->row, col),
                                       (size_t)PQgetlength(r->res, r->row, col),
                                       &r->decoded_len[col]);
    if (r->decoded[col] == NULL)
      return ATR_EINVAL;
  }
  *p = r->decoded[col];
  *len = r->decoded_len[col];
  return 0;
}

int spg_rows_get(atr_db_rows_t *rows, size_t col, atr_value_type_t want,
                 atr_value_t *out) {
  if (rows == NULL || out == NULL || rows->row < 0 ||
      rows->row >= rows->nrows || col >= (size_t)rows->ncols)
    return ATR_EINVAL;
  int c = (int)col;
  *out = (atr_value_t){.type = ATR_VAL_NULL};
  if (PQgetisnull(rows->res, rows->row, c))
    return 0;
  const char *text = PQgetvalue(rows->res, rows->row, c);
  size_t len = (size_t)PQgetlength(rows->res, rows->row, c);
  Oid type = PQftype(rows->res, c);
  if (want == ATR_VAL_NULL)
    want = natural_type(type);
  atr_value_t v = {.type = want};
  int rc = 0;
  switch (want) {
  case ATR_VAL_INT:
    if (type == SPG_OID_BOOL) {
      int b = 0;
      rc = spg_parse_bool(type, text, &b);
      v.v.i = b;
    } else {
      rc = spg_parse_int(text, &v.v.i);
    }
    break;
  case ATR_VAL_DOUBLE:
    rc = spg_parse_double(text, &v.v.d);
    break;
  case ATR_VAL_BOOL:
    rc = spg_parse_bool(type, text, &v.v.b);
    break;
  case ATR_VAL_TIME:
    rc = spg_parse_time(text, &v.v.time_us);
    break;
  case ATR_VAL_TEXT:
  case ATR_VAL_BLOB:
    if (type == SPG_OID_BYTEA) {
      const unsigned char *p = NULL;
      rc = decoded(rows, c, &p, &len);
      v.v.bytes.ptr = p;
    } else {
      v.v.bytes.ptr = text;
    }
    v.v.bytes.len = len;
    break;
  default:
    rc = ATR_EINVAL;
  }
  if (rc == 0)
    *out = v;
  return rc;
}

void spg_rows_close(atr_db_rows_t *rows) {
  if (rows == NULL)
    return;
  drop_decoded(rows);
  free(rows->decoded);
  free(rows->decoded_len);
  PQclear(rows->res);
  free(rows);
}

/* ---- transactions ---- */

static int simple(atr_db_conn_t *conn, const char *sql, PGresult **out,
                  char **err) {
  if (conn == NULL || conn->pg == NULL) {
    spg_set_err(err, "no connection");
    return ATR_EINVAL;
  }
  if (PQstatus(conn->pg) != CONNECTION_OK)
    return lost_err(conn, err);
  PGresult *res = PQexec(conn->pg, sql);
  int rc = check_result(conn, res, err);
  if (rc == 0 && out != NULL)
    *out = res;
  else if (rc == 0)
    PQclear(res);
  return rc;
}

int spg_begin(atr_db_conn_t *conn, atr_tx_mode_t mode, char **err) {
  switch (mode) {
  case ATR_TX_READ:
  case ATR_TX_WRITE:
    return simple(conn, "BEGIN", NULL, err);
  case ATR_TX_SERIALIZABLE:
    return simple(conn, "BEGIN ISOLATION LEVEL SERIALIZABLE", NULL, err);
  }
  spg_set_err(err, "unknown transaction mode %d", (int)mode);
  return ATR_EINVAL;
}

int spg_commit(atr_db_conn_t *conn, char **err) {
  PGresult *res = NULL;
  int rc = simple(conn, "COMMIT", &res, err);
  if (rc != 0)
    return rc;
  /* COMMIT of a transaction a failed statement aborted "succeeds" as a
   * ROLLBACK: report it as the failure it is. */
  bool rolled_back = strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
  PQclear(res);
  if (rolled_back) {
    spg_set_err(err, "the transaction was rolled back because a statement "
                     "in it failed; nothing was committed");
    return ATR_EIO;
  }
  return 0;
}

void spg_rollback(atr_db_conn_t *conn) {
  if (conn == NULL || conn->pg == NULL || PQstatus(conn->pg) != CONNECTION_OK ||
      PQtransactionStatus(conn->pg) == PQTRANS_IDLE)
    return;
  PGresult *res = PQexec(conn->pg, "ROLLBACK");
  if (PQstatus(conn->pg) != CONNECTION_OK)
    conn->broken = true;
  PQclear(res);
}
