output "orchestrator" {
  description = "Everything the orchestrator module exposes (read by the sandbox)."
  value       = module.orchestrator
}
