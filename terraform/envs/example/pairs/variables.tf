variable "region" {
  description = "AWS region of the fleet."
  type        = string
}

variable "name" {
  description = "Resource name prefix (the orchestrator's)."
  type        = string
}

variable "fleet" {
  description = "Fleet name."
  type        = string
}

variable "pairs" {
  description = "The fleet's pairs by id (pairs.auto.tfvars.json); warm: true for the warm pool's."
  type = map(object({
    instance_type = optional(string)
    subnet_id     = optional(string)
    # Declared here too: Terraform drops an attribute the type does not name, and a warm
    # pair would be started and given a client.
    warm = optional(bool, false)
  }))
}

variable "vpc_id" {
  description = "VPC of the fleet."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets pairs spread over."
  type        = list(string)
}

variable "ami_id" {
  description = "Base image of the nodes (Debian; FreeSWITCH installed at run time), used when image_id is \"\"."
  type        = string
  default     = ""
}

variable "image_id" {
  description = "The fleet's baked FreeSWITCH image (TF_VAR_image_id: the orchestrator hands on fleet_config.image_id; \"\" for none)."
  type        = string
  default     = ""
}

variable "kms_key_arn" {
  description = "Fleet KMS key."
  type        = string
}

variable "freeswitch_instance_profile" {
  description = "Node instance profile."
  type        = string
}

variable "ecs_cluster_arn" {
  description = "ESL client cluster."
  type        = string
}

variable "esl_client_image" {
  description = "ESL client image."
  type        = string
}

variable "esl_client_execution_role_arn" {
  description = "ESL client task execution role."
  type        = string
}

variable "esl_client_task_role_arn" {
  description = "ESL client task role."
  type        = string
}

variable "esl_password_parameter_arn" {
  description = "ESL password SecureString."
  type        = string
}

variable "orchestrator_security_group_id" {
  description = "Orchestrator security group."
  type        = string
}

variable "kamailio_security_group_id" {
  description = "Kamailio security group."
  type        = string
}

variable "detailed_monitoring" {
  description = "One-minute EC2 metrics for the nodes (TF_VAR_detailed_monitoring from the orchestrator's terraform_run_variables)."
  type        = bool
  default     = true
}

variable "esl_port" {
  description = "FreeSWITCH's event socket port (TF_VAR_esl_port: the orchestrator hands on fleet_config.esl_port)."
  type        = number
  default     = 8021
}

variable "sip_port" {
  description = "FreeSWITCH's SIP port (TF_VAR_sip_port: the orchestrator hands on fleet_config.sip_port)."
  type        = number
  default     = 5060
}
