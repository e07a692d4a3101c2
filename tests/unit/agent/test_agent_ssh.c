/* tests/unit/agent/test_agent_ssh.c — the agent's SSH server (agent_ssh.h)
 * on one end of a socketpair, as the tunnel hands it over, with libssh's
 * client on the other: the authentication methods OpenSSH's client never
 * needs (it is let in with "none" first), the host key a PKCS#8 PEM from
 * OpenSSL names, exit statuses, and the refusals.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <libssh/libssh.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "agent_ssh.h"

/* An ed25519 key as the server makes them: PKCS#8 PEM from OpenSSL. */
static char *pkcs8_key(unsigned char pub[32]) {
  EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  BIO *bio = BIO_new(BIO_s_mem());
  assert_non_null(pk);
  assert_int_equal(PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL),
                   1);
  size_t len = 32;
  assert_int_equal(EVP_PKEY_get_raw_public_key(pk, pub, &len), 1);
  char *data = NULL;
  long n = BIO_get_mem_data(bio, &data);
  char *pem = strndup(data, (size_t)n);
  BIO_free(bio);
  EVP_PKEY_free(pk);
  assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
  return pem;
}

typedef struct fixture {
  agent_ssh_t *srv;
  ssh_session client;
  unsigned char pub[32];
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  char *pem = pkcs8_key(f->pub);
  agent_ssh_config_t cfg = {.host_key = pem, .directory = "/"};
  char *err = NULL;
  f->srv = agent_ssh_new(&cfg, &err);
  free(pem);
  assert_non_null(f->srv);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  assert_int_equal(agent_ssh_serve(f->srv, sv[0]), 0);
  f->client = ssh_new();
  socket_t fd = sv[1];
  bool no = false; /* not the ~/.ssh/config of whoever runs the test */
  ssh_options_set(f->client, SSH_OPTIONS_PROCESS_CONFIG, &no);
  ssh_options_set(f->client, SSH_OPTIONS_FD, &fd);
  ssh_options_set(f->client, SSH_OPTIONS_HOST, "workspace");
  ssh_options_set(f->client, SSH_OPTIONS_USER, "someone");
  assert_int_equal(ssh_connect(f->client), SSH_OK);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  ssh_disconnect(f->client); /* closes sv[1] */
  ssh_free(f->client);
  agent_ssh_free(f->srv);
  free(f);
  return 0;
}

/* The exit status of COMMAND run on an authenticated session, its stdout
 * in out. */
static int run(ssh_session s, const char *command, char *out, size_t size) {
  ssh_channel ch = ssh_channel_new(s);
  assert_non_null(ch);
  assert_int_equal(ssh_channel_open_session(ch), SSH_OK);
  assert_int_equal(ssh_channel_request_exec(ch, command), SSH_OK);
  size_t n = 0;
  int r;
  while ((r = ssh_channel_read(ch, out + n, (uint32_t)(size - 1 - n), 0)) > 0)
    n += (size_t)r;
  out[n] = '\0';
  ssh_channel_send_eof(ch);
  int status = ssh_channel_get_exit_status(ch);
  ssh_channel_close(ch);
  ssh_channel_free(ch);
  return status;
}

static void test_host_key_is_the_pkcs8_key(void **state) {
  fixture_t *f = *state;
  ssh_key key = NULL;
  assert_int_equal(ssh_get_server_publickey(f->client, &key), SSH_OK);
  char *b64 = NULL;
  assert_int_equal(ssh_pki_export_pubkey_base64(key, &b64), SSH_OK);
  /* string "ssh-ed25519", string pub: the OpenSSL key's public half */
  unsigned char blob[51] = {0,   0,   0,   11,  's', 's', 'h', '-', 'e', 'd',
                            '2', '5', '5', '1', '9', 0,   0,   0,   32};
  memcpy(blob + 19, f->pub, 32);
  unsigned char want[80];
  EVP_EncodeBlock(want, blob, sizeof blob);
  assert_string_equal(b64, (char *)want);
  ssh_string_free_char(b64);
  ssh_key_free(key);
}

static void test_publickey_of_anyone_is_accepted(void **state) {
  fixture_t *f = *state;
  ssh_key key = NULL;
  assert_int_equal(ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key), SSH_OK);
  /* The tunnel authenticated the user: any key (signed) will do. */
  assert_int_equal(ssh_userauth_try_publickey(f->client, NULL, key),
                   SSH_AUTH_SUCCESS);
  assert_int_equal(ssh_userauth_publickey(f->client, NULL, key),
                   SSH_AUTH_SUCCESS);
  ssh_key_free(key);
  char out[64];
  assert_int_equal(run(f->client, "echo $((6*7))", out, sizeof out), 0);
  assert_string_equal(out, "42\n");
}

static void test_any_password_is_accepted(void **state) {
  fixture_t *f = *state;
  assert_int_equal(ssh_userauth_password(f->client, NULL, "anything"),
                   SSH_AUTH_SUCCESS);
  char out[64];
  assert_int_equal(run(f->client, "exit 3", out, sizeof out), 3);
}

static void test_none_is_accepted(void **state) {
  fixture_t *f = *state;
  assert_int_equal(ssh_userauth_none(f->client, NULL), SSH_AUTH_SUCCESS);
  assert_int_equal(agent_ssh_connections(f->srv), 1);
  char out[64];
  assert_int_equal(run(f->client, "false", out, sizeof out), 1);
}

static void test_refusals(void **state) {
  fixture_t *f = *state;
  assert_int_equal(ssh_userauth_none(f->client, NULL), SSH_AUTH_SUCCESS);
  ssh_channel ch = ssh_channel_new(f->client);
  /* another host than the loopback */
  assert_int_not_equal(
      ssh_channel_open_forward(ch, "192.0.2.1", 80, "127.0.0.1", 1), SSH_OK);
  ssh_channel_free(ch);
  ch = ssh_channel_new(f->client);
  assert_int_equal(ssh_channel_open_session(ch), SSH_OK);
  /* names other than LANG, LC_* and TERM */
  assert_int_not_equal(ssh_channel_request_env(ch, "LD_PRELOAD", "/x.so"),
                       SSH_OK);
  assert_int_not_equal(ssh_channel_request_env(ch, "PATH", "/tmp"), SSH_OK);
  assert_int_equal(ssh_channel_request_env(ch, "LC_ALL", "C"), SSH_OK);
  /* a subsystem that is not sftp; an x11 request */
  assert_int_not_equal(ssh_channel_request_subsystem(ch, "netconf"), SSH_OK);
  assert_int_not_equal(ssh_channel_request_x11(ch, 0, NULL, NULL, 0), SSH_OK);
  /* one program per channel */
  assert_int_equal(ssh_channel_request_exec(ch, "cat"), SSH_OK);
  assert_int_not_equal(ssh_channel_request_exec(ch, "true"), SSH_OK);
  ssh_channel_send_eof(ch);
  char buf[16];
  while (ssh_channel_read(ch, buf, sizeof buf, 0) > 0)
    ;
  assert_int_equal(ssh_channel_get_exit_status(ch), 0);
  ssh_channel_close(ch);
  ssh_channel_free(ch);
}

static void test_channels_are_bounded(void **state) {
  fixture_t *f = *state;
  assert_int_equal(ssh_userauth_none(f->client, NULL), SSH_AUTH_SUCCESS);
  ssh_channel chs[33];
  for (int i = 0; i < 33; i++) {
    chs[i] = ssh_channel_new(f->client);
    int rc = ssh_channel_open_session(chs[i]);
    /* 32 at once; the 33rd is refused */
    assert_int_equal(rc, i < 32 ? SSH_OK : SSH_ERROR);
  }
  for (int i = 0; i < 33; i++) {
    if (i < 32)
      ssh_channel_close(chs[i]);
    ssh_channel_free(chs[i]);
  }
}

static void test_bad_host_keys(void **state) {
  (void)state;
  char *err = NULL;
  agent_ssh_config_t cfg = {.host_key =
                                "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n"
                                "-----END PRIVATE KEY-----\n"};
  assert_null(agent_ssh_new(&cfg, &err));
  assert_non_null(strstr(err, "ssh_host_key: not an unencrypted private key"));
  assert_null(strstr(err, "c2VjcmV0"));
  free(err);
  const char *env[] = {"NOEQUALS", NULL};
  cfg = (agent_ssh_config_t){.env = env};
  assert_null(agent_ssh_new(&cfg, &err));
  assert_string_equal(err, "ssh: env[0]: not NAME=value");
  free(err);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* as the agent */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_host_key_is_the_pkcs8_key, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_publickey_of_anyone_is_accepted,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_any_password_is_accepted, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_none_is_accepted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_channels_are_bounded, setup,
                                      teardown),
      cmocka_unit_test(test_bad_host_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
