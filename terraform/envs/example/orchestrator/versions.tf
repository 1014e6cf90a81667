terraform {
  required_version = "~> 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100.0"
    }
  }

  # Partial configuration: the deploy workflow passes bucket, key and region with
  # -backend-config (the account's bootstrap state bucket, not the fleet's).
  backend "s3" {}
}
