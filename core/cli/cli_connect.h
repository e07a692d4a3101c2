/* core/cli/cli_connect.h — the commands that get a user into a workspace
 * through the server (docs/connect.md, docs/design/connect.md):
 *
 *   atrium ssh WORKSPACE [--stdio] [-- COMMAND...]      (cli_ssh.c)
 *   atrium config-ssh [--dry-run] [--remove] [--ssh-config FILE] [-y]
 *                                                       (cli_config_ssh.c)
 *   atrium port-forward WORKSPACE --tcp [ADDR:]LOCAL:REMOTE...
 *                                                       (cli_port_forward.c)
 *
 * Each parses its own flags (getopt_long: `ssh` passes everything after
 * "--" to the workspace) and returns the process exit status: 0 done, 1
 * the server, the network or the workspace refused, 2 the command line
 * was wrong; `ssh COMMAND` returns the remote command's exit status.
 *
 * The pure parts (a --tcp spec, the managed block of ~/.ssh/config, its
 * diff) are declared here for the unit tests.
 *
 * Threads: the commands run on the main thread; port-forward starts one
 * thread per forwarded connection (at most ATR__FORWARD_MAX_CONNS). */
#ifndef ATRIUM_CORE_CLI_CONNECT_H
#define ATRIUM_CORE_CLI_CONNECT_H

#include <stdbool.h>
#include <stddef.h>

/* atr_cli_run_fn (cli_command.h) for core/main.c's table: argv is what
 * follows the command's name, which is ignored. */
int atr_cli_ssh(const char *name, int argc, char **argv);
int atr_cli_config_ssh(const char *name, int argc, char **argv);
int atr_cli_port_forward(const char *name, int argc, char **argv);

/* ---- port-forward ----------------------------------------------------- */

#define ATR__FORWARD_MAX 32        /* --tcp flags in one command */
#define ATR__FORWARD_MAX_CONNS 128 /* connections open at once, in all */

typedef struct atr__forward {
  char addr[64];   /* where to listen: "127.0.0.1" unless given */
  int local_port;  /* 0: any free one (printed) */
  int remote_port; /* 1–65535 in the workspace */
} atr__forward_t;

/* "[ADDR:]LOCAL:REMOTE" (ADDR may be "[v6]") into *f. 0, or -1 with a
 * message naming --tcp and the spec in err. */
int atr__forward_parse(const char *spec, atr__forward_t *f, char *err,
                       size_t err_size);

/* ---- config-ssh ------------------------------------------------------- */

#define ATR__SSH_CONFIG_START "# ------------START-ATRIUM-----------"
#define ATR__SSH_CONFIG_END "# ------------END-ATRIUM------------"

/* old (len bytes, not NUL-ended necessarily) with its managed block
 * replaced by block (the lines between the markers, each ending in "\n"),
 * or removed when block is NULL. Everything outside the block is kept
 * byte for byte; a new block goes at the end, after a newline when old
 * does not end in one and a blank line when old is not empty. Line ends:
 * the block's lines end as the file's first line does (CRLF or LF).
 * *out malloc'd (NUL-ended). 0; -1 out of memory; -2 when old has a start
 * marker without an end (or more than one block): *out is NULL and the
 * file must be fixed by hand. */
int atr__ssh_config_edit(const char *old, size_t len, const char *block,
                         char **out, size_t *out_len);

/* A unified diff of a → b for `--dry-run`, labelled path (malloc'd, ""
 * when they are the same). NULL when out of memory. */
char *atr__ssh_config_diff(const char *path, const char *a, size_t alen,
                           const char *b, size_t blen);

#endif
