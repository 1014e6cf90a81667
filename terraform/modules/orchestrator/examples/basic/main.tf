# The orchestrator with every optional input left at its default. The two secrets are
# placeholders: a real root takes them from TF_VAR_* (see envs/example/orchestrator).

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
  dispatcher_db_host        = "10.0.32.5"
  dispatcher_db_password    = "example-only"
  freeswitch_repo_token     = "example-only"
  kamailio_rpc_url          = "http://10.0.32.10:5071/RPC"
  kamailio_rpc_cidr_blocks  = ["10.0.32.0/24"]

  # The default, spelled out: TLS to the dispatcher database, its certificate checked against
  # the system's root certificates. For RDS, add the region's bundle, downloaded from
  # https://truststore.pki.rds.amazonaws.com/eu-west-1/eu-west-1-bundle.pem:
  #   dispatcher_db_ca_bundle = file("${path.root}/eu-west-1-bundle.pem")
  # and make dispatcher_db_host the endpoint's name, which the certificate carries.
  dispatcher_db_sslmode = "verify-full"

  # Required: what FleetConfig requires has no default.
  fleet_config = {
    min_pairs            = 1
    max_pairs            = 10
    max_step             = 2
    cooldown_out_seconds = 300
    cooldown_in_seconds  = 1800
    drain                = { deadline_seconds = 900, policy = "force" }
  }
}

output "function_arns" {
  description = "The four functions."
  value       = module.orchestrator.function_arns
}
