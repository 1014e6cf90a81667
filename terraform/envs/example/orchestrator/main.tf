# Example deployment of one fleet's orchestrator. Applied by .github/workflows/deploy.yml;
# the pairs themselves are the sibling root ../pairs, applied by the Terraform build.

provider "aws" {
  region = var.region

  default_tags {
    tags = { "pairscale:managed-by" = "terraform" }
  }
}

module "orchestrator" {
  source = "../../../modules/orchestrator"

  name  = "pairscale-${var.fleet}"
  fleet = var.fleet

  lambda_artifacts_dir          = var.lambda_artifacts_dir
  state_machine_definitions_dir = "${path.root}/../../../../statemachines"

  vpc_id                    = var.vpc_id
  lambda_subnet_ids         = var.private_subnet_ids
  node_cidr_blocks          = var.node_cidr_blocks
  dispatcher_db_cidr_blocks = var.dispatcher_db_cidr_blocks
  dispatcher_db_secret_arn  = var.dispatcher_db_secret_arn
  kamailio_rpc_url          = var.kamailio_rpc_url
  kamailio_rpc_cidr_blocks  = var.kamailio_rpc_cidr_blocks

  fleet_config = {
    min_pairs = 2
    max_pairs = 1000
  }

  # Everything else the pairs root needs, handed to the Terraform build as TF_VAR_*.
  terraform_run_variables = {
    vpc_id                     = var.vpc_id
    subnet_ids                 = jsonencode(var.private_subnet_ids)
    ami_id                     = var.freeswitch_ami_id
    esl_client_image           = var.esl_client_image
    kamailio_security_group_id = var.kamailio_security_group_id
    region                     = var.region
  }
}
