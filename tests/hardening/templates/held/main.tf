terraform {
  required_version = ">= 1.4" # terraform_data
}

variable "hold" {
  type = bool
}

variable "marker" {
  type = string
}

# Runs in every build: the log shows the user local-exec runs as, and a
# process leaves the build's process group (setsid) and outlives the
# command: only the job's cgroup can find it.
resource "terraform_data" "whoami" {
  triggers_replace = [timestamp()]

  provisioner "local-exec" {
    command = "echo \"runs as $(id -un)\"; setsid sh -c 'sleep 3600; echo ${var.marker}-escaped' </dev/null >/dev/null 2>&1 &"
  }
}

# Held until killed: /bin/sh -c's command line carries the marker.
resource "terraform_data" "held" {
  count      = var.hold ? 1 : 0
  depends_on = [terraform_data.whoami]

  provisioner "local-exec" {
    command = "echo holding; sleep 3600; echo ${var.marker}"
  }
}
