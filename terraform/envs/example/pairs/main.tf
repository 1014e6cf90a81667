# The fleet's pairs. Run by the Terraform build (terraform/buildspecs/terraform.yml): the
# pair set comes from pairs.auto.tfvars.json, written by pairscale from the fleet state just
# before the plan; every other input arrives as TF_VAR_* from the CodeBuild project, which
# the orchestrator module fills in.

provider "aws" {
  region = var.region

  default_tags {
    tags = { "pairscale:managed-by" = "terraform" }
  }
}

module "pairs" {
  source = "../../../modules/pairs"

  name  = var.name
  fleet = var.fleet
  pairs = var.pairs

  vpc_id                         = var.vpc_id
  subnet_ids                     = var.subnet_ids
  ami_id                         = var.ami_id
  image_id                       = var.image_id
  kms_key_arn                    = var.kms_key_arn
  freeswitch_instance_profile    = var.freeswitch_instance_profile
  ecs_cluster_arn                = var.ecs_cluster_arn
  esl_client_image               = var.esl_client_image
  esl_client_execution_role_arn  = var.esl_client_execution_role_arn
  esl_client_task_role_arn       = var.esl_client_task_role_arn
  esl_client_log_group_name      = "/pairscale/${var.fleet}/esl-client"
  esl_password_parameter_arn     = var.esl_password_parameter_arn
  orchestrator_security_group_id = var.orchestrator_security_group_id
  kamailio_security_group_id     = var.kamailio_security_group_id
  detailed_monitoring            = var.detailed_monitoring
  esl_port                       = var.esl_port
  sip_port                       = var.sip_port
}
