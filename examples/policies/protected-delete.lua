-- A workspace whose "protected" parameter is true cannot be deleted: its
-- owner sets protected=false with a start or stop build first. The last
-- build's value counts ("old"), so a delete cannot unprotect and delete
-- at once. Owners (the role) may delete anyway, with a warning.
function build(input)
  if input.transition ~= "delete" then return end
  if policy.bool(input, "protected", "old") ~= true then return end
  if policy.has_role(input, "owner") then
    policy.warn("deleting a protected workspace (allowed for owners)")
  else
    policy.deny(("workspace %s is protected: build it with protected=false "
                 .. "before deleting it"):format(input.workspace.name),
                "protected")
  end
end
