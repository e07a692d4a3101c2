-- 0006_apps.sql: app tokens, the short-lived credential of a browser's
-- session with one workspace app (docs/api.md, "Workspace apps").
--
-- Apps are served under the server's own origin (/@owner/workspace/apps/
-- slug/), so the API session cookie must never reach them. The server
-- trades the session for an app token scoped to one agent's app and
-- sets it as a cookie whose Path is the app's prefix. Only a SHA-256 of
-- the token is kept (hex, the primary key: lookups by digest reveal
-- nothing about the token). A token dies with the API key it was issued
-- from (sign-out), with its agent (a new build), and at expires_at.
CREATE TABLE workspace_app_tokens (
  token_hash   TEXT        NOT NULL PRIMARY KEY CHECK (token_hash <> ''),
  api_key_id   TEXT        NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
  user_id      UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  agent_id     UUID        NOT NULL
               REFERENCES workspace_agents (id) ON DELETE CASCADE,
  app_slug     TEXT        NOT NULL CHECK (app_slug <> ''),
  created_at   TIMESTAMPTZ NOT NULL,
  expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX workspace_app_tokens_expires_at
  ON workspace_app_tokens (expires_at);
CREATE INDEX workspace_app_tokens_api_key_id
  ON workspace_app_tokens (api_key_id);
