# What .github/workflows/deploy.yml assumes over OIDC: the account's GitHub OIDC provider, and the
# deploy role. The role trusts a token only when its audience is sts.amazonaws.com and its
# subject is the deploy job of this one repository in its protected environment
# (repo:<owner>/<repo>:environment:<env>); its permissions are what the deploy does: the
# orchestrator root's state, the resources the orchestrator module manages (by the name prefix
# of the fleets' orchestrators), the build image's push to ECR and the source bundle's upload.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  oidc_host     = "token.actions.githubusercontent.com"
  oidc_audience = "sts.amazonaws.com"
  # The only subject the role trusts: a job of this repository that runs in the environment.
  oidc_subject = "repo:${var.github_owner}/${var.github_repository}:environment:${var.github_environment}"

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  arn        = "${local.partition}:%s:${local.region}:${local.account_id}"
  p          = var.name_prefix

  provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : data.aws_iam_openid_connect_provider.github[0].arn
}

resource "aws_iam_openid_connect_provider" "github" {
  count          = var.create_oidc_provider ? 1 : 0
  url            = "https://${local.oidc_host}"
  client_id_list = [local.oidc_audience]
  tags           = var.tags
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 0 : 1
  url   = "https://${local.oidc_host}"
}

# The trust policy, as JSON (the test, tests/terraform/supply_chain.py trust-policy, reads it
# through `terraform console`).
locals {
  trust_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "GitHubDeployJob"
      Effect    = "Allow"
      Action    = "sts:AssumeRoleWithWebIdentity"
      Principal = { Federated = local.provider_arn }
      Condition = {
        StringEquals = {
          "${local.oidc_host}:aud" = local.oidc_audience
          "${local.oidc_host}:sub" = local.oidc_subject
        }
      }
    }]
  })
}

resource "aws_iam_role" "deploy" {
  name                 = var.role_name
  description          = "pairscale deploy from ${var.github_owner}/${var.github_repository} (environment ${var.github_environment})"
  assume_role_policy   = local.trust_policy
  max_session_duration = var.max_session_seconds
  tags                 = var.tags
}

resource "aws_iam_role_policy" "deploy" {
  name   = "pairscale-deploy"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy.json
}
