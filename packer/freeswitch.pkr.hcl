# The FreeSWITCH image a fleet's nodes start from (fleet_config.image_id): Debian 12 with the
# FreeSWITCH packages installed by the project's role, its install task set alone
# (ansible/playbooks/bake.yml, tag freeswitch_install). Everything a node needs at run time
# (addresses, ESL password, ACLs, host settings) is the role's configure set, which each
# scale-out applies to the new nodes. docs/operations.md, "A baked FreeSWITCH image".
#
#   packer init packer/
#   read -rs PAIRSCALE_FREESWITCH_REPO_TOKEN; export PAIRSCALE_FREESWITCH_REPO_TOKEN
#   packer build -var-file=packer/example.pkrvars.hcl packer/
#
# The repository token is read from the environment only, handed to Ansible in its environment
# (never on a command line), and removed from the image by the bake.

packer {
  required_version = ">= 1.11.0, < 2.0.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = "= 1.3.2"
    }
    ansible = {
      source  = "github.com/hashicorp/ansible"
      version = "= 1.1.1"
    }
  }
}

variable "region" {
  type        = string
  description = "AWS region the image is built in (the fleet's)."
}

variable "subnet_id" {
  type        = string
  description = "Subnet the build instance runs in; it must reach SignalWire's package repository and Debian's mirrors."

  validation {
    condition     = can(regex("^subnet-[0-9a-f]+$", var.subnet_id))
    error_message = "The subnet_id must look like subnet-0123abcd."
  }
}

variable "fleet" {
  type        = string
  description = "Fleet the image is for (its pairscale:fleet tag and name)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,31}$", var.fleet))
    error_message = "The fleet must be 1-32 characters of a-z, 0-9 and -, as fleet names are."
  }
}

variable "instance_type" {
  type        = string
  description = "Instance type of the build instance (the architecture must match var.architecture)."
  default     = "c7i.large"
}

variable "architecture" {
  type        = string
  description = "x86_64 or arm64: the base image's and so the nodes' architecture."
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "The architecture must be x86_64 or arm64."
  }
}

variable "freeswitch_version" {
  type        = string
  description = "The FreeSWITCH version every package is pinned to (the role's freeswitch_version, apt name=version*)."

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.freeswitch_version))
    error_message = "The freeswitch_version must be a release number such as 1.10.12."
  }
}

variable "freeswitch_packages" {
  type        = list(string)
  description = "Packages to install (the role's freeswitch_packages); empty: the role's defaults."
  default     = []
}

variable "freeswitch_repo_token" {
  type        = string
  description = "SignalWire personal access token for the FreeSWITCH package repository: from the environment only (PAIRSCALE_FREESWITCH_REPO_TOKEN), never in a file. Empty, the role's install preflight refuses to run."
  sensitive   = true
  default     = env("PAIRSCALE_FREESWITCH_REPO_TOKEN")
}

locals {
  # Debian's own images (the Debian cloud team's account), the newest Debian 12 point release.
  debian_owner = "136693071363"
  debian_arch  = var.architecture == "arm64" ? "arm64" : "amd64"
  stamp        = formatdate("YYYYMMDDhhmmss", timestamp())
  # Role variables for the bake: the version, and the packages when given.
  bake_vars = jsonencode(merge(
    { freeswitch_version = var.freeswitch_version },
    length(var.freeswitch_packages) > 0 ? { freeswitch_packages = var.freeswitch_packages } : {},
  ))
}

source "amazon-ebs" "freeswitch" {
  region        = var.region
  instance_type = var.instance_type
  subnet_id     = var.subnet_id

  source_ami_filter {
    owners      = [local.debian_owner]
    most_recent = true
    filters = {
      name                = "debian-12-${local.debian_arch}-*"
      architecture        = var.architecture
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
  }

  ssh_username                              = "admin"
  associate_public_ip_address               = true
  temporary_security_group_source_public_ip = true
  imds_support                              = "v2.0"

  ami_name        = "pairscale-freeswitch-${var.fleet}-${var.freeswitch_version}-${local.stamp}"
  ami_description = "pairscale ${var.fleet}: Debian 12 with FreeSWITCH ${var.freeswitch_version} installed (not configured)"

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_type           = "gp3"
    volume_size           = 8
    delete_on_termination = true
  }

  tags = {
    Name                           = "pairscale-freeswitch-${var.fleet}-${var.freeswitch_version}"
    "pairscale:fleet"              = var.fleet
    "pairscale:role"               = "freeswitch"
    "pairscale:freeswitch-version" = var.freeswitch_version
    "pairscale:base-image"         = "{{ .SourceAMI }}"
    "pairscale:built"              = local.stamp
  }
  run_tags = {
    Name              = "pairscale-freeswitch-bake-${var.fleet}"
    "pairscale:fleet" = var.fleet
  }
}

build {
  sources = ["source.amazon-ebs.freeswitch"]

  provisioner "ansible" {
    playbook_file = "${path.root}/../ansible/playbooks/bake.yml"
    user          = "admin"
    use_proxy     = false
    # The role's install task set only: configuration is per node, at scale-out.
    extra_arguments = ["--tags", "freeswitch_install", "-e", local.bake_vars]
    ansible_env_vars = [
      "ANSIBLE_CONFIG=${path.root}/../ansible/ansible.cfg",
      "ANSIBLE_HOST_KEY_CHECKING=False",
      "PAIRSCALE_FREESWITCH_REPO_TOKEN=${var.freeswitch_repo_token}",
    ]
  }

  # The image id for fleet_config.image_id: packer-manifest.json, last build's artifact_id
  # (region:ami-...).
  post-processor "manifest" {
    output     = "packer-manifest.json"
    strip_path = true
    custom_data = {
      fleet              = var.fleet
      freeswitch_version = var.freeswitch_version
    }
  }
}
