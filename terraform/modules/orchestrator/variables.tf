variable "name" {
  description = "Prefix for every resource name (functions are \"<name>-lock\", ...). Lower case, starts with a letter."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.name))
    error_message = "name must be 3-40 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "fleet" {
  description = "Fleet this orchestrator scales; used in tags (pairscale:fleet), SSM paths and alarm names."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,62}$", var.fleet))
    error_message = "fleet must be 1-63 characters of a-z, 0-9 and '-'."
  }
}

variable "tags" {
  description = "Tags added to every resource, on top of pairscale:fleet."
  type        = map(string)
  default     = {}
}

variable "ssm_prefix" {
  description = "Root of the fleet's SSM parameters (PAIRSCALE_SSM_PREFIX): <prefix>/<fleet>/pair_count, /config, /esl_password."
  type        = string
  default     = "/pairscale"

  validation {
    condition     = can(regex("^(/[A-Za-z0-9_.-]+)+$", var.ssm_prefix))
    error_message = "ssm_prefix must start with '/' and must not end with '/'."
  }
}

variable "initial_pair_count" {
  description = "Value of <prefix>/<fleet>/pair_count when it is created. The orchestrator owns it afterwards: later changes here are ignored."
  type        = number
  default     = 0

  validation {
    condition     = var.initial_pair_count >= 0 && var.initial_pair_count <= 1000 && floor(var.initial_pair_count) == var.initial_pair_count
    error_message = "initial_pair_count must be a whole number from 0 to 1000."
  }
}

variable "fleet_config" {
  description = "Scaling policy written as JSON to <prefix>/<fleet>/config and read by the state function."
  type = object({
    min_pairs             = optional(number, 1)
    max_pairs             = optional(number, 100)
    cooldown_seconds      = optional(number, 300)
    drain_timeout_seconds = optional(number, 3600)
    drain_poll_seconds    = optional(number, 30)
    calls_per_pair_target = optional(number, 500)
  })
  default = {}

  validation {
    condition     = var.fleet_config.min_pairs >= 0 && var.fleet_config.min_pairs <= var.fleet_config.max_pairs && var.fleet_config.max_pairs <= 1000
    error_message = "fleet_config needs 0 <= min_pairs <= max_pairs <= 1000."
  }

  validation {
    condition     = var.fleet_config.drain_timeout_seconds >= 60 && var.fleet_config.drain_poll_seconds >= 5 && var.fleet_config.cooldown_seconds >= 0
    error_message = "fleet_config needs drain_timeout_seconds >= 60, drain_poll_seconds >= 5 and cooldown_seconds >= 0."
  }
}

variable "esl_password" {
  description = "FreeSWITCH event-socket password stored as a SecureString. Null generates one once (later changes to the parameter value are ignored so it can be rotated out of band)."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.esl_password == null || length(coalesce(var.esl_password, "x")) >= 16
    error_message = "esl_password must be at least 16 characters."
  }
}

variable "lock_ttl_seconds" {
  description = "How long a scaling lock lives before it counts as abandoned (PAIRSCALE_LOCK_TTL_SECONDS). Must outlast the longest scale run."
  type        = number
  default     = 7200

  validation {
    condition     = var.lock_ttl_seconds >= 60 && var.lock_ttl_seconds <= 86400
    error_message = "lock_ttl_seconds must be between 60 and 86400."
  }
}

# --- Lambdas -------------------------------------------------------------------------------

variable "lambda_artifacts_dir" {
  description = "Directory holding `cargo lambda build --release --arm64` output: <dir>/pairscale-<fn>/bootstrap.zip for lock, state, drain and build."
  type        = string
}

variable "lambda_log_level" {
  description = "RUST_LOG for every function (tracing EnvFilter syntax)."
  type        = string
  default     = "info"

  validation {
    condition     = can(regex("^[a-z_=,:.0-9]+$", var.lambda_log_level))
    error_message = "lambda_log_level must be a tracing EnvFilter such as \"info\" or \"info,pairscale_aws=debug\"."
  }
}

variable "lambda_memory_size" {
  description = "Memory (MB) per function, by function."
  type        = map(number)
  default     = { lock = 128, state = 256, drain = 256, build = 128 }

  validation {
    condition     = alltrue([for k, v in var.lambda_memory_size : contains(["lock", "state", "drain", "build"], k) && v >= 128 && v <= 10240])
    error_message = "Keys must be lock, state, drain or build; values 128-10240."
  }
}

variable "lambda_timeout" {
  description = "Timeout (seconds) per function. drain waits on live calls, so it gets the longest."
  type        = map(number)
  default     = { lock = 10, state = 60, drain = 900, build = 30 }

  validation {
    condition     = alltrue([for k, v in var.lambda_timeout : contains(["lock", "state", "drain", "build"], k) && v >= 1 && v <= 900])
    error_message = "Keys must be lock, state, drain or build; values 1-900."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency per function. lock is kept tiny (it serialises runs anyway), drain bounds the load on Kamailio and its database, build bounds concurrent CodeBuild runs."
  type        = map(number)
  default     = { lock = 2, state = 10, drain = 10, build = 4 }

  validation {
    condition     = alltrue([for k, v in var.lambda_reserved_concurrency : contains(["lock", "state", "drain", "build"], k) && v >= 1 && v <= 100])
    error_message = "Keys must be lock, state, drain or build; values 1-100."
  }
}

variable "lambda_vpc_functions" {
  description = "Functions attached to the VPC. drain must be (it talks ESL on TCP 8021, Kamailio JSON-RPC and the dispatcher database); the others call AWS APIs only."
  type        = set(string)
  default     = ["drain"]

  validation {
    condition     = alltrue([for f in var.lambda_vpc_functions : contains(["lock", "state", "drain", "build"], f)])
    error_message = "lambda_vpc_functions may only name lock, state, drain and build."
  }
}

variable "enable_lambda_vpc_config" {
  description = "Attach lambda_vpc_functions to the VPC. Only emulators without Lambda VPC support turn this off."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "VPC of the fleet."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123abcd."
  }
}

variable "lambda_subnet_ids" {
  description = "Private subnets for VPC functions and the CodeBuild projects (need a route to AWS APIs: NAT or VPC endpoints)."
  type        = list(string)

  validation {
    condition     = length(var.lambda_subnet_ids) >= 1 && alltrue([for s in var.lambda_subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "Give at least one subnet id (subnet-...)."
  }
}

variable "node_cidr_blocks" {
  description = "Where FreeSWITCH nodes live: the orchestrator security group may reach TCP 8021 there."
  type        = list(string)

  validation {
    condition     = length(var.node_cidr_blocks) >= 1 && alltrue([for c in var.node_cidr_blocks : can(cidrnetmask(c))])
    error_message = "node_cidr_blocks must be IPv4 CIDR blocks."
  }
}

variable "dispatcher_db_cidr_blocks" {
  description = "Where Kamailio's PostgreSQL lives (TCP dispatcher_db_port egress)."
  type        = list(string)

  validation {
    condition     = alltrue([for c in var.dispatcher_db_cidr_blocks : can(cidrnetmask(c))])
    error_message = "dispatcher_db_cidr_blocks must be IPv4 CIDR blocks."
  }
}

variable "dispatcher_db_port" {
  description = "PostgreSQL port of the dispatcher database."
  type        = number
  default     = 5432

  validation {
    condition     = var.dispatcher_db_port >= 1 && var.dispatcher_db_port <= 65535
    error_message = "dispatcher_db_port must be a TCP port."
  }
}

variable "dispatcher_db_secret_arn" {
  description = "Secrets Manager secret with the dispatcher database credentials (JSON: host, port, username, password, dbname)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.dispatcher_db_secret_arn))
    error_message = "dispatcher_db_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "dispatcher_db_secret_kms_key_arn" {
  description = "Customer managed KMS key encrypting the dispatcher secret, if any (null: the AWS managed key, which needs no grant)."
  type        = string
  default     = null
}

variable "kamailio_rpc_url" {
  description = "Kamailio JSON-RPC endpoint (PAIRSCALE_KAMAILIO_RPC_URL), e.g. http://10.0.0.10:5071/RPC."
  type        = string

  validation {
    condition     = can(regex("^https?://[^/:]+(:[0-9]+)?(/.*)?$", var.kamailio_rpc_url))
    error_message = "kamailio_rpc_url must be an http(s) URL."
  }
}

variable "kamailio_rpc_cidr_blocks" {
  description = "Where Kamailio's JSON-RPC listener lives."
  type        = list(string)

  validation {
    condition     = alltrue([for c in var.kamailio_rpc_cidr_blocks : can(cidrnetmask(c))])
    error_message = "kamailio_rpc_cidr_blocks must be IPv4 CIDR blocks."
  }
}

variable "aws_api_cidr_blocks" {
  description = "Where VPC functions and builds reach AWS APIs on TCP 443 (VPC endpoint subnets, or 0.0.0.0/0 through NAT)."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for c in var.aws_api_cidr_blocks : can(cidrnetmask(c))])
    error_message = "aws_api_cidr_blocks must be IPv4 CIDR blocks."
  }
}

# --- State machines ------------------------------------------------------------------------

variable "state_machine_definitions_dir" {
  description = "Directory holding scale.asl.json (the repository's statemachines/). Rendered with templatefile() and the four function ARNs."
  type        = string
}

# --- CodeBuild -----------------------------------------------------------------------------

variable "codebuild_image" {
  description = "Build image for the Terraform and Ansible runs (arm64; must carry or be able to install terraform, ansible and psql)."
  type        = string
  default     = "aws/codebuild/amazonlinux-aarch64-standard:3.0"
}

variable "codebuild_compute_type" {
  description = "CodeBuild compute type."
  type        = string
  default     = "BUILD_GENERAL1_SMALL"

  validation {
    condition     = contains(["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"], var.codebuild_compute_type)
    error_message = "codebuild_compute_type must be BUILD_GENERAL1_SMALL, _MEDIUM or _LARGE."
  }
}

variable "codebuild_timeout_minutes" {
  description = "Build timeout. A 1,000-pair plan and apply fits in well under an hour."
  type        = number
  default     = 60

  validation {
    condition     = var.codebuild_timeout_minutes >= 5 && var.codebuild_timeout_minutes <= 480
    error_message = "codebuild_timeout_minutes must be 5-480."
  }
}

variable "source_object_key" {
  description = "Key, in the state bucket, of the zipped repository the builds run (uploaded by the deploy workflow)."
  type        = string
  default     = "source/pairscale.zip"

  validation {
    condition     = can(regex("^source/.+\\.zip$", var.source_object_key))
    error_message = "source_object_key must be a .zip under source/."
  }
}

variable "terraform_root_dir" {
  description = "Path, inside the source bundle, of the Terraform root that manages the fleet's pairs."
  type        = string
  default     = "terraform/envs/example/pairs"
}

variable "terraform_run_variables" {
  description = "Extra inputs of the pairs root, handed to the Terraform build as TF_VAR_<key> (the module adds the ones it knows: fleet, cluster, security group, roles)."
  type        = map(string)
  default     = {}
}

variable "state_bucket_force_destroy" {
  description = "Allow destroying the state bucket with objects in it (tests only)."
  type        = bool
  default     = false
}

# --- Alarms, logs, dashboard ---------------------------------------------------------------

variable "metrics_namespace" {
  description = "CloudWatch namespace the functions and ESL clients publish fleet metrics to (dimension Fleet)."
  type        = string
  default     = "Pairscale"
}

variable "alarms" {
  description = <<-EOT
    Alarms that start a scaling run, keyed by a short name (alarm name: <name>-<key>). Every
    alarm starts the one scaling state machine; `action` (the intended direction) and `step`
    describe the alarm and ride along in the run's input, while the plan takes the step from
    the fleet configuration's alarm_steps. Metrics are in metrics_namespace with dimension
    Fleet unless `namespace` is given.
  EOT
  type = map(object({
    metric_name         = string
    namespace           = optional(string)
    statistic           = optional(string, "Average")
    comparison_operator = string
    threshold           = number
    period              = optional(number, 60)
    evaluation_periods  = optional(number, 3)
    action              = string
    step                = optional(number, 1)
  }))
  default = {
    calls-per-pair-high = {
      metric_name         = "CallsPerPair"
      comparison_operator = "GreaterThanThreshold"
      threshold           = 400
      action              = "scale_out"
      step                = 1
    }
    calls-per-pair-low = {
      metric_name         = "CallsPerPair"
      comparison_operator = "LessThanThreshold"
      threshold           = 100
      evaluation_periods  = 15
      action              = "scale_in"
      step                = 1
    }
    cpu-high = {
      metric_name         = "NodeCpuUtilizationMax"
      statistic           = "Maximum"
      comparison_operator = "GreaterThanThreshold"
      threshold           = 70
      evaluation_periods  = 5
      action              = "scale_out"
      step                = 2
    }
  }

  validation {
    condition     = alltrue([for a in values(var.alarms) : contains(["scale_out", "scale_in"], a.action)])
    error_message = "alarm action must be scale_out or scale_in."
  }

  validation {
    condition     = alltrue([for a in values(var.alarms) : a.step >= 1 && a.step <= 100 && a.period >= 10 && a.evaluation_periods >= 1])
    error_message = "alarm step must be 1-100, period >= 10 and evaluation_periods >= 1."
  }

  validation {
    condition     = alltrue([for a in values(var.alarms) : contains(["GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"], a.comparison_operator)])
    error_message = "alarm comparison_operator must be a CloudWatch threshold operator."
  }

  validation {
    condition     = alltrue([for a in values(var.alarms) : contains(["Average", "Maximum", "Minimum", "Sum", "SampleCount"], a.statistic)])
    error_message = "alarm statistic must be Average, Maximum, Minimum, Sum or SampleCount."
  }
}

variable "log_retention_days" {
  description = "Retention of every log group the module creates."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "enable_dashboard" {
  description = "Create the CloudWatch dashboard."
  type        = bool
  default     = true
}

variable "esl_client_image_repository_arns" {
  description = "ECR repositories the ESL client image is pulled from (empty: a public registry, no ECR permissions granted)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.esl_client_image_repository_arns : can(regex("^arn:aws[a-z-]*:ecr:", a))])
    error_message = "esl_client_image_repository_arns must be ECR repository ARNs."
  }
}

variable "orchestrator_cidr_blocks" {
  description = "CIDR blocks of lambda_subnet_ids: FreeSWITCH's event-socket ACL admits them (the Ansible run gets them as PAIRSCALE_ORCHESTRATOR_CIDRS)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.orchestrator_cidr_blocks : can(cidrnetmask(c))])
    error_message = "orchestrator_cidr_blocks must be IPv4 CIDR blocks."
  }
}

variable "kamailio_sip_cidr_blocks" {
  description = "CIDR blocks Kamailio sends SIP from: FreeSWITCH's SIP ACL admits them (PAIRSCALE_KAMAILIO_CIDRS for the Ansible run)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.kamailio_sip_cidr_blocks : can(cidrnetmask(c))])
    error_message = "kamailio_sip_cidr_blocks must be IPv4 CIDR blocks."
  }
}
