# Ansible: syntax check of every playbook, ansible-lint (offline), the EC2 inventory against
# the emulator, and the dispatcher role for real against the test Kamailio HA pair + PostgreSQL
# (tests/setup/30-kamailio.sh): check mode first (must change nothing), then every action
# twice, the second run of each reporting changed=0; both Kamailio instances reload and list
# the same destinations; a Kamailio that cannot be reached fails the run, naming it; rows carry
# duid=<pair id> in attrs;
# scale_in.yml deregisters by pair id (no inventory) and refuses bad ids; a destination of
# another pair is refused; scale_out.yml's register play writes new rows disabled. The
# FreeSWITCH role's configure tasks render a local test instance's tree (the fixture the tests'
# harness runs), twice, the second run changing nothing. scale_out.yml on a node of the fleet's
# baked image runs the role's configure set alone (no install task), and one of another image
# the install set. The dispatcher role over verify-full TLS, through the Ansible buildspec's own
# TLS command (terraform/buildspecs/dispatcher-db-tls.sh), against tests/setup/35-postgres-tls.sh.

ps_ans_bin=${PAIRSCALE_ANSIBLE_BIN:?tests/setup/25-ansible.sh makes the Ansible venv}
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

# Set 7's rows, one line each: destination|flags|attrs|description, by destination.
ps_ans_rows() {
  ps_ans_psql "SELECT destination, flags, attrs, description FROM dispatcher WHERE setid = 7 ORDER BY destination"
}

# ps_ans_play LOG PLAYBOOK [ansible-playbook args...]: runs a playbook against the test
# Kamailio and PostgreSQL (set 7), output in $PS_WORK/ansible-LOG.log; prints the PLAY
# RECAP's changed count for localhost and returns ansible-playbook's status.
ps_ans_play() {
  local log="$PS_WORK/ansible-$1.log" pb=$2 rc=0; shift 2
  PAIRSCALE_KAMAILIO_RPC_URL=$KAMAILIO_RPC_URL PAIRSCALE_KAMAILIO_RPC_URLS=$(ps_ans_urls_json) \
  "$ps_ans_bin/ansible-playbook" \
    -e dispatcher_setid=7 -e "dispatcher_pg_url=$PAIRSCALE_TEST_PG_URL" "$@" "$pb" > "$log" 2>&1 || rc=$?
  sed -n 's/^localhost *: .*changed=\([0-9]*\).*/\1/p' "$log"
  return $rc
}

# ps_ans_dispatcher_run ACTION [ansible-playbook args...]: the role through
# tests/fixtures/ansible/dispatcher.yml; prints the changed count, shows the log on failure.
ps_ans_dispatcher_run() {
  local action=$1; shift
  ps_ans_play "dispatcher-$action" "$PAIRSCALE_ROOT/tests/fixtures/ansible/dispatcher.yml" \
    -i localhost, -e "dispatcher_action=$action" "$@" \
    || { cat "$PS_WORK/ansible-dispatcher-$action.log" >&2; return 1; }
}

# ps_ans_scale_in LOG PAIR_IDS_JSON [args...]: the real playbooks/scale_in.yml (no inventory).
ps_ans_scale_in() {
  local log=$1 ids=$2; shift 2
  ps_ans_play "$log" "$PAIRSCALE_ROOT/ansible/playbooks/scale_in.yml" \
    -e pairscale_fleet=test -e "{\"pairscale_pair_ids\": $ids}" "$@"
}

# Both instances of the HA pair, as the JSON list the playbooks read from the environment.
ps_ans_urls_json() {
  python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' $KAMAILIO_RPC_URLS
}

# ps_ans_set7_at URL: that Kamailio's in-memory list of set 7 (dispatcher.list), a line per
# destination, sorted: "URI STATE DUID", STATE being the first flag letter (A active, D disabled, ...).
ps_ans_set7_at() {
  curl -s -m 5 -X POST -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","method":"dispatcher.list","id":1}' "$1" > "$PS_WORK/ds-list.json" || return 1
  python3 - "$PS_WORK/ds-list.json" <<'PY'
import json, sys
reply = json.load(open(sys.argv[1]))
if "error" in reply and "No destination sets" not in json.dumps(reply["error"]):
    sys.exit(f"dispatcher.list: {reply['error']}")
records = (reply.get("result") or {}).get("RECORDS") or []
dests = [t["DEST"] for r in records if r["SET"]["ID"] == 7 for t in r["SET"].get("TARGETS", [])]
for d in sorted(dests, key=lambda d: d["URI"]):
    print(d["URI"], d["FLAGS"][:1], (d.get("ATTRS") or {}).get("DUID") or "-")
PY
}

# ps_ans_set7: set 7 as every Kamailio of the HA pair lists it; they must all list the same
# (each was reloaded), else it says which differs and fails.
ps_ans_set7() {
  local first url seen
  first=$(ps_ans_set7_at "$KAMAILIO_RPC_URL") || return 1
  for url in $KAMAILIO_RPC_URLS; do
    seen=$(ps_ans_set7_at "$url") || return 1
    [ "$seen" = "$first" ] || { echo "Kamailio $url lists set 7 as: $seen, $KAMAILIO_RPC_URL as: $first" >&2; return 1; }
  done
  [ -z "$first" ] || printf '%s\n' "$first"
}

# ps_ans_expect_failure LOG PATTERN CMD...: CMD must fail and its log must match PATTERN.
ps_ans_expect_failure() {
  local log="$PS_WORK/ansible-$1.log" pattern=$2; shift 2
  if "$@" > /dev/null; then echo "$1 ${*:2} succeeded, expected a failure:"; cat "$log"; return 1; fi
  grep -Eq "$pattern" "$log" || { echo "failed, but without /$pattern/:"; cat "$log"; return 1; }
}

ps_ans_dispatcher() {
  local action first second rows expect_rows expect_disabled before
  ps_ans_psql "DELETE FROM dispatcher WHERE setid = 7" || return 1

  second=$(ps_ans_dispatcher_run register --check) || return 1
  rows=$(ps_ans_psql "SELECT count(*) FROM dispatcher WHERE setid = 7")
  [ "$rows" = 0 ] || { echo "check mode wrote $rows row(s)"; return 1; }
  echo "check mode: no rows written"

  for action in register disable enable; do
    first=$(ps_ans_dispatcher_run "$action") || return 1
    second=$(ps_ans_dispatcher_run "$action") || return 1
    case $action in
      register) expect_rows=2 expect_disabled=0 ;;
      disable) expect_rows=2 expect_disabled=2 ;;
      enable) expect_rows=2 expect_disabled=0 ;;
    esac
    rows=$(ps_ans_psql "SELECT count(*) FROM dispatcher WHERE setid = 7")
    disabled=$(ps_ans_psql "SELECT count(*) FROM dispatcher WHERE setid = 7 AND flags & 4 <> 0")
    echo "dispatcher $action: changed=$first then changed=$second; rows=$rows disabled=$disabled"
    [ "$first" -ge 1 ] || { echo "first $action changed nothing"; return 1; }
    [ "$second" = 0 ] || { echo "second $action was not idempotent (changed=$second)"; return 1; }
    [ "$rows" = "$expect_rows" ] && [ "$disabled" = "$expect_disabled" ] \
      || { echo "expected rows=$expect_rows disabled=$expect_disabled"; return 1; }
    if [ "$action" = register ]; then
      # The row names its pair the way the Rust side checks ownership: attrs duid=<pair id>.
      rows=$(ps_ans_rows | tr '\n' ' ')
      [ "$rows" = "sip:127.0.0.1:25060|0|duid=pair-0001|pair-0001 sip:127.0.0.1:25062|0|duid=pair-0002|pair-0002 " ] \
        || { echo "registered rows (destination|flags|attrs|description): $rows"; return 1; }
      # Kamailio reloaded: its in-memory list now has set 7, with the pair as the DUID.
      rows=$(ps_ans_set7 | tr '\n' ' ')
      [ "$rows" = "sip:127.0.0.1:25060 A pair-0001 sip:127.0.0.1:25062 A pair-0002 " ] \
        || { echo "Kamailio's dispatcher.list, set 7 (URI STATE DUID): $rows"; return 1; }
      echo "rows carry duid=<pair>; Kamailio lists the registered nodes with their DUID"
    fi
  done

  # Two pairs claiming one address: refused, naming both, before anything is written (the
  # free destination 25064 listed first stays free).
  before=$(ps_ans_rows)
  ps_ans_expect_failure dispatcher-register "sip:127.0.0.1:25060 in set 7 is registered for pair 'pair-0001', not for pair-0009" \
    ps_ans_play dispatcher-register "$PAIRSCALE_ROOT/tests/fixtures/ansible/dispatcher.yml" -i localhost, \
      -e dispatcher_action=register -e '{"dispatcher_nodes": [
        {"destination": "sip:127.0.0.1:25064", "pair_id": "pair-0003"},
        {"destination": "sip:127.0.0.1:25060", "pair_id": "pair-0009"}]}' || return 1
  [ "$(ps_ans_rows)" = "$before" ] || { echo "a refused registration changed the table:"; ps_ans_rows; return 1; }
  echo "register: a destination of another pair is refused, naming both pairs; nothing written"

  # Refused before any change: a bad pair id among good ones, an empty list, a non-list.
  ps_ans_expect_failure scale-in-bad 'pairscale_pair_ids must be a non-empty JSON list' \
    ps_ans_scale_in scale-in-bad '["pair-0001", "pair-01"]' || return 1
  ps_ans_expect_failure scale-in-bad 'pairscale_pair_ids must be a non-empty JSON list' \
    ps_ans_scale_in scale-in-bad '["pair-0001", "dispatcher"]' || return 1
  ps_ans_expect_failure scale-in-bad 'pairscale_pair_ids must be a non-empty JSON list' \
    ps_ans_scale_in scale-in-bad '[]' || return 1
  ps_ans_expect_failure scale-in-bad 'pairscale_pair_ids must be a non-empty JSON list' \
    ps_ans_scale_in scale-in-bad '"pair-0001"' || return 1
  [ "$(ps_ans_rows)" = "$before" ] || { echo "a refused scale-in changed the table:"; ps_ans_rows; return 1; }
  echo "scale_in.yml: bad pair ids, an empty list and a string are refused; nothing deleted"

  # Deregister by pair id through the real playbook: exactly that pair's row goes, the other
  # pair's row in the same set stays, and so does a row of the same pair id in another set
  # (pair ids repeat across fleets); check mode first (no change), the second run changes
  # nothing, and a pair without a row is already absent.
  ps_ans_psql "INSERT INTO dispatcher (setid, destination, flags, priority, attrs, description)
    VALUES (8, 'sip:127.0.0.1:25060', 0, 0, 'duid=pair-0001', 'pair-0001')" || return 1
  ps_ans_scale_in scale-in-check '["pair-0001"]' --check > /dev/null \
    || { cat "$PS_WORK/ansible-scale-in-check.log"; return 1; }
  [ "$(ps_ans_rows)" = "$before" ] || { echo "check mode deleted rows:"; ps_ans_rows; return 1; }
  first=$(ps_ans_scale_in scale-in '["pair-0001"]') || { cat "$PS_WORK/ansible-scale-in.log"; return 1; }
  second=$(ps_ans_scale_in scale-in '["pair-0001"]') || { cat "$PS_WORK/ansible-scale-in.log"; return 1; }
  rows=$(ps_ans_rows | tr '\n' ' ')
  echo "scale_in.yml pair-0001: changed=$first then changed=$second; rows: $rows"
  [ "$first" -ge 1 ] || { echo "deregistering pair-0001 changed nothing"; return 1; }
  [ "$second" = 0 ] || { echo "second deregistration was not idempotent (changed=$second)"; return 1; }
  [ "$rows" = "sip:127.0.0.1:25062|0|duid=pair-0002|pair-0002 " ] \
    || { echo "expected only pair-0002's row to remain"; return 1; }
  [ "$(ps_ans_psql "DELETE FROM dispatcher WHERE setid = 8 RETURNING attrs")" = duid=pair-0001 ] \
    || { echo "deregistering pair-0001 in set 7 removed its namesake in set 8"; return 1; }
  # Kamailio reloaded: pair-0001's destination is gone from its list, pair-0002's is not.
  [ "$(ps_ans_set7 | tr '\n' ' ')" = "sip:127.0.0.1:25062 A pair-0002 " ] \
    || { echo "Kamailio's dispatcher.list, set 7, after deregistering pair-0001: $(ps_ans_set7)"; return 1; }
  first=$(ps_ans_scale_in scale-in-absent '["pair-0042"]') || { cat "$PS_WORK/ansible-scale-in-absent.log"; return 1; }
  [ "$first" = 0 ] && [ "$(ps_ans_rows | tr '\n' ' ')" = "$rows" ] \
    || { echo "deregistering a pair without a row: changed=$first, rows now: $(ps_ans_rows)"; return 1; }
  echo "scale_in.yml: a pair without a row is already absent (changed=0)"
  first=$(ps_ans_dispatcher_run deregister -e '{"dispatcher_pair_ids": ["pair-0002"]}') || return 1
  rows=$(ps_ans_psql "SELECT count(*) FROM dispatcher WHERE setid = 7")
  [ "$first" -ge 1 ] && [ "$rows" = 0 ] || { echo "role deregister pair-0002: changed=$first, rows=$rows"; return 1; }
  echo "Kamailio dropped pair-0001 only; the role's deregister removed pair-0002"
}

# One Kamailio of the pair unreachable (listed first): the role asks it again (a restart under
# systemd is over in seconds), then fails naming it, after the table changed and the instance
# that is up was reloaded all the same.
ps_ans_unreachable() {
  local down up
  down="http://127.0.0.1:$(free_port)/RPC" up=${KAMAILIO_RPC_URLS%% *}
  ps_ans_psql "DELETE FROM dispatcher WHERE setid = 7" || return 1
  ps_ans_expect_failure dispatcher-register "$down" \
    ps_ans_dispatcher_run register -e "{\"dispatcher_kamailio_rpc_urls\": [\"$down\", \"$up\"]}" || return 1
  grep -q '"attempts": 10' "$PS_WORK/ansible-dispatcher-register.log" \
    || { echo "the unreachable Kamailio was not asked 10 times:"; cat "$PS_WORK/ansible-dispatcher-register.log"; return 1; }
  [ "$(ps_ans_set7_at "$up" | tr '\n' ' ')" = "sip:127.0.0.1:25060 A pair-0001 sip:127.0.0.1:25062 A pair-0002 " ] \
    || { echo "the reachable Kamailio was not reloaded: $(ps_ans_set7_at "$up")"; return 1; }
  echo "an unreachable Kamailio fails the role, named, after 10 attempts; the reachable one was reloaded"
  ps_ans_dispatcher_run deregister > /dev/null || return 1
}

# A Kamailio that refuses every reload ("Ongoing reload": its reload_delta, here ten minutes,
# has not passed since the last): the handler asks it again, 10 times, then fails the role
# naming the refusal. A refused reload is never taken for done; the rows stay in the table for
# the next reload to load.
ps_ans_reload_refused() {
  local sip http url pid rc=0 rows
  sip=$(free_port) http=$(free_port) url="http://127.0.0.1:$http/RPC"
  KAMAILIO_RELOAD_DELTA=600 "$PAIRSCALE_ROOT/tests/kamailio/run.sh" "$sip" "$http" \
    "$PS_WORK/kamailio-refusing" > "$PS_WORK/kamailio-refusing.log" 2>&1 &
  pid=$!
  ps_ans_reload_refused_in "$url" || rc=$?
  kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  ps_ans_dispatcher_run deregister > /dev/null || rc=1
  return $rc
}

ps_ans_reload_refused_in() {
  local url=$1 taken= rows
  for _ in $(seq 1 100); do
    # Its first reload is taken, and starts the ten minutes.
    if curl -s -m 2 -X POST -d '{"jsonrpc":"2.0","method":"dispatcher.reload","id":1}' "$url" \
        2>/dev/null | grep -q '"result"'; then taken=1; break; fi
    sleep 0.2
  done
  [ -n "$taken" ] || { echo "the refusing Kamailio did not start:"; tail -20 "$PS_WORK/kamailio-refusing.log"; return 1; }
  ps_ans_psql "DELETE FROM dispatcher WHERE setid = 7" || return 1
  ps_ans_expect_failure dispatcher-register "Ongoing reload" \
    ps_ans_dispatcher_run register -e "{\"dispatcher_kamailio_rpc_urls\": [\"$url\"]}" || return 1
  grep -q '"attempts": 10' "$PS_WORK/ansible-dispatcher-register.log" \
    || { echo "the refusing Kamailio was not asked 10 times:"; cat "$PS_WORK/ansible-dispatcher-register.log"; return 1; }
  rows=$(ps_ans_psql "SELECT count(*) FROM dispatcher WHERE setid = 7")
  [ "$rows" = 2 ] || { echo "expected both rows in the table after the refused reload, found $rows"; return 1; }
  echo "a Kamailio refusing reloads fails the role after 10 attempts, naming \"Ongoing reload\"; the rows stay"
}

# The register play of the real playbooks/scale_out.yml, its node addresses from a static
# inventory (the configure play targets the fleet's hosts and is left out by --limit): rows
# go in disabled (flags 4) with attrs duid=<pair id>, and a second run changes nothing.
ps_ans_scale_out_run() {
  ps_ans_play scale-out "$PAIRSCALE_ROOT/ansible/playbooks/scale_out.yml" \
    -i "$PS_WORK/scale-out-inventory.ini" --limit localhost -e pairscale_fleet=test \
    -e '{"pairscale_pair_ids": ["pair-0101", "pair-0102"]}' \
    || { cat "$PS_WORK/ansible-scale-out.log" >&2; return 1; }
}

ps_ans_scale_out() {
  local inv="$PS_WORK/scale-out-inventory.ini" first second rows want
  ps_ans_psql "DELETE FROM dispatcher WHERE setid = 7" || return 1
  printf '%s\n' 'localhost ansible_connection=local' '[fleet_test]' \
    'node-a pairscale_pair_id=pair-0101 pairscale_private_ip=127.0.0.11' \
    'node-b pairscale_pair_id=pair-0102 pairscale_private_ip=127.0.0.12' \
    'node-c pairscale_pair_id=pair-0103 pairscale_private_ip=127.0.0.13' > "$inv"
  first=$(ps_ans_scale_out_run) || return 1
  second=$(ps_ans_scale_out_run) || return 1
  rows=$(ps_ans_rows | tr '\n' ' ')
  want="sip:127.0.0.11:5060|4|duid=pair-0101|pair-0101 sip:127.0.0.12:5060|4|duid=pair-0102|pair-0102 "
  echo "scale_out.yml register: changed=$first then changed=$second; rows: $rows"
  [ "$first" -ge 1 ] && [ "$second" = 0 ] || { echo "expected changed>=1 then changed=0"; return 1; }
  [ "$rows" = "$want" ] || { echo "expected rows: $want"; return 1; }
  # Kamailio reloaded and holds both out of rotation (state D).
  rows=$(ps_ans_set7 | tr '\n' ' ')
  [ "$rows" = "sip:127.0.0.11:5060 D pair-0101 sip:127.0.0.12:5060 D pair-0102 " ] \
    || { echo "Kamailio's dispatcher.list, set 7 (URI STATE DUID): $rows"; return 1; }
  ps_ans_scale_in scale-in-out '["pair-0101", "pair-0102"]' > /dev/null \
    || { cat "$PS_WORK/ansible-scale-in-out.log"; return 1; }
  rows=$(ps_ans_psql "SELECT count(*) FROM dispatcher WHERE setid = 7")
  [ "$rows" = 0 ] || { echo "scale_in.yml left $rows row(s) of the scale-out"; return 1; }
  echo "scale_out.yml registers out of rotation (flags 4); scale_in.yml removes both pairs"
}

# The FreeSWITCH role's configure tasks for a local test instance, through the fixture the
# tests' harness runs (crates/localstack/freeswitch): the tree seeded from the build's default
# configuration, the role's files written, the STUN lookups pinned, and a second run changing
# nothing. ps_ans_freeswitch_run DIR: prints the host's changed count.
ps_ans_freeswitch_run() {
  local dir=$1 log="$1/ansible.log"
  "$ps_ans_bin/ansible-playbook" -i "$dir/inventory/hosts.ini" \
    "$PAIRSCALE_ROOT/tests/fixtures/ansible/freeswitch.yml" > "$log" 2>&1 || { cat "$log" >&2; return 1; }
  sed -n 's/^fs1 *: .*changed=\([0-9]*\).*/\1/p' "$log"
}

ps_ans_freeswitch() {
  local dir="$PS_WORK/ansible-freeswitch" first second conf
  conf="$dir/fs1/conf"
  rm -rf "$dir" && mkdir -p "$dir/inventory/host_vars" "$conf" "$dir/fs1/db"
  echo fs1 > "$dir/inventory/hosts.ini"
  cat > "$dir/inventory/host_vars/fs1.json" <<JSON
{"freeswitch_conf_dir": "$conf", "freeswitch_core_db_dir": "$dir/fs1/db",
 "freeswitch_esl_listen_ip": "127.0.0.99", "freeswitch_esl_password": "ansible-check-password",
 "freeswitch_esl_orchestrator_cidrs": ["127.0.0.1/32"], "freeswitch_esl_client_cidrs": ["127.0.0.2/32"],
 "freeswitch_kamailio_cidrs": ["127.0.0.1/32"], "freeswitch_sip_ip": "127.0.0.99",
 "freeswitch_modules": ["mod_event_socket", "mod_sofia"]}
JSON
  first=$(ps_ans_freeswitch_run "$dir") || return 1
  second=$(ps_ans_freeswitch_run "$dir") || return 1
  echo "freeswitch role (configure, freeswitch_manage_host off): changed=$first then changed=$second"
  [ "$first" -ge 1 ] && [ "$second" = 0 ] || { echo "expected changed>=1 then changed=0"; return 1; }
  grep -q 'name="apply-inbound-acl" value="pairscale_esl"' "$conf/autoload_configs/event_socket.conf.xml" \
    && grep -q '<load module="mod_sofia"/>' "$conf/autoload_configs/modules.conf.xml" \
    && grep -q 'rtp-timer-name' "$conf/sip_profiles/pairscale.xml" \
    && [ -e "$conf/dialplan/public/00_pairscale_canary.xml" ] \
    && [ ! -e "$conf/sip_profiles/internal.xml" ] \
    || { echo "the rendered tree lacks the role's files"; return 1; }
  ! grep -q 'cmd="stun-set"' "$conf/vars.xml" || { echo "vars.xml still looks addresses up with STUN"; return 1; }
}

# The baked-image path of the real playbooks/scale_out.yml (its configure play, run on this
# machine: connection local, freeswitch_manage_host off, the subnet looked up in the emulator):
# a node launched from the fleet's image (its inventory image_id == PAIRSCALE_FREESWITCH_IMAGE_ID)
# gets the role's configure set alone, no install task and no repository token, in a tree seeded
# as the bake seeds it (the built FreeSWITCH's default configuration), twice, the second run
# changing nothing; a node of another image, or a fleet without an image, takes the install set
# (whose preflight stops at the missing token before any change). Each run's duration is printed.
ps_ans_baked_run() {
  local log=$1; shift
  local t0=$SECONDS
  PAIRSCALE_ESL_PASSWORD=baked-image-check-password \
  PAIRSCALE_ORCHESTRATOR_CIDRS='["127.0.0.1/32"]' PAIRSCALE_KAMAILIO_CIDRS='["127.0.0.1/32"]' \
  PAIRSCALE_FREESWITCH_REPO_TOKEN='' \
  ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks PROFILE_TASKS_TASK_OUTPUT_LIMIT=100 \
  "$ps_ans_bin/ansible-playbook" -i "$ps_ans_baked_dir/hosts.ini" \
    -e ansible_connection=local -e "ansible_python_interpreter=$ps_ans_bin/python" \
    -e freeswitch_manage_host=false -e "freeswitch_conf_dir=$ps_ans_baked_dir/conf" \
    -e freeswitch_esl_listen_ip=127.0.0.98 -e pairscale_fleet=test \
    -e '{"pairscale_pair_ids": ["pair-0201", "pair-0202"]}' \
    "$@" "$PAIRSCALE_ROOT/ansible/playbooks/scale_out.yml" > "$ps_ans_baked_dir/$log.log" 2>&1
  local rc=$?
  # The role's own tasks, summed from profile_tasks' table (the play adds the subnet lookup,
  # fact gathering and Ansible's start-up).
  echo "$log: ansible-playbook took $((SECONDS - t0)) s, the freeswitch role's tasks $(sed -n \
    's/^freeswitch : .* -* \([0-9.]*\)s$/\1/p' "$ps_ans_baked_dir/$log.log" | awk '{s += $1} END {printf "%.1f", s}') s" >&2
  return $rc
}

# The install set's task names, from install.yml and the files it imports.
ps_ans_install_tasks() {
  "$ps_ans_bin/python" - "$PAIRSCALE_ROOT/ansible/roles/freeswitch/tasks" <<'PY2'
import sys, yaml, pathlib
d = pathlib.Path(sys.argv[1])
def names(f):
    for t in yaml.safe_load((d / f).read_text()):
        inc = t.get("ansible.builtin.import_tasks") or t.get("ansible.builtin.include_tasks")
        yield from (names(inc) if inc else [t["name"]])
print("\n".join(names("install.yml")))
PY2
}

ps_ans_baked() {
  local dir="$PS_WORK/ansible-baked" subnet image=ami-0123abcd other=ami-0fedcba9 first second name names
  ps_ans_baked_dir=$dir
  rm -rf "$dir" && mkdir -p "$dir/conf"
  subnet=$("$PS_CACHE/venv-moto/bin/python" -c '
import boto3
ec2 = boto3.client("ec2")
vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
print(ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.5.0/24")["Subnet"]["SubnetId"])') || return 1
  printf '%s\n' '[fleet_test]' \
    "baked pairscale_pair_id=pair-0201 pairscale_private_ip=127.0.0.98 pairscale_subnet_id=$subnet image_id=$image" \
    "other pairscale_pair_id=pair-0202 pairscale_private_ip=127.0.0.98 pairscale_subnet_id=$subnet image_id=$other" \
    > "$dir/hosts.ini"
  # What the bake leaves: the packaged default configuration (seed.yml).
  cp -a "$PAIRSCALE_FREESWITCH_PREFIX/etc/freeswitch/." "$dir/conf/"
  names=$(ps_ans_install_tasks) || return 1
  [ -n "$names" ] || { echo "no install task names read from install.yml"; return 1; }

  PAIRSCALE_FREESWITCH_IMAGE_ID=$image ps_ans_baked_run baked-1 --limit baked \
    || { cat "$dir/baked-1.log"; return 1; }
  PAIRSCALE_FREESWITCH_IMAGE_ID=$image ps_ans_baked_run baked-2 --limit baked \
    || { cat "$dir/baked-2.log"; return 1; }
  first=$(sed -n 's/^baked *: .*changed=\([0-9]*\).*/\1/p' "$dir/baked-1.log")
  second=$(sed -n 's/^baked *: .*changed=\([0-9]*\).*/\1/p' "$dir/baked-2.log")
  while IFS= read -r name; do
    if grep -qF "TASK [freeswitch : $name]" "$dir/baked-1.log"; then
      echo "the configure-only run ran the install task '$name':"; cat "$dir/baked-1.log"; return 1
    fi
  done <<< "$names"
  grep -A2 -F 'TASK [freeswitch : Install]' "$dir/baked-1.log" | grep -q '^skipping: \[baked\]' \
    || { echo "the install set was not skipped on the baked node:"; cat "$dir/baked-1.log"; return 1; }
  grep -qF 'TASK [freeswitch : Write the configuration]' "$dir/baked-1.log" \
    && grep -q 'name="apply-inbound-acl" value="pairscale_esl"' "$dir/conf/autoload_configs/event_socket.conf.xml" \
    && grep -q 'cidr="10.77.5.0/24"' "$dir/conf/autoload_configs/acl.conf.xml" \
    && [ ! -e "$dir/conf/sip_profiles/internal.xml" ] \
    || { echo "the configure set did not write the node's configuration"; cat "$dir/baked-1.log"; return 1; }
  echo "baked node: configure set only (none of the $(wc -l <<< "$names") install tasks ran, no token), changed=$first then changed=$second"
  [ "$first" -ge 1 ] && [ "$second" = 0 ] || { echo "expected changed>=1 then changed=0"; return 1; }

  # A node of another image, and a fleet without an image: the install set, stopped by its
  # preflight (no token) before any change.
  local case
  for case in "other:$image" "baked:"; do
    if PAIRSCALE_FREESWITCH_IMAGE_ID=${case#*:} ps_ans_baked_run "install-${case%%:*}" --limit "${case%%:*}"; then
      echo "${case%%:*} with PAIRSCALE_FREESWITCH_IMAGE_ID='${case#*:}' did not take the install set:"; cat "$dir/install-${case%%:*}.log"; return 1
    fi
    grep -qF 'TASK [freeswitch : Check the install inputs]' "$dir/install-${case%%:*}.log" \
      && grep -q 'freeswitch role, install: needs' "$dir/install-${case%%:*}.log" \
      || { echo "${case%%:*}: expected the install preflight to refuse the missing token:"; cat "$dir/install-${case%%:*}.log"; return 1; }
  done
  echo "a node of another image, and a fleet without an image, take the install set (refused here without a token)"
}

# The dispatcher role over TLS, as the Ansible build runs it: libpq's PG* variables from the
# environment (dispatcher_pg_url empty), PGSSLMODE=verify-full, and PGSSLROOTCERT set by the
# buildspec's own command (it sources terraform/buildspecs/dispatcher-db-tls.sh, which writes
# the project's PAIRSCALE_DISPATCHER_DB_CA to a file), against the PostgreSQL of
# tests/setup/35-postgres-tls.sh. No Kamailio reads that database: dispatcher_reload is off.
# The right CA: register writes the rows, over a session that really is TLS (pg_stat_ssl), and
# deregister removes them. Another CA, and the system's roots: the run fails naming the
# certificate's verification, the table unchanged. A PGSSLMODE the module refuses is refused;
# disable tries plain text.

# ps_ans_tls_env CA_PEM_FILE|"" [PGSSLMODE] -- CMD...: CMD in a subshell at the repository's
# root with the TLS database's PG* variables, PAIRSCALE_DISPATCHER_DB_CA the file's text (unset
# for ""), and the buildspec's TLS command run first, as in the build.
ps_ans_tls_env() {
  local ca=$1 mode=${2:-verify-full}; shift 2
  [ "$1" = -- ] && shift
  (
    cd "$PAIRSCALE_ROOT" || exit 1
    unset PGSSLROOTCERT PGSSLCERT PGSSLKEY PGSERVICE PGSERVICEFILE PGHOSTADDR PAIRSCALE_DISPATCHER_DB_CA
    eval "$ps_ans_tls_libpq" || exit 1
    export PGSSLMODE=$mode TMPDIR="$PS_WORK/ansible-tls-tmp"
    mkdir -p "$TMPDIR"
    if [ -n "$ca" ]; then PAIRSCALE_DISPATCHER_DB_CA=$(cat "$ca") || exit 1; export PAIRSCALE_DISPATCHER_DB_CA; fi
    # As CodeBuild, which stops at a command that fails (set -e would not: the callers test
    # this function's status, which turns it off).
    eval "$ps_ans_tls_buildspec_cmd" || exit 1
    "$@"
  )
}

# ps_ans_tls_run LOG CA_PEM_FILE|"" ACTION [args...]: the role through the fixture playbook.
ps_ans_tls_run() {
  local log="$PS_WORK/ansible-$1.log" ca=$2 action=$3; shift 3
  ps_ans_tls_env "$ca" verify-full -- "$ps_ans_bin/ansible-playbook" -i localhost, \
    -e dispatcher_setid=7 -e dispatcher_pg_url= -e dispatcher_reload=false -e "dispatcher_action=$action" \
    "$@" "$PAIRSCALE_ROOT/tests/fixtures/ansible/dispatcher.yml" > "$log" 2>&1
}

# Set 7 of the TLS database, read over verify-full with the right CA, apart from the role.
ps_ans_tls_rows() {
  PGSSLMODE=verify-full PGSSLROOTCERT="$PAIRSCALE_TEST_PG_TLS_CA" psql -X -q -A -t -v ON_ERROR_STOP=1 \
    "$PAIRSCALE_TEST_PG_TLS_URL" -c "SELECT destination, attrs FROM dispatcher WHERE setid = 7 ORDER BY destination" | tr '\n' ' '
}

ps_ans_tls() {
  local rows want before ssl case
  # The URL's parts as libpq's variables (the project's PGHOST, PGPORT, ...), for eval.
  ps_ans_tls_libpq=$("$ps_ans_bin/python" - "$PAIRSCALE_TEST_PG_TLS_URL" <<'PY'
import shlex, sys
from urllib.parse import unquote, urlsplit
u = urlsplit(sys.argv[1])
for k, v in (("PGHOST", u.hostname), ("PGPORT", u.port or 5432), ("PGUSER", unquote(u.username)),
             ("PGPASSWORD", unquote(u.password)), ("PGDATABASE", u.path.lstrip("/"))):
    print(f"export {k}={shlex.quote(str(v))}")
PY
  ) || return 1
  # The buildspec's own command: the build phase's line that sources the TLS snippet.
  ps_ans_tls_buildspec_cmd=$("$ps_ans_bin/python" - "$PAIRSCALE_ROOT/terraform/buildspecs/ansible.yml" <<'PY'
import sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))
cmds = [c for c in spec["phases"]["build"]["commands"] if "dispatcher-db-tls.sh" in c]
play = [i for i, c in enumerate(spec["phases"]["build"]["commands"]) if "ansible-playbook" in c]
if len(cmds) != 1 or not play or spec["phases"]["build"]["commands"].index(cmds[0]) > play[0]:
    sys.exit("the Ansible buildspec's build phase must source terraform/buildspecs/dispatcher-db-tls.sh once, before ansible-playbook")
print(cmds[0])
PY
  ) || return 1
  echo "the buildspec's TLS command: $ps_ans_tls_buildspec_cmd"
  PGSSLMODE=verify-full PGSSLROOTCERT="$PAIRSCALE_TEST_PG_TLS_CA" psql -X -q -v ON_ERROR_STOP=1 \
    "$PAIRSCALE_TEST_PG_TLS_URL" -c "DELETE FROM dispatcher WHERE setid = 7" || return 1

  # The right CA: the rows written, over TLS.
  ps_ans_tls_run tls-register "$PAIRSCALE_TEST_PG_TLS_CA" register || { cat "$PS_WORK/ansible-tls-register.log"; return 1; }
  grep -q 'dispatcher database: TLS verify-full, certificates from PAIRSCALE_DISPATCHER_DB_CA' "$PS_WORK/ansible-tls-register.log" \
    || { echo "the buildspec's TLS command did not use PAIRSCALE_DISPATCHER_DB_CA:"; cat "$PS_WORK/ansible-tls-register.log"; return 1; }
  rows=$(ps_ans_tls_rows) || return 1
  want="sip:127.0.0.1:25060|duid=pair-0001 sip:127.0.0.1:25062|duid=pair-0002 "
  [ "$rows" = "$want" ] || { echo "after register over TLS, set 7 holds: $rows (expected $want)"; return 1; }
  ssl=$(ps_ans_tls_env "$PAIRSCALE_TEST_PG_TLS_CA" verify-full -- \
    psql -X -q -A -t -v ON_ERROR_STOP=1 -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" | tail -1) || return 1
  [ "$ssl" = t ] || { echo "a session with the build's environment is not TLS (pg_stat_ssl.ssl = '$ssl')"; return 1; }
  echo "verify-full with the project's CA: register wrote ${rows% } over TLS (pg_stat_ssl: ssl = t)"

  # Another CA, and no bundle (the system's roots, which do not hold the test CA): refused at
  # the role's first psql, nothing changed.
  before=$rows
  for case in "other:$PAIRSCALE_TEST_PG_TLS_OTHER_CA" "system:"; do
    if ps_ans_tls_run "tls-${case%%:*}" "${case#*:}" deregister; then
      echo "deregister with the ${case%%:*} CA succeeded; verify-full must refuse the server's certificate:"
      cat "$PS_WORK/ansible-tls-${case%%:*}.log"; return 1
    fi
    grep -q 'certificate verify failed' "$PS_WORK/ansible-tls-${case%%:*}.log" \
      || { echo "deregister with the ${case%%:*} CA failed, but not on the certificate:"; cat "$PS_WORK/ansible-tls-${case%%:*}.log"; return 1; }
    [ "$(ps_ans_tls_rows)" = "$before" ] || { echo "a refused connection changed the table: $(ps_ans_tls_rows)"; return 1; }
  done
  grep -q 'the system.s root certificates (/etc/ssl/certs/ca-certificates.crt)' "$PS_WORK/ansible-tls-system.log" \
    || { echo "without PAIRSCALE_DISPATCHER_DB_CA the buildspec did not use the system's roots:"; cat "$PS_WORK/ansible-tls-system.log"; return 1; }
  echo "verify-full with another CA, and with the system's roots: 'certificate verify failed', table unchanged"

  # A PGSSLMODE the module refuses stops the build before ansible-playbook.
  for case in require prefer; do
    if ps_ans_tls_env "$PAIRSCALE_TEST_PG_TLS_CA" "$case" -- true > "$PS_WORK/ansible-tls-mode.log" 2>&1; then
      echo "the buildspec's TLS command took PGSSLMODE=$case"; return 1
    fi
    grep -q "PGSSLMODE is '$case'" "$PS_WORK/ansible-tls-mode.log" \
      || { echo "PGSSLMODE=$case refused without saying why:"; cat "$PS_WORK/ansible-tls-mode.log"; return 1; }
  done
  echo "PGSSLMODE require and prefer: refused by the buildspec, naming it"
  # disable is what it says (the sandbox's database has no certificate to verify): plain text,
  # which this server, taking TLS sessions only (hostssl), refuses as such.
  if ps_ans_tls_env "" disable -- psql -X -q -A -t -v ON_ERROR_STOP=1 -c "SELECT 1" \
      > "$PS_WORK/ansible-tls-disable.log" 2>&1; then
    echo "PGSSLMODE=disable reached a server that takes TLS sessions only"; return 1
  fi
  grep -q 'no encryption' "$PS_WORK/ansible-tls-disable.log" \
    || { echo "PGSSLMODE=disable failed, but not as a plain-text session:"; cat "$PS_WORK/ansible-tls-disable.log"; return 1; }
  echo "PGSSLMODE=disable: a plain-text session (refused by the TLS-only server: 'no encryption')"

  ps_ans_tls_run tls-deregister "$PAIRSCALE_TEST_PG_TLS_CA" deregister || { cat "$PS_WORK/ansible-tls-deregister.log"; return 1; }
  rows=$(ps_ans_tls_rows) || return 1
  [ -z "$rows" ] || { echo "after deregister over TLS, set 7 holds: $rows"; return 1; }
  echo "verify-full with the project's CA: deregister removed both rows"
}

run_check "ansible-playbook --syntax-check" ps_ans_syntax
run_check "ansible-lint --offline" ps_ans_lint
if declare -F ps_fs_wait >/dev/null; then ps_fs_wait; fi
if [ -z "${PAIRSCALE_FREESWITCH_PREFIX:-}" ]; then
  fail "ansible freeswitch role (PAIRSCALE_FREESWITCH_PREFIX is not set: tests/setup/40-freeswitch.sh did not run)"
else
  run_check "ansible freeswitch role renders a local instance's tree, idempotently, touching nothing else" ps_ans_freeswitch
fi
if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
  run_check "ansible EC2 inventory (fleet filter, pair vars) against moto" ps_ans_inventory
  if [ -n "${PAIRSCALE_FREESWITCH_PREFIX:-}" ]; then
    run_check "ansible scale_out.yml on a node of the fleet's baked image: configure set only, no install task, idempotent" ps_ans_baked
  else
    fail "ansible scale_out.yml baked-image path (PAIRSCALE_FREESWITCH_PREFIX is not set: tests/setup/40-freeswitch.sh did not run)"
  fi
else
  fail "ansible EC2 inventory (AWS_ENDPOINT_URL is not set: tests/setup/10-moto.sh did not run)"
fi
if [ ! -e "$PAIRSCALE_ROOT/tests/setup/30-kamailio.sh" ]; then
  skip "ansible dispatcher role (real run)" "tests/setup/30-kamailio.sh is absent: no Kamailio/PostgreSQL to run against"
elif [ -z "${PAIRSCALE_TEST_PG_URL:-}" ] || [ -z "${KAMAILIO_RPC_URL:-}" ]; then
  fail "ansible dispatcher role (PAIRSCALE_TEST_PG_URL / KAMAILIO_RPC_URL not set by tests/setup/30-kamailio.sh)"
else
  run_check "ansible dispatcher role and scale_in.yml: check mode, each action twice (idempotent), duid ownership, refusals" ps_ans_dispatcher
  run_check "ansible scale_out.yml registers new nodes disabled, with their duid" ps_ans_scale_out
  run_check "ansible dispatcher role: one Kamailio unreachable is asked again, then fails naming it; the other is reloaded" ps_ans_unreachable
  run_check "ansible dispatcher role: a Kamailio refusing reloads (reload_delta) is asked again, then fails naming the refusal" ps_ans_reload_refused
fi
if [ -z "${PAIRSCALE_TEST_PG_TLS_URL:-}" ] || [ -z "${PAIRSCALE_TEST_PG_TLS_CA:-}" ] || [ -z "${PAIRSCALE_TEST_PG_TLS_OTHER_CA:-}" ]; then
  fail "ansible dispatcher role over TLS (PAIRSCALE_TEST_PG_TLS_URL / _CA / _OTHER_CA not set by tests/setup/35-postgres-tls.sh)"
else
  run_check "ansible dispatcher role over TLS, as the build runs it: verify-full with the project's CA writes and removes rows; another CA fails on the certificate" ps_ans_tls
fi
