# Two CodeBuild projects the build function starts: the Terraform run that adds or removes
# pairs, and the Ansible run that configures nodes and (de)registers them with Kamailio.
# Their buildspecs are the repository's terraform/buildspecs/*.yml (one copy); the source is
# the repository bundle the deploy workflow uploads to the state bucket.

resource "aws_cloudwatch_log_group" "codebuild" {
  for_each          = toset(["terraform", "ansible"])
  name              = "/aws/codebuild/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_codebuild_project" "terraform" {
  name           = local.terraform_project
  description    = "pairscale ${var.fleet}: terraform plan and apply of the pairs root"
  service_role   = aws_iam_role.codebuild["terraform"].arn
  build_timeout  = var.codebuild_timeout_minutes
  encryption_key = aws_kms_key.this.arn

  source {
    type      = "S3"
    location  = "${aws_s3_bucket.state.id}/${var.source_object_key}"
    buildspec = file("${path.module}/../../buildspecs/terraform.yml")
  }

  artifacts {
    type = "NO_ARTIFACTS"
  }

  environment {
    type                        = "ARM_CONTAINER"
    compute_type                = var.codebuild_compute_type
    image                       = local.codebuild_image
    image_pull_credentials_type = "CODEBUILD"

    environment_variable {
      name  = "PAIRSCALE_TF_ROOT"
      value = var.terraform_root_dir
    }
    environment_variable {
      name  = "PAIRSCALE_TF_STATE_BUCKET"
      value = aws_s3_bucket.state.id
    }
    environment_variable {
      name  = "PAIRSCALE_TF_STATE_KEY"
      value = local.tf_state_key
    }
    environment_variable {
      name  = "PAIRSCALE_TF_LOCK_TABLE"
      value = aws_dynamodb_table.tf_lock.name
    }
    environment_variable {
      name  = "PAIRSCALE_TF_STATE_KMS_KEY"
      value = aws_kms_key.this.arn
    }

    dynamic "environment_variable" {
      for_each = local.terraform_run_variables
      content {
        name  = "TF_VAR_${environment_variable.key}"
        value = environment_variable.value
      }
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.codebuild["terraform"].name
    }
  }

  tags = local.tags

  depends_on = [aws_iam_role_policy.codebuild]
}

resource "aws_codebuild_project" "ansible" {
  name           = local.ansible_project
  description    = "pairscale ${var.fleet}: configure nodes and update Kamailio's dispatcher table"
  service_role   = aws_iam_role.codebuild["ansible"].arn
  build_timeout  = var.codebuild_timeout_minutes
  encryption_key = aws_kms_key.this.arn

  source {
    type      = "S3"
    location  = "${aws_s3_bucket.state.id}/${var.source_object_key}"
    buildspec = file("${path.module}/../../buildspecs/ansible.yml")
  }

  artifacts {
    type = "NO_ARTIFACTS"
  }

  environment {
    type                        = "ARM_CONTAINER"
    compute_type                = var.codebuild_compute_type
    image                       = local.codebuild_image
    image_pull_credentials_type = "CODEBUILD"

    environment_variable {
      name  = "PAIRSCALE_FLEET"
      value = var.fleet
    }
    environment_variable {
      name  = "PAIRSCALE_ESL_PASSWORD"
      type  = "PARAMETER_STORE"
      value = local.esl_password_param
    }
    environment_variable {
      name  = "PAIRSCALE_FREESWITCH_REPO_TOKEN"
      type  = "PARAMETER_STORE"
      value = local.freeswitch_repo_token_param
    }
    environment_variable {
      name  = "PAIRSCALE_KAMAILIO_RPC_URL"
      value = var.kamailio_rpc_url
    }
    # Every Kamailio the dispatcher role reloads after a change to the table (JSON list).
    environment_variable {
      name  = "PAIRSCALE_KAMAILIO_RPC_URLS"
      value = jsonencode(local.kamailio_rpc_urls)
    }
    environment_variable {
      name  = "PAIRSCALE_ORCHESTRATOR_CIDRS"
      value = jsonencode(var.orchestrator_cidr_blocks)
    }
    environment_variable {
      name  = "PAIRSCALE_KAMAILIO_CIDRS"
      value = jsonencode(var.kamailio_sip_cidr_blocks)
    }
    environment_variable {
      name  = "PAIRSCALE_SSM_BUCKET"
      value = aws_s3_bucket.state.id
    }
    environment_variable {
      name  = "PAIRSCALE_SSM_PREFIX_S3"
      value = local.ansible_ssm_s3_prefix
    }
    # The fleet's dispatcher set and SIP port, as the drain function reads them from the
    # fleet configuration: both sides must name the same rows.
    environment_variable {
      name  = "PAIRSCALE_DISPATCHER_SET_ID"
      value = tostring(local.fleet_config.dispatcher_set_id)
    }
    environment_variable {
      name  = "PAIRSCALE_SIP_PORT"
      value = tostring(local.fleet_config.sip_port)
    }
    # The ports the FreeSWITCH role configures (the pairs' security groups get the same ones
    # through the Terraform build's TF_VAR_sip_port / TF_VAR_esl_port).
    environment_variable {
      name  = "PAIRSCALE_ESL_PORT"
      value = tostring(local.fleet_config.esl_port)
    }
    # The fleet's baked image, when it has one: scale_out.yml runs only the role's configure
    # tasks on a node launched from it (the Terraform build's TF_VAR_image_id launches them).
    # Absent rather than empty without one (CodeBuild drops empty values, a perpetual diff).
    dynamic "environment_variable" {
      for_each = local.fleet_config.image_id == null ? [] : [local.fleet_config.image_id]
      content {
        name  = "PAIRSCALE_FREESWITCH_IMAGE_ID"
        value = environment_variable.value
      }
    }

    # libpq reads these, so psql needs no URL with a password in it. The same database the
    # drain function reaches (PAIRSCALE_DISPATCHER_DB_URL_BASE + the same password parameter),
    # with the same TLS (PAIRSCALE_DISPATCHER_DB_SSLMODE): the buildspec sets PGSSLROOTCERT for
    # verify-full (terraform/buildspecs/dispatcher-db-tls.sh).
    dynamic "environment_variable" {
      for_each = {
        PGHOST     = var.dispatcher_db_host
        PGPORT     = tostring(var.dispatcher_db_port)
        PGUSER     = var.dispatcher_db_user
        PGDATABASE = var.dispatcher_db_name
        PGSSLMODE  = var.dispatcher_db_sslmode
      }
      content {
        name  = environment_variable.key
        value = environment_variable.value
      }
    }
    environment_variable {
      name  = "PGPASSWORD"
      type  = "PARAMETER_STORE"
      value = local.dispatcher_db_password_param
    }
    # The CA bundle's text, when there is one (absent rather than empty without it): the
    # buildspec writes it to a file for PGSSLROOTCERT.
    dynamic "environment_variable" {
      for_each = aws_ssm_parameter.dispatcher_db_ca[*].name
      content {
        name  = "PAIRSCALE_DISPATCHER_DB_CA"
        type  = "PARAMETER_STORE"
        value = environment_variable.value
      }
    }
  }

  vpc_config {
    vpc_id             = var.vpc_id
    subnets            = var.lambda_subnet_ids
    security_group_ids = [aws_security_group.lambda.id]
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.codebuild["ansible"].name
    }
  }

  tags = local.tags

  depends_on = [aws_iam_role_policy.codebuild]
}
