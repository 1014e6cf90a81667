# Three pairs with the module's defaults; pair-0003 overrides its instance type; pair-0004 waits
# in the warm pool (its node stopped, no ESL client).

terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = "eu-west-1"
}

module "pairs" {
  source = "../.."

  name  = "pairscale-basic"
  fleet = "basic"
  pairs = {
    "pair-0001" = {}
    "pair-0002" = {}
    "pair-0003" = { instance_type = "c7i.2xlarge" }
    "pair-0004" = { warm = true }
  }

  vpc_id                         = "vpc-0123456789abcdef0"
  subnet_ids                     = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  ami_id                         = "ami-0123456789abcdef0"
  kms_key_arn                    = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
  freeswitch_instance_profile    = "pairscale-basic-freeswitch"
  ecs_cluster_arn                = "arn:aws:ecs:eu-west-1:123456789012:cluster/pairscale-basic"
  esl_client_image               = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/pairscale-esl-client:latest"
  esl_client_execution_role_arn  = "arn:aws:iam::123456789012:role/pairscale-basic-esl-client-execution"
  esl_client_task_role_arn       = "arn:aws:iam::123456789012:role/pairscale-basic-esl-client"
  esl_client_log_group_name      = "/pairscale/basic/esl-client"
  esl_password_parameter_arn     = "arn:aws:ssm:eu-west-1:123456789012:parameter/pairscale/basic/esl_password"
  orchestrator_security_group_id = "sg-0123456789abcdef0"
  kamailio_security_group_id     = "sg-0123456789abcdef1"
}

output "pairs" {
  description = "Per pair: node and ESL client."
  value       = module.pairs.pairs
}
