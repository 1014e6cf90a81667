output "pairs" {
  description = "Per pair id: node instance id and private IP, whether it is in the warm pool, ESL client service name (null for a warm pair, which has none)."
  value = {
    for id, p in var.pairs : id => {
      instance_id  = aws_instance.freeswitch[id].id
      private_ip   = aws_instance.freeswitch[id].private_ip
      subnet_id    = local.pair_subnet[id]
      warm         = p.warm
      service_name = p.warm ? null : aws_ecs_service.esl_client[id].name
    }
  }
}

output "freeswitch_security_group_id" {
  description = "Security group of the FreeSWITCH nodes."
  value       = aws_security_group.freeswitch.id
}

output "esl_client_security_group_id" {
  description = "Security group of the ESL clients."
  value       = aws_security_group.esl_client.id
}
