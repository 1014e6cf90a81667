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

  # The build image deploy.yml pushes to the module's ECR repository (build-image/).
  build_image_tag = var.build_image_tag

  # The deploy role administers the fleet's KMS key through the key's own policy.
  key_administrator_arns = var.deploy_role_arn == null ? [] : [var.deploy_role_arn]

  vpc_id                    = var.vpc_id
  lambda_subnet_ids         = var.private_subnet_ids
  node_cidr_blocks          = var.node_cidr_blocks
  dispatcher_db_cidr_blocks = var.dispatcher_db_cidr_blocks
  dispatcher_db_host        = var.dispatcher_db_host
  dispatcher_db_password    = var.dispatcher_db_password
  freeswitch_repo_token     = var.freeswitch_repo_token
  kamailio_rpc_url          = var.kamailio_rpc_url
  kamailio_rpc_cidr_blocks  = var.kamailio_rpc_cidr_blocks
  orchestrator_cidr_blocks  = var.orchestrator_cidr_blocks
  kamailio_sip_cidr_blocks  = var.kamailio_sip_cidr_blocks

  # TLS to the dispatcher database, its certificate checked (the default) against the system's
  # root certificates. For RDS or Aurora, commit the region's bundle beside this file (from
  # https://truststore.pki.rds.amazonaws.com/<region>/<region>-bundle.pem), uncomment the line
  # below, and make dispatcher_db_host the endpoint's name, which the certificate carries.
  dispatcher_db_sslmode = "verify-full"
  # dispatcher_db_ca_bundle = file("${path.root}/eu-west-1-bundle.pem")

  # The scaling policy (FleetConfig in crates/core/src/fleet.rs). The steps of the module's
  # alarms are merged into alarm_steps by the module. What Terraform writes from this is
  # kept in tests/fixtures/fleet_config.terraform.json and parsed by the Rust code in tests.
  fleet_config = {
    min_pairs            = 2
    max_pairs            = 1000
    max_step             = 10
    cooldown_out_seconds = 300
    cooldown_in_seconds  = 1800
    drain = {
      deadline_seconds = 1800
      policy           = "wait"
      hard_max_seconds = 7200
    }
    pair_capacity_channels = 500
    # A baked image (packer/freeswitch.pkr.hcl): scale-outs configure without installing.
    image_id = var.fleet_image_id
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
