/* atrium/atrium.h — everything a plugin may include, in one header. */
#ifndef ATRIUM_ATRIUM_H
#define ATRIUM_ATRIUM_H

#include "atrium/auth.h"
#include "atrium/error.h"
#include "atrium/host.h"
#include "atrium/observer.h"
#include "atrium/option.h"
#include "atrium/plugin.h"
#include "atrium/provisioner.h"
#include "atrium/storage.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* ATRIUM_ATRIUM_H */
