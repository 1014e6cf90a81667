#!/usr/bin/env python3
"""iam_lint.py's TAG_ESCALATION rule must fail on what it claims to catch and pass what is
safe. The policies are written as Terraform renders them. Run with the parliament venv
(tests/requirements/parliament.txt): python test_iam_lint.py"""
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import iam_lint  # noqa: E402

KEYS = "arn:aws:kms:eu-west-1:111122223333:key/*"
SG = "arn:aws:ec2:eu-west-1:111122223333:security-group/*"
HAS_FLEET_TAG = {"Null": {"aws:ResourceTag/pairscale:fleet": "false"}}
REQUEST_HAS_FLEET_TAG = {"Null": {"aws:RequestTag/pairscale:fleet": "false"}}

# terraform/modules/deploy-access/policy.tf before the fix: a key created with the fleet tag,
# then managed while it carries the tag. CreateFleetKey's TagResource on "*" can put the tag
# on any key, which ManageFleetKey then opens.
OLD_CREATE_FLEET_KEY = {
    "Sid": "CreateFleetKey", "Effect": "Allow", "Action": ["kms:TagResource", "kms:CreateKey"],
    "Resource": "*", "Condition": REQUEST_HAS_FLEET_TAG,
}
OLD_MANAGE_FLEET_KEY = {
    "Sid": "ManageFleetKey", "Effect": "Allow",
    "Action": ["kms:UpdateKeyDescription", "kms:UntagResource", "kms:TagResource", "kms:ScheduleKeyDeletion",
               "kms:PutKeyPolicy", "kms:ListResourceTags", "kms:GetKeyRotationStatus", "kms:GetKeyPolicy",
               "kms:GenerateDataKey", "kms:EnableKeyRotation", "kms:Encrypt", "kms:DescribeKey", "kms:Decrypt",
               "kms:CreateGrant", "kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"],
    "Resource": KEYS, "Condition": HAS_FLEET_TAG,
}
FLEET_KEY_ALIASES = {
    "Sid": "FleetKeyAliases", "Effect": "Allow", "Action": ["kms:UpdateAlias", "kms:DeleteAlias", "kms:CreateAlias"],
    "Resource": "arn:aws:kms:eu-west-1:111122223333:alias/pairscale-*",
}

# After: the key is created with the tag (CreateKey's tags need kms:TagResource in IAM, on no
# particular key) and administered through its own key policy; nothing is granted by the tag.
NEW_CREATE_FLEET_KEY = {
    "Sid": "CreateFleetKey", "Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*",
    "Condition": REQUEST_HAS_FLEET_TAG,
}
NEW_TAG_FLEET_KEY_AT_CREATION = {
    "Sid": "TagFleetKeyAtCreation", "Effect": "Allow", "Action": "kms:TagResource", "Resource": KEYS,
    "Condition": REQUEST_HAS_FLEET_TAG,
}

# The deploy role's security group statements: tags only in the call that creates the group,
# retagging only of groups that carry the tag already.
CREATE_FLEET_SECURITY_GROUP = {
    "Sid": "CreateFleetSecurityGroup", "Effect": "Allow", "Action": "ec2:CreateSecurityGroup", "Resource": SG,
    "Condition": REQUEST_HAS_FLEET_TAG,
}
TAG_NEW_SECURITY_GROUP = {
    "Sid": "TagNewSecurityGroup", "Effect": "Allow", "Action": "ec2:CreateTags", "Resource": SG,
    "Condition": {"StringEquals": {"ec2:CreateAction": ["CreateSecurityGroup", "AuthorizeSecurityGroupIngress"]}},
}
MANAGE_FLEET_SECURITY_GROUP = {
    "Sid": "ManageFleetSecurityGroup", "Effect": "Allow",
    "Action": ["ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup", "ec2:CreateTags", "ec2:DeleteTags"],
    "Resource": SG, "Condition": HAS_FLEET_TAG,
}


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def findings(*statements):
    return [(f["sid"], f["writer"], f["service"], f["tag"]) for f in iam_lint.tag_escalations(policy(*statements))]


class TagEscalation(unittest.TestCase):
    def test_old_deploy_key_statements_escalate(self):
        self.assertEqual(findings(OLD_CREATE_FLEET_KEY, OLD_MANAGE_FLEET_KEY, FLEET_KEY_ALIASES),
                         [("ManageFleetKey", "CreateFleetKey", "kms", "pairscale:fleet")])

    def test_new_deploy_key_statements_do_not(self):
        self.assertEqual(findings(NEW_CREATE_FLEET_KEY, NEW_TAG_FLEET_KEY_AT_CREATION, FLEET_KEY_ALIASES), [])

    def test_a_grant_by_tag_beside_the_new_tagging_escalates_again(self):
        # Putting ManageFleetKey back next to the new statements reopens the hole.
        self.assertEqual(findings(NEW_CREATE_FLEET_KEY, NEW_TAG_FLEET_KEY_AT_CREATION, OLD_MANAGE_FLEET_KEY),
                         [("ManageFleetKey", "TagFleetKeyAtCreation", "kms", "pairscale:fleet")])

    def test_tags_written_only_at_creation_or_on_tagged_resources_pass(self):
        self.assertEqual(findings(CREATE_FLEET_SECURITY_GROUP, TAG_NEW_SECURITY_GROUP, MANAGE_FLEET_SECURITY_GROUP), [])

    def test_a_tag_write_outside_creation_escalates(self):
        retag_anything = {"Sid": "Retag", "Effect": "Allow", "Action": "ec2:CreateTags", "Resource": SG}
        self.assertEqual(findings(MANAGE_FLEET_SECURITY_GROUP, retag_anything),
                         [("ManageFleetSecurityGroup", "Retag", "ec2", "pairscale:fleet")])

    def test_wildcards_are_expanded(self):
        everything = {"Sid": "Everything", "Effect": "Allow", "Action": "kms:*", "Resource": KEYS}
        self.assertEqual(findings(OLD_MANAGE_FLEET_KEY, everything),
                         [("ManageFleetKey", "Everything", "kms", "pairscale:fleet")])

    def test_a_writer_kept_from_the_tag_key_passes(self):
        other_keys = {"Sid": "OtherKeys", "Effect": "Allow", "Action": "kms:TagResource", "Resource": KEYS,
                      "Condition": {"ForAllValues:StringNotLike": {"aws:TagKeys": ["pairscale:*"]},
                                    "Null": {"aws:TagKeys": "false"}}}
        self.assertEqual(findings(OLD_MANAGE_FLEET_KEY, other_keys), [])

    def test_a_deny_on_untagged_resources_guards_the_writer(self):
        deny = {"Sid": "NoTagOfForeignKeys", "Effect": "Deny", "Action": "kms:TagResource", "Resource": "*",
                "Condition": {"Null": {"aws:ResourceTag/pairscale:fleet": "true"}}}
        self.assertEqual(findings(OLD_CREATE_FLEET_KEY, OLD_MANAGE_FLEET_KEY, deny), [])

    def test_a_negated_tag_condition_is_no_gate(self):
        not_other_fleet = dict(OLD_MANAGE_FLEET_KEY, Condition={
            "StringNotEquals": {"aws:ResourceTag/pairscale:fleet": "other"}})
        self.assertEqual(findings(OLD_CREATE_FLEET_KEY, not_other_fleet), [])

    def test_disjoint_resources_pass(self):
        instances = {"Sid": "TagInstances", "Effect": "Allow", "Action": "ec2:CreateTags",
                     "Resource": "arn:aws:ec2:eu-west-1:111122223333:instance/*"}
        self.assertEqual(findings(MANAGE_FLEET_SECURITY_GROUP, instances), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
