-- Naming rules: lower case letters, digits and dashes, starting with a
-- letter, at most 32 characters; and only owners may put "prod" in a
-- workspace's name.
function workspace_create(input)
  local name = input.workspace.name
  if #name > 32 then
    policy.deny(("%q is longer than 32 characters"):format(name))
  end
  if not name:match("^[a-z][a-z0-9-]*$") then
    policy.deny(("%q: use lower case letters, digits and dashes, "
                 .. "starting with a letter"):format(name))
  end
  if name:find("prod", 1, true) and not policy.has_role(input, "owner") then
    policy.deny("only owners may name a workspace after production")
  end
end
