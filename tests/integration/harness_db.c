/* tests/integration/harness_db.c — the database a test server runs on;
 * see harness.h. */
#include "harness.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool on_postgres;
static char pg_dsn[1024];
static const char *pg_dir;

/* The first line of a small file, without its trailing blanks. */
static char *read_line_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  char *text = calloc(1, 4096);
  size_t n = text ? fread(text, 1, 4095, f) : 0;
  fclose(f);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
    text[--n] = '\0';
  return text;
}

int atr_harness_backend(int argc, char **argv, const char *usage) {
  if (argc >= 2 && strcmp(argv[1], "sqlite") == 0) {
    on_postgres = false;
    return 2;
  }
  if (argc >= 3 && strcmp(argv[1], "postgres") == 0) {
    char path[1024];
    snprintf(path, sizeof path, "%s/dsn", argv[2]);
    char *dsn = read_line_file(path);
    if (!dsn || !*dsn) {
      fprintf(stderr, "%s: no DSN in %s\n", argv[0], path);
      free(dsn);
      return -1;
    }
    snprintf(pg_dsn, sizeof pg_dsn, "%s", dsn);
    free(dsn);
    pg_dir = argv[2];
    on_postgres = true;
    return 3;
  }
  fprintf(stderr, "usage: %s %s\n", argv[0], usage);
  return -1;
}

bool atr_harness_on_postgres(void) {
  return on_postgres;
}

const char *atr_harness_pg_dsn(void) {
  return on_postgres ? pg_dsn : "";
}

const char *atr_harness_pg_dir(void) {
  return on_postgres ? pg_dir : NULL;
}

char *atr_harness_storage_yaml(const char *more) {
  char *text = NULL;
  int n = on_postgres
              ? asprintf(&text,
                         "  storage_postgres:\n    enabled: true\n"
                         "    dsn: \"%s\"\n%s",
                         pg_dsn, more ? more : "")
              : asprintf(&text, "  storage_sqlite:\n    enabled: true\n");
  return n < 0 ? NULL : text;
}

int atr_harness_reset_db(void) {
  if (!on_postgres)
    return 0;
  PGconn *c = PQconnectdb(pg_dsn);
  int rc = 0;
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "cannot connect to the test PostgreSQL: %s",
            PQerrorMessage(c));
    rc = -1;
  } else {
    PGresult *res = PQexec(c, "SET client_min_messages = warning; "
                              "DROP SCHEMA IF EXISTS public CASCADE; "
                              "CREATE SCHEMA public");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
      fprintf(stderr, "cannot reset the schema: %s", PQerrorMessage(c));
      rc = -1;
    }
    PQclear(res);
  }
  PQfinish(c);
  return rc;
}
