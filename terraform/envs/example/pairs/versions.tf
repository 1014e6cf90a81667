terraform {
  required_version = "~> 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100.0"
    }
  }

  # Partial configuration: the Terraform build passes the fleet's state bucket, key, lock
  # table and KMS key with -backend-config (terraform/buildspecs/terraform.yml).
  backend "s3" {}
}
