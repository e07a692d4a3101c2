-- 0001_init.sql: the initial schema of atrium.
--
-- One text for SQLite (3.35 or newer, foreign_keys on) and PostgreSQL (15).
-- The core runs it in one transaction and records it in schema_migrations,
-- which the core creates itself. docs/schema.md describes every table and the
-- rules this file keeps to. In short:
--   types     BIGINT, BOOLEAN, TEXT, BYTEA, TIMESTAMPTZ, UUID, DOUBLE PRECISION
--   ids       UUID (36-char lower-case text on SQLite), api_keys.id is TEXT
--   times     always written by the core, never defaulted, NULL means never
--   durations BIGINT milliseconds (Coder stores Go nanoseconds)
--   JSON      TEXT, only for values the core never filters on
--   lists     that the core queries are tables (roles, members, tags)
--   enums     TEXT with CHECK (col IN (...)) for closed sets, else non-empty
--   PRIMARY KEY columns are declared NOT NULL (SQLite would accept NULL)
--   no triggers, no sequences, no generated columns, no defaults on BYTEA
--   or TIMESTAMPTZ, no reserved words as names (Coder has replicas.primary,
--   here is_primary)
-- Tables come in dependency order because PostgreSQL checks a REFERENCES
-- clause when the table is created.

------------------------------------------------------------------------------
-- Organizations, users, roles, groups
------------------------------------------------------------------------------

CREATE TABLE organizations (
  id           UUID        NOT NULL PRIMARY KEY,
  name         TEXT        NOT NULL CHECK (name <> ''),
  display_name TEXT        NOT NULL DEFAULT '',
  description  TEXT        NOT NULL DEFAULT '',
  icon         TEXT        NOT NULL DEFAULT '',
  created_at   TIMESTAMPTZ NOT NULL,
  updated_at   TIMESTAMPTZ NOT NULL,
  is_default   BOOLEAN     NOT NULL DEFAULT FALSE,
  -- Soft delete, as in Coder: rows are kept so that history stays joinable.
  deleted      BOOLEAN     NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX organizations_name_lower
  ON organizations (lower(name)) WHERE deleted = FALSE;
-- At most one default organization.
CREATE UNIQUE INDEX organizations_single_default
  ON organizations (is_default) WHERE is_default = TRUE;

CREATE TABLE users (
  id                   UUID        NOT NULL PRIMARY KEY,
  email                TEXT        NOT NULL,
  username             TEXT        NOT NULL CHECK (username <> ''),
  name                 TEXT        NOT NULL DEFAULT '',
  -- The password hash in its encoded form, empty for users of other logins.
  hashed_password      BYTEA       NOT NULL,
  created_at           TIMESTAMPTZ NOT NULL,
  updated_at           TIMESTAMPTZ NOT NULL,
  status               TEXT        NOT NULL DEFAULT 'dormant'
                       CHECK (status IN ('active', 'suspended', 'dormant')),
  -- Deletion is a flag next to status, as in Coder.
  deleted              BOOLEAN     NOT NULL DEFAULT FALSE,
  -- 'password', 'github', 'oidc', 'none', or the name of an auth plugin.
  login_type           TEXT        NOT NULL DEFAULT 'password'
                       CHECK (login_type <> ''),
  avatar_url           TEXT        NOT NULL DEFAULT '',
  last_seen_at         TIMESTAMPTZ,
  -- Daily cron (with optional CRON_TZ), empty for the deployment default.
  quiet_hours_schedule TEXT        NOT NULL DEFAULT '',
  theme_preference     TEXT        NOT NULL DEFAULT '',
  -- A built-in identity (for example the scheduler) that cannot log in.
  is_system            BOOLEAN     NOT NULL DEFAULT FALSE,
  hashed_one_time_passcode     BYTEA,
  one_time_passcode_expires_at TIMESTAMPTZ,
  CONSTRAINT users_one_time_passcode_set CHECK (
    (hashed_one_time_passcode IS NULL) = (one_time_passcode_expires_at IS NULL))
);
CREATE UNIQUE INDEX users_username_lower
  ON users (lower(username)) WHERE deleted = FALSE;
CREATE UNIQUE INDEX users_email_lower
  ON users (lower(email)) WHERE deleted = FALSE AND email <> '';

-- Site-wide roles (Coder: users.rbac_roles text[]).
CREATE TABLE user_roles (
  user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role    TEXT NOT NULL CHECK (role <> ''),
  PRIMARY KEY (user_id, role)
);
CREATE INDEX user_roles_role ON user_roles (role);

CREATE TABLE organization_members (
  user_id         UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  organization_id UUID        NOT NULL
                  REFERENCES organizations (id) ON DELETE CASCADE,
  created_at      TIMESTAMPTZ NOT NULL,
  updated_at      TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX organization_members_user_id ON organization_members (user_id);

-- Organization roles (Coder: organization_members.roles text[]).
-- Removing the membership removes its roles.
CREATE TABLE organization_member_roles (
  user_id         UUID NOT NULL,
  organization_id UUID NOT NULL,
  role            TEXT NOT NULL CHECK (role <> ''),
  PRIMARY KEY (organization_id, user_id, role),
  FOREIGN KEY (organization_id, user_id)
    REFERENCES organization_members (organization_id, user_id) ON DELETE CASCADE
);

CREATE TABLE groups (
  id              UUID   NOT NULL PRIMARY KEY,
  name            TEXT   NOT NULL CHECK (name <> ''),
  display_name    TEXT   NOT NULL DEFAULT '',
  organization_id UUID   NOT NULL
                  REFERENCES organizations (id) ON DELETE CASCADE,
  avatar_url      TEXT   NOT NULL DEFAULT '',
  quota_allowance BIGINT NOT NULL DEFAULT 0 CHECK (quota_allowance >= 0),
  -- 'user' (made by hand) or the name of the auth plugin that syncs it.
  source          TEXT   NOT NULL DEFAULT 'user' CHECK (source <> '')
);
CREATE UNIQUE INDEX groups_organization_id_name ON groups (organization_id, name);
-- The target of the foreign key of group_members.
CREATE UNIQUE INDEX groups_id_organization_id ON groups (id, organization_id);

-- Group membership. organization_id is repeated here so that the database
-- keeps members inside the organization of the group and drops them when they
-- leave it (Coder does this with the trigger
-- delete_group_members_on_org_member_delete).
CREATE TABLE group_members (
  user_id         UUID NOT NULL,
  group_id        UUID NOT NULL,
  organization_id UUID NOT NULL,
  PRIMARY KEY (group_id, user_id),
  FOREIGN KEY (group_id, organization_id)
    REFERENCES groups (id, organization_id) ON DELETE CASCADE,
  FOREIGN KEY (organization_id, user_id)
    REFERENCES organization_members (organization_id, user_id) ON DELETE CASCADE
);
CREATE INDEX group_members_organization_id_user_id
  ON group_members (organization_id, user_id);

------------------------------------------------------------------------------
-- Authentication
------------------------------------------------------------------------------

-- API keys are "id-secret". Only a SHA-256 of the secret is kept.
CREATE TABLE api_keys (
  id               TEXT        NOT NULL PRIMARY KEY CHECK (id <> ''),
  hashed_secret    BYTEA       NOT NULL,
  user_id          UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  last_used        TIMESTAMPTZ NOT NULL,
  expires_at       TIMESTAMPTZ NOT NULL,
  created_at       TIMESTAMPTZ NOT NULL,
  updated_at       TIMESTAMPTZ NOT NULL,
  -- How the key was obtained: 'password', 'oidc', ..., 'token' for a
  -- long-lived token made with `atrium tokens create`.
  login_type       TEXT        NOT NULL CHECK (login_type <> ''),
  lifetime_seconds BIGINT      NOT NULL DEFAULT 86400 CHECK (lifetime_seconds > 0),
  ip_address       TEXT        NOT NULL DEFAULT '',
  scope            TEXT        NOT NULL DEFAULT 'all'
                   CHECK (scope IN ('all', 'application_connect')),
  token_name       TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);
CREATE INDEX api_keys_expires_at ON api_keys (expires_at);
CREATE UNIQUE INDEX api_keys_user_id_token_name
  ON api_keys (user_id, token_name) WHERE token_name <> '';

-- The identity of a user at an external login (OIDC subject, GitHub id, ...).
CREATE TABLE user_links (
  user_id                    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  login_type                 TEXT NOT NULL CHECK (login_type <> ''),
  linked_id                  TEXT NOT NULL DEFAULT '',
  oauth_access_token         TEXT NOT NULL DEFAULT '',
  -- Id of the key that encrypted the token, NULL when stored in clear.
  oauth_access_token_key_id  TEXT,
  oauth_refresh_token        TEXT NOT NULL DEFAULT '',
  oauth_refresh_token_key_id TEXT,
  oauth_expiry               TIMESTAMPTZ,
  -- JSON object: the claims of the identity provider.
  claims                     TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (user_id, login_type)
);
CREATE UNIQUE INDEX user_links_linked_id_login_type
  ON user_links (linked_id, login_type) WHERE linked_id <> '';

------------------------------------------------------------------------------
-- Files, replicas
------------------------------------------------------------------------------

-- Uploaded archives (template versions). hash is the hex SHA-256 of data.
CREATE TABLE files (
  id         UUID        NOT NULL PRIMARY KEY,
  hash       TEXT        NOT NULL CHECK (hash <> ''),
  created_at TIMESTAMPTZ NOT NULL,
  created_by UUID        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
  mimetype   TEXT        NOT NULL,
  data       BYTEA       NOT NULL
);
CREATE UNIQUE INDEX files_hash_created_by ON files (hash, created_by);

-- Running atrium servers that share this database.
CREATE TABLE replicas (
  id               UUID        NOT NULL PRIMARY KEY,
  created_at       TIMESTAMPTZ NOT NULL,
  started_at       TIMESTAMPTZ NOT NULL,
  stopped_at       TIMESTAMPTZ,
  updated_at       TIMESTAMPTZ NOT NULL,
  hostname         TEXT        NOT NULL,
  region_id        BIGINT      NOT NULL DEFAULT 0,
  relay_address    TEXT        NOT NULL DEFAULT '',
  -- Microseconds, as in Coder.
  database_latency BIGINT      NOT NULL DEFAULT 0,
  version          TEXT        NOT NULL,
  error            TEXT        NOT NULL DEFAULT '',
  is_primary       BOOLEAN     NOT NULL DEFAULT TRUE
);
CREATE INDEX replicas_updated_at ON replicas (updated_at);

------------------------------------------------------------------------------
-- Provisioner daemons and jobs
------------------------------------------------------------------------------

CREATE TABLE provisioner_daemons (
  id              UUID        NOT NULL PRIMARY KEY,
  created_at      TIMESTAMPTZ NOT NULL,
  name            TEXT        NOT NULL CHECK (name <> ''),
  -- JSON array of provisioner types, for display. The claim passes the
  -- types of the daemon as parameters.
  provisioners    TEXT        NOT NULL DEFAULT '[]',
  -- The server that runs a built-in daemon, NULL for an external one.
  replica_id      UUID,
  last_seen_at    TIMESTAMPTZ,
  version         TEXT        NOT NULL DEFAULT '',
  api_version     TEXT        NOT NULL DEFAULT '1.0',
  organization_id UUID        NOT NULL
                  REFERENCES organizations (id) ON DELETE CASCADE,
  -- The provisioner key it authenticated with, NULL for built-in and PSK.
  key_id          UUID
);
-- The upsert key when a daemon (re)connects.
CREATE UNIQUE INDEX provisioner_daemons_organization_id_name
  ON provisioner_daemons (organization_id, name);

-- Tags a daemon holds (Coder: provisioner_daemons.tags jsonb).
CREATE TABLE provisioner_daemon_tags (
  daemon_id UUID NOT NULL REFERENCES provisioner_daemons (id) ON DELETE CASCADE,
  key       TEXT NOT NULL CHECK (key <> ''),
  value     TEXT NOT NULL,
  PRIMARY KEY (daemon_id, key)
);

-- Queued work. Status is derived, as the generated job_status column of Coder:
--   completed_at set:   failed if error, else canceled if canceled_at,
--                       else succeeded
--   completed_at NULL:  failed if error, else canceling if canceled_at,
--                       else pending if started_at is NULL, else running
CREATE TABLE provisioner_jobs (
  id                UUID        NOT NULL PRIMARY KEY,
  created_at        TIMESTAMPTZ NOT NULL,
  updated_at        TIMESTAMPTZ NOT NULL,
  started_at        TIMESTAMPTZ,
  canceled_at       TIMESTAMPTZ,
  completed_at      TIMESTAMPTZ,
  -- Written by the worker while it runs the job, read by the reaper.
  last_heartbeat_at TIMESTAMPTZ,
  -- NULL when there is no error (never the empty string).
  error             TEXT        CHECK (error IS NULL OR error <> ''),
  error_code        TEXT,
  organization_id   UUID        NOT NULL
                    REFERENCES organizations (id) ON DELETE CASCADE,
  -- A user, or a system user for the scheduler. No foreign key (as Coder).
  initiator_id      UUID        NOT NULL,
  -- A provisioner type: 'terraform', 'docker', 'kubernetes', or that of a plugin.
  provisioner       TEXT        NOT NULL CHECK (provisioner <> ''),
  storage_method    TEXT        NOT NULL DEFAULT 'file'
                    CHECK (storage_method IN ('file')),
  type              TEXT        NOT NULL CHECK (type IN (
                      'template_version_import',
                      'workspace_build',
                      'template_version_dry_run')),
  -- JSON object: template_version_id or workspace_build_id, dry-run values.
  input             TEXT        NOT NULL DEFAULT '{}',
  -- The daemon that claimed it. No foreign key: daemons come and go.
  worker_id         UUID,
  file_id           UUID        NOT NULL REFERENCES files (id) ON DELETE RESTRICT,
  -- JSON object: trace context of the request that made the job.
  trace_metadata    TEXT,
  -- Total bytes of output in provisioner_job_logs, capped at 1 MiB.
  logs_length       BIGINT      NOT NULL DEFAULT 0
                    CHECK (logs_length >= 0 AND logs_length <= 1048576),
  logs_overflowed   BOOLEAN     NOT NULL DEFAULT FALSE,
  -- A job is only finished after it started or was canceled, so
  -- "started_at IS NULL AND canceled_at IS NULL" is exactly "pending". A
  -- reaper that fails a job that never started sets started_at too.
  CONSTRAINT provisioner_jobs_completed_after_start CHECK (
    completed_at IS NULL OR started_at IS NOT NULL OR canceled_at IS NOT NULL)
);
-- Pending jobs, oldest first: the claim, and "queued too long" for the reaper.
CREATE INDEX provisioner_jobs_pending
  ON provisioner_jobs (created_at, id)
  WHERE started_at IS NULL AND canceled_at IS NULL;
-- Running (or canceling) jobs by heartbeat: "stopped heartbeating" for
-- the reaper.
CREATE INDEX provisioner_jobs_running
  ON provisioner_jobs (last_heartbeat_at)
  WHERE started_at IS NOT NULL AND completed_at IS NULL;
-- The current and latest jobs of a daemon.
CREATE INDEX provisioner_jobs_worker_id_completed_at
  ON provisioner_jobs (worker_id, completed_at);
-- Foreign-key check when a file is deleted.
CREATE INDEX provisioner_jobs_file_id ON provisioner_jobs (file_id);

-- Tags a job needs (Coder: provisioner_jobs.tags jsonb). A daemon may claim
-- a job when it holds every one of them, key and value. A job without
-- tags fits every daemon.
CREATE TABLE provisioner_job_tags (
  job_id UUID NOT NULL REFERENCES provisioner_jobs (id) ON DELETE CASCADE,
  key    TEXT NOT NULL CHECK (key <> ''),
  value  TEXT NOT NULL,
  PRIMARY KEY (job_id, key)
);

-- Job output. id numbers the lines of one job 1, 2, 3, ... (Coder: one
-- global bigserial). The primary key is the (job_id, id) index that
-- "logs after line N" reads.
CREATE TABLE provisioner_job_logs (
  job_id     UUID        NOT NULL
             REFERENCES provisioner_jobs (id) ON DELETE CASCADE,
  id         BIGINT      NOT NULL CHECK (id >= 1),
  created_at TIMESTAMPTZ NOT NULL,
  source     TEXT        NOT NULL
             CHECK (source IN ('provisioner_daemon', 'provisioner')),
  level      TEXT        NOT NULL
             CHECK (level IN ('trace', 'debug', 'info', 'warn', 'error')),
  stage      TEXT        NOT NULL DEFAULT '',
  output     TEXT        NOT NULL,
  PRIMARY KEY (job_id, id)
);

------------------------------------------------------------------------------
-- Templates
------------------------------------------------------------------------------

-- Durations are BIGINT milliseconds (Coder: nanoseconds).
CREATE TABLE templates (
  id                                UUID        NOT NULL PRIMARY KEY,
  created_at                        TIMESTAMPTZ NOT NULL,
  updated_at                        TIMESTAMPTZ NOT NULL,
  organization_id                   UUID        NOT NULL
                                    REFERENCES organizations (id) ON DELETE CASCADE,
  deleted                           BOOLEAN     NOT NULL DEFAULT FALSE,
  name                              TEXT        NOT NULL CHECK (name <> ''),
  display_name                      TEXT        NOT NULL DEFAULT '',
  description                       TEXT        NOT NULL DEFAULT '',
  icon                              TEXT        NOT NULL DEFAULT '',
  provisioner                       TEXT        NOT NULL CHECK (provisioner <> ''),
  -- No foreign key: template_versions refers to templates, and a portable
  -- schema cannot add the reverse reference afterwards. The core keeps it
  -- pointing at a version of this template.
  active_version_id                 UUID        NOT NULL,
  created_by                        UUID        NOT NULL
                                    REFERENCES users (id) ON DELETE RESTRICT,
  -- Default autostop after start, ms (7 days, the column default of Coder).
  default_ttl                       BIGINT      NOT NULL DEFAULT 604800000
                                    CHECK (default_ttl >= 0),
  -- Activity extends the deadline by this much, ms (1 hour).
  activity_bump                     BIGINT      NOT NULL DEFAULT 3600000
                                    CHECK (activity_bump >= 0),
  -- Stop a failed workspace after, ms (0 = never).
  failure_ttl                       BIGINT      NOT NULL DEFAULT 0
                                    CHECK (failure_ttl >= 0),
  -- Mark an unused workspace dormant after, ms (0 = never).
  time_til_dormant                  BIGINT      NOT NULL DEFAULT 0
                                    CHECK (time_til_dormant >= 0),
  -- Delete a dormant workspace after, ms (0 = never).
  time_til_dormant_autodelete       BIGINT      NOT NULL DEFAULT 0
                                    CHECK (time_til_dormant_autodelete >= 0),
  -- Bit 0 Monday ... bit 6 Sunday.
  autostop_requirement_days_of_week BIGINT      NOT NULL DEFAULT 0
    CHECK (autostop_requirement_days_of_week >= 0
           AND autostop_requirement_days_of_week <= 127),
  autostop_requirement_weeks        BIGINT      NOT NULL DEFAULT 0
                                    CHECK (autostop_requirement_weeks >= 0),
  autostart_block_days_of_week      BIGINT      NOT NULL DEFAULT 0
    CHECK (autostart_block_days_of_week >= 0
           AND autostart_block_days_of_week <= 127),
  allow_user_autostart              BOOLEAN     NOT NULL DEFAULT TRUE,
  allow_user_autostop               BOOLEAN     NOT NULL DEFAULT TRUE,
  allow_user_cancel_workspace_jobs  BOOLEAN     NOT NULL DEFAULT TRUE,
  require_active_version            BOOLEAN     NOT NULL DEFAULT FALSE,
  -- Non-empty: the template is deprecated, and this is the message.
  deprecated                        TEXT        NOT NULL DEFAULT '',
  max_port_sharing_level            TEXT        NOT NULL DEFAULT 'owner'
    CHECK (max_port_sharing_level IN
           ('owner', 'authenticated', 'organization', 'public'))
);
CREATE UNIQUE INDEX templates_organization_id_name_lower
  ON templates (organization_id, lower(name)) WHERE deleted = FALSE;

CREATE TABLE template_versions (
  id              UUID        NOT NULL PRIMARY KEY,
  -- NULL while a version is imported before its template exists.
  template_id     UUID        REFERENCES templates (id) ON DELETE CASCADE,
  organization_id UUID        NOT NULL
                  REFERENCES organizations (id) ON DELETE CASCADE,
  created_at      TIMESTAMPTZ NOT NULL,
  updated_at      TIMESTAMPTZ NOT NULL,
  name            TEXT        NOT NULL CHECK (name <> ''),
  message         TEXT        NOT NULL DEFAULT '',
  readme          TEXT        NOT NULL DEFAULT '',
  -- The import job.
  job_id          UUID        NOT NULL
                  REFERENCES provisioner_jobs (id) ON DELETE RESTRICT,
  created_by      UUID        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
  archived        BOOLEAN     NOT NULL DEFAULT FALSE
);
-- NULL template_id values are distinct on both engines.
CREATE UNIQUE INDEX template_versions_template_id_name
  ON template_versions (template_id, name);
CREATE UNIQUE INDEX template_versions_job_id ON template_versions (job_id);

-- The parameter schema of a version, from template.yaml.
CREATE TABLE template_version_parameters (
  template_version_id  UUID    NOT NULL
                       REFERENCES template_versions (id) ON DELETE CASCADE,
  name                 TEXT    NOT NULL CHECK (name <> ''),
  display_name         TEXT    NOT NULL DEFAULT '',
  description          TEXT    NOT NULL DEFAULT '',
  type                 TEXT    NOT NULL
                       CHECK (type IN ('string', 'number', 'bool', 'list(string)')),
  mutable              BOOLEAN NOT NULL DEFAULT FALSE,
  default_value        TEXT    NOT NULL DEFAULT '',
  icon                 TEXT    NOT NULL DEFAULT '',
  -- JSON array of {name, description, value, icon}.
  options              TEXT    NOT NULL DEFAULT '[]',
  validation_regex     TEXT    NOT NULL DEFAULT '',
  -- Bounds of a number (Coder: integer). NULL = unbounded.
  validation_min       DOUBLE PRECISION,
  validation_max       DOUBLE PRECISION,
  validation_error     TEXT    NOT NULL DEFAULT '',
  validation_monotonic TEXT    NOT NULL DEFAULT ''
                       CHECK (validation_monotonic IN ('', 'increasing', 'decreasing')),
  required             BOOLEAN NOT NULL DEFAULT TRUE,
  display_order        BIGINT  NOT NULL DEFAULT 0,
  -- Not kept from one build to the next.
  ephemeral            BOOLEAN NOT NULL DEFAULT FALSE,
  -- atrium: the value is redacted in logs, audit diffs and the API.
  sensitive            BOOLEAN NOT NULL DEFAULT FALSE,
  PRIMARY KEY (template_version_id, name),
  CONSTRAINT template_version_parameters_min_le_max CHECK (
    validation_min IS NULL OR validation_max IS NULL
    OR validation_min <= validation_max)
);

------------------------------------------------------------------------------
-- Workspaces and builds
------------------------------------------------------------------------------

CREATE TABLE workspaces (
  id                 UUID        NOT NULL PRIMARY KEY,
  created_at         TIMESTAMPTZ NOT NULL,
  updated_at         TIMESTAMPTZ NOT NULL,
  owner_id           UUID        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
  organization_id    UUID        NOT NULL
                     REFERENCES organizations (id) ON DELETE RESTRICT,
  template_id        UUID        NOT NULL REFERENCES templates (id) ON DELETE RESTRICT,
  deleted            BOOLEAN     NOT NULL DEFAULT FALSE,
  name               TEXT        NOT NULL CHECK (name <> ''),
  -- Cron with optional CRON_TZ, NULL = no autostart.
  autostart_schedule TEXT,
  -- Autostop after start, ms, NULL = default_ttl of the template.
  ttl                BIGINT      CHECK (ttl IS NULL OR ttl >= 0),
  last_used_at       TIMESTAMPTZ NOT NULL,
  dormant_at         TIMESTAMPTZ,
  deleting_at        TIMESTAMPTZ,
  next_start_at      TIMESTAMPTZ,
  automatic_updates  TEXT        NOT NULL DEFAULT 'never'
                     CHECK (automatic_updates IN ('always', 'never')),
  favorite           BOOLEAN     NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX workspaces_owner_id_name_lower
  ON workspaces (owner_id, lower(name)) WHERE deleted = FALSE;
CREATE INDEX workspaces_template_id ON workspaces (template_id) WHERE deleted = FALSE;
CREATE INDEX workspaces_organization_id
  ON workspaces (organization_id) WHERE deleted = FALSE;
CREATE INDEX workspaces_next_start_at ON workspaces (next_start_at) WHERE deleted = FALSE;

CREATE TABLE workspace_builds (
  id                  UUID        NOT NULL PRIMARY KEY,
  created_at          TIMESTAMPTZ NOT NULL,
  updated_at          TIMESTAMPTZ NOT NULL,
  workspace_id        UUID        NOT NULL
                      REFERENCES workspaces (id) ON DELETE CASCADE,
  template_version_id UUID        NOT NULL
                      REFERENCES template_versions (id) ON DELETE RESTRICT,
  build_number        BIGINT      NOT NULL CHECK (build_number >= 1),
  transition          TEXT        NOT NULL
                      CHECK (transition IN ('start', 'stop', 'delete')),
  -- A user, or a system user for the scheduler. No foreign key (as Coder).
  initiator_id        UUID        NOT NULL,
  -- The state the provisioner returned, the next build starts from it.
  provisioner_state   BYTEA,
  job_id              UUID        NOT NULL
                      REFERENCES provisioner_jobs (id) ON DELETE RESTRICT,
  -- NULL = none (Coder: 0001-01-01).
  deadline            TIMESTAMPTZ,
  max_deadline        TIMESTAMPTZ,
  -- 'initiator', 'autostart', 'autostop', 'dormancy', 'failedstop',
  -- 'autodelete', 'dashboard', 'cli', ... (open set, so no IN list).
  reason              TEXT        NOT NULL DEFAULT 'initiator' CHECK (reason <> ''),
  daily_cost          BIGINT      NOT NULL DEFAULT 0 CHECK (daily_cost >= 0),
  CONSTRAINT workspace_builds_deadline_below_max_deadline CHECK (
    deadline IS NULL OR max_deadline IS NULL OR deadline <= max_deadline)
);
-- Build numbers per workspace, and "latest build" (ORDER BY build_number DESC).
CREATE UNIQUE INDEX workspace_builds_workspace_id_build_number
  ON workspace_builds (workspace_id, build_number);
CREATE UNIQUE INDEX workspace_builds_job_id ON workspace_builds (job_id);
CREATE INDEX workspace_builds_initiator_id ON workspace_builds (initiator_id);
CREATE INDEX workspace_builds_template_version_id
  ON workspace_builds (template_version_id);

-- The parameter values a build ran with.
CREATE TABLE workspace_build_parameters (
  workspace_build_id UUID NOT NULL
                     REFERENCES workspace_builds (id) ON DELETE CASCADE,
  name               TEXT NOT NULL CHECK (name <> ''),
  value              TEXT NOT NULL,
  PRIMARY KEY (workspace_build_id, name)
);

------------------------------------------------------------------------------
-- What a job made: resources, agents, apps
------------------------------------------------------------------------------

CREATE TABLE workspace_resources (
  id            UUID        NOT NULL PRIMARY KEY,
  created_at    TIMESTAMPTZ NOT NULL,
  job_id        UUID        NOT NULL
                REFERENCES provisioner_jobs (id) ON DELETE CASCADE,
  transition    TEXT        NOT NULL
                CHECK (transition IN ('start', 'stop', 'delete')),
  type          TEXT        NOT NULL,
  name          TEXT        NOT NULL,
  hide          BOOLEAN     NOT NULL DEFAULT FALSE,
  icon          TEXT        NOT NULL DEFAULT '',
  instance_type TEXT,
  daily_cost    BIGINT      NOT NULL DEFAULT 0 CHECK (daily_cost >= 0)
);
CREATE INDEX workspace_resources_job_id ON workspace_resources (job_id);

CREATE TABLE workspace_resource_metadata (
  workspace_resource_id UUID    NOT NULL
                        REFERENCES workspace_resources (id) ON DELETE CASCADE,
  key                   TEXT    NOT NULL CHECK (key <> ''),
  value                 TEXT,
  sensitive             BOOLEAN NOT NULL DEFAULT FALSE,
  PRIMARY KEY (workspace_resource_id, key)
);

CREATE TABLE workspace_agents (
  id                         UUID        NOT NULL PRIMARY KEY,
  created_at                 TIMESTAMPTZ NOT NULL,
  updated_at                 TIMESTAMPTZ NOT NULL,
  name                       TEXT        NOT NULL CHECK (name <> ''),
  first_connected_at         TIMESTAMPTZ,
  last_connected_at          TIMESTAMPTZ,
  disconnected_at            TIMESTAMPTZ,
  resource_id                UUID        NOT NULL
                             REFERENCES workspace_resources (id) ON DELETE CASCADE,
  -- Not unique: a provisioner may keep the token of an agent across
  -- builds, and the core authenticates against the agent of the latest build.
  auth_token                 UUID        NOT NULL,
  auth_instance_id           TEXT,
  architecture               TEXT        NOT NULL,
  operating_system           TEXT        NOT NULL,
  -- JSON objects.
  environment_variables      TEXT,
  instance_metadata          TEXT,
  resource_metadata          TEXT,
  directory                  TEXT        NOT NULL DEFAULT '',
  expanded_directory         TEXT        NOT NULL DEFAULT '',
  version                    TEXT        NOT NULL DEFAULT '',
  api_version                TEXT        NOT NULL DEFAULT '',
  last_connected_replica_id  UUID,
  -- 0 = no timeout.
  connection_timeout_seconds BIGINT      NOT NULL DEFAULT 0
                             CHECK (connection_timeout_seconds >= 0),
  troubleshooting_url        TEXT        NOT NULL DEFAULT '',
  motd_file                  TEXT        NOT NULL DEFAULT '',
  lifecycle_state            TEXT        NOT NULL DEFAULT 'created'
    CHECK (lifecycle_state IN ('created', 'starting', 'start_timeout',
           'start_error', 'ready', 'shutting_down', 'shutdown_timeout',
           'shutdown_error', 'off')),
  logs_length                BIGINT      NOT NULL DEFAULT 0
                             CHECK (logs_length >= 0 AND logs_length <= 1048576),
  logs_overflowed            BOOLEAN     NOT NULL DEFAULT FALSE,
  started_at                 TIMESTAMPTZ,
  ready_at                   TIMESTAMPTZ,
  -- JSON arrays of strings.
  subsystems                 TEXT        NOT NULL DEFAULT '[]',
  display_apps               TEXT        NOT NULL DEFAULT
    '["vscode","vscode_insiders","web_terminal","ssh_helper","port_forwarding_helper"]',
  display_order              BIGINT      NOT NULL DEFAULT 0
);
-- Also the resource_id lookup. Agent names must be unique in a whole build,
-- which the core checks (Coder: trigger check_workspace_agent_name_unique).
CREATE UNIQUE INDEX workspace_agents_resource_id_name
  ON workspace_agents (resource_id, name);
CREATE INDEX workspace_agents_auth_token ON workspace_agents (auth_token);
CREATE INDEX workspace_agents_auth_instance_id ON workspace_agents (auth_instance_id);

CREATE TABLE workspace_apps (
  id                    UUID        NOT NULL PRIMARY KEY,
  created_at            TIMESTAMPTZ NOT NULL,
  agent_id              UUID        NOT NULL
                        REFERENCES workspace_agents (id) ON DELETE CASCADE,
  slug                  TEXT        NOT NULL CHECK (slug <> ''),
  display_name          TEXT        NOT NULL DEFAULT '',
  icon                  TEXT        NOT NULL DEFAULT '',
  command               TEXT,
  url                   TEXT,
  healthcheck_url       TEXT        NOT NULL DEFAULT '',
  -- Seconds between checks, and failures before unhealthy.
  healthcheck_interval  BIGINT      NOT NULL DEFAULT 0
                        CHECK (healthcheck_interval >= 0),
  healthcheck_threshold BIGINT      NOT NULL DEFAULT 0
                        CHECK (healthcheck_threshold >= 0),
  health                TEXT        NOT NULL DEFAULT 'disabled'
    CHECK (health IN ('disabled', 'initializing', 'healthy', 'unhealthy')),
  subdomain             BOOLEAN     NOT NULL DEFAULT FALSE,
  sharing_level         TEXT        NOT NULL DEFAULT 'owner'
    CHECK (sharing_level IN ('owner', 'authenticated', 'organization', 'public')),
  external              BOOLEAN     NOT NULL DEFAULT FALSE,
  display_order         BIGINT      NOT NULL DEFAULT 0,
  hidden                BOOLEAN     NOT NULL DEFAULT FALSE,
  open_in               TEXT        NOT NULL DEFAULT 'slim-window'
                        CHECK (open_in IN ('tab', 'window', 'slim-window'))
);
CREATE UNIQUE INDEX workspace_apps_agent_id_slug ON workspace_apps (agent_id, slug);

------------------------------------------------------------------------------
-- Audit
------------------------------------------------------------------------------

-- No foreign keys: an entry outlives what it names, and some entries have
-- no user (a failed login) or no organization (a site-wide change).
CREATE TABLE audit_logs (
  id                UUID        NOT NULL PRIMARY KEY,
  time              TIMESTAMPTZ NOT NULL,
  user_id           UUID,
  organization_id   UUID,
  ip                TEXT,
  user_agent        TEXT,
  -- 'organization', 'template', 'template_version', 'user', 'workspace',
  -- 'api_key', 'group', 'workspace_build', 'policy', ... (open set).
  resource_type     TEXT        NOT NULL CHECK (resource_type <> ''),
  resource_id       UUID        NOT NULL,
  resource_target   TEXT        NOT NULL DEFAULT '',
  resource_icon     TEXT        NOT NULL DEFAULT '',
  -- 'create', 'write', 'delete', 'start', 'stop', 'login', 'logout',
  -- 'register', ... (open set).
  action            TEXT        NOT NULL CHECK (action <> ''),
  -- JSON object: {"field": {"old": ..., "new": ..., "secret": bool}}.
  diff              TEXT        NOT NULL DEFAULT '{}',
  status_code       BIGINT      NOT NULL,
  -- JSON object.
  additional_fields TEXT        NOT NULL DEFAULT '{}',
  request_id        UUID        NOT NULL
);
-- Newest first (both engines scan it backwards), id breaks ties.
CREATE INDEX audit_logs_time_id ON audit_logs (time, id);
CREATE INDEX audit_logs_user_id ON audit_logs (user_id);
CREATE INDEX audit_logs_organization_id ON audit_logs (organization_id);
CREATE INDEX audit_logs_resource_id ON audit_logs (resource_id);
