-- 0007_agent_exit_code.sql: the startup script's exit code, reported by
-- the agent with start_error (docs/api.md, "Workspace agents"), so
-- `atrium show` and the agent JSON say why the start failed without
-- reading the log. NULL: no code (the start did not fail, or the script
-- was killed or never ran).
ALTER TABLE workspace_agents ADD COLUMN startup_script_exit_code INTEGER;
