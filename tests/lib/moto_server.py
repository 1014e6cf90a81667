"""moto_server, with one fix to moto 5.2's policy evaluation that pairscale meets.

moto fills in the values of almost no condition keys (aws:SecureTransport, aws:SourceIp, ...),
and it ignores a condition whose key has no value: the statement applies as if the condition
held. IAM does the opposite: a condition on a key absent from the request context is false
(except for the Null operator and ...IfExists operators), so such a Deny statement does not
apply. The orchestrator module's state bucket denies `aws:SecureTransport = false`; moto
applied that Deny to every request, so the Terraform build's S3 state backend could neither
read nor write its state. Here a Deny statement with a condition on a key moto has no value
for is neutral. Everything else is moto as released.

    python moto_server.py [moto_server's arguments]
"""

import sys

from moto.iam.access_control import IAMPolicyStatement, PermissionResult

_is_action_permitted = IAMPolicyStatement.is_action_permitted


def _condition_on_absent_key(statement, incoming):
    for operator, values in (statement.get("Condition") or {}).items():
        if operator == "Null" or operator.endswith("IfExists"):
            continue
        if any(key not in (incoming or {}) for key in values):
            return True
    return False


def is_action_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):
    result = _is_action_permitted(self, action, resource, principal, incoming_condition_values)
    if (
        result == PermissionResult.DENIED
        and self._statement.get("Effect") == "Deny"
        and _condition_on_absent_key(self._statement, incoming_condition_values)
    ):
        return PermissionResult.NEUTRAL
    return result


IAMPolicyStatement.is_action_permitted = is_action_permitted

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
