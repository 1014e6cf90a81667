"""The Packer template, read with python-hcl2 (tests/checks/68-packer.sh): what can be held
without the packer binary. Prints each property it verified, one line each, and exits 1 on the
first finding.

    check_template.py ROOT

Checked: plugins pinned to exact versions; one amazon-ebs source whose base image is Debian 12
by the Debian account's id and a name filter; region, subnet and instance type from variables;
the required variables declared without defaults and given by packer/example.pkrvars.hcl (and
nothing undeclared); the token variable sensitive, defaulting to the environment only and
reaching Ansible only through its environment; no secret-looking literal anywhere; the image
tagged with the fleet, role and FreeSWITCH version; one Ansible provisioner running
ansible/playbooks/bake.yml with the role's install tag alone.
"""
import pathlib
import re
import sys

import hcl2

ROOT = pathlib.Path(sys.argv[1])
TEMPLATE = ROOT / "packer/freeswitch.pkr.hcl"
VARS_FILE = ROOT / "packer/example.pkrvars.hcl"
DEBIAN_OWNER = "136693071363"
REQUIRED = {"region", "subnet_id", "fleet", "freeswitch_version"}
DECLARED = REQUIRED | {"instance_type", "architecture", "freeswitch_packages", "freeswitch_repo_token"}
INSTALL_TAG = "freeswitch_install"


def fail(msg):
    print(f"FAIL {msg}")
    sys.exit(1)


def ok(msg):
    print(f"ok   {msg}")


def unq(v):
    """python-hcl2 keeps a string literal's quotes and wraps expressions in ${...}."""
    if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"':
        return v[1:-1]
    return v


def blocks(doc, kind):
    return [b for b in doc.get(kind, [])]


def labelled(block):
    """{"\"label\"": body} -> (label, body)."""
    (k, body), = [(k, v) for k, v in block.items() if not k.startswith("__")]
    return unq(k), body


text = TEMPLATE.read_text(encoding="utf-8")
doc = hcl2.loads(text)

# Plugins: exact versions, so a build today and one next month use the same builder.
plugins = doc["packer"][0]["required_plugins"][0]
for name in ("amazon", "ansible"):
    p = plugins.get(name) or fail(f"required_plugins has no {name}")
    version = unq(p["version"])
    re.fullmatch(r"= \d+\.\d+\.\d+", version) or fail(f"plugin {name} is not pinned to one version: {version!r}")
    unq(p["source"]) == f"github.com/hashicorp/{name}" or fail(f"plugin {name} from {p['source']}")
ok("plugins amazon and ansible pinned to exact versions (" +
   ", ".join(f"{n} {unq(plugins[n]['version'])[2:]}" for n in ("amazon", "ansible")) + ")")

# Variables.
variables = dict(labelled(b) for b in blocks(doc, "variable"))
set(variables) == DECLARED or fail(f"variables {sorted(variables)}, expected {sorted(DECLARED)}")
no_default = {n for n, v in variables.items() if "default" not in v}
no_default == REQUIRED or fail(f"variables without a default {sorted(no_default)}, expected {sorted(REQUIRED)}")
ok(f"variables declared {sorted(DECLARED)}; required (no default) {sorted(REQUIRED)}")
given = hcl2.loads(VARS_FILE.read_text(encoding="utf-8"))
given = {k: v for k, v in given.items() if not k.startswith("__")}
REQUIRED <= set(given) or fail(f"{VARS_FILE.name} lacks {sorted(REQUIRED - set(given))}")
set(given) <= DECLARED or fail(f"{VARS_FILE.name} sets undeclared {sorted(set(given) - DECLARED)}")
"freeswitch_repo_token" not in given or fail(f"{VARS_FILE.name} sets the token")
ok(f"{VARS_FILE.name} gives every required variable, nothing undeclared, no token")

token = variables["freeswitch_repo_token"]
token.get("sensitive") is True or fail("freeswitch_repo_token is not sensitive")
token["default"] == '${env("PAIRSCALE_FREESWITCH_REPO_TOKEN")}' or fail(
    f"freeswitch_repo_token defaults to {token['default']!r}, not the environment")
ok("freeswitch_repo_token: sensitive, from the environment (PAIRSCALE_FREESWITCH_REPO_TOKEN) only")

# Source: Debian 12 by owner and name.
sources = blocks(doc, "source")
len(sources) == 1 or fail(f"{len(sources)} sources, expected one")
kind, named = labelled(sources[0])
kind == "amazon-ebs" or fail(f"source type {kind}, expected amazon-ebs")
_, src = labelled(named)
for attr, var in (("region", "region"), ("instance_type", "instance_type"), ("subnet_id", "subnet_id")):
    src.get(attr) == f"${{var.{var}}}" or fail(f"source {attr} = {src.get(attr)!r}, expected var.{var}")
flt = src["source_ami_filter"][0]
[unq(o) for o in flt["owners"]] in ([DEBIAN_OWNER], ["${local.debian_owner}"]) or fail(f"base image owners {flt['owners']}")
"${local.debian_owner}" not in flt["owners"] or unq(doc["locals"][0]["debian_owner"]) == DEBIAN_OWNER or fail(
    "local.debian_owner is not Debian's account")
flt.get("most_recent") is True or fail("source_ami_filter.most_recent is not true")
name = unq(flt["filters"]["name"])
name.startswith("debian-12-") or fail(f"base image name filter {name!r} is not Debian 12")
ok(f"one amazon-ebs source: Debian 12 ({name}) owned by {DEBIAN_OWNER}, newest; region, subnet_id, instance_type from variables")

tags = {unq(k): v for k, v in src["tags"].items()}
want = {"pairscale:fleet": "${var.fleet}", "pairscale:role": '"freeswitch"',
        "pairscale:freeswitch-version": "${var.freeswitch_version}"}
for k, v in want.items():
    tags.get(k) == v or fail(f"image tag {k} = {tags.get(k)!r}, expected {v}")
ok("image tagged pairscale:fleet, pairscale:role=freeswitch, pairscale:freeswitch-version from variables")

# The build: one Ansible provisioner, the bake playbook, the install tag alone.
build = doc["build"][0]
provisioners = build.get("provisioner", [])
len(provisioners) == 1 or fail(f"{len(provisioners)} provisioners, expected one")
kind, prov = labelled(provisioners[0])
kind == "ansible" or fail(f"provisioner {kind}, expected ansible")
playbook = unq(prov["playbook_file"])
playbook == "${path.root}/../ansible/playbooks/bake.yml" or fail(f"playbook_file {playbook!r}")
(ROOT / "ansible/playbooks/bake.yml").is_file() or fail("ansible/playbooks/bake.yml does not exist")
args = [unq(a) for a in prov["extra_arguments"]]
tag_args = [(a, args[i + 1] if i + 1 < len(args) else None) for i, a in enumerate(args)
            if a in ("--tags", "-t", "--skip-tags") or a.startswith(("--tags=", "--skip-tags="))]
tag_args == [("--tags", INSTALL_TAG)] or fail(f"tag arguments {tag_args}, expected exactly --tags {INSTALL_TAG}")
ok(f"one ansible provisioner: ansible/playbooks/bake.yml with --tags {INSTALL_TAG} and no other tag selection")
any("freeswitch_repo_token" in a or "REPO_TOKEN" in a for a in args) and fail("the token is on Ansible's command line")
env_vars = [unq(e) for e in prov.get("ansible_env_vars", [])]
env_vars.count("PAIRSCALE_FREESWITCH_REPO_TOKEN=${var.freeswitch_repo_token}") == 1 or fail(
    "the token does not reach Ansible through its environment")
ok("the token reaches Ansible in its environment only, not its command line")

# No secret: the token is named only as the variable; nothing that looks like a key or a
# password is written down.
uses = re.findall(r"[\w.]*freeswitch_repo_token\b", text)
set(uses) <= {"var.freeswitch_repo_token", "freeswitch_repo_token"} or fail(f"token references {set(uses)}")
for pattern, what in ((r"AKIA[0-9A-Z]{16}", "an AWS access key id"),
                      (r"(?i)(password|secret|token)\s*=\s*\"[^\"$]+\"", "a literal password, secret or token"),
                      (r"(?i)aws_(access|secret)_key", "AWS key settings")):
    for path in (TEMPLATE, VARS_FILE):
        m = re.search(pattern, path.read_text(encoding="utf-8"))
        m and fail(f"{path.name}: {what}: {m.group(0)!r}")
ok("no literal secret (AWS keys, password/secret/token assignments) in the template or its variables file")
print("packer template: every property above holds (structure only: packer validate is not part of this script)")
