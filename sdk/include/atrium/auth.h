/* atrium/auth.h — the auth kind.
 *
 * An auth plugin turns credentials (a password, an LDAP bind) or a redirect
 * flow (OIDC, GitHub) into an identity. One or more may be enabled. The
 * operations are added by the API-server work (issue 4); until then the
 * table holds its size and the method's name, and the loader checks that.
 */
#ifndef ATRIUM_AUTH_H
#define ATRIUM_AUTH_H

#include <stdint.h>

#include "atrium/plugin.h"

typedef struct atr_auth_ops {
  uint32_t struct_size;
  const char *method; /* "password", "oidc", ... */
} atr_auth_ops_t;

#define ATR_AUTH_OPS_MIN_SIZE                                                  \
  (offsetof(atr_auth_ops_t, method) + sizeof(const char *))

#endif /* ATRIUM_AUTH_H */
