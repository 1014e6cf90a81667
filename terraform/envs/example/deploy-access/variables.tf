variable "region" {
  description = "AWS region the fleets are deployed to."
  type        = string
  default     = "eu-west-1"
}

variable "github_owner" {
  description = "GitHub owner of the repository that deploys."
  type        = string
}

variable "github_repository" {
  description = "Name of the repository that deploys."
  type        = string
}

variable "github_environment" {
  description = "The protected environment of deploy.yml's deploy job."
  type        = string
  default     = "production"
}

variable "tf_state_bucket" {
  description = "The bucket of the orchestrator roots' state (PAIRSCALE_TF_STATE_BUCKET)."
  type        = string
}

variable "tf_lock_table" {
  description = "The lock table of the orchestrator roots' state (PAIRSCALE_TF_LOCK_TABLE)."
  type        = string
}
