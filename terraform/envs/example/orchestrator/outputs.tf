output "orchestrator" {
  description = "Everything the orchestrator module exposes."
  value       = module.orchestrator
}
