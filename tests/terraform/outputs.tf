output "orchestrator" {
  description = "Orchestrator module outputs (read by the check)."
  value       = module.orchestrator
}

output "pairs" {
  description = "Pairs module outputs (read by the check)."
  value       = module.pairs.pairs
}

output "deploy_access" {
  description = "Deploy role outputs (its policy is linted by tests/terraform/iam_lint.py)."
  value       = module.deploy_access
}
