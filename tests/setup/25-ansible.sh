# Ansible (a Python venv, tests/requirements/ansible.txt), for tests/checks/70-ansible.sh and
# the sandbox's scale_in builds, which run the project's buildspec with it. Exports
# PAIRSCALE_ANSIBLE_BIN, the venv's bin folder.
venv ansible "$PAIRSCALE_ROOT/tests/requirements/ansible.txt"
export PAIRSCALE_ANSIBLE_BIN=$VENV_BIN
ps_ansible_version=$("$PAIRSCALE_ANSIBLE_BIN/ansible-playbook" --version)
log "${ps_ansible_version%%$'\n'*}"
