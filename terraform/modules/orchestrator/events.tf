# Alarms ask for a step: CloudWatch alarm state change into ALARM -> EventBridge rule (one per
# alarm) -> the policy function's evaluate, at once. The evaluation reads every alarm of the
# fleet's alarm_steps as it stands, so an alarm that stays in ALARM is honoured again at each
# scheduled evaluation (level-triggered): a step the first evaluation could not take (a run
# held the lock, a cooldown) is taken by a later one.

resource "aws_cloudwatch_log_group" "esl_client" {
  name              = "/pairscale/${var.fleet}/esl-client"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_cloudwatch_metric_alarm" "scaling" {
  for_each = var.alarms

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = "pairscale ${var.fleet}: ${each.value.action} by ${each.value.step}"
  namespace           = coalesce(each.value.namespace, var.metrics_namespace)
  metric_name         = each.value.metric_name
  statistic           = each.value.statistic
  comparison_operator = each.value.comparison_operator
  threshold           = each.value.threshold
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  dimensions          = { Fleet = var.fleet }
  treat_missing_data  = "notBreaching"
  tags                = local.tags
}

resource "aws_cloudwatch_event_rule" "scaling" {
  for_each = var.alarms

  name        = "${var.name}-${each.key}"
  description = "Evaluate the scaling policy of ${var.fleet} when ${var.name}-${each.key} goes into ALARM (${each.value.action} by ${each.value.step})"
  event_pattern = jsonencode({
    source        = ["aws.cloudwatch"]
    "detail-type" = ["CloudWatch Alarm State Change"]
    resources     = [aws_cloudwatch_metric_alarm.scaling[each.key].arn]
    detail = {
      alarmName = [aws_cloudwatch_metric_alarm.scaling[each.key].alarm_name]
      state     = { value = ["ALARM"] }
    }
  })
  tags = local.tags
}

resource "aws_cloudwatch_event_target" "scaling" {
  for_each = var.alarms

  rule = aws_cloudwatch_event_rule.scaling[each.key].name
  arn  = aws_lambda_function.this["policy"].arn

  input_transformer {
    # The event's own time dates the evaluation (and names the run it may start);
    # <aws.events.event> is EventBridge's whole original event, kept for the record.
    input_paths    = { time = "$.time" }
    input_template = <<-EOT
      {"action": "evaluate", "fleet": ${jsonencode(var.fleet)}, "time": <time>, "alarm": <aws.events.event>}
    EOT
  }
}

resource "aws_lambda_permission" "scaling" {
  for_each = var.alarms

  statement_id  = "EvaluateOnAlarm-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["policy"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.scaling[each.key].arn
}

# The policy, every policy_every_minutes: EventBridge Scheduler, whose target input carries
# the scheduled time (<aws.scheduler.scheduled-time>): a retried delivery of the same
# invocation has the same time, names the same run, and so never starts a second one.
resource "aws_scheduler_schedule" "policy" {
  #checkov:skip=CKV_AWS_297:The schedule's only payload is its target input (the action, the fleet's name and the scheduled time): nothing secret to encrypt with a customer key, and a key would add a grant to the scheduler's role for no confidentiality gained.
  name                = "${var.name}-policy"
  description         = "Evaluate the scaling policy of ${var.fleet} every ${var.policy_every_minutes} minute(s)"
  schedule_expression = var.policy_every_minutes == 1 ? "rate(1 minute)" : "rate(${var.policy_every_minutes} minutes)"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.this["policy"].arn
    role_arn = aws_iam_role.scheduler.arn
    input = jsonencode({
      action = "evaluate"
      fleet  = var.fleet
      time   = "<aws.scheduler.scheduled-time>"
    })
    retry_policy {
      # A decision older than a few minutes is better taken again from fresh inputs by the
      # next scheduled evaluation.
      maximum_event_age_in_seconds = 300
      maximum_retry_attempts       = 2
    }
  }
}

# The drain function's scheduled actions, each an EventBridge rule:
# - `sample`, every sample_every_minutes: each active pair's channels, recorded on its record
#   and published as ChannelsPerPair, Channels and CapacityUtilization, the figures the
#   default alarms and the dashboard read;
# - `measure`, every canary.measure_every_minutes with the canary on: canary calls on a sample
#   of the active nodes and the operator's metric, recorded on the fleet's bookkeeping and
#   published as CallQualityMos, so `pairscale status` and the dashboard always have a recent
#   figure, not only the one taken before the last scale-in.
locals {
  measure_every_minutes = var.fleet_config.canary.enabled ? var.fleet_config.canary.measure_every_minutes : 0
  drain_schedules = { for k, v in {
    sample  = { minutes = var.sample_every_minutes, action = "sample", what = "Sample the load", statement = "SampleLoadOnSchedule" }
    quality = { minutes = local.measure_every_minutes, action = "measure", what = "Measure the call quality", statement = "MeasureQualityOnSchedule" }
  } : k => v if v.minutes > 0 }
}

resource "aws_cloudwatch_event_rule" "drain_schedule" {
  for_each = local.drain_schedules

  name                = "${var.name}-${each.key}"
  description         = "${each.value.what} of ${var.fleet} every ${each.value.minutes} minute(s)"
  schedule_expression = each.value.minutes == 1 ? "rate(1 minute)" : "rate(${each.value.minutes} minutes)"
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "drain_schedule" {
  for_each = local.drain_schedules

  rule  = aws_cloudwatch_event_rule.drain_schedule[each.key].name
  arn   = aws_lambda_function.this["drain"].arn
  input = jsonencode({ action = each.value.action, fleet = var.fleet })
}

resource "aws_lambda_permission" "drain_schedule" {
  for_each = local.drain_schedules

  statement_id  = each.value.statement
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["drain"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.drain_schedule[each.key].arn
}

# The quality schedule was a counted resource of its own before the sample joined it.
moved {
  from = aws_cloudwatch_event_rule.quality[0]
  to   = aws_cloudwatch_event_rule.drain_schedule["quality"]
}
moved {
  from = aws_cloudwatch_event_target.quality[0]
  to   = aws_cloudwatch_event_target.drain_schedule["quality"]
}
moved {
  from = aws_lambda_permission.quality[0]
  to   = aws_lambda_permission.drain_schedule["quality"]
}

resource "aws_cloudwatch_dashboard" "this" {
  count          = var.enable_dashboard ? 1 : 0
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "Scaling executions"
          region = local.region
          stat   = "Sum"
          period = 300
          metrics = [
            ["AWS/States", "ExecutionsStarted", "StateMachineArn", aws_sfn_state_machine.this.arn, { label = "started" }],
            ["AWS/States", "ExecutionsSucceeded", "StateMachineArn", aws_sfn_state_machine.this.arn, { label = "succeeded" }],
            ["AWS/States", "ExecutionsFailed", "StateMachineArn", aws_sfn_state_machine.this.arn, { label = "failed" }],
            ["AWS/States", "ExecutionsTimedOut", "StateMachineArn", aws_sfn_state_machine.this.arn, { label = "timed out" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title   = "Drains in progress"
          region  = local.region
          stat    = "Maximum"
          period  = 60
          metrics = [[var.metrics_namespace, "DrainsInProgress", "Fleet", var.fleet]]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title  = "Calls per pair"
          region = local.region
          period = 60
          metrics = [
            [var.metrics_namespace, "ChannelsPerPair", "Fleet", var.fleet, { stat = "Average", label = "average" }],
            [var.metrics_namespace, "ChannelsPerPair", "Fleet", var.fleet, { stat = "Maximum", label = "busiest pair" }],
          ]
          annotations = {
            horizontal = [for k, a in var.alarms : { label = k, value = a.threshold } if a.metric_name == "ChannelsPerPair"]
          }
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title   = "Scaling lock age (s)"
          region  = local.region
          stat    = "Maximum"
          period  = 60
          metrics = [[var.metrics_namespace, "LockAgeSeconds", "Fleet", var.fleet]]
          annotations = {
            horizontal = [{ label = "lock TTL", value = var.lock_ttl_seconds }]
          }
        }
      },
    ]
  })
}
