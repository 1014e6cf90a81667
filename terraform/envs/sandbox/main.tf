# The orchestrator of one sandbox fleet, applied by `./sandbox` (crates/localstack/sandbox/src/deploy.rs)
# to the local AWS emulator, as envs/example/orchestrator is applied to an account. The VPC and
# subnet are the account's (made by the sandbox before the apply): their addresses are loopback
# addresses, so each instance's simulated FreeSWITCH listens on the instance's own private IP.

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
    ecr            = var.aws_endpoint
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

# Any image the emulator knows: the sandbox's instances run no image.
data "aws_ami" "node" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

module "orchestrator" {
  source = "../../modules/orchestrator"

  name                          = var.name
  fleet                         = var.fleet
  lambda_artifacts_dir          = var.lambda_artifacts_dir
  state_machine_definitions_dir = "${path.root}/../../../statemachines"

  vpc_id                    = var.vpc_id
  lambda_subnet_ids         = [var.subnet_id]
  node_cidr_blocks          = [var.vpc_cidr]
  orchestrator_cidr_blocks  = [var.subnet_cidr]
  kamailio_sip_cidr_blocks  = ["127.0.0.1/32"]
  dispatcher_db_cidr_blocks = ["127.0.0.1/32"]
  dispatcher_db_host        = var.dispatcher_db_host
  dispatcher_db_port        = var.dispatcher_db_port
  dispatcher_db_user        = var.dispatcher_db_user
  dispatcher_db_name        = var.dispatcher_db_name
  dispatcher_db_password    = var.dispatcher_db_password
  esl_password              = var.esl_password
  freeswitch_repo_token     = "sandbox-has-no-package-repository"
  kamailio_rpc_url          = var.kamailio_rpc_url
  kamailio_rpc_cidr_blocks  = ["127.0.0.1/32"]
  initial_pair_count        = 0
  fleet_config              = var.fleet_config
  lock_ttl_seconds          = 120

  # The sandbox's dispatcher database is this machine's own PostgreSQL on loopback (the stack's
  # PAIRSCALE_TEST_PG_URL), whose certificate no client here can verify: plain text, here only.
  dispatcher_db_sslmode = "disable"

  # What the pairs root (terraform/envs/example/pairs, run by the Terraform build) needs besides
  # what the module hands it. The emulator does not implement ec2:MonitorInstances.
  terraform_run_variables = {
    region                     = "us-east-1"
    vpc_id                     = var.vpc_id
    subnet_ids                 = jsonencode([var.subnet_id])
    ami_id                     = data.aws_ami.node.id
    esl_client_image           = "public.ecr.aws/pairscale/esl-client:sandbox"
    kamailio_security_group_id = var.kamailio_security_group_id
    detailed_monitoring        = "false"
  }

  enable_dashboard           = false
  state_bucket_force_destroy = true
  # The sandbox destroys its fleet at the end of every run.
  state_table_deletion_protection = false
}
