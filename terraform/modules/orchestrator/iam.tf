# Every permission the orchestrator grants lives in this file. Per function, the statements
# in local.lambda_policy_statements are exactly the AWS calls that binary can make (every SDK
# call in crates/aws/src is wrapped in classify("service:Action", ..) naming its IAM action);
# tests/checks/62-terraform-contract.sh holds them against the code, in both directions.
# Wherever a statement says resources = ["*"], the comment beside it names why: the action
# has no resource-level permissions.

locals {
  table_arn = aws_dynamodb_table.state.arn

  lambda_policy_statements = {
    # DynamoLockStore (every LockStore method) and Executions::status.
    lock = [
      {
        # Acquire, heartbeat, release and force-release are conditional UpdateItems of the
        # lock item; GetItem reads it back after a failed condition. A release first marks the
        # run's journal finished in a transaction with a check of the lock item: UpdateItem
        # and ConditionCheckItem (TransactWriteItems has no action of its own).
        sid       = "LockItem"
        actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]
        resources = [local.table_arn]
        condition = []
      },
      {
        # Taking over a lock whose holder's execution has ended.
        sid       = "LockHolderExecution"
        actions   = ["states:DescribeExecution"]
        resources = local.state_machine_execution_arns
        condition = []
      },
    ]

    # AwsFleetState (FleetParams + FleetTable) and AwsInventory (Instances + Services).
    state = [
      {
        # TransactWriteItems has no IAM action of its own: DynamoDB authorises each item of a
        # transaction with the action it performs (PutItem, UpdateItem, DeleteItem) and
        # ConditionCheckItem for a condition-only item, so those are what is listed.
        sid = "FleetState"
        actions = [
          "dynamodb:GetItem",
          "dynamodb:UpdateItem",
          "dynamodb:Query",
          "dynamodb:PutItem",
          "dynamodb:DeleteItem",
          "dynamodb:ConditionCheckItem",
        ]
        resources = [local.table_arn]
        condition = []
      },
      {
        sid       = "ReadFleetParameters"
        actions   = ["ssm:GetParameter"]
        resources = [aws_ssm_parameter.pair_count.arn, aws_ssm_parameter.config.arn]
        condition = []
      },
      {
        sid       = "WritePairCount"
        actions   = ["ssm:PutParameter"]
        resources = [aws_ssm_parameter.pair_count.arn]
        condition = []
      },
      {
        # ec2:DescribeInstances supports no resource-level permissions or tag conditions: AWS
        # only accepts "*". The function filters by the pairscale:fleet tag in the request.
        sid       = "FindNodes"
        actions   = ["ec2:DescribeInstances"]
        resources = ["*"]
        condition = []
      },
      {
        # ListServices is authorised against "*" and narrowed with the ecs:cluster condition.
        sid       = "ListClusterServices"
        actions   = ["ecs:ListServices"]
        resources = ["*"]
        condition = [{ test = "ArnEquals", variable = "ecs:cluster", values = [aws_ecs_cluster.this.arn] }]
      },
      {
        sid       = "DescribeClusterServices"
        actions   = ["ecs:DescribeServices"]
        resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:service/${local.ecs_cluster_name}/*"]
        condition = []
      },
    ]

    # FleetParams::secret for the two SecureStrings named in its environment; the rest of
    # its work is the event socket, Kamailio's JSON-RPC and its database (network only),
    # except the scheduled `measure` and `sample`: the fleet's configuration and pair records
    # read, the quality reading written to its bookkeeping item, each pair's load sample to
    # its record, and the operator's MOS metric read.
    drain = [
      {
        sid       = "ReadFleetConfig"
        actions   = ["ssm:GetParameter"]
        resources = [aws_ssm_parameter.config.arn]
        condition = []
      },
      {
        # The fleet's pair records (FleetTable::pairs), and its lock item, read before every
        # action that changes nodes (the fence: DynamoLockStore::get).
        sid       = "ReadPairsAndLock"
        actions   = ["dynamodb:Query", "dynamodb:GetItem"]
        resources = [local.table_arn]
        condition = []
      },
      {
        # The reading and its time on the fleet's bookkeeping item (`measure`), a pair's
        # load sample and its time on the pair's record (`sample`), and no other attribute
        # (dynamodb:Attributes names the key's attributes too).
        sid       = "RecordQualityAndLoad"
        actions   = ["dynamodb:UpdateItem"]
        resources = [local.table_arn]
        condition = [
          { test = "ForAllValues:StringEquals", variable = "dynamodb:Attributes", values = ["pk", "sk", "quality", "quality_at", "last_channels", "last_seen_at"] },
          { test = "StringEqualsIfExists", variable = "dynamodb:ReturnValues", values = ["NONE"] },
        ]
      },
      {
        # GetMetricData has no resource-level permissions: AWS only accepts "*".
        sid       = "ReadOperatorMetric"
        actions   = ["cloudwatch:GetMetricData"]
        resources = ["*"]
        condition = []
      },
      {
        # The two SecureStrings, and the dispatcher database's CA bundle when there is one (a
        # String: no key needed).
        sid       = "Secrets"
        actions   = ["ssm:GetParameter"]
        resources = concat([aws_ssm_parameter.esl_password.arn, aws_ssm_parameter.dispatcher_db_password.arn], aws_ssm_parameter.dispatcher_db_ca[*].arn)
        condition = []
      },
      {
        sid       = "DecryptSecrets"
        actions   = ["kms:Decrypt"]
        resources = [aws_kms_key.this.arn]
        condition = [{ test = "StringEquals", variable = "kms:ViaService", values = ["ssm.${local.region}.amazonaws.com"] }]
      },
    ]

    # CodeBuilds (start, poll, stop) on the fleet's two projects; the pair records
    # (FleetTable::pairs) that the Terraform run's pair set is built from; and each build it
    # starts kept on the run's journal item (FleetTable::note_build), fenced by the lock item.
    build = [
      {
        sid       = "RunFleetBuilds"
        actions   = ["codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:StopBuild"]
        resources = [aws_codebuild_project.terraform.arn, aws_codebuild_project.ansible.arn]
        condition = []
      },
      {
        # The end of a failed build's log (CodeBuilds::log_tail), to tell a transient failure
        # (retried) from a permanent one (undone at once); only the two projects' streams.
        sid       = "ReadFleetBuildLogs"
        actions   = ["logs:GetLogEvents"]
        resources = [for g in aws_cloudwatch_log_group.codebuild : "${g.arn}:log-stream:*"]
        condition = []
      },
      {
        # The pair records, a run's journal (to find the build a step started), and the lock
        # item (who holds it, when a fenced write is refused).
        sid       = "ReadRecordsJournalsAndLock"
        actions   = ["dynamodb:Query", "dynamodb:GetItem"]
        resources = [local.table_arn]
        condition = []
      },
      {
        sid       = "CheckLockBeforeNotingBuild"
        actions   = ["dynamodb:ConditionCheckItem"]
        resources = [local.table_arn]
        condition = []
      },
      {
        # One build_<step> attribute (and the item's expiry) on a run's journal item, and no
        # other attribute: the journal and the records stay the state function's.
        sid       = "NoteBuildOnJournal"
        actions   = ["dynamodb:UpdateItem"]
        resources = [local.table_arn]
        condition = [
          { test = "ForAllValues:StringLike", variable = "dynamodb:Attributes", values = ["pk", "sk", "ttl", "build_*"] },
          { test = "StringEqualsIfExists", variable = "dynamodb:ReturnValues", values = ["NONE"] },
        ]
      },
    ]

    # AwsFleetState (the count, the configuration, the pair records and their samples),
    # DynamoLockStore::get, DynamoPolicyStore (the policy item), MachineRuns (the fleet's
    # state machine) and CloudWatchSignals (its alarms and its Channels history).
    policy = [
      {
        sid       = "ReadFleetParameters"
        actions   = ["ssm:GetParameter"]
        resources = [aws_ssm_parameter.pair_count.arn, aws_ssm_parameter.config.arn]
        condition = []
      },
      {
        # The pair records (their samples), the lock item and the policy item.
        sid       = "ReadPairsLockAndPolicy"
        actions   = ["dynamodb:Query", "dynamodb:GetItem"]
        resources = [local.table_arn]
        condition = []
      },
      {
        # The policy item's own attributes and no other (dynamodb:Attributes names the key's
        # attributes too): the pair records and the lock stay the other functions'.
        sid       = "WritePolicyItem"
        actions   = ["dynamodb:UpdateItem"]
        resources = [local.table_arn]
        condition = [
          { test = "ForAllValues:StringEquals", variable = "dynamodb:Attributes", values = ["pk", "sk", "recent", "version", "updated_at", "suspended"] },
          { test = "StringEqualsIfExists", variable = "dynamodb:ReturnValues", values = ["NONE"] },
        ]
      },
      {
        # Start a run, see whether one is running, list the succeeded ones.
        sid       = "StartAndListRuns"
        actions   = ["states:StartExecution", "states:ListExecutions"]
        resources = [local.state_machine_arn]
        condition = []
      },
      {
        # A succeeded run's output and times: the measured time to capacity.
        sid       = "ReadRuns"
        actions   = ["states:DescribeExecution"]
        resources = local.state_machine_execution_arns
        condition = []
      },
      {
        # The fleet's alarms (alarm_steps), by name.
        sid     = "ReadFleetAlarms"
        actions = ["cloudwatch:DescribeAlarms"]
        resources = length(local.alarm_steps) > 0 ? [
          for n in keys(local.alarm_steps) : "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${n}"
        ] : ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${var.name}-*"]
        condition = []
      },
      {
        # GetMetricData has no resource-level permissions: AWS only accepts "*".
        sid       = "ReadChannelsHistory"
        actions   = ["cloudwatch:GetMetricData"]
        resources = ["*"]
        condition = []
      },
    ]
  }

  # Added to every function.
  lambda_common_statements = {
    for fn in keys(local.functions) : fn => [
      {
        sid       = "OwnLogGroup"
        actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        resources = ["${aws_cloudwatch_log_group.lambda[fn].arn}:*"]
        condition = []
      },
      {
        # X-Ray trace submission has no resource-level permissions.
        sid       = "Tracing"
        actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
        resources = ["*"]
        condition = []
      },
    ]
  }

  # Added to functions in the VPC: the exact actions of AWSLambdaVPCAccessExecutionRole,
  # without its logs:* part. Lambda creates the ENIs in the caller's name and requires
  # "*" for all of them (the Describe calls have no resource-level permissions and Lambda
  # checks the role with an unscoped simulation at create time).
  lambda_vpc_statements = [
    {
      sid = "VpcNetworkInterfaces"
      actions = [
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
      ]
      resources = ["*"]
      condition = []
    },
  ]

  lambda_statements = {
    for fn in keys(local.functions) : fn => concat(
      local.lambda_policy_statements[fn],
      local.lambda_common_statements[fn],
      contains(local.vpc_functions, fn) ? local.lambda_vpc_statements : [],
    )
  }
}

# --- Lambda roles: one per function ------------------------------------------------------------

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "lambda" {
  for_each           = local.functions
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "lambda" {
  for_each = local.functions

  dynamic "statement" {
    for_each = local.lambda_statements[each.key]
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
      dynamic "condition" {
        for_each = statement.value.condition
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "lambda" {
  for_each = local.functions
  name     = "pairscale-${each.key}"
  role     = aws_iam_role.lambda[each.key].id
  policy   = data.aws_iam_policy_document.lambda[each.key].json
}

# --- State machine role ------------------------------------------------------------------------

data "aws_iam_policy_document" "state_machine_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "state_machine" {
  name               = "${var.name}-state-machine"
  assume_role_policy = data.aws_iam_policy_document.state_machine_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "state_machine" {
  statement {
    # The four the machine's tasks name; the policy function starts the machine, never the
    # other way round.
    sid       = "InvokePairscaleFunctions"
    actions   = ["lambda:InvokeFunction"]
    resources = [for k, f in aws_lambda_function.this : f.arn if k != "policy"]
  }

  statement {
    # Step Functions log delivery: these CloudWatch Logs actions accept only "*" (see the
    # Step Functions developer guide, "IAM policies for logging to CloudWatch Logs").
    sid = "LogDelivery"
    actions = [
      "logs:CreateLogDelivery",
      "logs:GetLogDelivery",
      "logs:UpdateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:DescribeResourcePolicies",
      "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }

  statement {
    # X-Ray has no resource-level permissions for these.
    sid = "Tracing"
    actions = [
      "xray:PutTraceSegments",
      "xray:PutTelemetryRecords",
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "state_machine" {
  name   = "pairscale-state-machine"
  role   = aws_iam_role.state_machine.id
  policy = data.aws_iam_policy_document.state_machine.json
}

# --- EventBridge Scheduler role ------------------------------------------------------------------

# The policy schedule invokes the policy function with this role (the alarm rules invoke it
# through the function's resource policy, aws_lambda_permission.scaling).
data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "EvaluatePolicy"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this["policy"].arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "pairscale-evaluate-policy"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

# --- CodeBuild roles: one per project -----------------------------------------------------------

data "aws_iam_policy_document" "codebuild_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["codebuild.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "codebuild" {
  for_each           = toset(["terraform", "ansible"])
  name               = "${var.name}-build-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.codebuild_assume.json
  tags               = local.tags
}

locals {
  fleet_tag_condition = [{ test = "StringEquals", variable = "aws:ResourceTag/pairscale:fleet", values = [var.fleet] }]
  # ec2:CreateTags only as part of the call that creates the resource (and with the fleet tag):
  # EC2 sets ec2:CreateAction to that call's name when it tags on creation; a CreateTags
  # request of its own has no ec2:CreateAction and matches none of these.
  tag_on_create_condition = {
    for k, calls in {
      RunInstances               = ["RunInstances"]
      CreateSecurityGroup        = ["CreateSecurityGroup"]
      AuthorizeSecurityGroupRule = ["AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"]
      } : k => [
      { test = "StringEquals", variable = "ec2:CreateAction", values = calls },
      { test = "StringEquals", variable = "aws:RequestTag/pairscale:fleet", values = [var.fleet] },
    ]
  }
  ec2_arn = "arn:${local.partition}:ec2:${local.region}:${local.account_id}"
  ecs_arn = "arn:${local.partition}:ecs:${local.region}:${local.account_id}"

  codebuild_common_statements = {
    for p in ["terraform", "ansible"] : p => [
      {
        sid       = "OwnLogGroup"
        actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        resources = ["${aws_cloudwatch_log_group.codebuild[p].arn}:*"]
        condition = []
      },
      {
        sid       = "ReadSource"
        actions   = ["s3:GetObject", "s3:GetObjectVersion"]
        resources = ["${aws_s3_bucket.state.arn}/${var.source_object_key}"]
        condition = []
      },
      {
        sid       = "StateBucketKey"
        actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
        resources = [aws_kms_key.this.arn]
        condition = [{ test = "StringEquals", variable = "kms:ViaService", values = ["s3.${local.region}.amazonaws.com"] }]
      },
    ]
  }

  codebuild_policy_statements = {
    # Terraform plan/apply of the pairs root: its remote state, and the pairs' resources.
    terraform = [
      {
        sid       = "ListStatePrefix"
        actions   = ["s3:ListBucket"]
        resources = [aws_s3_bucket.state.arn]
        condition = [{ test = "StringLike", variable = "s3:prefix", values = [local.tf_state_key] }]
      },
      {
        sid       = "StateObject"
        actions   = ["s3:GetObject", "s3:PutObject"]
        resources = ["${aws_s3_bucket.state.arn}/${local.tf_state_key}"]
        condition = []
      },
      {
        sid       = "StateLock"
        actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
        resources = [aws_dynamodb_table.tf_lock.arn]
        condition = []
      },
      {
        # These EC2 Describe* calls, DeregisterTaskDefinition and DescribeTaskDefinition have
        # no resource-level permissions: AWS accepts only "*".
        sid = "ReadOnlyNoResourceLevel"
        actions = [
          "ec2:DescribeInstances",
          "ec2:DescribeInstanceStatus",
          "ec2:DescribeInstanceTypes",
          "ec2:DescribeInstanceCreditSpecifications",
          "ec2:DescribeVolumes",
          "ec2:DescribeTags",
          "ec2:DescribeImages",
          "ec2:DescribeSubnets",
          "ec2:DescribeVpcs",
          "ec2:DescribeNetworkInterfaces",
          "ec2:DescribeSecurityGroups",
          "ec2:DescribeSecurityGroupRules",
          "ecs:DeregisterTaskDefinition",
          "ecs:DescribeTaskDefinition",
        ]
        resources = ["*"]
        condition = []
      },
      {
        # New instances, their volumes and interfaces must carry the fleet tag.
        sid       = "LaunchTaggedNodes"
        actions   = ["ec2:RunInstances"]
        resources = ["${local.ec2_arn}:instance/*", "${local.ec2_arn}:volume/*", "${local.ec2_arn}:network-interface/*"]
        condition = [{ test = "StringEquals", variable = "aws:RequestTag/pairscale:fleet", values = [var.fleet] }]
      },
      {
        # Tags only as part of the launch (the instance's tags and volume_tags go in
        # RunInstances' TagSpecifications): ec2:CreateAction is set by EC2 for tagging on
        # creation and absent from a CreateTags call of its own, so no existing instance or
        # volume can be given the fleet tag through this statement.
        sid       = "TagNodesAtLaunch"
        actions   = ["ec2:CreateTags"]
        resources = ["${local.ec2_arn}:instance/*", "${local.ec2_arn}:volume/*", "${local.ec2_arn}:network-interface/*"]
        condition = local.tag_on_create_condition["RunInstances"]
      },
      {
        # The other resources RunInstances touches (they exist already and are not tagged
        # by the call).
        sid     = "LaunchFrom"
        actions = ["ec2:RunInstances"]
        resources = [
          "arn:${local.partition}:ec2:${local.region}::image/*",
          "${local.ec2_arn}:subnet/*",
          "${local.ec2_arn}:security-group/*",
        ]
        condition = []
      },
      {
        # The nodes' root volumes are encrypted with the fleet key: EC2 uses it in the
        # caller's name when it launches a node and when it starts a stopped one (the warm
        # pool), through EC2 only, and a grant only for the volume it attaches.
        sid       = "NodeVolumesKey"
        actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"]
        resources = [aws_kms_key.this.arn]
        condition = [{ test = "StringEquals", variable = "kms:ViaService", values = ["ec2.${local.region}.amazonaws.com"] }]
      },
      {
        sid       = "NodeVolumesKeyGrant"
        actions   = ["kms:CreateGrant"]
        resources = [aws_kms_key.this.arn]
        condition = [
          { test = "StringEquals", variable = "kms:ViaService", values = ["ec2.${local.region}.amazonaws.com"] },
          { test = "Bool", variable = "kms:GrantIsForAWSResource", values = ["true"] },
        ]
      },
      {
        sid       = "CreateFleetSecurityGroups"
        actions   = ["ec2:CreateSecurityGroup"]
        resources = ["${local.ec2_arn}:security-group/*"]
        condition = [{ test = "StringEquals", variable = "aws:RequestTag/pairscale:fleet", values = [var.fleet] }]
      },
      {
        sid       = "TagSecurityGroupsAtCreation"
        actions   = ["ec2:CreateTags"]
        resources = ["${local.ec2_arn}:security-group/*"]
        condition = local.tag_on_create_condition["CreateSecurityGroup"]
      },
      {
        # A rule of aws_vpc_security_group_{ingress,egress}_rule is a resource of its own,
        # tagged in its Authorize call (the module tags every rule with the fleet tag).
        sid       = "CreateFleetSecurityGroupRules"
        actions   = ["ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress"]
        resources = ["${local.ec2_arn}:security-group-rule/*"]
        condition = [{ test = "StringEquals", variable = "aws:RequestTag/pairscale:fleet", values = [var.fleet] }]
      },
      {
        sid       = "TagSecurityGroupRulesAtCreation"
        actions   = ["ec2:CreateTags"]
        resources = ["${local.ec2_arn}:security-group-rule/*"]
        condition = local.tag_on_create_condition["AuthorizeSecurityGroupRule"]
      },
      {
        sid       = "SecurityGroupsInVpc"
        actions   = ["ec2:CreateSecurityGroup"]
        resources = ["${local.ec2_arn}:vpc/${var.vpc_id}"]
        condition = []
      },
      {
        # Only what carries this fleet's tag. StopInstances and StartInstances: a node's type
        # changed in place, and a warm pair's node stopped in the pool and started when it is
        # taken (aws_ec2_instance_state); on this fleet's instances only, never another's.
        sid = "ManageFleetResources"
        actions = [
          "ec2:DescribeInstanceAttribute",
          "ec2:TerminateInstances",
          "ec2:StopInstances",
          "ec2:StartInstances",
          "ec2:ModifyInstanceAttribute",
          "ec2:ModifyInstanceMetadataOptions",
          "ec2:MonitorInstances",
          "ec2:UnmonitorInstances",
          "ec2:DeleteSecurityGroup",
          "ec2:AuthorizeSecurityGroupIngress",
          "ec2:AuthorizeSecurityGroupEgress",
          "ec2:RevokeSecurityGroupIngress",
          "ec2:RevokeSecurityGroupEgress",
          "ec2:ModifySecurityGroupRules",
          "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
          "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
          "ec2:ModifyVolume",
        ]
        resources = ["${local.ec2_arn}:instance/*", "${local.ec2_arn}:security-group/*", "${local.ec2_arn}:security-group-rule/*", "${local.ec2_arn}:volume/*"]
        condition = local.fleet_tag_condition
      },
      {
        # Terraform changes the tags of a resource it made when var.tags or the root's
        # default_tags change. Only on resources that carry this fleet's tag already, and
        # never a pairscale:* key (the fleet, pair id and role tags are fixed at creation):
        # nothing can take a foreign resource into the fleet, move a node to another pair or
        # take it out of the fleet. aws:TagKeys must be present (a DeleteTags naming no key
        # would delete them all).
        sid     = "RetagFleetResources"
        actions = ["ec2:CreateTags", "ec2:DeleteTags"]
        resources = [
          "${local.ec2_arn}:instance/*",
          "${local.ec2_arn}:volume/*",
          "${local.ec2_arn}:security-group/*",
          "${local.ec2_arn}:security-group-rule/*",
        ]
        condition = concat(local.fleet_tag_condition, [
          { test = "ForAllValues:StringNotLike", variable = "aws:TagKeys", values = ["pairscale:*"] },
          { test = "Null", variable = "aws:TagKeys", values = ["false"] },
        ])
      },
      {
        sid = "FleetServices"
        actions = [
          "ecs:RegisterTaskDefinition",
          "ecs:CreateService",
          "ecs:UpdateService",
          "ecs:DeleteService",
          "ecs:DescribeServices",
          "ecs:TagResource",
          "ecs:UntagResource",
          "ecs:ListTagsForResource",
        ]
        resources = [
          "${local.ecs_arn}:service/${local.ecs_cluster_name}/*",
          "${local.ecs_arn}:task-definition/${var.name}-*:*",
        ]
        condition = []
      },
      {
        sid       = "DescribeCluster"
        actions   = ["ecs:DescribeClusters"]
        resources = [aws_ecs_cluster.this.arn]
        condition = []
      },
      {
        sid     = "PassPairRoles"
        actions = ["iam:PassRole"]
        resources = [
          aws_iam_role.esl_client_execution.arn,
          aws_iam_role.esl_client_task.arn,
          aws_iam_role.freeswitch.arn,
        ]
        condition = []
      },
    ]

    # Ansible over SSM Session Manager against the fleet's nodes, plus the dispatcher DB.
    ansible = [
      {
        # Inventory (aws_ec2 plugin) and the CodeBuild VPC Describe calls: no resource-level
        # permissions exist for these.
        sid = "InventoryAndVpc"
        actions = [
          "ec2:DescribeInstances",
          "ec2:DescribeNetworkInterfaces",
          "ec2:DescribeSubnets",
          "ec2:DescribeSecurityGroups",
          "ec2:DescribeDhcpOptions",
          "ec2:DescribeVpcs",
        ]
        resources = ["*"]
        condition = []
      },
      {
        # CodeBuild in a VPC: interfaces are created by the service in our name.
        sid       = "BuildNetworkInterfaces"
        actions   = ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"]
        resources = ["*"]
        condition = []
      },
      {
        sid       = "BuildNetworkInterfacePermission"
        actions   = ["ec2:CreateNetworkInterfacePermission"]
        resources = ["${local.ec2_arn}:network-interface/*"]
        condition = [
          { test = "StringEquals", variable = "ec2:AuthorizedService", values = ["codebuild.amazonaws.com"] },
          { test = "ArnEquals", variable = "ec2:Subnet", values = [for s in var.lambda_subnet_ids : "${local.ec2_arn}:subnet/${s}"] },
        ]
      },
      {
        sid       = "SessionsToFleetNodes"
        actions   = ["ssm:StartSession"]
        resources = ["${local.ec2_arn}:instance/*"]
        condition = [{ test = "StringEquals", variable = "ssm:resourceTag/pairscale:fleet", values = [var.fleet] }]
      },
      {
        sid       = "SessionDocument"
        actions   = ["ssm:StartSession"]
        resources = ["arn:${local.partition}:ssm:${local.region}:${local.account_id}:document/SSM-SessionManagerRunShell"]
        condition = []
      },
      {
        sid       = "OwnSessions"
        actions   = ["ssm:TerminateSession"]
        resources = ["arn:${local.partition}:ssm:${local.region}:${local.account_id}:session/$${aws:userid}-*"]
        condition = []
      },
      {
        # The aws_ssm connection plugin finds the bucket's region with HeadBucket
        # (plugin_utils/ssm/s3clientmanager.py), which S3 authorises as s3:ListBucket; it
        # lists nothing, and a listing is held to its prefix.
        sid       = "SessionBucketRegion"
        actions   = ["s3:ListBucket"]
        resources = [aws_s3_bucket.state.arn]
        condition = [{ test = "StringLikeIfExists", variable = "s3:prefix", values = ["${local.ansible_ssm_s3_prefix}/*"] }]
      },
      {
        # The aws_ssm connection plugin moves files through this prefix.
        sid       = "SessionFileTransfer"
        actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        resources = ["${aws_s3_bucket.state.arn}/${local.ansible_ssm_s3_prefix}/*"]
        condition = []
      },
      {
        # CodeBuild resolves PARAMETER_STORE environment variables with GetParameters: the
        # three SecureStrings, and the dispatcher database's CA bundle when there is one.
        sid       = "BuildSecrets"
        actions   = ["ssm:GetParameters"]
        resources = concat([aws_ssm_parameter.esl_password.arn, aws_ssm_parameter.dispatcher_db_password.arn, aws_ssm_parameter.freeswitch_repo_token.arn], aws_ssm_parameter.dispatcher_db_ca[*].arn)
        condition = []
      },
      {
        sid       = "DecryptBuildSecrets"
        actions   = ["kms:Decrypt"]
        resources = [aws_kms_key.this.arn]
        condition = [{ test = "StringEquals", variable = "kms:ViaService", values = ["ssm.${local.region}.amazonaws.com"] }]
      },
    ]
  }
}

data "aws_iam_policy_document" "codebuild" {
  for_each = toset(["terraform", "ansible"])

  dynamic "statement" {
    for_each = concat(local.codebuild_policy_statements[each.key], local.codebuild_common_statements[each.key])
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
      dynamic "condition" {
        for_each = statement.value.condition
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "codebuild" {
  for_each = toset(["terraform", "ansible"])
  name     = "pairscale-build-${each.key}"
  role     = aws_iam_role.codebuild[each.key].id
  policy   = data.aws_iam_policy_document.codebuild[each.key].json
}

# --- Roles the pairs use (created here so the Terraform build only needs iam:PassRole) ----------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "esl_client_execution" {
  name               = "${var.name}-esl-client-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "esl_client_execution" {
  statement {
    sid       = "EslClientLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.esl_client.arn}:*"]
  }

  statement {
    sid       = "EslPasswordSecret"
    actions   = ["ssm:GetParameters"]
    resources = [aws_ssm_parameter.esl_password.arn]
  }

  statement {
    sid       = "DecryptEslPassword"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${local.region}.amazonaws.com"]
    }
  }

  dynamic "statement" {
    for_each = length(var.esl_client_image_repository_arns) > 0 ? [1] : []
    content {
      sid       = "PullImage"
      actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
      resources = var.esl_client_image_repository_arns
    }
  }

  dynamic "statement" {
    # GetAuthorizationToken has no resource-level permissions.
    for_each = length(var.esl_client_image_repository_arns) > 0 ? [1] : []
    content {
      sid       = "RegistryLogin"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "esl_client_execution" {
  name   = "pairscale-esl-client-execution"
  role   = aws_iam_role.esl_client_execution.id
  policy = data.aws_iam_policy_document.esl_client_execution.json
}

resource "aws_iam_role" "esl_client_task" {
  name               = "${var.name}-esl-client"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "esl_client_task" {
  statement {
    # PutMetricData has no resource-level permissions; the namespace condition narrows it.
    sid       = "PublishPairMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace]
    }
  }
}

resource "aws_iam_role_policy" "esl_client_task" {
  name   = "pairscale-esl-client"
  role   = aws_iam_role.esl_client_task.id
  policy = data.aws_iam_policy_document.esl_client_task.json
}

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "freeswitch" {
  name               = "${var.name}-freeswitch"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
  tags               = local.tags
}

# Session Manager is how the Ansible build reaches nodes (no SSH keys, no inbound port).
# These are the agent's calls for sessions only; AmazonSSMManagedInstanceCore would add Run
# Command, inventory and patching that nothing here uses.
data "aws_iam_policy_document" "freeswitch" {
  statement {
    sid       = "RegisterWithSsm"
    actions   = ["ssm:UpdateInstanceInformation"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/pairscale:fleet"
      values   = [var.fleet]
    }
  }

  statement {
    # The session channel actions have no resource-level permissions.
    sid = "SessionChannels"
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "freeswitch" {
  name   = "pairscale-freeswitch-sessions"
  role   = aws_iam_role.freeswitch.id
  policy = data.aws_iam_policy_document.freeswitch.json
}

resource "aws_iam_instance_profile" "freeswitch" {
  name = "${var.name}-freeswitch"
  role = aws_iam_role.freeswitch.name
  tags = local.tags
}
