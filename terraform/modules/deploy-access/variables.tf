variable "github_owner" {
  description = "GitHub owner (user or organisation) of the repository allowed to deploy."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,38}$", var.github_owner))
    error_message = "github_owner must be a GitHub user or organisation name (no wildcards)."
  }
}

variable "github_repository" {
  description = "Name of the repository allowed to deploy (without the owner)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "github_repository must be a repository name (no wildcards)."
  }
}

variable "github_environment" {
  description = "The protected GitHub environment of the deploy job (deploy.yml's `environment`). The role trusts tokens of jobs in this environment only."
  type        = string
  default     = "production"

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,255}$", var.github_environment))
    error_message = "github_environment must be an environment name (no wildcards)."
  }
}

variable "create_oidc_provider" {
  description = "Create the account's GitHub OIDC provider. False when the account already has one (an account holds one per URL): its ARN is then looked up."
  type        = bool
  default     = true
}

variable "role_name" {
  description = "Name of the deploy role."
  type        = string
  default     = "pairscale-deploy"
}

variable "name_prefix" {
  description = "Prefix of every resource the deployed orchestrators name (their module's `name`, e.g. pairscale-<fleet>). The role may manage resources under this prefix only."
  type        = string
  default     = "pairscale-"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name_prefix))
    error_message = "name_prefix must be 3-31 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "ssm_prefix" {
  description = "The orchestrators' SSM prefix (their module's ssm_prefix)."
  type        = string
  default     = "/pairscale"
}

variable "tf_state_bucket" {
  description = "The bucket of the orchestrator roots' Terraform state (deploy.yml's PAIRSCALE_TF_STATE_BUCKET)."
  type        = string
}

variable "tf_state_key_prefix" {
  description = "Key prefix of the orchestrator roots' state objects in tf_state_bucket (deploy.yml writes pairscale/<fleet>/orchestrator.tfstate)."
  type        = string
  default     = "pairscale/"
}

variable "tf_lock_table" {
  description = "DynamoDB lock table of the orchestrator roots' state (deploy.yml's PAIRSCALE_TF_LOCK_TABLE)."
  type        = string
}

variable "max_session_seconds" {
  description = "Longest session of the deploy role (deploy.yml's job timeout is 45 minutes)."
  type        = number
  default     = 3600
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
