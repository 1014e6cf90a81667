output "role_arn" {
  description = "ARN of the deploy role: the repository variable PAIRSCALE_DEPLOY_ROLE_ARN."
  value       = aws_iam_role.deploy.arn
}

output "oidc_provider_arn" {
  description = "ARN of the account's GitHub OIDC provider."
  value       = local.provider_arn
}

output "trust_policy_json" {
  description = "The deploy role's trust policy (tests/terraform/supply_chain.py trust-policy reads it)."
  value       = local.trust_policy
}

output "oidc_subject" {
  description = "The one token subject the role trusts."
  value       = local.oidc_subject
}

output "policy_json" {
  description = "The deploy role's permissions policy, as rendered JSON (tests/terraform/iam_lint.py lints it)."
  value       = data.aws_iam_policy_document.deploy.json
}
