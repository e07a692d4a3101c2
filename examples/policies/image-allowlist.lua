-- Images from an allow-list only: a workspace's "image" parameter must be
-- one of these, and a template version whose image parameter offers or
-- defaults to another one is refused when it is pushed.
local allowed = {
  ["ubuntu:22.04"] = true,
  ["ubuntu:24.04"] = true,
  ["debian:12"] = true,
  ["ghcr.io/acme/dev:2024.05"] = true,
}

local function check_image(input)
  local image = policy.param(input, "image")
  if image and not allowed[image] then
    policy.deny(("image %s is not on the allow-list"):format(image), "image")
  end
end

workspace_create = check_image

function build(input)
  if input.transition == "start" then check_image(input) end
end

function template_push(input)
  for _, param in ipairs(input.manifest.parameters) do
    if param.name == "image" then
      if param.default and not allowed[param.default] then
        policy.deny(("parameter image: the default %s is not on the "
                     .. "allow-list"):format(param.default))
      end
      for _, option in ipairs(param.options or {}) do
        if not allowed[option.value] then
          policy.deny(("parameter image: option %s is not on the "
                       .. "allow-list"):format(option.value))
        end
      end
    end
  end
end
