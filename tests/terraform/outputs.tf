output "orchestrator" {
  description = "Orchestrator module outputs (read by the check)."
  value       = module.orchestrator
}

output "pairs" {
  description = "Pairs module outputs (read by the check)."
  value       = module.pairs.pairs
}
