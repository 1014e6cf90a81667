variable "name" {
  description = "Prefix of resource names (the orchestrator module's name)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.name))
    error_message = "name must be 3-40 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "fleet" {
  description = "Fleet the pairs belong to (tag pairscale:fleet)."
  type        = string

  validation {
    # pairscale_core::ids::FleetName::parse.
    condition     = can(regex("^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$", var.fleet))
    error_message = "fleet must be 1-40 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-'."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "pairs" {
  description = "The fleet's pairs by stable id, as written by pairscale into pairs.auto.tfvars.json. Per pair: optional instance type and subnet overrides, and warm: true for a pair of the fleet's warm pool (its node made and stopped, its security group made, no ESL client). Flipping warm to false starts the same node in place and creates its ESL client; back to true stops it and removes the client."
  type = map(object({
    instance_type = optional(string)
    subnet_id     = optional(string)
    warm          = optional(bool, false)
  }))
  default = {}

  validation {
    # pairscale_core::ids::PairId::parse: pair-NNNN, sequence 1..=9999999, one spelling
    # (zero-padded to four digits, no further leading zeros).
    condition     = alltrue([for id in keys(var.pairs) : can(regex("^pair-(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3,6})$", id))])
    error_message = "pair ids must look like pair-0001 (sequence 1..=9999999, zero-padded to four digits)."
  }

  validation {
    condition     = length(var.pairs) <= 1000
    error_message = "At most 1000 pairs per fleet."
  }
}

variable "vpc_id" {
  description = "VPC of the fleet."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123abcd."
  }
}

variable "subnet_ids" {
  description = "Subnets pairs are spread over when a pair names none. A pair's subnet depends only on its id, so adding or removing pairs never moves another."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "Give at least one subnet id (subnet-...)."
  }
}

variable "ami_id" {
  description = "Base image of the nodes (Debian, packages installed at run time) when image_id is \"\". Changing it affects new pairs only (see ignore_changes on the instance)."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = var.ami_id == "" || can(regex("^ami-[0-9a-f]+$", var.ami_id))
    error_message = "ami_id must be \"\" or look like ami-0123abcd."
  }
}

variable "image_id" {
  description = "The fleet's baked FreeSWITCH image (fleet_config.image_id, packer/freeswitch.pkr.hcl). Set, new nodes start from it instead of ami_id (and the scale-out configures them without installing); \"\": ami_id. Changing it affects new pairs only."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = var.image_id == "" || can(regex("^ami-([0-9a-f]{8}|[0-9a-f]{17})$", var.image_id))
    error_message = "image_id must be \"\" or an AMI id, ami- and 8 or 17 lower-case hex digits."
  }
}

variable "instance_type" {
  description = "Default FreeSWITCH instance type."
  type        = string
  default     = "c7i.xlarge"
}

variable "root_volume_size" {
  description = "Root volume size (GiB)."
  type        = number
  default     = 30

  validation {
    condition     = var.root_volume_size >= 8 && var.root_volume_size <= 1024
    error_message = "root_volume_size must be 8-1024 GiB."
  }
}

variable "kms_key_arn" {
  description = "KMS key for the root volumes (the orchestrator's fleet key)."
  type        = string
}

variable "freeswitch_instance_profile" {
  description = "Instance profile of the nodes (Session Manager access for the Ansible run)."
  type        = string
}

variable "ecs_cluster_arn" {
  description = "Cluster the ESL clients run in."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/.+$", var.ecs_cluster_arn))
    error_message = "ecs_cluster_arn must be an ECS cluster ARN."
  }
}

variable "esl_client_image" {
  description = "Container image of the ESL client (linux/arm64)."
  type        = string
}

variable "esl_client_cpu" {
  description = "Fargate CPU units per ESL client."
  type        = number
  default     = 256

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.esl_client_cpu)
    error_message = "esl_client_cpu must be a Fargate CPU size."
  }
}

variable "esl_client_memory" {
  description = "Fargate memory (MiB) per ESL client."
  type        = number
  default     = 512

  validation {
    condition     = var.esl_client_memory >= 512 && var.esl_client_memory <= 30720
    error_message = "esl_client_memory must be 512-30720 MiB."
  }
}

variable "esl_client_execution_role_arn" {
  description = "Task execution role (image pull, logs, ESL password)."
  type        = string
}

variable "esl_client_task_role_arn" {
  description = "Task role of the ESL client."
  type        = string
}

variable "esl_client_log_group_name" {
  description = "Log group of the ESL clients."
  type        = string
}

variable "esl_password_parameter_arn" {
  description = "SecureString with the ESL password, injected into the client as PAIRSCALE_ESL_PASSWORD."
  type        = string
}

variable "esl_port" {
  description = "FreeSWITCH's event socket port (fleet_config.esl_port; the Ansible role's freeswitch_esl_port): admitted from the orchestrator and from each pair's own ESL client."
  type        = number
  default     = 8021

  validation {
    condition     = var.esl_port >= 1 && var.esl_port <= 65535 && floor(var.esl_port) == var.esl_port
    error_message = "esl_port must be a port, 1..=65535."
  }
}

variable "sip_port" {
  description = "FreeSWITCH's SIP port (fleet_config.sip_port; the Ansible role's freeswitch_sip_port): admitted from Kamailio, UDP and TCP."
  type        = number
  default     = 5060

  validation {
    condition     = var.sip_port >= 1 && var.sip_port <= 65535 && floor(var.sip_port) == var.sip_port && var.sip_port != var.esl_port
    error_message = "sip_port must be a port, 1..=65535, other than esl_port."
  }
}

variable "kamailio_sip_port" {
  description = "Kamailio's own SIP port, which the nodes send requests to (UDP and TCP)."
  type        = number
  default     = 5060

  validation {
    condition     = var.kamailio_sip_port >= 1 && var.kamailio_sip_port <= 65535 && floor(var.kamailio_sip_port) == var.kamailio_sip_port
    error_message = "kamailio_sip_port must be a port, 1..=65535."
  }
}

variable "orchestrator_security_group_id" {
  description = "Security group of the orchestrator functions: admitted on the ESL port."
  type        = string
}

variable "kamailio_security_group_id" {
  description = "Security group of Kamailio: the only source admitted on the SIP port (UDP and TCP)."
  type        = string
}

variable "rtp_port_range" {
  description = "UDP port range FreeSWITCH uses for RTP (must match the Ansible freeswitch_rtp_start_port/end_port)."
  type = object({
    from = number
    to   = number
  })
  default = { from = 16384, to = 32768 }

  validation {
    condition     = var.rtp_port_range.from >= 1024 && var.rtp_port_range.from < var.rtp_port_range.to && var.rtp_port_range.to <= 65535
    error_message = "rtp_port_range needs 1024 <= from < to <= 65535."
  }
}

variable "rtp_cidr_blocks" {
  description = "Where media comes from and goes to."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for c in var.rtp_cidr_blocks : can(cidrnetmask(c))])
    error_message = "rtp_cidr_blocks must be IPv4 CIDR blocks."
  }
}

variable "aws_api_cidr_blocks" {
  description = "Where nodes and ESL clients reach AWS APIs and package repositories on TCP 443."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for c in var.aws_api_cidr_blocks : can(cidrnetmask(c))])
    error_message = "aws_api_cidr_blocks must be IPv4 CIDR blocks."
  }
}

variable "detailed_monitoring" {
  description = "One-minute EC2 metrics for the nodes."
  type        = bool
  default     = true
}
