data "aws_region" "current" {}

# Pairs are keyed by their stable id with for_each, never with count: under count a pair's
# address is its position in a list, so removing pair-0002 of three would renumber pair-0003
# and Terraform would destroy and recreate a live media server (dropping its calls) to
# "move" it. With for_each, adding or removing one pair plans exactly that pair's resources.
#
# A warm pair (var.pairs[id].warm, the fleet's warm pool) has its node, stopped, and its own
# security group; its ESL client exists only once it serves (local.serving_pairs). Taking it
# from the pool (warm -> false) starts the same node and creates the client, nothing replaced;
# putting it back (a rollback) stops the node and removes the client.

# --- Security groups: two shared by every pair (what every node and every client needs), and
# one per pair that only the pair's node and its own ESL client carry (the ESL port between
# them). A pair's node admits ESL from the orchestrator and from its own client, never from
# another pair's. Every rule carries the fleet tag: a rule is tagged in the call that makes it,
# and the Terraform build's role may tag a rule only there, only with this fleet's tag.
# ----------------------------------------------------------------------------------------------

resource "aws_security_group" "freeswitch" {
  name        = "${var.name}-freeswitch"
  description = "pairscale ${var.fleet} FreeSWITCH nodes"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-freeswitch", "pairscale:role" = "freeswitch" })
}

resource "aws_security_group" "esl_client" {
  name        = "${var.name}-esl-client"
  description = "pairscale ${var.fleet} ESL clients"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-esl-client", "pairscale:role" = "esl-client" })
}

resource "aws_vpc_security_group_ingress_rule" "esl_from_orchestrator" {
  security_group_id            = aws_security_group.freeswitch.id
  description                  = "ESL from the orchestrator functions"
  ip_protocol                  = "tcp"
  from_port                    = var.esl_port
  to_port                      = var.esl_port
  referenced_security_group_id = var.orchestrator_security_group_id
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "sip_from_kamailio" {
  for_each                     = toset(["udp", "tcp"])
  security_group_id            = aws_security_group.freeswitch.id
  description                  = "SIP (${each.value}) from Kamailio only"
  ip_protocol                  = each.value
  from_port                    = var.sip_port
  to_port                      = var.sip_port
  referenced_security_group_id = var.kamailio_security_group_id
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "rtp" {
  for_each          = toset(var.rtp_cidr_blocks)
  security_group_id = aws_security_group.freeswitch.id
  description       = "RTP"
  ip_protocol       = "udp"
  from_port         = var.rtp_port_range.from
  to_port           = var.rtp_port_range.to
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "rtp_out" {
  for_each          = toset(var.rtp_cidr_blocks)
  security_group_id = aws_security_group.freeswitch.id
  description       = "RTP to the far end's (arbitrary) ports"
  ip_protocol       = "udp"
  from_port         = 1024
  to_port           = 65535
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "sip_to_kamailio" {
  for_each                     = toset(["udp", "tcp"])
  security_group_id            = aws_security_group.freeswitch.id
  description                  = "SIP (${each.value}) to Kamailio"
  ip_protocol                  = each.value
  from_port                    = var.kamailio_sip_port
  to_port                      = var.kamailio_sip_port
  referenced_security_group_id = var.kamailio_security_group_id
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "node_https" {
  for_each          = toset(var.aws_api_cidr_blocks)
  security_group_id = aws_security_group.freeswitch.id
  description       = "Session Manager, package repository"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
  tags              = local.tags
}

# Per pair: the group its node and its own ESL client share. The one rule each way admits
# members of this group only, so a client reaches its own node's ESL port and no other.
# One group per pair: 1,000 pairs use 1,000 of the region's security groups (2,500 by
# default, a quota that can be raised). A warm pair has its group and rules too: its node is
# launched with the group, so taking it from the pool changes nothing on the node.
resource "aws_security_group" "pair" {
  #checkov:skip=CKV2_AWS_5:Attached to the pair's instance (and, once it serves, its ESL client service) through aws_security_group.pair[each.key], an indexed reference checkov's graph does not follow; tests/terraform/verify.py checks both carry it.
  for_each    = var.pairs
  name        = "${var.name}-${each.key}-esl"
  description = "pairscale ${var.fleet} ${each.key}: ESL between its node and its own client"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-${each.key}-esl", "pairscale:pair-id" = each.key, "pairscale:role" = "pair-esl" })
}

resource "aws_vpc_security_group_ingress_rule" "pair_esl" {
  for_each                     = var.pairs
  security_group_id            = aws_security_group.pair[each.key].id
  description                  = "ESL from this pair's own client"
  ip_protocol                  = "tcp"
  from_port                    = var.esl_port
  to_port                      = var.esl_port
  referenced_security_group_id = aws_security_group.pair[each.key].id
  tags                         = merge(local.tags, { "pairscale:pair-id" = each.key })
}

resource "aws_vpc_security_group_egress_rule" "pair_esl" {
  for_each                     = var.pairs
  security_group_id            = aws_security_group.pair[each.key].id
  description                  = "ESL to this pair's own node"
  ip_protocol                  = "tcp"
  from_port                    = var.esl_port
  to_port                      = var.esl_port
  referenced_security_group_id = aws_security_group.pair[each.key].id
  tags                         = merge(local.tags, { "pairscale:pair-id" = each.key })
}

resource "aws_vpc_security_group_egress_rule" "client_https" {
  for_each          = toset(var.aws_api_cidr_blocks)
  security_group_id = aws_security_group.esl_client.id
  description       = "Image pull, logs, parameters, metrics"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
  tags              = local.tags
}

# --- Per pair: one FreeSWITCH node ------------------------------------------------------------------

resource "aws_instance" "freeswitch" {
  for_each = var.pairs

  ami                    = local.node_image
  instance_type          = coalesce(each.value.instance_type, var.instance_type)
  subnet_id              = local.pair_subnet[each.key]
  vpc_security_group_ids = [aws_security_group.freeswitch.id, aws_security_group.pair[each.key].id]
  iam_instance_profile   = var.freeswitch_instance_profile
  monitoring             = var.detailed_monitoring
  ebs_optimized          = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.root_volume_size
    encrypted   = true
    kms_key_id  = var.kms_key_arn
  }

  # volume_tags, not root_block_device.tags: the provider puts these in RunInstances' tag
  # specifications, while block device tags are a CreateTags call after the launch, which
  # the Terraform build's role may not make with the fleet tag.
  volume_tags = merge(local.tags, { "pairscale:pair-id" = each.key, "pairscale:role" = "freeswitch" })

  tags = merge(local.tags, {
    Name                = "${var.name}-${each.key}"
    "pairscale:pair-id" = each.key
    "pairscale:role"    = "freeswitch"
  })

  lifecycle {
    precondition {
      condition     = local.node_image != ""
      error_message = "The nodes need an image: give ami_id (a Debian base image) or image_id (the fleet's baked image)."
    }
    # A new AMI reaches the fleet through scale-out of new pairs and scale-in of old ones
    # (drained first), never by Terraform replacing a node that is carrying calls.
    ignore_changes = [ami]
  }
}

# Running or stopped, a resource of its own: the instance's state is no argument of
# aws_instance, and this one changes in place (StartInstances/StopInstances), so a pair going
# into or out of the warm pool keeps its node, its volume and its private IP.
resource "aws_ec2_instance_state" "freeswitch" {
  for_each = var.pairs

  instance_id = aws_instance.freeswitch[each.key].id
  state       = each.value.warm ? "stopped" : "running"
}

# --- Per serving pair: its ESL client, told its own node's address -----------------------------

# Not for a warm pair: a client's task would run (and be paid for) beside a stopped node.
resource "aws_ecs_task_definition" "esl_client" {
  for_each = local.serving_pairs

  family                   = "${var.name}-esl-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.esl_client_cpu)
  memory                   = tostring(var.esl_client_memory)
  execution_role_arn       = var.esl_client_execution_role_arn
  task_role_arn            = var.esl_client_task_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64"
  }

  container_definitions = jsonencode([
    {
      name                   = "esl-client"
      image                  = var.esl_client_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "65534:65534"
      environment = [for k, v in merge(local.esl_client_environment, {
        PAIRSCALE_PAIR_ID  = each.key
        PAIRSCALE_ESL_HOST = aws_instance.freeswitch[each.key].private_ip
      }) : { name = k, value = v }]
      secrets = [{ name = "PAIRSCALE_ESL_PASSWORD", valueFrom = var.esl_password_parameter_arn }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = var.esl_client_log_group_name
          awslogs-region        = local.region
          awslogs-stream-prefix = each.key
        }
      }
    },
  ])

  tags = merge(local.tags, { "pairscale:pair-id" = each.key, "pairscale:role" = "esl-client" })
}

resource "aws_ecs_service" "esl_client" {
  for_each = local.serving_pairs

  name                    = "esl-${each.key}"
  cluster                 = var.ecs_cluster_arn
  task_definition         = aws_ecs_task_definition.esl_client[each.key].arn
  desired_count           = 1
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  # One client per node: never two connected at once during a deployment.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # The build ends once the client's task runs (or fails, when the circuit breaker gives up
  # on it): the state machine's discover requires it running, and would otherwise find a
  # task still starting and undo the pair.
  wait_for_steady_state = true

  network_configuration {
    subnets          = [local.pair_subnet[each.key]]
    security_groups  = [aws_security_group.esl_client.id, aws_security_group.pair[each.key].id]
    assign_public_ip = false
  }

  tags = merge(local.tags, { "pairscale:pair-id" = each.key, "pairscale:role" = "esl-client" })
}
