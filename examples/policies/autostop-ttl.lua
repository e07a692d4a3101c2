-- Autostop: workspaces stop after at most 12 hours (24 for the on-call
-- group). A longer TTL is lowered to the cap with a warning; turning
-- autostop off is refused.
local hour = 3600 * 1000

function schedule(input)
  local cap = policy.in_group(input, "on-call") and 24 * hour or 12 * hour
  local ttl = input.schedule.new.ttl_ms
  if ttl == nil or ttl == 0 then
    policy.deny(("autostop cannot be turned off; pick at most %d hours")
                :format(cap // hour), "ttl_ms")
  elseif ttl > cap then
    policy.set("ttl_ms", cap)
    policy.warn(("autostop lowered from %g to %d hours")
                :format(ttl / hour, cap // hour))
  end
end
