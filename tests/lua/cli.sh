#!/usr/bin/env bash
# `atrium policy test|eval` as a user sees them: the verdict per case and
# a readable difference, exit 0/1/2, and errors that name the file and the
# JSON path. Usage: cli.sh ATRIUM EXAMPLES_DIR
set -u
atrium=$1
examples=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# expect NAME STATUS WANTED_OUTPUT -- COMMAND...
expect() {
  local name=$1 status=$2 want=$3
  shift 4
  local got rc
  got=$("$@" 2>&1)
  rc=$?
  if [[ $rc -ne $status || "$got" != "$want" ]]; then
    echo "FAIL $name (exit $rc, wanted $status)"
    diff <(echo "$want") <(echo "$got") | sed 's/^/    /'
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}

cp "$examples/cpu-memory-caps.lua" "$work/"
cd "$work" || exit 1

cat > wrong.json <<'JSON'
[
  {"name": "right", "hook": "workspace_create",
   "input": {"user": {"groups": []}, "parameters": {"new": {"cpus": "2"}}},
   "expect": {}},
  {"name": "wrong", "hook": "workspace_create",
   "input": {"user": {"groups": []},
             "parameters": {"new": {"cpus": "8", "memory": "32"}}},
   "expect": {"denies": [{"message": "at most 8 CPUs", "parameter": "cpus"}],
              "sets": {"memory": 16, "cpus": 4}}}
]
JSON
expect "a failing case shows the difference" 1 'PASS  right
FAIL  wrong
      denies expected but not given:
        - "at most 8 CPUs" (parameter cpus)
      denies given but not expected:
        + "at most 4 CPUs (asked for 8)" (parameter cpus) (from cpu-memory-caps.lua)
      warnings given but not expected:
        + "memory lowered from 32 to 8 GiB" (from cpu-memory-caps.lua)
      sets:
        memory: expected "16", got "8"
        cpus: expected "4", not set
1 passed, 1 failed (wrong.json)' -- "$atrium" policy test cpu-memory-caps.lua wrong.json

cat > printing.lua <<'LUA'
function build(input)
  print("looking at", input.transition)
  policy.deny("no")
end
LUA
cat > printing.json <<'JSON'
[{"name": "shows what the policy printed", "hook": "build",
  "input": {"transition": "stop"}, "expect": {}}]
JSON
expect "a failing case shows what the policy printed" 1 'FAIL  shows what the policy printed
      denies given but not expected:
        + "no" (from printing.lua)
      output: printing.lua: looking at	stop
0 passed, 1 failed (printing.json)' -- "$atrium" policy test printing.lua printing.json

echo '[{"name": "x", "hook": "build", "input": {}, "expect": {"denies": [{"mesage": "x"}]}}]' > bad-key.json
expect "a mistake in a case names its JSON path" 2 'atrium policy test: bad-key.json: [0].expect.denies[0]: expected a message (a string) or an object with "message", and maybe "parameter" and "policy"' -- "$atrium" policy test cpu-memory-caps.lua bad-key.json

echo '[{"name": "x", "hook": "create", "input": {}, "expect": {}}]' > bad-hook.json
expect "an unknown hook" 2 'atrium policy test: bad-hook.json: [0].hook: expected one of template_push, workspace_create, build, schedule' -- "$atrium" policy test cpu-memory-caps.lua bad-hook.json

echo '[{"name": "x",' > bad-json.json
expect "JSON that does not parse" 2 'atrium policy test: bad-json.json:2:0: string or '"'"'}'"'"' expected near end of file' -- "$atrium" policy test cpu-memory-caps.lua bad-json.json

printf 'function build(input)\n  local = 1\nend\n' > broken.lua
expect "a policy that does not compile" 2 "atrium policy test: broken.lua:2: <name> expected near '='" -- "$atrium" policy test broken.lua wrong.json

expect "a missing policy" 2 'atrium policy eval: missing.lua: No such file or directory' -- "$atrium" policy eval missing.lua --hook build --input -

expect "eval needs a hook and an input" 2 'atrium policy: eval needs --hook and --input (atrium policy --help)' -- "$atrium" policy eval cpu-memory-caps.lua

echo '{"user": {"groups": []}, "transition": "start", "parameters": {"new": {"cpus": "6"}}}' > input.json
expect "eval prints the decision and exits 1 on a deny" 1 '{
  "denies": [
    {
      "message": "at most 4 CPUs (asked for 6)",
      "parameter": "cpus",
      "policy": "cpu-memory-caps.lua"
    }
  ],
  "warnings": [],
  "sets": {},
  "set_by": {}
}' -- "$atrium" policy eval cpu-memory-caps.lua --hook build --input input.json

expect "eval reads the input from stdin and exits 0 when allowed" 0 '{
  "denies": [],
  "warnings": [],
  "sets": {},
  "set_by": {}
}' -- bash -c "echo '{\"user\": {\"groups\": [\"gpu-users\"]}, \"transition\": \"start\", \"parameters\": {\"new\": {\"cpus\": \"6\"}}}' | '$atrium' policy eval cpu-memory-caps.lua --hook build --input -"

printf 'function build(input)\n  while true do end\nend\n' > loop.lua
expect "limits are options" 1 '{
  "denies": [
    {
      "message": "policy loop.lua:2: instruction limit exceeded (5000 instructions)",
      "parameter": null,
      "policy": "loop.lua"
    }
  ],
  "warnings": [],
  "sets": {},
  "set_by": {}
}' -- "$atrium" policy eval loop.lua --hook build --input input.json --policy.instruction_limit=5000 --policy.time_limit 10s

expect "a bad limit" 2 'atrium policy: --policy.memory_limit: "lots" is not a positive size (8MiB, 512KiB) (atrium policy --help)' -- "$atrium" policy eval loop.lua --hook build --input input.json --policy.memory_limit=lots

if [[ $failures -ne 0 ]]; then
  echo "$failures failed"
  exit 1
fi
