# The account's deploy access for .github/workflows/deploy.yml: the GitHub OIDC provider and the
# deploy role (terraform/modules/deploy-access). Applied once per account by an administrator,
# before the first deploy; its role_arn output is the repository variable
# PAIRSCALE_DEPLOY_ROLE_ARN.

provider "aws" {
  region = var.region

  default_tags {
    tags = { "pairscale:managed-by" = "terraform" }
  }
}

module "deploy_access" {
  source = "../../../modules/deploy-access"

  github_owner       = var.github_owner
  github_repository  = var.github_repository
  github_environment = var.github_environment

  tf_state_bucket = var.tf_state_bucket
  tf_lock_table   = var.tf_lock_table
}
