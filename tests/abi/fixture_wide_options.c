/* tests/abi/fixture_wide_options.c — an observer built as if against a newer
 * SDK whose atr_option_t grew: each entry carries fields the host does not
 * know, and option_size declares the wider stride. It also writes every
 * event it receives to the file its `output` option names ("<type>
 * <json>" per line), for test_abi_growth's observer checks. */
#include <stdint.h>
#include <stdio.h>

#include "atrium/atrium.h"

typedef struct wide_ctx {
  const char *output;
  int64_t level;
} wide_ctx_t;

/* An entry of a newer SDK: today's fields, then ones appended later. */
typedef struct wide_option {
  atr_option_t o;
  uint64_t appended_later[3];
} wide_option_t;

static const wide_option_t wide_options[] = {
    {{ATR_OPT_STRING, "output", NULL, ATR_OPT_REQUIRED,
      offsetof(wide_ctx_t, output), "Where events are written.", NULL, 0, 0},
     {1, 2, 3}},
    {{ATR_OPT_INT, "level", "3", 0, offsetof(wide_ctx_t, level),
      "A bounded number.", NULL, 1, 9},
     {4, 5, 6}},
    {{0}, {7, 8, 9}},
};

/* Called on the emitting thread; the test emits from its own. */
static void wide_event(void *ctx, const atr_event_t *ev) {
  const wide_ctx_t *c = ctx;
  FILE *f = fopen(c->output, "a");
  if (f == NULL)
    return;
  fprintf(f, "%s %s %u\n", ev->type, ev->json, (unsigned)ev->struct_size);
  fclose(f);
}

static const atr_observer_ops_t wide_ops = {
    .struct_size = sizeof(atr_observer_ops_t),
    .on_event = wide_event,
};

static const atr_plugin_t wide_plugin = {
    ATR_PLUGIN_ABI,
    .kind = ATR_KIND_OBSERVER,
    .name = "fixture_wide_options",
    .version = "1.0.0",
    .description = "Options with a wider stride; records events.",
    .options = &wide_options[0].o,
    .ctx_size = sizeof(wide_ctx_t),
    .ops = &wide_ops,
    .option_size = sizeof(wide_option_t),
};

ATR_PLUGIN_DEFINE(wide_plugin)
