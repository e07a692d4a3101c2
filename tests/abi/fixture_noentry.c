/* tests/abi/fixture_noentry.c — a shared object that is not a plugin: it
 * exports a function, but not atrium_plugin_entry. */
#include "atrium/plugin.h"

ATR_EXPORT int fixture_noentry_answer(void);
ATR_EXPORT int fixture_noentry_answer(void) {
  return 42;
}
