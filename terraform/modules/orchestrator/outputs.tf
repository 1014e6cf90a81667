output "table_name" {
  description = "DynamoDB table of the fleet state (PAIRSCALE_TABLE)."
  value       = aws_dynamodb_table.state.name
}

output "table_arn" {
  description = "ARN of the fleet state table."
  value       = aws_dynamodb_table.state.arn
}

output "function_arns" {
  description = "Function ARNs by key (lock, state, drain, build, policy)."
  value       = { for k, f in aws_lambda_function.this : k => f.arn }
}

output "function_role_arns" {
  description = "Execution role ARNs by function key."
  value       = { for k, r in aws_iam_role.lambda : k => r.arn }
}

output "lambda_environment" {
  description = "Environment of each function, as set (compare with the binaries' Config)."
  value       = local.lambda_environment
}

output "lambda_binaries" {
  description = "Function key => the cargo-lambda binary it runs (crates/lambdas)."
  value       = local.functions
}

output "lambda_permissions" {
  description = "Per function, the statements of its role (sid and actions; resources are in iam.tf). Compared with the SDK calls of each binary by tests/checks/62-terraform-contract.sh."
  value = {
    for fn, statements in local.lambda_statements : fn => [
      for st in statements : { sid = st.sid, actions = sort(st.actions) }
    ]
  }
}

output "codebuild_permissions" {
  description = "Per CodeBuild project, the statements of its role (sid and actions). Compared with what the pairs root and the playbooks need by tests/checks/62-terraform-contract.sh."
  value = {
    for p, statements in local.codebuild_policy_statements : p => [
      for st in concat(statements, local.codebuild_common_statements[p]) : { sid = st.sid, actions = sort(st.actions) }
    ]
  }
}

output "iam_policies" {
  description = "Every role this module makes: its inline policy and its trust policy, as rendered JSON (known after apply). Linted by tests/checks/62-terraform-contract.sh."
  value = merge(
    { for fn, d in data.aws_iam_policy_document.lambda : "lambda-${fn}" => { policy = d.json, trust = data.aws_iam_policy_document.lambda_assume.json } },
    { for p, d in data.aws_iam_policy_document.codebuild : "build-${p}" => { policy = d.json, trust = data.aws_iam_policy_document.codebuild_assume.json } },
    {
      state-machine        = { policy = data.aws_iam_policy_document.state_machine.json, trust = data.aws_iam_policy_document.state_machine_assume.json }
      scheduler            = { policy = data.aws_iam_policy_document.scheduler.json, trust = data.aws_iam_policy_document.scheduler_assume.json }
      esl-client-execution = { policy = data.aws_iam_policy_document.esl_client_execution.json, trust = data.aws_iam_policy_document.ecs_tasks_assume.json }
      esl-client           = { policy = data.aws_iam_policy_document.esl_client_task.json, trust = data.aws_iam_policy_document.ecs_tasks_assume.json }
      freeswitch           = { policy = data.aws_iam_policy_document.freeswitch.json, trust = data.aws_iam_policy_document.ec2_assume.json }
    },
  )
}

output "state_table_deletion_protection" {
  description = "Whether the state table has deletion protection (var.state_table_deletion_protection)."
  value       = var.state_table_deletion_protection
}

output "lambda_vpc_functions" {
  description = "Functions attached to the VPC (their roles carry the ENI statement)."
  value       = sort(tolist(local.vpc_functions))
}

output "fleet_config_json" {
  description = "The fleet configuration exactly as written to <prefix>/<fleet>/config (FleetConfig JSON)."
  value       = local.fleet_config_json
}

output "state_machine_arn" {
  description = "ARN of the scaling state machine: every request (target, delta, alarm) starts it."
  value       = aws_sfn_state_machine.this.arn
}

output "state_machine_arns" {
  description = "State machine ARNs by key: one, scale (kept as a map for readers that iterate over machines)."
  value       = { scale = aws_sfn_state_machine.this.arn }
}

output "ssm_parameter_names" {
  description = "The fleet's parameters."
  value = {
    pair_count             = aws_ssm_parameter.pair_count.name
    config                 = aws_ssm_parameter.config.name
    esl_password           = aws_ssm_parameter.esl_password.name
    dispatcher_db_password = aws_ssm_parameter.dispatcher_db_password.name
    freeswitch_repo_token  = aws_ssm_parameter.freeswitch_repo_token.name
    # null without dispatcher_db_ca_bundle.
    dispatcher_db_ca = one(aws_ssm_parameter.dispatcher_db_ca[*].name)
  }
}

output "kms_key_arn" {
  description = "KMS key of the fleet."
  value       = aws_kms_key.this.arn
}

output "ecs_cluster_arn" {
  description = "ECS cluster the ESL clients run in."
  value       = aws_ecs_cluster.this.arn
}

output "orchestrator_security_group_id" {
  description = "Security group of the VPC functions and builds; nodes admit TCP 8021 from it."
  value       = aws_security_group.lambda.id
}

output "esl_password_parameter_arn" {
  description = "ARN of the ESL password SecureString."
  value       = aws_ssm_parameter.esl_password.arn
}

output "esl_client_execution_role_arn" {
  description = "Task execution role for the pairs' ESL clients."
  value       = aws_iam_role.esl_client_execution.arn
}

output "esl_client_task_role_arn" {
  description = "Task role for the pairs' ESL clients."
  value       = aws_iam_role.esl_client_task.arn
}

output "esl_client_log_group_name" {
  description = "Log group of the pairs' ESL clients."
  value       = aws_cloudwatch_log_group.esl_client.name
}

output "freeswitch_instance_profile_name" {
  description = "Instance profile for FreeSWITCH nodes (Session Manager access)."
  value       = aws_iam_instance_profile.freeswitch.name
}

output "codebuild_project_names" {
  description = "CodeBuild projects by run (terraform, ansible)."
  value       = { terraform = aws_codebuild_project.terraform.name, ansible = aws_codebuild_project.ansible.name }
}

output "state_bucket" {
  description = "Bucket holding the pairs' remote state (tfstate/), the source bundle (source/) and Ansible transfers."
  value       = aws_s3_bucket.state.id
}

output "tf_lock_table" {
  description = "DynamoDB lock table of the pairs' remote state."
  value       = aws_dynamodb_table.tf_lock.name
}

output "tf_state_key" {
  description = "Key of the pairs' state in the state bucket."
  value       = local.tf_state_key
}

output "alarm_names" {
  description = "Scaling alarms by key."
  value       = { for k, a in aws_cloudwatch_metric_alarm.scaling : k => a.alarm_name }
}

output "build_image" {
  description = "The build image both CodeBuild projects run, and the ECR repository it is pushed to (null when var.codebuild_image names another image)."
  value = {
    image          = local.codebuild_image
    repository_url = one(aws_ecr_repository.build_image[*].repository_url)
    tag            = var.codebuild_image == null ? local.build_image_tag : null
  }
}
