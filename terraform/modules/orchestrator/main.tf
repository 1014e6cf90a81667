data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

# --- KMS: one key per fleet for the table, the parameters, the state bucket and the logs ----

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:Key policy: the account root statement is AWS's default, without it IAM policies could not grant use of the key; "*" in a key policy means this key only.
  #checkov:skip=CKV_AWS_111:Key policy: as above, "*" resources in a key policy mean this key only.
  #checkov:skip=CKV_AWS_356:Key policy: as above, "*" resources in a key policy mean this key only.
  statement {
    sid       = "AccountAdministersTheKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"] # In a key policy "*" means this key.
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # The deploy role's rights on this key (var.key_administrator_arns). They are here, in the
  # policy set when the key is created, and not in the role's IAM policy by the key's tags:
  # the role must be able to tag a key as it creates it (kms:TagResource in an IAM policy, on
  # no particular key), and AWS KMS cannot tell that tagging from tagging a key that exists
  # already, so a grant by tag would reach any key the role chose to tag.
  dynamic "statement" {
    for_each = length(var.key_administrator_arns) > 0 ? [1] : []
    content {
      sid = "KeyAdministrators"
      actions = [
        "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyRotationStatus", "kms:EnableKeyRotation",
        "kms:ListResourceTags", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:UpdateKeyDescription",
        "kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias",
        "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant",
      ]
      resources = ["*"]
      principals {
        type        = "AWS"
        identifiers = var.key_administrator_arns
      }
    }
  }

  statement {
    sid = "CloudWatchLogsEncryptsThisFleetsLogGroups"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*${var.name}*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "pairscale ${var.fleet}: state table, parameters, state bucket, logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

# --- DynamoDB: lock item, pair records, fleet meta, run journals -----------------------------

resource "aws_dynamodb_table" "state" {
  name         = "${var.name}-state"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  deletion_protection_enabled = var.state_table_deletion_protection

  tags = local.tags
}

# --- SSM parameters ---------------------------------------------------------------------------

resource "aws_ssm_parameter" "pair_count" {
  #checkov:skip=CKV2_AWS_34:A plain integer read and written by the state function as a String (the contract with the Rust code); it holds no secret.
  name        = "${local.fleet_ssm_path}/pair_count"
  description = "Desired number of pairs in ${var.fleet}; written by the orchestrator."
  type        = "String"
  value       = tostring(var.initial_pair_count)
  tags        = local.tags

  lifecycle {
    # The orchestrator owns the value after creation; an apply must never reset it.
    ignore_changes = [value]
  }
}

resource "aws_ssm_parameter" "config" {
  #checkov:skip=CKV2_AWS_34:Scaling policy JSON (min/max pairs, timeouts) kept as a String by contract; it holds no secret.
  name        = "${local.fleet_ssm_path}/config"
  description = "Scaling policy of ${var.fleet} (JSON, FleetConfig)."
  type        = "String"
  value       = local.fleet_config_json
  tags        = local.tags

  lifecycle {
    # What var.fleet_config's validation cannot see: the steps of this module's own alarms,
    # merged in by name, obey the same rules as the rest of alarm_steps.
    precondition {
      condition = alltrue([for name, step in local.alarm_steps :
      length(name) >= 1 && length(name) <= 255 && step != 0 && abs(step) <= var.fleet_config.max_step])
      error_message = "alarm_steps (var.alarms merged with fleet_config.alarm_steps): every alarm name must be 1-255 characters and every step non-zero and within fleet_config.max_step."
    }
  }
}

# Generated once when no password is given; ignore_changes below keeps it from changing on
# every plan (the data source returns a new value each time it is read).
data "aws_secretsmanager_random_password" "esl" {
  count               = var.esl_password == null ? 1 : 0
  password_length     = 32
  exclude_punctuation = true
}

resource "aws_ssm_parameter" "esl_password" {
  name        = local.esl_password_param
  description = "FreeSWITCH event-socket password of ${var.fleet}."
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = var.esl_password != null ? var.esl_password : data.aws_secretsmanager_random_password.esl[0].random_password
  tags        = local.tags

  lifecycle {
    ignore_changes = [value]
  }
}

# Kamailio's database password, for the drain function (PAIRSCALE_DISPATCHER_DB_PASSWORD_PARAM)
# and the Ansible run (PGPASSWORD); both are given its name only.
resource "aws_ssm_parameter" "dispatcher_db_password" {
  name        = local.dispatcher_db_password_param
  description = "Password of ${var.dispatcher_db_user} on Kamailio's dispatcher database (${var.fleet})."
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = var.dispatcher_db_password
  tags        = local.tags

  lifecycle {
    ignore_changes = [value]
  }
}

# The certificates the dispatcher database's certificate must chain to (verify-full), when
# given: for the drain function (PAIRSCALE_DISPATCHER_DB_CA_PARAM) and the Ansible run
# (PAIRSCALE_DISPATCHER_DB_CA, written to PGSSLROOTCERT by its buildspec). Unlike the secrets,
# Terraform keeps its value: a new bundle is a change to dispatcher_db_ca_bundle and an apply.
# An RDS region bundle is over a Standard parameter's 4 KB: Advanced (8 KB) then.
resource "aws_ssm_parameter" "dispatcher_db_ca" {
  #checkov:skip=CKV2_AWS_34:Public CA certificates (the RDS trust bundle or the like), kept as a String so that CodeBuild and the drain function read it without the fleet key; nothing in it is secret.
  count       = var.dispatcher_db_ca_bundle == null ? 0 : 1
  name        = local.dispatcher_db_ca_param
  description = "CA certificates of Kamailio's dispatcher database (${var.fleet}), PEM."
  type        = "String"
  tier        = length(var.dispatcher_db_ca_bundle) > 4096 ? "Advanced" : "Standard"
  value       = var.dispatcher_db_ca_bundle
  tags        = local.tags
}

# The FreeSWITCH package repository token, for the Ansible run (PAIRSCALE_FREESWITCH_REPO_TOKEN).
resource "aws_ssm_parameter" "freeswitch_repo_token" {
  name        = local.freeswitch_repo_token_param
  description = "FreeSWITCH package repository token (${var.fleet})."
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = var.freeswitch_repo_token
  tags        = local.tags

  lifecycle {
    ignore_changes = [value]
  }
}

# --- ECS cluster the pairs' ESL clients run in -------------------------------------------------

resource "aws_ecs_cluster" "this" {
  name = local.ecs_cluster_name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = local.tags
}

# --- Network: the orchestrator's security group (nodes admit the ESL port from it) -------------

resource "aws_security_group" "lambda" {
  name        = "${var.name}-orchestrator"
  description = "pairscale ${var.fleet} orchestrator functions and builds"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-orchestrator" })
}

resource "aws_vpc_security_group_egress_rule" "esl" {
  for_each          = toset(var.node_cidr_blocks)
  security_group_id = aws_security_group.lambda.id
  description       = "FreeSWITCH event socket"
  ip_protocol       = "tcp"
  from_port         = var.fleet_config.esl_port
  to_port           = var.fleet_config.esl_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "aws_apis" {
  for_each          = toset(var.aws_api_cidr_blocks)
  security_group_id = aws_security_group.lambda.id
  description       = "AWS APIs (endpoints or NAT)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "dispatcher_db" {
  for_each          = toset(var.dispatcher_db_cidr_blocks)
  security_group_id = aws_security_group.lambda.id
  description       = "Kamailio dispatcher database"
  ip_protocol       = "tcp"
  from_port         = var.dispatcher_db_port
  to_port           = var.dispatcher_db_port
  cidr_ipv4         = each.value
}

# Every Kamailio's JSON-RPC port in every block. Keyed by the block alone for kamailio_rpc_url's
# port, as before the fleet could list several instances, so existing rules keep their address.
resource "aws_vpc_security_group_egress_rule" "kamailio_rpc" {
  for_each = { for p in setproduct(var.kamailio_rpc_cidr_blocks, local.kamailio_rpc_ports) :
    (p[1] == local.kamailio_rpc_port ? p[0] : "${p[0]} port ${p[1]}") => { cidr = p[0], port = p[1] }
  }
  security_group_id = aws_security_group.lambda.id
  description       = "Kamailio JSON-RPC"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

# --- Lambdas ----------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "lambda" {
  for_each          = local.functions
  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by Step Functions only; failures surface to the state machine's Retry/Catch, so a dead-letter queue would never receive anything.
  #checkov:skip=CKV_AWS_117:Only functions that talk to nodes (lambda_vpc_functions, default drain) are attached to the VPC; the others call AWS APIs only and a VPC would add NAT/endpoint cost and cold-start latency for no isolation gain.
  #checkov:skip=CKV_AWS_272:Artifacts come from this repository's own CI build (cargo lambda) and are deployed by the same pipeline; code signing would add a signer profile without a separate trust boundary.
  for_each = local.functions

  function_name = "${var.name}-${each.key}"
  description   = "pairscale ${each.key} (${var.fleet})"
  role          = aws_iam_role.lambda[each.key].arn
  runtime       = "provided.al2023"
  architectures = ["arm64"]
  handler       = "bootstrap"

  filename         = "${var.lambda_artifacts_dir}/${each.value}/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.lambda_artifacts_dir}/${each.value}/bootstrap.zip")

  memory_size                    = lookup(var.lambda_memory_size, each.key, 128)
  timeout                        = lookup(var.lambda_timeout, each.key, 30)
  reserved_concurrent_executions = lookup(var.lambda_reserved_concurrency, each.key, 1)
  kms_key_arn                    = aws_kms_key.this.arn

  environment {
    variables = local.lambda_environment[each.key]
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.lambda[each.key].name
    application_log_level = "INFO"
    system_log_level      = "WARN"
  }

  tracing_config {
    mode = "Active"
  }

  dynamic "vpc_config" {
    for_each = contains(local.vpc_functions, each.key) ? [1] : []
    content {
      subnet_ids         = var.lambda_subnet_ids
      security_group_ids = [aws_security_group.lambda.id]
    }
  }

  tags = merge(local.tags, { "pairscale:function" = each.key })

  # Lambda checks at creation that a VPC function's role may create network interfaces.
  depends_on = [aws_iam_role_policy.lambda]
}

# --- Step Functions ---------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "state_machine" {
  name              = "/aws/vendedlogs/states/${local.state_machine_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_sfn_state_machine" "this" {
  name     = local.state_machine_name
  role_arn = aws_iam_role.state_machine.arn
  type     = "STANDARD"

  # The repository's statemachines/scale.asl.json is the only copy of the definition; its
  # placeholders are exactly these variables (tests/statemachines/consistency.py holds both).
  definition = templatefile("${var.state_machine_definitions_dir}/${local.state_machine_file}", {
    lock_function_arn  = aws_lambda_function.this["lock"].arn
    state_function_arn = aws_lambda_function.this["state"].arn
    drain_function_arn = aws_lambda_function.this["drain"].arn
    build_function_arn = aws_lambda_function.this["build"].arn
  })

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    include_execution_data = true
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }

  tags = local.tags

  depends_on = [aws_iam_role_policy.state_machine]
}
