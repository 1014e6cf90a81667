variable "aws_endpoint" {
  description = "The local emulator (AWS_ENDPOINT_URL)."
  type        = string
}

variable "lambda_artifacts_dir" {
  description = "Directory with pairscale-<fn>/bootstrap.zip (dummy zips made by the check)."
  type        = string
}

variable "pairs" {
  description = "Pairs to create: two serving, one in the warm pool (its node stopped, no ESL client)."
  type = map(object({
    instance_type = optional(string)
    subnet_id     = optional(string)
    warm          = optional(bool, false)
  }))
  default = {
    "pair-0001" = {}
    "pair-0002" = { instance_type = "c7i.2xlarge" }
    "pair-0005" = { warm = true }
  }
}

variable "enable_lambda_vpc_config" {
  description = "Attach the drain function to the VPC."
  type        = bool
  default     = true
}

variable "enable_dashboard" {
  description = "Create the CloudWatch dashboard."
  type        = bool
  default     = true
}

variable "detailed_monitoring" {
  description = "One-minute EC2 metrics (moto 5.2 does not implement MonitorInstances)."
  type        = bool
  default     = false
}
