/* core/cli/cli_prompt.h — answers read from standard input: a line, a secret
 * typed without echo, a yes/no confirmation. A line too long for its
 * buffer is wiped from it and dropped. The caller wipes a secret once it is
 * used.
 *
 * Threads: main thread only (a hidden read changes the terminal and the
 * signal handlers for its duration). */
#ifndef ATRIUM_CORE_CLI_PROMPT_H
#define ATRIUM_CORE_CLI_PROMPT_H

#include <stdbool.h>
#include <stddef.h>

#include "cli_args.h"

/* One line of standard input into buf, without its line ending.
 * 0; -1 at end of input; -2 when the line does not fit. */
int atr__cli_read_line(char *buf, size_t size);
/* The same with echo off when standard input is a terminal; prompt goes to
 * stderr once echo is off (typing ahead stays hidden). */
int atr__cli_read_hidden(const char *prompt, char *buf, size_t size);
/* On a terminal (and without -y) ask "question [y/N] "; 0 to go on.
 * Without a terminal: 0 unless `required`, then 1 with a message that
 * says to give -y. */
int atr__cli_confirm(const atr__cli_t *cli, bool required,
                     const char *question);

#endif
