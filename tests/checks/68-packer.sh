# The Packer template (packer/freeswitch.pkr.hcl). Packer is a HashiCorp binary that is not in
# Debian's archive nor on PyPI; CI installs it with HashiCorp's setup-packer action (pinned
# by commit; it verifies the release's signed checksums), and runs `packer init` + `packer validate` (job
# packer of .github/workflows/ci.yml). Here:
# - the template's structure, read with python-hcl2 (tests/packer/check_template.py: it prints
#   each property it verified): pinned plugins, Debian 12 by owner and name, the variables, the
#   token only from the environment, the tags, the provisioner running the bake playbook with the
#   role's install tag alone;
# - what that tag selects, by Ansible itself: `--list-tasks --tags freeswitch_install` on
#   ansible/playbooks/bake.yml lists the install set and the bake's clean-up, no configure task;
# - `packer validate` too when a packer binary is on PATH; without one that part is reported
#   as not run (never passed over in silence).

ps_pk_structure() {
  "$ps_pk_bin/python" "$PAIRSCALE_ROOT/tests/packer/check_template.py" "$PAIRSCALE_ROOT"
}

ps_pk_tags() {
  local out
  out=$(cd "$PAIRSCALE_ROOT" && ANSIBLE_CONFIG=ansible/ansible.cfg ANSIBLE_HOME="$PS_WORK/ansible-home" \
    "${PAIRSCALE_ANSIBLE_BIN:?tests/setup/25-ansible.sh makes the Ansible venv}/ansible-playbook" \
    -i localhost, --list-tasks --tags freeswitch_install ansible/playbooks/bake.yml 2>&1) || { echo "$out"; return 1; }
  printf '%s\n' "$out" | grep -q 'freeswitch : Install' \
    && printf '%s\n' "$out" | grep -q 'Remove the repository token from the image' \
    || { echo "--tags freeswitch_install does not select the install set and the clean-up:"; echo "$out"; return 1; }
  if printf '%s\n' "$out" | grep -E 'Write the configuration|Check the configure inputs|Start FreeSWITCH|Host settings'; then
    echo "--tags freeswitch_install selects configure tasks (above)"; return 1
  fi
  echo "bake.yml --tags freeswitch_install: the install set and the clean-up, no configure task"
}

ps_pk_validate() {
  (cd "$PAIRSCALE_ROOT" && packer init packer/ && packer validate -var-file=packer/example.pkrvars.hcl packer/)
}

if venv packer "$PAIRSCALE_ROOT/tests/requirements/packer.txt" > "$PS_WORK/packer-venv.log" 2>&1; then
  ps_pk_bin=$VENV_BIN
  run_check "packer template structure (python-hcl2: plugins, Debian 12 base, variables, token, tags, install-tag provisioner)" ps_pk_structure
else
  cat "$PS_WORK/packer-venv.log"
  fail "packer template structure (could not install python-hcl2)"
fi
run_check "packer bake playbook: --tags freeswitch_install selects the install set only" ps_pk_tags
if command -v packer > /dev/null; then
  run_check "packer init + packer validate packer/ ($(packer version | head -1))" ps_pk_validate
elif [ -n "${CI:-}" ]; then
  # In CI the packer job of ci.yml validates; this job has no Packer by design.
  skip "packer validate" "not in this job: ci.yml's job packer installs Packer (hashicorp/setup-packer, pinned by commit) and runs packer init + packer validate"
else
  skip "packer validate" "no packer binary on this machine (HashiCorp's release archive is not reachable here); the template's structure was checked above, and packer validate runs in CI (ci.yml, job packer)"
fi
