terraform {
  required_version = "~> 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100.0"
    }
  }

  # Partial configuration, as the orchestrator root: bucket, key and region with -backend-config.
  backend "s3" {}
}
