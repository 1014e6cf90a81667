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
    # pairscale_core::ids::FleetName::parse.
    condition     = can(regex("^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$", var.fleet))
    error_message = "fleet must be 1-40 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-'."
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
  description = <<-EOT
    Scaling policy of the fleet, written as JSON to <prefix>/<fleet>/config and read by the
    state function with FleetConfig::from_json (crates/core/src/fleet.rs), which refuses
    unknown fields and validates every bound. Attribute names, required attributes, defaults
    and bounds here are exactly the Rust struct's: what Rust requires has no default here, and
    every Rust default is repeated as this type's default. alarm_steps is merged over the
    steps of this module's own alarms (see var.alarms), keyed by CloudWatch alarm name.
  EOT
  type = object({
    min_pairs            = number
    max_pairs            = number
    max_step             = number
    cooldown_out_seconds = number
    cooldown_in_seconds  = number
    drain = object({
      deadline_seconds       = number
      policy                 = string
      hard_max_seconds       = optional(number)
      hupall_cause           = optional(string, "MANAGER_REQUEST")
      check_interval_seconds = optional(number, 15)
    })
    race_spares            = optional(number, 3)
    pair_capacity_channels = optional(number)
    alarm_steps            = optional(map(number), {})
    build_poll_seconds     = optional(number, 20)
    build_timeout_seconds  = optional(number, 3600)
    build_retries          = optional(number, 2)
    build_retry_seconds    = optional(number, 60)
    sip_port               = optional(number, 5060)
    dispatcher_set_id      = optional(number, 1)
    esl_port               = optional(number, 8021)
    kamailio_rpc_urls      = optional(list(string))
    # The fleet's baked FreeSWITCH image (packer/freeswitch.pkr.hcl): new pairs start from it
    # and their scale-out runs only the role's configure tasks. Null: ami_id, packages
    # installed at run time.
    image_id = optional(string)
    # Stopped instances of image_id kept ready (each a warm pair, no ESL client): a scale-out
    # takes them first and refills the pool once its new pairs are in rotation. 0: no pool.
    warm_pool = optional(number, 0)
    # The canary call and quality gate (crates/core/src/canary.rs).
    canary = optional(object({
      enabled        = optional(bool, true)
      destination    = optional(string, "pairscale-canary")
      sip_profile    = optional(string, "pairscale")
      seconds        = optional(number, 3)
      min_mos        = optional(number, 3.5)
      quality_sample = optional(number, 3)
      # Minutes between scheduled measurements (an EventBridge rule invoking the drain
      # function's `measure`); 0: only before a scale-in.
      measure_every_minutes = optional(number, 5)
      # An MOS metric the operator's ESL clients publish; the worse of it and the canary
      # calls is the fleet's figure.
      operator_metric = optional(object({
        namespace      = string
        metric_name    = string
        dimensions     = optional(map(string), {})
        statistic      = optional(string, "Average")
        window_seconds = optional(number, 300)
      }))
    }), {})
    # The scaling policy the policy function evaluates every minute (crates/core/src/policy.rs);
    # null: the fleet scales only when asked, or by its alarms' fixed steps.
    policy = optional(object({
      target_channels_per_pair       = number
      scale_in_stabilization_seconds = optional(number, 600)
      max_step_out                   = optional(number)
      max_step_in                    = optional(number, 1)
      # Scheduled minimums: days (mon..sun), HH:MM from (inclusive) to (exclusive) by the wall
      # clock of an IANA time zone (checked by the functions, which bundle the zone rules;
      # Terraform has no list of them).
      schedules = optional(list(object({
        name      = string
        days      = list(string)
        from      = string
        to        = string
        time_zone = string
        min_pairs = number
      })), [])
      # Predictive scaling (crates/core/src/policy/forecast.rs): mode forecast_only or
      # forecast_and_scale; null: none.
      predictive = optional(object({
        mode                     = string
        weeks                    = optional(number, 4)
        min_weeks                = optional(number, 2)
        target_channels_per_pair = optional(number)
        headroom_sigmas          = optional(number, 0)
      }))
      # The short-term trend (crates/core/src/policy/trend.rs); null: none.
      trend = optional(object({
        window_seconds  = optional(number, 180)
        noise_sigmas    = optional(number, 4)
        headroom_sigmas = optional(number, 0)
      }))
      suspended = optional(bool, false)
    }))
  })
  nullable = false

  # One block per rule of FleetConfig::validate, in its order, plus the integer types the
  # JSON must fit (u16, u32, u64, i32): serde refuses a fraction or a negative number.
  validation {
    condition = alltrue([for v in [
      var.fleet_config.min_pairs, var.fleet_config.max_pairs, var.fleet_config.max_step,
      var.fleet_config.cooldown_out_seconds, var.fleet_config.cooldown_in_seconds,
      var.fleet_config.drain.deadline_seconds, var.fleet_config.drain.check_interval_seconds,
      var.fleet_config.race_spares, var.fleet_config.build_poll_seconds,
      var.fleet_config.build_timeout_seconds, var.fleet_config.build_retries,
      var.fleet_config.build_retry_seconds, var.fleet_config.sip_port,
      var.fleet_config.dispatcher_set_id, var.fleet_config.esl_port, var.fleet_config.warm_pool,
      coalesce(var.fleet_config.drain.hard_max_seconds, 0),
      coalesce(var.fleet_config.pair_capacity_channels, 0),
      var.fleet_config.canary.seconds, var.fleet_config.canary.quality_sample,
      var.fleet_config.canary.measure_every_minutes,
      try(var.fleet_config.canary.operator_metric.window_seconds, 0),
    ] : v >= 0 && floor(v) == v])
    error_message = "fleet_config: every number must be a whole number, not negative."
  }

  validation {
    condition     = var.fleet_config.max_pairs <= 1000
    error_message = "fleet_config.max_pairs must be at most 1000."
  }

  validation {
    condition     = var.fleet_config.min_pairs <= var.fleet_config.max_pairs
    error_message = "fleet_config.min_pairs must not exceed max_pairs."
  }

  validation {
    condition     = var.fleet_config.max_step >= 1 && var.fleet_config.max_step <= 1000
    error_message = "fleet_config.max_step must be 1..=1000."
  }

  validation {
    condition     = var.fleet_config.cooldown_out_seconds <= 86400 && var.fleet_config.cooldown_in_seconds <= 86400
    error_message = "fleet_config.cooldown_out_seconds and cooldown_in_seconds must be at most 86400."
  }

  validation {
    condition     = var.fleet_config.drain.deadline_seconds >= 1 && var.fleet_config.drain.deadline_seconds <= 604800
    error_message = "fleet_config.drain.deadline_seconds must be 1..=604800."
  }

  validation {
    condition     = contains(["wait", "force", "abort"], var.fleet_config.drain.policy)
    error_message = "fleet_config.drain.policy must be wait, force or abort."
  }

  validation {
    condition     = var.fleet_config.drain.policy != "wait" || var.fleet_config.drain.hard_max_seconds != null
    error_message = "fleet_config.drain.hard_max_seconds: policy 'wait' needs a hard maximum."
  }

  validation {
    # A conditional, not ||: Terraform evaluates both sides of || and null >= n is an error.
    condition = (var.fleet_config.drain.hard_max_seconds == null ? true :
      var.fleet_config.drain.hard_max_seconds >= var.fleet_config.drain.deadline_seconds
    && var.fleet_config.drain.hard_max_seconds <= 604800)
    error_message = "fleet_config.drain.hard_max_seconds must be at least drain.deadline_seconds and at most 604800."
  }

  validation {
    condition     = var.fleet_config.drain.check_interval_seconds >= 1 && var.fleet_config.drain.check_interval_seconds <= 3600
    error_message = "fleet_config.drain.check_interval_seconds must be 1..=3600."
  }

  validation {
    # FreeSWITCH's cause chart: an unknown name would hang up as NORMAL_CLEARING. The list is
    # crates/core/src/hangup.rs's KNOWN_CAUSES (tests/terraform/contract.py holds them equal).
    condition = contains([
      "UNALLOCATED_NUMBER", "NO_ROUTE_TRANSIT_NET", "NO_ROUTE_DESTINATION", "CHANNEL_UNACCEPTABLE",
      "CALL_AWARDED_DELIVERED", "NORMAL_CLEARING", "USER_BUSY", "NO_USER_RESPONSE", "NO_ANSWER",
      "SUBSCRIBER_ABSENT", "CALL_REJECTED", "NUMBER_CHANGED", "REDIRECTION_TO_NEW_DESTINATION",
      "EXCHANGE_ROUTING_ERROR", "DESTINATION_OUT_OF_ORDER", "INVALID_NUMBER_FORMAT",
      "FACILITY_REJECTED", "RESPONSE_TO_STATUS_ENQUIRY", "NORMAL_UNSPECIFIED",
      "NORMAL_CIRCUIT_CONGESTION", "NETWORK_OUT_OF_ORDER", "NORMAL_TEMPORARY_FAILURE",
      "SWITCH_CONGESTION", "ACCESS_INFO_DISCARDED", "REQUESTED_CHAN_UNAVAIL", "PRE_EMPTED",
      "FACILITY_NOT_SUBSCRIBED", "OUTGOING_CALL_BARRED", "INCOMING_CALL_BARRED",
      "BEARERCAPABILITY_NOTAUTH", "BEARERCAPABILITY_NOTAVAIL", "SERVICE_UNAVAILABLE",
      "BEARERCAPABILITY_NOTIMPL", "CHAN_NOT_IMPLEMENTED", "FACILITY_NOT_IMPLEMENTED",
      "SERVICE_NOT_IMPLEMENTED", "INVALID_CALL_REFERENCE", "INCOMPATIBLE_DESTINATION",
      "INVALID_MSG_UNSPECIFIED", "MANDATORY_IE_MISSING", "MESSAGE_TYPE_NONEXIST", "WRONG_MESSAGE",
      "IE_NONEXIST", "INVALID_IE_CONTENTS", "WRONG_CALL_STATE", "RECOVERY_ON_TIMER_EXPIRE",
      "MANDATORY_IE_LENGTH_ERROR", "PROTOCOL_ERROR", "INTERWORKING", "SUCCESS",
      "ORIGINATOR_CANCEL", "CRASH", "SYSTEM_SHUTDOWN", "LOSE_RACE", "MANAGER_REQUEST",
      "BLIND_TRANSFER", "ATTENDED_TRANSFER", "ALLOTTED_TIMEOUT", "USER_CHALLENGE", "MEDIA_TIMEOUT",
      "PICKED_OFF", "USER_NOT_REGISTERED", "PROGRESS_TIMEOUT", "INVALID_GATEWAY", "GATEWAY_DOWN",
      "INVALID_URL", "INVALID_PROFILE", "NO_PICKUP", "SRTP_READ_ERROR", "BOWOUT",
      "BUSY_EVERYWHERE", "DECLINE", "DOES_NOT_EXIST_ANYWHERE", "NOT_ACCEPTABLE", "UNWANTED",
      "NO_IDENTITY", "BAD_IDENTITY_INFO", "UNSUPPORTED_CERTIFICATE", "INVALID_IDENTITY",
      "STALE_DATE", "REJECT_ALL"
    ], var.fleet_config.drain.hupall_cause)
    error_message = "fleet_config.drain.hupall_cause must be a hangup cause FreeSWITCH knows, such as MANAGER_REQUEST or NORMAL_CLEARING (upper case)."
  }

  validation {
    condition     = var.fleet_config.race_spares <= 10
    error_message = "fleet_config.race_spares must be 0..=10."
  }

  validation {
    condition     = var.fleet_config.build_poll_seconds >= 1 && var.fleet_config.build_poll_seconds <= 600
    error_message = "fleet_config.build_poll_seconds must be 1..=600."
  }

  validation {
    condition     = var.fleet_config.build_timeout_seconds >= 10 && var.fleet_config.build_timeout_seconds <= 28800
    error_message = "fleet_config.build_timeout_seconds must be 10..=28800."
  }

  validation {
    condition     = var.fleet_config.build_retries >= 0 && var.fleet_config.build_retries <= 5
    error_message = "fleet_config.build_retries must be 0..=5."
  }

  validation {
    condition     = var.fleet_config.build_retry_seconds >= 1 && var.fleet_config.build_retry_seconds <= 900
    error_message = "fleet_config.build_retry_seconds must be 1..=900."
  }

  validation {
    condition     = var.fleet_config.esl_port >= 1 && var.fleet_config.esl_port <= 65535 && var.fleet_config.sip_port >= 1 && var.fleet_config.sip_port <= 65535
    error_message = "fleet_config.esl_port and sip_port must be ports, 1..=65535."
  }

  validation {
    # An AMI id: ami- and 8 or 17 lower-case hex digits (FleetConfig's image_id).
    condition     = var.fleet_config.image_id == null ? true : can(regex("^ami-([0-9a-f]{8}|[0-9a-f]{17})$", var.fleet_config.image_id))
    error_message = "fleet_config.image_id must be an AMI id, ami- and 8 or 17 lower-case hex digits (ami-0123456789abcdef0)."
  }

  validation {
    # FleetConfig's warm_pool: of the fleet's baked image, and every pair, warm ones too,
    # within the fleet's 1,000.
    condition = var.fleet_config.warm_pool == 0 ? true : (var.fleet_config.warm_pool <= 100 &&
    var.fleet_config.image_id != null && var.fleet_config.max_pairs + var.fleet_config.warm_pool <= 1000)
    error_message = "fleet_config.warm_pool must be 0..=100, needs image_id, and max_pairs + warm_pool must be at most 1000."
  }

  validation {
    condition     = var.fleet_config.dispatcher_set_id >= 1 && var.fleet_config.dispatcher_set_id <= 65535
    error_message = "fleet_config.dispatcher_set_id must be 1..=65535."
  }

  validation {
    condition = (var.fleet_config.pair_capacity_channels == null ? true :
    var.fleet_config.pair_capacity_channels >= 1 && var.fleet_config.pair_capacity_channels <= 4294967295)
    error_message = "fleet_config.pair_capacity_channels must be positive (and fit a u32)."
  }

  validation {
    # Rust counts bytes (String::len); alarm names are ASCII, where the two agree.
    condition     = alltrue([for name, step in var.fleet_config.alarm_steps : length(name) >= 1 && length(name) <= 255])
    error_message = "fleet_config.alarm_steps: alarm names are 1-255 characters."
  }

  validation {
    condition = alltrue([for name, step in var.fleet_config.alarm_steps :
    step != 0 && floor(step) == step && abs(step) <= var.fleet_config.max_step])
    error_message = "fleet_config.alarm_steps: every step must be a non-zero whole number within max_step."
  }

  # crates/core/src/history.rs: one run's worst history (its drain rounds with the last look
  # before the destroy, its force rounds, and the polls of
  # two builds recovering an earlier run's scale-out, then of four builds and the health-check
  # wait in a failed scale-out, or two builds in a scale-in; with the rounds each retry of a
  # Terraform build adds: three in a scale-out, two in a scale-in) must fit 20,000 of Step Functions'
  # 25,000 events. The same sum, term by term.
  validation {
    condition = (1500 + max(
      (floor((var.fleet_config.drain.policy == "wait" ? coalesce(var.fleet_config.drain.hard_max_seconds, var.fleet_config.drain.deadline_seconds) : var.fleet_config.drain.deadline_seconds) / max(var.fleet_config.drain.check_interval_seconds, 1)) + 4) * 14
      + 5 * (14 + 20 + var.fleet_config.max_step * 10)
      + 4 * (floor(var.fleet_config.build_timeout_seconds / max(var.fleet_config.build_poll_seconds, 1)) + 2) * 14
      + 2 * var.fleet_config.build_retries * 4 * 14,
      6 * (floor(var.fleet_config.build_timeout_seconds / max(var.fleet_config.build_poll_seconds, 1)) + 2) * 14
      + 3 * var.fleet_config.build_retries * 4 * 14
      + 25 * 16
    ) + 2 * (var.fleet_config.max_step + var.fleet_config.race_spares) * 10) <= 20000
    error_message = "fleet_config: one run could need more than 20,000 history events (Step Functions ends an execution at 25,000): check (drain.check_interval_seconds) or poll (build_poll_seconds) less often, or lower drain.hard_max_seconds, drain.deadline_seconds or build_timeout_seconds."
  }

  # crates/core/src/canary.rs: names go into an originate line, so plain characters only.
  validation {
    condition = alltrue([for n in [var.fleet_config.canary.destination, var.fleet_config.canary.sip_profile] :
    can(regex("^[A-Za-z0-9._+-]{1,64}$", n))])
    error_message = "fleet_config.canary.destination and sip_profile must be 1-64 letters, digits or . _ - +."
  }

  validation {
    condition     = var.fleet_config.canary.seconds >= 1 && var.fleet_config.canary.seconds <= 30
    error_message = "fleet_config.canary.seconds must be 1..=30."
  }

  validation {
    # Scores are kept in hundredths, rounded, as FreeSWITCH prints them.
    condition = (floor(var.fleet_config.canary.min_mos * 100 + 0.5) >= 100
    && floor(var.fleet_config.canary.min_mos * 100 + 0.5) <= 450)
    error_message = "fleet_config.canary.min_mos must be 1.00..=4.50 (FreeSWITCH scores no higher)."
  }

  validation {
    condition     = var.fleet_config.canary.quality_sample >= 1 && var.fleet_config.canary.quality_sample <= 20
    error_message = "fleet_config.canary.quality_sample must be 1..=20."
  }

  validation {
    condition     = var.fleet_config.canary.measure_every_minutes <= 1440
    error_message = "fleet_config.canary.measure_every_minutes must be 0..=1440 (0: measured only before a scale-in)."
  }

  # canary::OperatorMetric::check, rule by rule.
  validation {
    condition = (var.fleet_config.canary.operator_metric == null ? true :
      length(var.fleet_config.canary.operator_metric.namespace) >= 1
      && length(var.fleet_config.canary.operator_metric.namespace) <= 255
    && !strcontains(var.fleet_config.canary.operator_metric.namespace, ":"))
    error_message = "fleet_config.canary.operator_metric.namespace must be a CloudWatch namespace: 1-255 characters, no ':'."
  }

  validation {
    condition = (var.fleet_config.canary.operator_metric == null ? true :
      length(var.fleet_config.canary.operator_metric.metric_name) >= 1
    && length(var.fleet_config.canary.operator_metric.metric_name) <= 255)
    error_message = "fleet_config.canary.operator_metric.metric_name must be 1-255 characters."
  }

  validation {
    condition = (var.fleet_config.canary.operator_metric == null ? true :
      length(var.fleet_config.canary.operator_metric.dimensions) <= 30
      && alltrue([for k, v in var.fleet_config.canary.operator_metric.dimensions :
    length(k) >= 1 && length(k) <= 255 && length(v) >= 1 && length(v) <= 1024]))
    error_message = "fleet_config.canary.operator_metric.dimensions: at most 30, each name 1-255 characters and each value 1-1024."
  }

  validation {
    condition = (var.fleet_config.canary.operator_metric == null ? true :
    contains(["Average", "Minimum"], var.fleet_config.canary.operator_metric.statistic))
    error_message = "fleet_config.canary.operator_metric.statistic must be Average or Minimum."
  }

  validation {
    condition = (var.fleet_config.canary.operator_metric == null ? true :
      var.fleet_config.canary.operator_metric.window_seconds >= 60
      && var.fleet_config.canary.operator_metric.window_seconds <= 3600
    && var.fleet_config.canary.operator_metric.window_seconds % 60 == 0)
    error_message = "fleet_config.canary.operator_metric.window_seconds must be a whole number of minutes, 60..=3600."
  }

  # crates/core/src/proxies.rs, with fleet::bounds::KAMAILIO_RPC_URLS and _URL_LENGTH.
  validation {
    condition = (var.fleet_config.kamailio_rpc_urls == null ? true :
      length(var.fleet_config.kamailio_rpc_urls) >= 1 && length(var.fleet_config.kamailio_rpc_urls) <= 8
    && length(distinct(var.fleet_config.kamailio_rpc_urls)) == length(var.fleet_config.kamailio_rpc_urls))
    error_message = "fleet_config.kamailio_rpc_urls: when set, 1 to 8 Kamailio JSON-RPC URLs (every instance sharing the dispatcher table), none twice."
  }

  validation {
    condition = alltrue([for u in(var.fleet_config.kamailio_rpc_urls == null ? [] : var.fleet_config.kamailio_rpc_urls) :
      length(u) <= 255
      && can(regex("^https?://([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?(/[!-~]*)?$", u))
      && try(tonumber(regex("^https?://(?:[A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\]):([0-9]+)", u)[0]), 1) >= 1
    && try(tonumber(regex("^https?://(?:[A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\]):([0-9]+)", u)[0]), 1) <= 65535])
    error_message = "fleet_config.kamailio_rpc_urls: each must be http(s)://HOST[:PORT][/PATH] (HOST a name, an IPv4 address or a bracketed IPv6 address, PORT 1-65535, PATH printable ASCII without spaces), at most 255 characters."
  }

  # crates/core/src/policy.rs (PolicyConfig::validate and Schedule::validate), rule by rule;
  # the time zone's name is the functions' to check.
  validation {
    condition = (var.fleet_config.policy == null ? true : alltrue([for v in concat([
      var.fleet_config.policy.target_channels_per_pair,
      var.fleet_config.policy.scale_in_stabilization_seconds,
      coalesce(var.fleet_config.policy.max_step_out, 1),
      var.fleet_config.policy.max_step_in,
      ], [for s in var.fleet_config.policy.schedules : s.min_pairs],
      var.fleet_config.policy.predictive == null ? [] : [
        var.fleet_config.policy.predictive.weeks,
        var.fleet_config.policy.predictive.min_weeks,
        coalesce(var.fleet_config.policy.predictive.target_channels_per_pair, 1),
        var.fleet_config.policy.predictive.headroom_sigmas,
      ],
      var.fleet_config.policy.trend == null ? [] : [
        var.fleet_config.policy.trend.window_seconds,
        var.fleet_config.policy.trend.noise_sigmas,
        var.fleet_config.policy.trend.headroom_sigmas,
    ]) : v >= 0 && floor(v) == v]))
    error_message = "fleet_config.policy: every number must be a whole number, not negative."
  }

  validation {
    condition = (var.fleet_config.policy == null ? true :
      var.fleet_config.policy.target_channels_per_pair >= 1
    && var.fleet_config.policy.target_channels_per_pair <= 100000)
    error_message = "fleet_config.policy.target_channels_per_pair must be 1..=100000."
  }

  validation {
    condition = (var.fleet_config.policy == null ? true :
    var.fleet_config.policy.scale_in_stabilization_seconds <= 86400)
    error_message = "fleet_config.policy.scale_in_stabilization_seconds must be at most 86400 (a day)."
  }

  validation {
    condition = (var.fleet_config.policy == null ? true : (var.fleet_config.policy.max_step_out == null ? true :
      var.fleet_config.policy.max_step_out >= 1
    && var.fleet_config.policy.max_step_out <= var.fleet_config.max_step))
    error_message = "fleet_config.policy.max_step_out must be 1..=max_step."
  }

  validation {
    condition = (var.fleet_config.policy == null ? true :
      var.fleet_config.policy.max_step_in >= 1
    && var.fleet_config.policy.max_step_in <= var.fleet_config.max_step)
    error_message = "fleet_config.policy.max_step_in must be 1..=max_step."
  }

  validation {
    condition     = var.fleet_config.policy == null ? true : length(var.fleet_config.policy.schedules) <= 50
    error_message = "fleet_config.policy.schedules: at most 50."
  }

  validation {
    condition = (var.fleet_config.policy == null ? true : alltrue([for s in var.fleet_config.policy.schedules :
      can(regex("^[A-Za-z0-9._-]{1,64}$", s.name))
      && length(s.days) >= 1
      && alltrue([for d in s.days : contains(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], d)])
      && can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", s.from))
      && can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", s.to))
    && s.from != s.to]))
    error_message = "fleet_config.policy.schedules: each needs a name of 1-64 letters, digits or . _ -, at least one day of mon..sun, and from and to as different times HH:MM (00:00-23:59)."
  }

  validation {
    condition = (var.fleet_config.policy == null ? true : alltrue([for s in var.fleet_config.policy.schedules :
    s.min_pairs >= var.fleet_config.min_pairs && s.min_pairs <= var.fleet_config.max_pairs]))
    error_message = "fleet_config.policy.schedules: each min_pairs must be within the fleet's min_pairs and max_pairs."
  }

  # crates/core/src/policy/forecast.rs (PredictiveConfig::validate), rule by rule.
  validation {
    condition = (var.fleet_config.policy == null ? true : (var.fleet_config.policy.predictive == null ? true :
    contains(["forecast_only", "forecast_and_scale"], var.fleet_config.policy.predictive.mode)))
    error_message = "fleet_config.policy.predictive.mode must be forecast_only or forecast_and_scale."
  }

  validation {
    condition = (var.fleet_config.policy == null ? true : (var.fleet_config.policy.predictive == null ? true :
      var.fleet_config.policy.predictive.weeks >= 1
    && var.fleet_config.policy.predictive.weeks <= 8))
    error_message = "fleet_config.policy.predictive.weeks must be 1..=8."
  }

  validation {
    condition = (var.fleet_config.policy == null ? true : (var.fleet_config.policy.predictive == null ? true :
      var.fleet_config.policy.predictive.min_weeks >= 1
    && var.fleet_config.policy.predictive.min_weeks <= var.fleet_config.policy.predictive.weeks))
    error_message = "fleet_config.policy.predictive.min_weeks must be 1..=weeks."
  }

  validation {
    condition = (var.fleet_config.policy == null ? true : (var.fleet_config.policy.predictive == null ? true :
      (var.fleet_config.policy.predictive.target_channels_per_pair == null ? true :
        var.fleet_config.policy.predictive.target_channels_per_pair >= 1
    && var.fleet_config.policy.predictive.target_channels_per_pair <= 100000)))
    error_message = "fleet_config.policy.predictive.target_channels_per_pair must be 1..=100000."
  }

  validation {
    condition = (var.fleet_config.policy == null ? true : (var.fleet_config.policy.predictive == null ? true :
    var.fleet_config.policy.predictive.headroom_sigmas <= 10))
    error_message = "fleet_config.policy.predictive.headroom_sigmas must be 0..=10."
  }

  # crates/core/src/policy/trend.rs (TrendConfig::validate).
  validation {
    condition = (var.fleet_config.policy == null ? true : (var.fleet_config.policy.trend == null ? true :
      var.fleet_config.policy.trend.window_seconds >= 60
    && var.fleet_config.policy.trend.window_seconds <= 3600))
    error_message = "fleet_config.policy.trend.window_seconds must be 60..=3600."
  }

  validation {
    condition = (var.fleet_config.policy == null ? true : (var.fleet_config.policy.trend == null ? true :
    var.fleet_config.policy.trend.noise_sigmas <= 100))
    error_message = "fleet_config.policy.trend.noise_sigmas must be 0..=100."
  }

  validation {
    condition = (var.fleet_config.policy == null ? true : (var.fleet_config.policy.trend == null ? true :
    var.fleet_config.policy.trend.headroom_sigmas <= 10))
    error_message = "fleet_config.policy.trend.headroom_sigmas must be 0..=10."
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

variable "key_administrator_arns" {
  description = "IAM roles (or users) the fleet's KMS key policy lets administer the key (describe, update, tag, alias, schedule its deletion) and encrypt with it. The deploy role (terraform/modules/deploy-access) gets its rights on the key from here alone: its IAM policy grants no key by tag. Principals with IAM rights of their own keep them through the key policy's account statement."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.key_administrator_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$", a))])
    error_message = "key_administrator_arns must be IAM role or user ARNs (no wildcards)."
  }
}

variable "lock_ttl_seconds" {
  description = "How long a scaling lock lives without a heartbeat before it counts as abandoned (PAIRSCALE_LOCK_TTL_SECONDS; the lock function accepts 30..=21600)."
  type        = number
  default     = 7200

  validation {
    condition     = var.lock_ttl_seconds >= 30 && var.lock_ttl_seconds <= 21600 && floor(var.lock_ttl_seconds) == var.lock_ttl_seconds
    error_message = "lock_ttl_seconds must be whole seconds, 30..=21600 (pairscale_core::lock::validate_ttl)."
  }

  # FleetConfig::check_lock_ttl: the lock is renewed once per drain wait and once per build
  # poll, so each interval may be at most half the TTL. (Here rather than on fleet_config, whose
  # validation is probed on its own against FleetConfig.)
  validation {
    condition = (var.fleet_config.drain.check_interval_seconds * 2 <= var.lock_ttl_seconds
    && var.fleet_config.build_poll_seconds * 2 <= var.lock_ttl_seconds)
    error_message = "lock_ttl_seconds must be at least twice fleet_config.drain.check_interval_seconds and twice fleet_config.build_poll_seconds: the lock is renewed once per wait and would expire between renewals."
  }
}

# --- Lambdas -------------------------------------------------------------------------------

variable "lambda_artifacts_dir" {
  description = "Directory holding `cargo lambda build --release --arm64` output: <dir>/pairscale-<fn>/bootstrap.zip for lock, state, drain, build and policy."
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
  default     = { lock = 128, state = 256, drain = 256, build = 128, policy = 128 }

  validation {
    condition     = alltrue([for k, v in var.lambda_memory_size : contains(["lock", "state", "drain", "build", "policy"], k) && v >= 128 && v <= 10240])
    error_message = "Keys must be lock, state, drain, build or policy; values 128-10240."
  }
}

variable "lambda_timeout" {
  description = "Timeout (seconds) per function. drain waits on live calls, so it gets the longest."
  type        = map(number)
  default     = { lock = 10, state = 60, drain = 900, build = 30, policy = 60 }

  validation {
    condition     = alltrue([for k, v in var.lambda_timeout : contains(["lock", "state", "drain", "build", "policy"], k) && v >= 1 && v <= 900])
    error_message = "Keys must be lock, state, drain, build or policy; values 1-900."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency per function. lock is kept tiny (it serialises runs anyway), drain bounds the load on Kamailio and its database, build bounds concurrent CodeBuild runs."
  type        = map(number)
  default     = { lock = 2, state = 10, drain = 10, build = 4, policy = 2 }

  validation {
    condition     = alltrue([for k, v in var.lambda_reserved_concurrency : contains(["lock", "state", "drain", "build", "policy"], k) && v >= 1 && v <= 100])
    error_message = "Keys must be lock, state, drain, build or policy; values 1-100."
  }
}

variable "lambda_vpc_functions" {
  description = "Functions attached to the VPC. drain must be (it talks ESL on TCP 8021, Kamailio JSON-RPC and the dispatcher database); the others call AWS APIs only."
  type        = set(string)
  default     = ["drain"]

  validation {
    condition     = alltrue([for f in var.lambda_vpc_functions : contains(["lock", "state", "drain", "build", "policy"], f)])
    error_message = "lambda_vpc_functions may only name lock, state, drain, build and policy."
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

variable "dispatcher_db_host" {
  description = "Host name or IPv4 address of Kamailio's PostgreSQL (the drain function's PAIRSCALE_DISPATCHER_DB_URL_BASE and the Ansible run's PGHOST)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", var.dispatcher_db_host))
    error_message = "dispatcher_db_host must be a host name or an IPv4 address."
  }
}

variable "dispatcher_db_user" {
  description = "Database user that owns Kamailio's dispatcher table. Goes into postgres://user@host:port/db, so no ':' or '@'."
  type        = string
  default     = "kamailio"

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_.-]{0,62}$", var.dispatcher_db_user))
    error_message = "dispatcher_db_user must be a PostgreSQL role name (letters, digits, _ . -)."
  }
}

variable "dispatcher_db_name" {
  description = "Database holding Kamailio's dispatcher table."
  type        = string
  default     = "kamailio"

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_.-]{0,62}$", var.dispatcher_db_name))
    error_message = "dispatcher_db_name must be a PostgreSQL database name (letters, digits, _ . -)."
  }
}

variable "dispatcher_db_password" {
  description = "Password of dispatcher_db_user, stored as the SecureString <prefix>/<fleet>/dispatcher_db_password (the functions and builds get its name, never the value). Later changes to the parameter value are ignored, so it can be rotated out of band."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.dispatcher_db_password) >= 1
    error_message = "dispatcher_db_password must not be empty."
  }
}

variable "dispatcher_db_sslmode" {
  description = "TLS to the dispatcher database, for the drain function (PAIRSCALE_DISPATCHER_DB_SSLMODE) and the Ansible build (PGSSLMODE): \"verify-full\" (encrypted; the server's certificate must chain to dispatcher_db_ca_bundle, else to the system's root certificates, and name dispatcher_db_host) or \"disable\" (plain text; only for a database on the same host or a test one)."
  type        = string
  default     = "verify-full"

  validation {
    condition     = contains(["disable", "verify-full"], var.dispatcher_db_sslmode)
    error_message = "dispatcher_db_sslmode must be \"disable\" or \"verify-full\" (not require, prefer, allow or verify-ca: none of them checks that the certificate names dispatcher_db_host)."
  }
}

variable "dispatcher_db_ca_bundle" {
  description = "PEM certificates the dispatcher database's certificate must chain to with verify-full, stored as the String parameter <prefix>/<fleet>/dispatcher_db_ca (the drain function's PAIRSCALE_DISPATCHER_DB_CA_PARAM, the Ansible build's PAIRSCALE_DISPATCHER_DB_CA). Unset: the system's root certificates. For RDS or Aurora, download the region's bundle, https://truststore.pki.rds.amazonaws.com/<region>/<region>-bundle.pem, and pass it with file(), e.g. file(\"eu-west-1-bundle.pem\") beside the root; the global bundle is larger than a parameter can hold."
  type        = string
  default     = null

  validation {
    condition     = var.dispatcher_db_ca_bundle == null ? true : strcontains(var.dispatcher_db_ca_bundle, "-----BEGIN CERTIFICATE-----")
    error_message = "dispatcher_db_ca_bundle must be PEM certificates (-----BEGIN CERTIFICATE----- ...), e.g. file() of the RDS region bundle <region>-bundle.pem."
  }

  validation {
    condition     = var.dispatcher_db_ca_bundle == null ? true : length(var.dispatcher_db_ca_bundle) <= 8192
    error_message = "dispatcher_db_ca_bundle must be at most 8192 characters (an Advanced SSM parameter's limit): for RDS, the region's bundle (https://truststore.pki.rds.amazonaws.com/<region>/<region>-bundle.pem), not the global one."
  }

  validation {
    condition     = var.dispatcher_db_ca_bundle == null || var.dispatcher_db_sslmode == "verify-full"
    error_message = "dispatcher_db_ca_bundle is only used with dispatcher_db_sslmode = \"verify-full\": leave it unset with \"disable\"."
  }
}

variable "freeswitch_repo_token" {
  description = "Access token of the FreeSWITCH package repository, stored as the SecureString <prefix>/<fleet>/freeswitch_repo_token for the Ansible run (PAIRSCALE_FREESWITCH_REPO_TOKEN). Later changes to the parameter value are ignored, so it can be rotated out of band."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.freeswitch_repo_token) >= 1
    error_message = "freeswitch_repo_token must not be empty."
  }
}

variable "drain_concurrency" {
  description = "Nodes the drain function visits at once (PAIRSCALE_DRAIN_CONCURRENCY; a Lambda has 1,024 file descriptors)."
  type        = number
  default     = 64

  validation {
    condition     = var.drain_concurrency >= 1 && var.drain_concurrency <= 400 && floor(var.drain_concurrency) == var.drain_concurrency
    error_message = "drain_concurrency must be 1..=400."
  }
}

variable "esl_timeout_ms" {
  description = "Bound on one visit of the drain function to one node's event socket, connect included (PAIRSCALE_ESL_TIMEOUT_MS)."
  type        = number
  default     = 3000

  validation {
    condition     = var.esl_timeout_ms >= 100 && var.esl_timeout_ms <= 60000 && floor(var.esl_timeout_ms) == var.esl_timeout_ms
    error_message = "esl_timeout_ms must be whole milliseconds, 100..=60000."
  }
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
  description = "Build image for the Terraform and Ansible runs (arm64, carrying terraform, the AWS provider mirror, ansible and psql). Null (the default): the image of build-image/Dockerfile in this module's ECR repository (ecr.tf), as the deploy workflow pushes it."
  type        = string
  default     = null
}

variable "build_image_tag" {
  description = "Tag of the build image in the module's ECR repository. Null: the digest of the files under build-image/ (the tag .github/scripts/build-image-tag.sh computes and the deploy workflow pushes)."
  type        = string
  default     = null
}

variable "build_image_keep" {
  description = "How many build images the ECR repository keeps."
  type        = number
  default     = 10

  validation {
    condition     = var.build_image_keep >= 2
    error_message = "build_image_keep must be at least 2 (the image in use and the one before it)."
  }
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

variable "state_table_deletion_protection" {
  description = "Deletion protection on the state table (the lock, journals and pair records). Turn it off only where the fleet is destroyed on purpose (tests, the sandbox)."
  type        = bool
  default     = true
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

variable "sample_every_minutes" {
  description = "Minutes between the drain function's load samples (sample: each active pair's channels, recorded and published as ChannelsPerPair, Channels and CapacityUtilization, which the default alarms and the dashboard read); 0: no schedule, and the default alarms have no data."
  type        = number
  default     = 1
  validation {
    condition     = var.sample_every_minutes >= 0 && var.sample_every_minutes <= 60 && floor(var.sample_every_minutes) == var.sample_every_minutes
    error_message = "sample_every_minutes must be a whole number of minutes, 0-60."
  }
}

variable "policy_every_minutes" {
  description = "Minutes between two evaluations of the fleet's scaling policy (an EventBridge Scheduler schedule invoking the policy function's evaluate). The policy acts only when fleet_config.policy is set or an alarm of alarm_steps is in ALARM."
  type        = number
  default     = 1
  validation {
    condition     = var.policy_every_minutes >= 1 && var.policy_every_minutes <= 60 && floor(var.policy_every_minutes) == var.policy_every_minutes
    error_message = "policy_every_minutes must be a whole number of minutes, 1-60."
  }
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
    # The drain function's `sample` publishes ChannelsPerPair once per active pair every
    # minute: its Average is the fleet's channels per pair, its Maximum the busiest pair's.
    channels-per-pair-high = {
      metric_name         = "ChannelsPerPair"
      comparison_operator = "GreaterThanThreshold"
      threshold           = 400
      action              = "scale_out"
      step                = 1
    }
    channels-per-pair-low = {
      metric_name         = "ChannelsPerPair"
      comparison_operator = "LessThanThreshold"
      threshold           = 100
      evaluation_periods  = 15
      action              = "scale_in"
      step                = 1
    }
    busiest-pair-high = {
      metric_name         = "ChannelsPerPair"
      statistic           = "Maximum"
      comparison_operator = "GreaterThanThreshold"
      threshold           = 600
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
