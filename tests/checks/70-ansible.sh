# Ansible: syntax check of every playbook, ansible-lint (offline), the EC2 inventory against
# the emulator, and the dispatcher role for real against the test Kamailio + PostgreSQL
# (tests/setup/30-kamailio.sh): check mode first (must change nothing), then every action
# twice, the second run of each reporting changed=0.

venv ansible "$PAIRSCALE_ROOT/tests/requirements/ansible.txt"
ps_ans_bin=$VENV_BIN
export ANSIBLE_CONFIG="$PAIRSCALE_ROOT/ansible/ansible.cfg" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
export ANSIBLE_HOME="$PS_WORK/ansible-home" ANSIBLE_LOCAL_TEMP="$PS_WORK/ansible-tmp"
export ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_DEPRECATION_WARNINGS=0

ps_ans_syntax() {
  local pb rc=0
  for pb in "$PAIRSCALE_ROOT"/ansible/playbooks/*.yml "$PAIRSCALE_ROOT"/tests/fixtures/ansible/*.yml; do
    "$ps_ans_bin/ansible-playbook" --syntax-check -i localhost, -e pairscale_fleet=test \
      -e '{"pairscale_pair_ids": []}' "$pb" > "$PS_WORK/ansible-syntax.log" 2>&1 \
      || { echo "syntax check failed: $pb"; cat "$PS_WORK/ansible-syntax.log"; rc=1; }
  done
  return $rc
}

ps_ans_lint() {
  # ansible-lint runs ansible-playbook and friends by name: the venv goes first on its PATH only.
  (cd "$PAIRSCALE_ROOT" && PATH="$ps_ans_bin:$PATH" "$ps_ans_bin/ansible-lint" --offline --nocolor -q \
    -c "$PAIRSCALE_ROOT/ansible/.ansible-lint" ansible tests/fixtures/ansible)
}

# Two nodes of fleet "test", one of another fleet: the inventory must group exactly the two.
ps_ans_inventory() {
  local py="$PS_CACHE/venv-moto/bin/python" ids rc=0
  ids=$("$py" - <<'PY'
import boto3
ec2 = boto3.client("ec2")
ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
ids = []
for fleet, pair in (("test", "pair-0001"), ("test", "pair-0002"), ("other", "pair-0001")):
    r = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "pairscale:fleet", "Value": fleet}, {"Key": "pairscale:pair-id", "Value": pair},
            {"Key": "pairscale:role", "Value": "freeswitch"}]}])
    ids.append(r["Instances"][0]["InstanceId"])
print(" ".join(ids))
PY
  ) || return 1
  PAIRSCALE_FLEET=test "$ps_ans_bin/ansible-inventory" -i "$PAIRSCALE_ROOT/ansible/inventory/aws_ec2.yml" \
    --list > "$PS_WORK/inventory.json" 2> "$PS_WORK/inventory.err" || { cat "$PS_WORK/inventory.err"; rc=1; }
  if [ $rc = 0 ]; then
    "$py" - "$PS_WORK/inventory.json" <<'PY' || rc=1
import json, sys
inv = json.load(open(sys.argv[1]))
# ansible-inventory marks untrusted strings as {"__ansible_unsafe": "..."}.
plain = lambda v: plain(next(iter(v.values()))) if isinstance(v, dict) and len(v) == 1 else v
hosts = inv.get("fleet_test", {}).get("hosts", [])
hv = inv["_meta"]["hostvars"]
pairs = sorted(str(plain(hv[h]["pairscale_pair_id"])) for h in hosts)
print(f"inventory: fleet_test = {pairs}, groups = {sorted(k for k in inv if k != '_meta')}")
ok = pairs == ["pair-0001", "pair-0002"] and "fleet_other" not in inv
ok = ok and all(str(plain(hv[h]["ansible_host"])).startswith("i-") for h in hosts)
sys.exit(0 if ok else 1)
PY
  fi
  "$py" -c 'import boto3,sys; boto3.client("ec2").terminate_instances(InstanceIds=sys.argv[1:])' $ids
  return $rc
}

ps_ans_psql() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$PAIRSCALE_TEST_PG_URL" -c "$1"; }

# ps_ans_dispatcher_run ACTION [ansible-playbook args...]: prints the PLAY RECAP's changed count.
ps_ans_dispatcher_run() {
  local action=$1; shift
  "$ps_ans_bin/ansible-playbook" -i localhost, -e "dispatcher_action=$action" "$@" \
    "$PAIRSCALE_ROOT/tests/fixtures/ansible/dispatcher.yml" > "$PS_WORK/dispatcher-$action.log" 2>&1 \
    || { cat "$PS_WORK/dispatcher-$action.log" >&2; return 1; }
  sed -n 's/^localhost *: .*changed=\([0-9]*\).*/\1/p' "$PS_WORK/dispatcher-$action.log"
}

ps_ans_dispatcher() {
  local action first second rows expect_rows expect_disabled
  ps_ans_psql "DELETE FROM dispatcher WHERE setid = 7" || return 1

  second=$(ps_ans_dispatcher_run register --check) || return 1
  rows=$(ps_ans_psql "SELECT count(*) FROM dispatcher WHERE setid = 7")
  [ "$rows" = 0 ] || { echo "check mode wrote $rows row(s)"; return 1; }
  echo "check mode: no rows written"

  for action in register disable enable deregister; do
    first=$(ps_ans_dispatcher_run "$action") || return 1
    second=$(ps_ans_dispatcher_run "$action") || return 1
    case $action in
      register) expect_rows=2 expect_disabled=0 ;;
      disable) expect_rows=2 expect_disabled=2 ;;
      enable) expect_rows=2 expect_disabled=0 ;;
      deregister) expect_rows=0 expect_disabled=0 ;;
    esac
    rows=$(ps_ans_psql "SELECT count(*) FROM dispatcher WHERE setid = 7")
    disabled=$(ps_ans_psql "SELECT count(*) FROM dispatcher WHERE setid = 7 AND flags & 4 <> 0")
    echo "dispatcher $action: changed=$first then changed=$second; rows=$rows disabled=$disabled"
    [ "$first" -ge 1 ] || { echo "first $action changed nothing"; return 1; }
    [ "$second" = 0 ] || { echo "second $action was not idempotent (changed=$second)"; return 1; }
    [ "$rows" = "$expect_rows" ] && [ "$disabled" = "$expect_disabled" ] \
      || { echo "expected rows=$expect_rows disabled=$expect_disabled"; return 1; }
    if [ "$action" = register ]; then
      # Kamailio reloaded: its in-memory list now has set 7.
      curl -s -m 5 -X POST -H 'Content-Type: application/json' \
        -d '{"jsonrpc":"2.0","method":"dispatcher.list","id":1}' "$KAMAILIO_RPC_URL" > "$PS_WORK/ds-list.json"
      grep -q '127.0.0.1:25060' "$PS_WORK/ds-list.json" \
        || { echo "Kamailio's dispatcher.list lacks the registered node:"; cat "$PS_WORK/ds-list.json"; return 1; }
      echo "Kamailio lists the registered nodes"
    fi
  done
}

run_check "ansible-playbook --syntax-check" ps_ans_syntax
run_check "ansible-lint --offline" ps_ans_lint
if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
  run_check "ansible EC2 inventory (fleet filter, pair vars) against moto" ps_ans_inventory
else
  fail "ansible EC2 inventory (AWS_ENDPOINT_URL is not set: tests/setup/10-moto.sh did not run)"
fi
if [ ! -e "$PAIRSCALE_ROOT/tests/setup/30-kamailio.sh" ]; then
  skip "ansible dispatcher role (real run)" "tests/setup/30-kamailio.sh is absent: no Kamailio/PostgreSQL to run against"
elif [ -z "${PAIRSCALE_TEST_PG_URL:-}" ] || [ -z "${KAMAILIO_RPC_URL:-}" ]; then
  fail "ansible dispatcher role (PAIRSCALE_TEST_PG_URL / KAMAILIO_RPC_URL not set by tests/setup/30-kamailio.sh)"
else
  run_check "ansible dispatcher role: check mode, then each action twice (idempotent)" ps_ans_dispatcher
fi
