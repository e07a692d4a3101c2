/* core/cli/cli_policy.h — `atrium policy test|eval`: run policies offline,
 * without a server or a configuration.
 *
 *   atrium policy test POLICY.lua... CASES.json [--template-policy FILE]
 *   atrium policy eval POLICY.lua... --hook HOOK --input FILE|-
 *                      [--template-policy FILE]
 *
 * Exit status: test 0 when every case passes, 1 when one fails; eval 0
 * when the decision allows, 1 when it denies; both 2 for bad arguments or
 * files (a message names the file and, in CASES.json, the JSON path).
 * Threads: main thread only. */
#ifndef ATRIUM_CORE_CLI_POLICY_H
#define ATRIUM_CORE_CLI_POLICY_H

/* `atrium policy ...` (name is "policy"); argv is what follows it. */
int atr_cli_policy(const char *name, int argc, char **argv);

#endif
