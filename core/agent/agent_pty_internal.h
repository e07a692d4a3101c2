/* core/agent/agent_pty_internal.h — the pieces of agent_pty.c that live in
 * files of their own: the JSON stream scanner of a connection's input
 * (agent_pty_input.c) and starting the shell on a new PTY
 * (agent_pty_spawn.c). Not for use outside agent_pty*.c and their tests.
 *
 * Threads: the loop's thread (the scanner keeps no shared state; spawning
 * forks, see agent__pty_spawn).
 */
#ifndef ATRIUM_AGENT_PTY_INTERNAL_H
#define ATRIUM_AGENT_PTY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "agent_pty.h"

/* One JSON object of the input stream may not be longer than this. */
#define AGENT_PTY_MAX_OBJECT ((size_t)64 * 1024)

/* Finds where each top-level object of the stream ends (strings, escapes
 * and nesting), so every byte is looked at once however the stream is cut
 * into reads; only complete objects go to jansson. */
typedef struct agent_pty_scanner {
  char *buf; /* bytes of the object not yet complete; owned */
  size_t len, cap;
  size_t pos;   /* bytes of buf already scanned */
  int depth;    /* 0: between objects */
  bool in_str;  /* inside a string */
  bool escaped; /* after a backslash in a string */
} agent_pty_scanner_t;

/* Called with each complete object (borrowed); a non-zero return stops
 * the feed, which then returns that value. */
typedef int (*agent_pty_object_fn)(void *ud, json_t *obj);

/* Feeds n bytes. 0; the callback's non-zero value; or -1 with *err (a
 * static string) when the stream is not a sequence of JSON objects or
 * one object is longer than AGENT_PTY_MAX_OBJECT. */
int agent__pty_scan_feed(agent_pty_scanner_t *sc, const char *bytes, size_t n,
                         agent_pty_object_fn fn, void *ud, const char **err);
void agent__pty_scan_free(agent_pty_scanner_t *sc);

/* A request from the stream, checked: data (NULL when absent, may hold
 * NUL bytes), width and height (0 when absent or 0). */
typedef struct agent_pty_request {
  const char *data;
  size_t data_len;
  int width, height;
} agent_pty_request_t;

/* 0, or -1 with *err naming the field that is wrong. */
int agent__pty_request_parse(json_t *obj, agent_pty_request_t *req,
                             const char **err);

typedef struct agent_pty_spawn {
  const char *shell;   /* absolute path */
  const char *command; /* NULL: the shell as a login shell */
  const char *dir;     /* working directory */
  char *const *envp;   /* the whole environment */
  int width, height;
} agent_pty_spawn_t;

/* Opens a PTY of width × height and starts the shell on its slave, as
 * the leader of a new session whose controlling terminal it is. *master
 * is the master's fd (close-on-exec), *pid the shell's. 0 or -errno. An
 * exec failure shows in the terminal and as exit status 127. */
int agent__pty_spawn(const agent_pty_spawn_t *o, int *master, int *pid);
/* The agent's environment, then TERM=xterm-256color, then extra (NAME=value,
 * NULL-ended); a later NAME replaces an earlier one. NULL-ended, owned;
 * free with agent__pty_env_free. NULL when out of memory. */
char **agent__pty_env(const char *const *extra);
void agent__pty_env_free(char **envp);

/* For tests: whether the live PTY id has a connection attached, and
 * whether reading its output waits for that connection. */
bool agent__pty_attached(agent_pty_t *p, const char *id);
bool agent__pty_paused(agent_pty_t *p, const char *id);

#endif
