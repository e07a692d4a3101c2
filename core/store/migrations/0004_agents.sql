-- 0004_agents.sql: the workspace agent (docs/agent.md, docs/design/agent.md).
--
-- A template version may declare one agent (template.yaml `agent:`), kept
-- as JSON; each start build of such a version makes one workspace_agents
-- row for the resource that hosts it, with a token of its own (only its
-- digest is stored, atr_dbcrypt_token_digest) that dies when a later build
-- revokes it.
ALTER TABLE template_versions ADD COLUMN agent_spec TEXT;

ALTER TABLE workspace_agents ADD COLUMN revoked_at TIMESTAMPTZ;
ALTER TABLE workspace_agents ADD COLUMN shutdown_requested_at TIMESTAMPTZ;
ALTER TABLE workspace_agents ADD COLUMN stats_at TIMESTAMPTZ;
-- JSON object: the last stats report.
ALTER TABLE workspace_agents ADD COLUMN stats TEXT;
ALTER TABLE workspace_agents ADD COLUMN startup_script_behavior TEXT
  NOT NULL DEFAULT 'non-blocking'
  CHECK (startup_script_behavior IN ('blocking', 'non-blocking'));
-- JSON array: [{process_name, network, port}].
ALTER TABLE workspace_agents ADD COLUMN listening_ports TEXT NOT NULL
  DEFAULT '[]';
-- The id of the agent's last stored log line (lines are numbered 1, 2, ...
-- per agent, across sources, so users page with ?after=).
ALTER TABLE workspace_agents ADD COLUMN log_lines BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workspace_agents ADD COLUMN build_id UUID;
ALTER TABLE workspace_agents ADD COLUMN workspace_id UUID;

-- Tokens are per build now: a live token is unique.
DROP INDEX workspace_agents_auth_token;
CREATE UNIQUE INDEX workspace_agents_live_token ON workspace_agents (auth_token)
  WHERE revoked_at IS NULL;
CREATE INDEX workspace_agents_workspace_id ON workspace_agents (workspace_id);

-- Where a log line came from: the startup script, the shutdown script, the
-- agent itself.
CREATE TABLE workspace_agent_log_sources (
  agent_id     UUID        NOT NULL
               REFERENCES workspace_agents (id) ON DELETE CASCADE,
  id           UUID        NOT NULL,
  created_at   TIMESTAMPTZ NOT NULL,
  display_name TEXT        NOT NULL,
  icon         TEXT        NOT NULL DEFAULT '',
  PRIMARY KEY (agent_id, id)
);

-- seq is the agent's number for the line within its source (1, 2, ...):
-- a batch sent again after a lost answer inserts nothing twice.
CREATE TABLE workspace_agent_logs (
  agent_id   UUID        NOT NULL
             REFERENCES workspace_agents (id) ON DELETE CASCADE,
  source_id  UUID        NOT NULL,
  seq        BIGINT      NOT NULL CHECK (seq > 0),
  id         BIGINT      NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  level      TEXT        NOT NULL DEFAULT 'info'
    CHECK (level IN ('trace', 'debug', 'info', 'warn', 'error')),
  output     TEXT        NOT NULL,
  PRIMARY KEY (agent_id, source_id, seq)
);
CREATE INDEX workspace_agent_logs_agent_id_id ON workspace_agent_logs
  (agent_id, id);

CREATE TABLE workspace_agent_scripts (
  agent_id           UUID    NOT NULL
                     REFERENCES workspace_agents (id) ON DELETE CASCADE,
  log_source_id      UUID    NOT NULL,
  display_name       TEXT    NOT NULL,
  script             TEXT    NOT NULL,
  timeout_seconds    BIGINT  NOT NULL DEFAULT 0 CHECK (timeout_seconds >= 0),
  start_blocks_login BOOLEAN NOT NULL DEFAULT FALSE,
  run_on_start       BOOLEAN NOT NULL DEFAULT FALSE,
  run_on_stop        BOOLEAN NOT NULL DEFAULT FALSE,
  PRIMARY KEY (agent_id, log_source_id)
);

CREATE TABLE workspace_agent_metadata (
  agent_id         UUID        NOT NULL
                   REFERENCES workspace_agents (id) ON DELETE CASCADE,
  key              TEXT        NOT NULL CHECK (key <> ''),
  display_name     TEXT        NOT NULL DEFAULT '',
  script           TEXT        NOT NULL,
  interval_seconds BIGINT      NOT NULL CHECK (interval_seconds > 0),
  timeout_seconds  BIGINT      NOT NULL CHECK (timeout_seconds > 0),
  display_order    BIGINT      NOT NULL DEFAULT 0,
  value            TEXT        NOT NULL DEFAULT '',
  error            TEXT        NOT NULL DEFAULT '',
  collected_at     TIMESTAMPTZ,
  PRIMARY KEY (agent_id, key)
);
