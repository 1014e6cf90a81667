# The orchestrator with every optional input left at its default.

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

module "orchestrator" {
  source = "../.."

  name  = "pairscale-basic"
  fleet = "basic"

  lambda_artifacts_dir          = "${path.root}/../../../../../target/lambda"
  state_machine_definitions_dir = "${path.root}/../../../../../statemachines"

  vpc_id                    = "vpc-0123456789abcdef0"
  lambda_subnet_ids         = ["subnet-0123456789abcdef0"]
  node_cidr_blocks          = ["10.0.0.0/20"]
  dispatcher_db_cidr_blocks = ["10.0.32.0/24"]
  dispatcher_db_secret_arn  = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kamailio-db-AbCdEf"
  kamailio_rpc_url          = "http://10.0.32.10:5071/RPC"
  kamailio_rpc_cidr_blocks  = ["10.0.32.0/24"]
}

output "function_arns" {
  description = "The four functions."
  value       = module.orchestrator.function_arns
}
