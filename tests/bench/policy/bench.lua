-- tests/bench/policy/bench.lua: a 50-line policy of the kind docs/policies.md
-- describes, for tests/bench/policy: caps by group, naming, images, TTL.
local caps = {
  default = {cpus = 4, memory = 8},
  ["gpu-users"] = {cpus = 16, memory = 64},
  ["data-team"] = {cpus = 8, memory = 32},
}
local images = {
  ["ubuntu:22.04"] = true, ["ubuntu:24.04"] = true,
  ["debian:12"] = true, ["python:3.12"] = true,
}

local function cap_for(input)
  local best = caps.default
  for _, group in ipairs(input.user.groups) do
    local c = caps[group]
    if c and c.cpus > best.cpus then best = c end
  end
  return best
end

local function check_name(name)
  if #name > 32 then
    policy.deny("workspace names are at most 32 characters")
  end
  if not name:match("^[a-z][a-z0-9-]*$") then
    policy.deny("workspace names are lower case letters, digits and dashes")
  end
end

function workspace_create(input)
  check_name(input.workspace.name)
  local cap = cap_for(input)
  local cpus = policy.number(input, "cpus") or 1
  local memory = policy.number(input, "memory") or 1
  if cpus > cap.cpus then
    policy.deny(("at most %d CPUs"):format(cap.cpus), "cpus")
  end
  if memory > cap.memory then
    policy.set("memory", cap.memory)
    policy.warn(("memory lowered to %d GiB"):format(cap.memory))
  end
  local image = policy.param(input, "image")
  if image and not images[image] then
    policy.deny("image " .. image .. " is not on the allow-list", "image")
  end
  if policy.has_role(input, "owner") then
    policy.warn("you are an owner: caps still apply")
  end
end
