variable "aws_endpoint" {
  description = "The local emulator's endpoint (tests/terraform/moto_compat.py in front of the router)."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name (the module's var.name)."
  type        = string
}

variable "fleet" {
  description = "The sandbox fleet."
  type        = string
}

variable "lambda_artifacts_dir" {
  description = "Folder with pairscale-<fn>/bootstrap.zip. The emulator only stores the packages; the router runs the built binaries under the functions' names."
  type        = string
}

variable "vpc_id" {
  description = "The sandbox's VPC."
  type        = string
}

variable "subnet_id" {
  description = "Its one subnet: the functions' and the pairs' instances'."
  type        = string
}

variable "kamailio_security_group_id" {
  description = "Kamailio's security group (the account's): the pairs admit SIP from it."
  type        = string
}

variable "vpc_cidr" {
  description = "The VPC's block, inside 127.0.0.0/8."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && startswith(var.vpc_cidr, "127.")
    error_message = "vpc_cidr must be a CIDR block inside 127.0.0.0/8."
  }
}

variable "subnet_cidr" {
  description = "The subnet's block."
  type        = string
}

variable "dispatcher_db_host" {
  description = "Kamailio's PostgreSQL on this machine."
  type        = string
}

variable "dispatcher_db_port" {
  description = "Its port."
  type        = number
}

variable "dispatcher_db_user" {
  description = "Its user."
  type        = string
}

variable "dispatcher_db_name" {
  description = "Its database."
  type        = string
}

variable "dispatcher_db_password" {
  description = "Its password (TF_VAR_dispatcher_db_password; never in a file)."
  type        = string
  sensitive   = true
}

variable "esl_password" {
  description = "The simulated nodes' event-socket password (TF_VAR_esl_password; never in a file)."
  type        = string
  sensitive   = true
}

variable "kamailio_rpc_url" {
  description = "The local Kamailio's JSON-RPC endpoint."
  type        = string
}

variable "fleet_config" {
  description = "The sandbox fleet's scaling policy (the module's var.fleet_config)."
  type        = any
}
