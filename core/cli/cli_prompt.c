/* core/cli/cli_prompt.c — reading answers from standard input (cli_prompt.h). */
#include "cli_prompt.h"

#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

int atr__cli_read_line(char *buf, size_t size) {
  if (!fgets(buf, (int)size, stdin))
    return -1;
  size_t n = strlen(buf);
  if (n > 0 && buf[n - 1] != '\n' && !feof(stdin)) {
    OPENSSL_cleanse(buf, size);
    for (int c = getchar(); c != EOF && c != '\n'; c = getchar())
      ; /* drop the rest of the line */
    return -2;
  }
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    buf[--n] = '\0';
  return 0;
}

/* Echo is off only while a secret is typed; a signal then puts the
 * terminal back before the process ends. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

static void restore_tty(int sig) {
  if (tty_changed)
    tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
  signal(sig, SIG_DFL);
  raise(sig);
}

int atr__cli_read_hidden(const char *prompt, char *buf, size_t size) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  struct sigaction on = {.sa_handler = restore_tty}, old[4];
  if (tcgetattr(STDIN_FILENO, &saved_tty) != 0)
    return atr__cli_read_line(buf, size);
  struct termios quiet = saved_tty;
  quiet.c_lflag &= ~(tcflag_t)ECHO;
  for (size_t i = 0; i < 4; i++)
    sigaction(sigs[i], &on, &old[i]);
  tty_changed = 1;
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  fputs(prompt, stderr); /* after echo is off: typing ahead stays hidden */
  int rc = atr__cli_read_line(buf, size);
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
  tty_changed = 0;
  for (size_t i = 0; i < 4; i++)
    sigaction(sigs[i], &old[i], NULL);
  fputc('\n', stderr);
  return rc;
}

int atr__cli_confirm(const atr__cli_t *cli, bool required,
                     const char *question) {
  if (cli->o.yes)
    return 0;
  if (!isatty(STDIN_FILENO)) {
    if (!required)
      return 0;
    fprintf(stderr,
            "%s: not confirmed: standard input is not a terminal to ask on; "
            "give -y to go ahead\n",
            cli->what);
    return 1;
  }
  char answer[16];
  fprintf(stderr, "%s [y/N] ", question);
  if (atr__cli_read_line(answer, sizeof answer) == 0 &&
      (strcasecmp(answer, "y") == 0 || strcasecmp(answer, "yes") == 0))
    return 0;
  fprintf(stderr, "%s: not confirmed; nothing was done\n", cli->what);
  return 1;
}
