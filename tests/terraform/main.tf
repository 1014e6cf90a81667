# Test root: both modules applied against the local AWS emulator by
# tests/checks/60-terraform.sh. Only what a real account would already have (VPC, subnets,
# Kamailio's security group, an AMI) is made here.

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {
    cloudwatch     = var.aws_endpoint
    cloudwatchlogs = var.aws_endpoint
    codebuild      = var.aws_endpoint
    dynamodb       = var.aws_endpoint
    ec2            = var.aws_endpoint
    ecs            = var.aws_endpoint
    events         = var.aws_endpoint
    iam            = var.aws_endpoint
    kms            = var.aws_endpoint
    lambda         = var.aws_endpoint
    s3             = var.aws_endpoint
    scheduler      = var.aws_endpoint
    secretsmanager = var.aws_endpoint
    sfn            = var.aws_endpoint
    ssm            = var.aws_endpoint
    sts            = var.aws_endpoint
  }
}

locals {
  name  = "ps-test"
  fleet = "test"
  # Non-default ports: from fleet_config they must reach the builds' environment, and the
  # pairs' rules (tests/terraform/verify.py checks both).
  esl_port = 8031
  sip_port = 5070
}

resource "aws_vpc" "test" {
  cidr_block = "10.42.0.0/16"
}

resource "aws_subnet" "test" {
  for_each          = { a = "10.42.1.0/24", b = "10.42.2.0/24" }
  vpc_id            = aws_vpc.test.id
  cidr_block        = each.value
  availability_zone = "us-east-1${each.key}"
}

resource "aws_security_group" "kamailio" {
  name        = "kamailio"
  description = "Kamailio (stand-in)"
  vpc_id      = aws_vpc.test.id
}

# Any image the emulator knows.
data "aws_ami" "node" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

# The deploy role (terraform/modules/deploy-access): its rendered policy is linted with the
# orchestrator's roles (tests/terraform/iam_lint.py), and the fleet's key policy names it.
module "deploy_access" {
  source = "../../terraform/modules/deploy-access"

  github_owner      = "example-org"
  github_repository = "pairscale"
  role_name         = "${local.name}-deploy"
  name_prefix       = local.name
  tf_state_bucket   = "${local.name}-tfstate"
  tf_lock_table     = "${local.name}-tf-lock"
}

module "orchestrator" {
  source = "../../terraform/modules/orchestrator"

  name                          = local.name
  fleet                         = local.fleet
  lambda_artifacts_dir          = var.lambda_artifacts_dir
  state_machine_definitions_dir = "${path.root}/../../statemachines"
  key_administrator_arns        = [module.deploy_access.role_arn]

  vpc_id                    = aws_vpc.test.id
  lambda_subnet_ids         = [for s in aws_subnet.test : s.id]
  node_cidr_blocks          = [aws_vpc.test.cidr_block]
  dispatcher_db_cidr_blocks = ["10.42.9.0/24"]
  dispatcher_db_host        = "10.42.9.5"
  dispatcher_db_password    = "test-only-dispatcher-password"
  freeswitch_repo_token     = "test-only-repo-token"
  kamailio_rpc_url          = "http://10.42.9.10:5071/RPC"
  kamailio_rpc_cidr_blocks  = ["10.42.9.0/24"]
  # The pairs that serve: a warm pair is no part of the fleet's count until it is taken.
  initial_pair_count = length([for p in var.pairs : p if !p.warm])

  # TLS to the dispatcher database with a CA bundle of its own: three test CA certificates (keys
  # discarded), over 4,096 characters as an RDS region bundle is, so the parameter is Advanced.
  # tests/terraform/verify.py checks the parameter, the drain function's environment and role,
  # and the Ansible build's environment and role.
  dispatcher_db_sslmode   = "verify-full"
  dispatcher_db_ca_bundle = file("${path.root}/../fixtures/dispatcher-db-ca-bundle.pem")

  fleet_config = {
    min_pairs            = 1
    max_pairs            = 10
    max_step             = 2
    cooldown_out_seconds = 60
    cooldown_in_seconds  = 600
    drain                = { deadline_seconds = 600, policy = "wait", hard_max_seconds = 3600 }
    alarm_steps          = { "external-alarm" = -1 }
    # An HA pair: the second listens on another port, which the drain function must reach too.
    kamailio_rpc_urls = ["http://10.42.9.10:5071/RPC", "http://10.42.9.11:5072/RPC"]
    esl_port          = local.esl_port
    sip_port          = local.sip_port
    # A baked image: it must reach the Ansible build and the pairs' instances.
    image_id = data.aws_ami.node.id
  }

  enable_lambda_vpc_config   = var.enable_lambda_vpc_config
  enable_dashboard           = var.enable_dashboard
  state_bucket_force_destroy = true
  # The check destroys what it applied.
  state_table_deletion_protection = false
  log_retention_days              = 7
}

module "pairs" {
  source = "../../terraform/modules/pairs"

  name  = local.name
  fleet = local.fleet
  pairs = var.pairs

  vpc_id     = aws_vpc.test.id
  subnet_ids = [for s in aws_subnet.test : s.id]
  # What the Terraform build hands the pairs root as TF_VAR_image_id (fleet_config.image_id),
  # over a base image no node may start from while the fleet has a baked one.
  ami_id                         = "ami-00000000000000000"
  image_id                       = data.aws_ami.node.id
  kms_key_arn                    = module.orchestrator.kms_key_arn
  freeswitch_instance_profile    = module.orchestrator.freeswitch_instance_profile_name
  ecs_cluster_arn                = module.orchestrator.ecs_cluster_arn
  esl_client_image               = "public.ecr.aws/docker/library/busybox:latest"
  esl_client_execution_role_arn  = module.orchestrator.esl_client_execution_role_arn
  esl_client_task_role_arn       = module.orchestrator.esl_client_task_role_arn
  esl_client_log_group_name      = module.orchestrator.esl_client_log_group_name
  esl_password_parameter_arn     = module.orchestrator.esl_password_parameter_arn
  orchestrator_security_group_id = module.orchestrator.orchestrator_security_group_id
  kamailio_security_group_id     = aws_security_group.kamailio.id
  detailed_monitoring            = var.detailed_monitoring
  # What the Terraform build hands the pairs root as TF_VAR_esl_port / TF_VAR_sip_port.
  esl_port = local.esl_port
  sip_port = local.sip_port
}
