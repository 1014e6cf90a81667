locals {
  tags = merge(var.tags, { "pairscale:fleet" = var.fleet })

  # The fleet's baked image where it has one (FreeSWITCH already installed), else the base image.
  node_image = var.image_id != "" ? var.image_id : var.ami_id

  # A pair's subnet is a function of its id alone (unless it names one): with an index-based
  # spread, removing pair-0002 would move every later pair and replace its instance.
  pair_subnet = {
    for id, p in var.pairs : id => coalesce(
      p.subnet_id,
      var.subnet_ids[parseint(substr(sha1(id), 0, 8), 16) % length(var.subnet_ids)],
    )
  }

  # The pairs that carry calls: a warm pair (the fleet's warm pool) has its node, stopped, and
  # its own security group, but no ESL client until it is taken from the pool.
  serving_pairs = { for id, p in var.pairs : id => p if !p.warm }

  # What every ESL client is told; each pair adds its id and its node's address (in main.tf,
  # per instance, so no value here depends on all 1,000 nodes). Names shared with the ESL
  # client's Config.
  esl_client_environment = {
    PAIRSCALE_FLEET    = var.fleet
    PAIRSCALE_ESL_PORT = tostring(var.esl_port)
    RUST_LOG           = "info"
  }

  cluster_name = element(split("/", var.ecs_cluster_arn), 1)
  region       = data.aws_region.current.name
}
