# The deploy role's permissions, one statement per thing deploy.yml does. Resources are named
# by the orchestrators' name prefix (var.name_prefix); what AWS cannot scope by resource (the
# Describe/List calls of a Terraform refresh, ECR's login, KMS key creation) is listed apart.
# The fleet's KMS key is the one resource managed through its own policy rather than this one
# (below: why).

data "aws_iam_policy_document" "deploy" {
  #checkov:skip=CKV_AWS_356:Three statements name "*": Describe (list and describe calls of a refresh, of which only logs:DescribeLogGroups could name a resource, and then every log group of the account), CreateFleetKey (a key has no ARN before CreateKey; the statement requires the fleet tag on the request) and EcrLogin (GetAuthorizationToken takes no resource).
  # terraform init/plan/apply: the orchestrator root's state and its lock.
  statement {
    sid       = "TerraformStateList"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${local.partition}:s3:::${var.tf_state_bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.tf_state_key_prefix}*"]
    }
  }
  statement {
    sid       = "TerraformStateObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["arn:${local.partition}:s3:::${var.tf_state_bucket}/${var.tf_state_key_prefix}*"]
  }
  statement {
    sid       = "TerraformStateLock"
    actions   = ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
    resources = ["arn:${format(local.arn, "dynamodb")}:table/${var.tf_lock_table}"]
  }

  # Reads a refresh makes that AWS does not scope by resource. secretsmanager:GetRandomPassword
  # is the orchestrator's aws_secretsmanager_random_password (the ESL password when none is
  # given), read at every plan; it touches no secret.
  statement {
    sid = "Describe"
    actions = [
      "sts:GetCallerIdentity", "secretsmanager:GetRandomPassword",
      "ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
      "ec2:DescribeNetworkInterfaces", "ec2:DescribeAccountAttributes",
      "kms:ListAliases", "logs:DescribeLogGroups", "ssm:DescribeParameters",
      "states:ListStateMachines", "lambda:ListFunctions", "codebuild:ListProjects",
      "cloudwatch:DescribeAlarms", "events:ListRules", "ecs:ListClusters",
    ]
    resources = ["*"]
  }

  # The orchestrator module's resources, by name.
  statement {
    sid     = "OrchestratorResources"
    actions = ["lambda:*", "states:*", "dynamodb:*", "codebuild:*", "events:*", "scheduler:*", "ecs:*", "ecr:*"]
    resources = [
      "arn:${format(local.arn, "lambda")}:function:${local.p}*",
      "arn:${format(local.arn, "states")}:stateMachine:${local.p}*",
      "arn:${format(local.arn, "states")}:execution:${local.p}*",
      "arn:${format(local.arn, "dynamodb")}:table/${local.p}*",
      "arn:${format(local.arn, "codebuild")}:project/${local.p}*",
      "arn:${format(local.arn, "events")}:rule/${local.p}*",
      "arn:${format(local.arn, "scheduler")}:schedule/default/${local.p}*",
      "arn:${format(local.arn, "ecs")}:cluster/${local.p}*",
      "arn:${format(local.arn, "ecr")}:repository/${local.p}*",
    ]
  }
  statement {
    sid       = "OrchestratorBuckets"
    actions   = ["s3:*"]
    resources = ["arn:${local.partition}:s3:::${local.p}*"]
  }
  statement {
    sid     = "OrchestratorLogsAlarmsParameters"
    actions = ["logs:*", "cloudwatch:*", "ssm:*"]
    resources = [
      "arn:${format(local.arn, "logs")}:log-group:/aws/lambda/${local.p}*",
      "arn:${format(local.arn, "logs")}:log-group:/aws/codebuild/${local.p}*",
      "arn:${format(local.arn, "logs")}:log-group:/aws/vendedlogs/states/${local.p}*",
      "arn:${format(local.arn, "logs")}:log-group:${var.ssm_prefix}/*",
      "arn:${format(local.arn, "cloudwatch")}:alarm:${local.p}*",
      "arn:${local.partition}:cloudwatch::${local.account_id}:dashboard/${local.p}*",
      "arn:${format(local.arn, "ssm")}:parameter${var.ssm_prefix}/*",
    ]
  }
  statement {
    sid = "OrchestratorRoles"
    actions = [
      "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy",
      "iam:TagRole", "iam:UntagRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
      "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:ListInstanceProfilesForRole",
      "iam:CreateInstanceProfile", "iam:DeleteInstanceProfile", "iam:GetInstanceProfile",
      "iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile",
      "iam:TagInstanceProfile", "iam:UntagInstanceProfile",
    ]
    resources = [
      "arn:${local.partition}:iam::${local.account_id}:role/${local.p}*",
      "arn:${local.partition}:iam::${local.account_id}:instance-profile/${local.p}*",
    ]
  }
  statement {
    sid       = "PassOrchestratorRoles"
    actions   = ["iam:PassRole"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/${local.p}*"]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["lambda.amazonaws.com", "states.amazonaws.com", "codebuild.amazonaws.com", "events.amazonaws.com", "scheduler.amazonaws.com", "ecs-tasks.amazonaws.com", "ec2.amazonaws.com"]
    }
  }

  # The module's KMS key. The role may create a key carrying the fleet tag; what it may then
  # do to the key comes from that key's own policy, which the orchestrator module writes at
  # creation and which names this role (the module's key_administrator_arns), never from a tag.
  #
  # Why not a grant by the key's tag (aws:ResourceTag/pairscale:fleet), as for the security
  # group below: the Tags of CreateKey need kms:TagResource in an IAM policy, covering every
  # key of the account and region (the new key's own policy is not enough: AWS KMS Developer
  # Guide, "Controlling access to tags", "Allow a user to create KMS keys", "Managing KMS key
  # tags with API operations"). aws:ResourceTag holds only for a key that exists ("Use tags to
  # control access to KMS keys"), and KMS has no condition key like EC2's ec2:CreateAction that
  # tells the tagging in CreateKey from a TagResource call of its own. So that TagResource can
  # tag any key whose policy lets IAM policies decide, and a grant by tag would reach every key
  # the role chose to tag: it could adopt a key it did not create, rewrite its policy, decrypt
  # with it or delete it. Nor can a Deny close it: a Deny of TagResource on keys without the
  # tag matches the tagging in CreateKey too (the new key has no tags yet), and the
  # orchestrator could no longer create its key.
  #
  # What is left: the role can add tags, the fleet tag among them, to a key whose policy
  # delegates to IAM. Nothing grants anything by a key's tags, so that opens no key to anyone;
  # it cannot remove tags or do anything else to such a key. tests/terraform/iam_lint.py
  # (TAG_ESCALATION) fails on a grant by a tag beside a statement that can write the tag.
  statement {
    sid       = "CreateFleetKey"
    actions   = ["kms:CreateKey"]
    resources = ["*"]
    condition {
      test     = "Null"
      variable = "aws:RequestTag/pairscale:fleet"
      values   = ["false"]
    }
  }
  # Every key of the account and region: what the tags of CreateKey need (the new key's ARN is
  # not known before the call).
  statement {
    sid       = "TagFleetKeyAtCreation"
    actions   = ["kms:TagResource"]
    resources = ["arn:${format(local.arn, "kms")}:key/*"]
    condition {
      test     = "Null"
      variable = "aws:RequestTag/pairscale:fleet"
      values   = ["false"]
    }
  }
  statement {
    sid       = "FleetKeyAliases"
    actions   = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
    resources = ["arn:${format(local.arn, "kms")}:alias/${local.p}*"]
  }

  # The functions' security group: created tagged with its fleet, then managed only while so tagged.
  statement {
    sid       = "CreateFleetSecurityGroup"
    actions   = ["ec2:CreateSecurityGroup"]
    resources = ["arn:${format(local.arn, "ec2")}:security-group/*"]
    condition {
      test     = "Null"
      variable = "aws:RequestTag/pairscale:fleet"
      values   = ["false"]
    }
  }
  statement {
    sid       = "CreateSecurityGroupInVpc"
    actions   = ["ec2:CreateSecurityGroup"]
    resources = ["arn:${format(local.arn, "ec2")}:vpc/*"]
  }
  statement {
    sid       = "TagNewSecurityGroup"
    actions   = ["ec2:CreateTags"]
    resources = ["arn:${format(local.arn, "ec2")}:security-group/*", "arn:${format(local.arn, "ec2")}:security-group-rule/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateSecurityGroup", "AuthorizeSecurityGroupEgress", "AuthorizeSecurityGroupIngress"]
    }
  }
  statement {
    sid = "ManageFleetSecurityGroup"
    actions = [
      "ec2:DeleteSecurityGroup", "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupEgress",
      "ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:CreateTags", "ec2:DeleteTags",
      "ec2:ModifySecurityGroupRules", "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
    ]
    resources = ["arn:${format(local.arn, "ec2")}:security-group/*", "arn:${format(local.arn, "ec2")}:security-group-rule/*"]
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/pairscale:fleet"
      values   = ["false"]
    }
  }

  # The build image: ECR's login is account-wide; the push is to the fleets' repositories only
  # (OrchestratorResources).
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
}
