/* core/base/ws_accept.c — Sec-WebSocket-Accept (ws_accept.h). */
#include "ws_accept.h"

#include <openssl/evp.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

void atr_ws_accept(const char *key, char out[29]) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md || EVP_DigestInit_ex(md, EVP_sha1(), NULL) != 1 ||
      EVP_DigestUpdate(md, key, strlen(key)) != 1 ||
      EVP_DigestUpdate(md, WS_GUID, sizeof WS_GUID - 1) != 1 ||
      EVP_DigestFinal_ex(md, digest, &len) != 1 || len != 20) {
    EVP_MD_CTX_free(md);
    out[0] = '\0';
    return;
  }
  EVP_MD_CTX_free(md);
  EVP_EncodeBlock((unsigned char *)out, digest, 20);
}
