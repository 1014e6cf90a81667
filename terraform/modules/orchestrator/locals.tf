locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  tags = merge(var.tags, { "pairscale:fleet" = var.fleet })

  fleet_ssm_path     = "${var.ssm_prefix}/${var.fleet}"
  fleet_ssm_path_arn = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${local.fleet_ssm_path}"
  esl_password_param = "${local.fleet_ssm_path}/esl_password"
  # postgres://user@host:port/db without a password: the drain function puts in the one it
  # reads from dispatcher_db_password_param.
  dispatcher_db_password_param = "${local.fleet_ssm_path}/dispatcher_db_password"
  dispatcher_db_url_base       = "postgres://${var.dispatcher_db_user}@${var.dispatcher_db_host}:${var.dispatcher_db_port}/${var.dispatcher_db_name}"
  freeswitch_repo_token_param  = "${local.fleet_ssm_path}/freeswitch_repo_token"
  ecs_cluster_name             = var.name
  terraform_project            = "${var.name}-terraform"
  ansible_project              = "${var.name}-ansible"
  # The CA bundle the dispatcher database's certificate must chain to (verify-full), when one
  # is given: a String parameter (public certificates, nothing to encrypt). Null without one.
  dispatcher_db_ca_param = var.dispatcher_db_ca_bundle == null ? null : "${local.fleet_ssm_path}/dispatcher_db_ca"
  # One machine for every request (docs/adr/0003-one-state-machine.md): the plan decides the
  # direction. statemachines/<state_machine_file> is its only definition.
  state_machine_name = "${var.name}-scale"
  state_machine_file = "scale.asl.json"
  kamailio_rpc_port = tonumber(try(
    regex("^https?://[^/:]+:([0-9]+)", var.kamailio_rpc_url)[0],
    startswith(var.kamailio_rpc_url, "https://") ? "443" : "80",
  ))
  # Every Kamailio sharing the dispatcher table: the fleet configuration's list (the drain
  # function gets it per run from the state machine; the Ansible build from here), or else
  # kamailio_rpc_url alone. The drain function reaches each one's port, and kamailio_rpc_url's,
  # which stays its default.
  kamailio_rpc_urls = (var.fleet_config.kamailio_rpc_urls != null ? var.fleet_config.kamailio_rpc_urls
  : [var.kamailio_rpc_url])
  kamailio_rpc_ports = distinct(concat([local.kamailio_rpc_port], [for u in local.kamailio_rpc_urls : tonumber(try(
    regex("^https?://(?:[A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\]):([0-9]+)", u)[0],
    startswith(u, "https://") ? "443" : "80",
  ))]))
  tf_state_key          = "tfstate/${var.fleet}/pairs.tfstate"
  ansible_ssm_s3_prefix = "ansible-ssm/${var.fleet}"

  # Built from the name rather than a resource reference: the lock function's policy needs the
  # machine's execution ARNs while the machine needs the function ARNs.
  state_machine_arn = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.state_machine_name}"
  state_machine_execution_arns = [
    "arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${local.state_machine_name}:*",
  ]

  # Function key => cargo-lambda binary. Function names are "<name>-<key>".
  functions = {
    lock   = "pairscale-lock"
    state  = "pairscale-state"
    drain  = "pairscale-drain"
    build  = "pairscale-build"
    policy = "pairscale-policy"
  }

  # One map per function: exactly the variables that binary reads (crates/lambdas/src/config.rs
  # and src/bin/*.rs), optional ones included so that nothing falls back to a default the
  # operator cannot see; RUST_LOG is read by every binary's logging set-up. Secrets are given
  # as SSM SecureString parameter names, never values. tests/checks/62-terraform-contract.sh
  # holds these keys against the Rust code.
  lambda_environment = {
    lock = {
      PAIRSCALE_TABLE             = aws_dynamodb_table.state.name
      PAIRSCALE_LOCK_TTL_SECONDS  = tostring(var.lock_ttl_seconds)
      PAIRSCALE_METRICS_NAMESPACE = var.metrics_namespace
      RUST_LOG                    = var.lambda_log_level
    }
    state = {
      PAIRSCALE_TABLE             = aws_dynamodb_table.state.name
      PAIRSCALE_SSM_PREFIX        = var.ssm_prefix
      PAIRSCALE_LOCK_TTL_SECONDS  = tostring(var.lock_ttl_seconds)
      PAIRSCALE_ECS_CLUSTER       = local.ecs_cluster_name
      PAIRSCALE_METRICS_NAMESPACE = var.metrics_namespace
      RUST_LOG                    = var.lambda_log_level
    }
    # PAIRSCALE_DISPATCHER_DB_CA_PARAM only with a CA bundle, never empty: without it,
    # verify-full trusts the system's root certificates.
    drain = merge({
      PAIRSCALE_TABLE                        = aws_dynamodb_table.state.name
      PAIRSCALE_SSM_PREFIX                   = var.ssm_prefix
      PAIRSCALE_ESL_PASSWORD_PARAM           = local.esl_password_param
      PAIRSCALE_DISPATCHER_DB_PASSWORD_PARAM = local.dispatcher_db_password_param
      PAIRSCALE_DISPATCHER_DB_URL_BASE       = local.dispatcher_db_url_base
      PAIRSCALE_DISPATCHER_DB_SSLMODE        = var.dispatcher_db_sslmode
      PAIRSCALE_KAMAILIO_RPC_URL             = var.kamailio_rpc_url
      PAIRSCALE_DRAIN_CONCURRENCY            = tostring(var.drain_concurrency)
      PAIRSCALE_ESL_TIMEOUT_MS               = tostring(var.esl_timeout_ms)
      PAIRSCALE_METRICS_NAMESPACE            = var.metrics_namespace
      RUST_LOG                               = var.lambda_log_level
      }, {
      for k, v in { PAIRSCALE_DISPATCHER_DB_CA_PARAM = local.dispatcher_db_ca_param } : k => v if v != null
    })
    build = {
      PAIRSCALE_TABLE             = aws_dynamodb_table.state.name
      PAIRSCALE_TERRAFORM_PROJECT = local.terraform_project
      PAIRSCALE_ANSIBLE_PROJECT   = local.ansible_project
      RUST_LOG                    = var.lambda_log_level
    }
    policy = {
      PAIRSCALE_TABLE             = aws_dynamodb_table.state.name
      PAIRSCALE_SSM_PREFIX        = var.ssm_prefix
      PAIRSCALE_METRICS_NAMESPACE = var.metrics_namespace
      PAIRSCALE_STATE_MACHINE_ARN = local.state_machine_arn
      RUST_LOG                    = var.lambda_log_level
    }
  }

  # The fleet configuration as the state function reads it (FleetConfig::from_json): the
  # variable as given, with alarm_steps merged over the steps of this module's own alarms
  # (keyed by CloudWatch alarm name; a scale-in alarm's step is negative). Attribute order
  # does not matter to serde; jsonencode sorts keys.
  alarm_steps = merge(
    { for k, a in var.alarms : "${var.name}-${k}" => a.action == "scale_in" ? -a.step : a.step },
    var.fleet_config.alarm_steps,
  )
  fleet_config      = merge(var.fleet_config, { alarm_steps = local.alarm_steps })
  fleet_config_json = jsonencode(local.fleet_config)

  vpc_functions = var.enable_lambda_vpc_config ? var.lambda_vpc_functions : toset([])

  # Inputs of the pairs root that only this module knows, handed to the Terraform build.
  # The baked image new pairs start from, when the fleet has one (absent: the pairs root's
  # ami_id).
  terraform_run_variables = merge(var.terraform_run_variables, {
    for k, v in { image_id = local.fleet_config.image_id } : k => v if v != null
    }, {
    fleet                          = var.fleet
    name                           = var.name
    ecs_cluster_arn                = aws_ecs_cluster.this.arn
    orchestrator_security_group_id = aws_security_group.lambda.id
    esl_password_parameter_arn     = aws_ssm_parameter.esl_password.arn
    esl_client_execution_role_arn  = aws_iam_role.esl_client_execution.arn
    esl_client_task_role_arn       = aws_iam_role.esl_client_task.arn
    freeswitch_instance_profile    = aws_iam_instance_profile.freeswitch.name
    kms_key_arn                    = aws_kms_key.this.arn
    # The node's ports, as the functions read them from the fleet configuration: the pairs'
    # security groups and the ESL clients use the same ones.
    sip_port = tostring(local.fleet_config.sip_port)
    esl_port = tostring(local.fleet_config.esl_port)
  })
}
