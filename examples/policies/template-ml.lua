-- policy.lua of an ML template, written by its author: the template needs
-- at least 8 CPUs and 32 GiB and raises smaller values. The deployment's
-- policies (here cpu-memory-caps.lua) still apply on top: a template
-- policy can only narrow what the deployment allows.
function workspace_create(input)
  local cpus = policy.number(input, "cpus") or 0
  if cpus < 8 then
    policy.set("cpus", 8)
    policy.warn("cpus raised to 8, the least this template runs with")
  end
  local memory = policy.number(input, "memory") or 0
  if memory < 32 then
    policy.set("memory", 32)
  end
end
