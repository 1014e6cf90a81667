output "deploy_access" {
  description = "The deploy role's ARN (PAIRSCALE_DEPLOY_ROLE_ARN), the OIDC provider and the trust policy."
  value       = module.deploy_access
}
