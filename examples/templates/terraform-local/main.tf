# terraform-local: a workspace is a directory, ${root}/${owner}/${workspace}.
# root is not a template parameter: members choose no host path. It is
# the operator's (TF_VAR_root in the server's environment) or the default.
#
#   start   makes the directory (once), writes parameters.json and the
#           "running" marker, and .token (mode 0600)
#           and, when the template has an agent, agent.env (mode 0600:
#           the agent's URL and token, for `atrium agent --env-file`)
#   stop    removes the marker, .token and agent.env; the directory
#           stays, like a home volume
#   delete  removes the directory
#
# Only the built-in terraform_data resource and local-exec are used, so it
# works offline. The plugin writes atrium.auto.tfvars.json with the
# template parameters and the atrium_* facts that are declared below.

terraform {
  required_version = ">= 1.4" # terraform_data
}

# ---- set by the operator, never by a member

# Where workspaces go on the provisioner's machine. Not in template.yaml,
# so no build can set it; TF_VAR_root in the server's environment can.
# The build user (provisioner.run_as) must be able to create it.
variable "root" {
  type    = string
  default = "/tmp/atrium-workspaces"
}

# ---- template parameters (template.yaml)

variable "greeting" {
  type = string
}

variable "cpus" {
  type = number
}

variable "secret_token" {
  type      = string
  sensitive = true
}

variable "sleep_seconds" {
  type = number
}

variable "fail" {
  type = bool
}

# ---- workspace facts (the plugin fills those that are declared)

variable "atrium_owner_name" {
  type = string
}

variable "atrium_workspace_name" {
  type = string
}

variable "atrium_workspace_id" {
  type = string
}

variable "atrium_transition" {
  type = string # start, stop or delete
}

# ---- the workspace agent (template.yaml `agent:`): start builds only

# The server's URL the agent dials; "" on stop and delete builds.
variable "atrium_access_url" {
  type    = string
  default = ""
}

# The agent's token for this build. A secret: sensitive, so Terraform
# hides it, and handed to local-exec only through `environment`, which the
# state does not keep.
variable "atrium_agent_token" {
  type      = string
  default   = ""
  sensitive = true
}

locals {
  dir = "${var.root}/${var.atrium_owner_name}/${var.atrium_workspace_name}"
  # Resources that exist only while the workspace runs have this count.
  running = var.atrium_transition == "start" ? 1 : 0
}

# The workspace's home: made by the first start, kept while stopped,
# removed on delete. Its input never changes afterwards (root is the
# operator's and the names are the workspace's), so later builds leave it
# alone.
resource "terraform_data" "home" {
  input = {
    dir = local.dir
  }

  provisioner "local-exec" {
    command     = "mkdir -p \"$DIR\""
    environment = { DIR = local.dir }
  }

  # Destroy-time provisioners may only refer to self: the directory comes
  # from the input stored in the state.
  provisioner "local-exec" {
    when        = destroy
    command     = "rm -rf \"$DIR\""
    environment = { DIR = self.output.dir }
  }
}

# What runs: recreated when a parameter changes, gone when stopped.
resource "terraform_data" "running" {
  count      = local.running
  depends_on = [terraform_data.home]

  triggers_replace = [var.greeting, var.cpus, var.sleep_seconds, var.fail]
  input = {
    dir = local.dir
  }

  provisioner "local-exec" {
    interpreter = ["/bin/sh"]
    command     = "${path.module}/scripts/start.sh"
    environment = {
      DIR           = local.dir
      SLEEP_SECONDS = var.sleep_seconds
      FAIL          = var.fail
      PARAMETERS = jsonencode({
        workspace_id  = var.atrium_workspace_id
        greeting      = var.greeting
        cpus          = var.cpus
        sleep_seconds = var.sleep_seconds
        fail          = var.fail
      })
    }
  }

  provisioner "local-exec" {
    when        = destroy
    command     = "rm -f \"$DIR/running\" \"$DIR/parameters.json\""
    environment = { DIR = self.output.dir }
  }
}

# The secret, kept apart: Terraform hides the output of a provisioner that
# uses a sensitive value, and the start script's output stays visible.
resource "terraform_data" "token" {
  count      = local.running
  depends_on = [terraform_data.home]

  triggers_replace = [sha256(var.secret_token)]
  input = {
    dir = local.dir
  }

  provisioner "local-exec" {
    command     = "umask 077 && printf '%s' \"$TOKEN\" > \"$DIR/.token\""
    environment = { DIR = local.dir, TOKEN = var.secret_token }
  }

  provisioner "local-exec" {
    when        = destroy
    command     = "rm -f \"$DIR/.token\""
    environment = { DIR = self.output.dir }
  }
}

# agent.env: what `atrium agent --env-file <dir>/agent.env` needs. The
# agent cannot be started from here: the job's cleanup ends whatever a
# build leaves running, so the file is the contract and the agent runs
# outside the build (README.md: a systemd unit). Written anew by every
# start (each start has a new token; timestamp() makes it a new resource
# without putting the token, or anything made from it, in the state).
resource "terraform_data" "agent_env" {
  count      = var.atrium_access_url != "" ? local.running : 0
  depends_on = [terraform_data.home]

  triggers_replace = [timestamp()]
  input = {
    dir = local.dir
  }

  provisioner "local-exec" {
    command     = "umask 077 && printf 'ATRIUM_AGENT_URL=%s\\nATRIUM_AGENT_TOKEN=%s\\n' \"$URL\" \"$TOKEN\" > \"$DIR/agent.env.tmp\" && mv \"$DIR/agent.env.tmp\" \"$DIR/agent.env\""
    environment = { DIR = local.dir, URL = var.atrium_access_url, TOKEN = var.atrium_agent_token }
  }

  provisioner "local-exec" {
    when        = destroy
    command     = "rm -f \"$DIR/agent.env\""
    environment = { DIR = self.output.dir }
  }
}

output "directory" {
  value = local.dir
}
