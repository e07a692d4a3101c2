-- CPU and memory caps by group. Members get at most 4 CPUs and 8 GiB;
-- the gpu-users group 16 CPUs and 64 GiB. Asking for more CPUs is denied;
-- asking for more memory lowers it to the cap, with a warning.
local caps = {
  {group = "gpu-users", cpus = 16, memory = 64},
}
local default = {cpus = 4, memory = 8}

local function cap_for(input)
  for _, cap in ipairs(caps) do
    if policy.in_group(input, cap.group) then return cap end
  end
  return default
end

local function check(input)
  local cap = cap_for(input)
  local cpus = policy.number(input, "cpus")
  if cpus and cpus > cap.cpus then
    policy.deny(("at most %d CPUs (asked for %g)"):format(cap.cpus, cpus),
                "cpus")
  end
  local memory = policy.number(input, "memory")
  if memory and memory > cap.memory then
    policy.set("memory", cap.memory)
    policy.warn(("memory lowered from %g to %d GiB"):format(memory,
                                                           cap.memory))
  end
end

workspace_create = check

function build(input)
  if input.transition == "start" then check(input) end
end
