variable "region" {
  description = "AWS region of the fleet."
  type        = string
  default     = "eu-west-1"
}

variable "fleet" {
  description = "Fleet name."
  type        = string
  default     = "example"
}

variable "lambda_artifacts_dir" {
  description = "cargo lambda build output (target/lambda)."
  type        = string
  default     = "../../../../target/lambda"
}

variable "vpc_id" {
  description = "VPC of the fleet."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets for nodes, ESL clients, VPC functions and builds."
  type        = list(string)
}

variable "node_cidr_blocks" {
  description = "CIDR blocks of the node subnets."
  type        = list(string)
}

variable "dispatcher_db_cidr_blocks" {
  description = "CIDR blocks of Kamailio's PostgreSQL."
  type        = list(string)
}

variable "dispatcher_db_host" {
  description = "Kamailio's PostgreSQL host."
  type        = string
}

variable "dispatcher_db_password" {
  description = "Password of the dispatcher database user (pass as TF_VAR_dispatcher_db_password, never in a file)."
  type        = string
  sensitive   = true
}

variable "freeswitch_repo_token" {
  description = "FreeSWITCH package repository token (pass as TF_VAR_freeswitch_repo_token, never in a file)."
  type        = string
  sensitive   = true
}

variable "kamailio_rpc_url" {
  description = "Kamailio JSON-RPC URL."
  type        = string
}

variable "kamailio_rpc_cidr_blocks" {
  description = "CIDR blocks of Kamailio's JSON-RPC listener."
  type        = list(string)
}

variable "kamailio_security_group_id" {
  description = "Kamailio's security group (admitted on SIP 5060)."
  type        = string
}

variable "freeswitch_ami_id" {
  description = "Base image of the FreeSWITCH nodes (Debian 12; packages installed at each scale-out). Not needed with fleet_image_id."
  type        = string
  default     = ""
}

variable "fleet_image_id" {
  description = "The fleet's baked FreeSWITCH image (packer/freeswitch.pkr.hcl), fleet_config.image_id; null: freeswitch_ami_id."
  type        = string
  default     = null
}

variable "esl_client_image" {
  description = "ESL client image."
  type        = string
}

variable "orchestrator_cidr_blocks" {
  description = "CIDR blocks of private_subnet_ids: FreeSWITCH's event-socket ACL admits the orchestrator's functions from them. The Ansible scale-out refuses to run without them."
  type        = list(string)

  validation {
    condition     = length(var.orchestrator_cidr_blocks) > 0
    error_message = "orchestrator_cidr_blocks must name at least the private subnets' CIDR blocks."
  }
}

variable "kamailio_sip_cidr_blocks" {
  description = "CIDR blocks Kamailio sends SIP from: FreeSWITCH's SIP ACL admits them. The Ansible scale-out refuses to run without them."
  type        = list(string)

  validation {
    condition     = length(var.kamailio_sip_cidr_blocks) > 0
    error_message = "kamailio_sip_cidr_blocks must name Kamailio's addresses."
  }
}

variable "build_image_tag" {
  description = "Tag of the build image in the orchestrator's ECR repository (deploy.yml passes .github/scripts/build-image-tag.sh). Null: the module computes the same tag."
  type        = string
  default     = null
}

variable "deploy_role_arn" {
  description = "The deploy role (terraform/envs/example/deploy-access's role_arn, PAIRSCALE_DEPLOY_ROLE_ARN; deploy.yml passes it). The fleet's KMS key policy names it: the role's own IAM policy grants no key. Null: only principals with IAM rights of their own may manage the key, and the deploy workflow cannot apply this root."
  type        = string
  default     = null
}
