/* core/cli/session_file.h — the session the CLI keeps between runs: the
 * server's URL and the session token `atrium login` got.
 *
 * The session lives in <config dir>/session.json as {url, session_token}:
 * the directory is made 0700 and the file 0600. The config directory is
 * $ATRIUM_CONFIG_DIR, else $XDG_CONFIG_HOME/atrium, else ~/.config/atrium;
 * $ATRIUM_URL and $ATRIUM_SESSION_TOKEN override what is stored.
 *
 * The token is wiped from memory before it is freed; it is never printed.
 *
 * Threads: main thread only (reads the environment). */
#ifndef ATRIUM_CORE_SESSION_FILE_H
#define ATRIUM_CORE_SESSION_FILE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct atr_client_session {
  char *url;   /* NULL when unknown */
  char *token; /* NULL when none */
} atr_client_session_t;

/* The config directory as described above, into buf. 0, or ATR_ENOENT
 * when neither $HOME nor an override is set, or ATR_ERANGE. */
int atr_client_config_dir(char *buf, size_t size);
/* The stored session with the environment's overrides applied. A missing
 * file is not an error (fields stay NULL); an unreadable one is, with
 * *err (caller frees). */
int atr_client_session_load(atr_client_session_t *s, char **err);
/* Store url and token, replacing the file atomically. */
int atr_client_session_save(const char *url, const char *token, char **err);
/* Remove the stored session; *removed says whether there was one. */
int atr_client_session_remove(bool *removed, char **err);
/* Frees the fields, wiping the token first. */
void atr_client_session_clear(atr_client_session_t *s);

#endif
