terraform {
  required_version = "~> 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100.0"
    }
  }
  # Local state: the sandbox keeps it in its own temporary folder (terraform -state=...).
}
