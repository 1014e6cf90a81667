output "pairs" {
  description = "Per pair id: node and ESL client."
  value       = module.pairs.pairs
}
