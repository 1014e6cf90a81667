"""The supply chain, checked (tests/checks/76-supply-chain.sh).

    supply_chain.py workflows ROOT          every action pinned by commit, no unpinned tool
                                            install, the triggers, the deploy's environment
    supply_chain.py build-image ROOT        build-image/Dockerfile's versions == the buildspecs',
                                            the workflows', the test setup's and the roots'
    supply_chain.py trust-policy JSON OWNER REPO ENV
                                            the deploy role's trust policy as Terraform renders it

Each prints one line per finding and exits 1 when there is any.
"""
import json
import pathlib
import re
import sys

import yaml

FAILS = []


def fail(msg):
    FAILS.append(msg)
    print(f"FAIL {msg}")


def done(what):
    if FAILS:
        print(f"{what}: {len(FAILS)} finding(s)")
        sys.exit(1)
    print(f"{what}: ok")


# --- workflows -------------------------------------------------------------------------------

USES_PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@\s]+)?@[0-9a-f]{40}$")
# A `uses:` line with its trailing comment (the tag or branch the SHA was taken from).
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)\s*(#\s*\S.*)?$")

# Tool installs and what makes each one pinned.
INSTALLS = [
    (re.compile(r"\bpip3?\s+install\b|\bpython3?\s+-m\s+pip\s+install\b"),
     lambda cmd: "--require-hashes" in cmd and re.search(r"(-r|--requirement)\s+\S+", cmd),
     "pip install without --require-hashes -r FILE"),
    (re.compile(r"\bcargo\s+install\b"),
     lambda cmd: "--locked" in cmd and re.search(r"@\d+\.\d+\.\d+|--version\s+=?\d+\.\d+\.\d+", cmd),
     "cargo install without --locked and an exact version"),
    (re.compile(r"\bnpm\s+(install|i)\s+(-g|--global)\b"),
     lambda cmd: re.search(r"@\d+\.\d+\.\d+", cmd),
     "npm install -g without an exact version"),
    (re.compile(r"\bgo\s+install\b"),
     lambda cmd: "@latest" not in cmd and re.search(r"@v\d+\.\d+\.\d+", cmd),
     "go install without an exact version"),
    (re.compile(r"(curl|wget)[^|\n]*\|\s*(sudo\s+)?(ba)?sh\b"),
     lambda cmd: False,
     "a download piped into a shell"),
]


def workflows(root):
    wfdir = root / ".github" / "workflows"
    docs = {}
    for path in sorted(wfdir.glob("*.yml")):
        text = path.read_text()
        docs[path.name] = yaml.safe_load(text)
        for n, line in enumerate(text.splitlines(), 1):
            m = USES_LINE.match(line)
            if not m:
                continue
            ref = m.group(1).strip("'\"")
            if ref.startswith("./"):
                continue  # a workflow or action of this repository, at this commit
            if not USES_PINNED.match(ref):
                fail(f"{path.name}:{n}: `uses: {ref}` is not pinned to a full commit SHA")
            elif not m.group(2):
                fail(f"{path.name}:{n}: `uses: {ref}` has no trailing comment naming its tag")
        for job_name, job in (docs[path.name].get("jobs") or {}).items():
            for step in job.get("steps") or []:
                run = step.get("run")
                if not run:
                    continue
                for cmd in re.split(r"(?<!\\)\n", run.replace("\\\n", " ")):
                    for pattern, pinned, what in INSTALLS:
                        if pattern.search(cmd) and not pinned(cmd):
                            fail(f"{path.name} job {job_name}: {what}: {cmd.strip()}")
                    # In a job that may mint an OIDC token, apt installs must pin versions too.
                    perms = job.get("permissions") or {}
                    if isinstance(perms, dict) and perms.get("id-token") == "write":
                        if re.search(r"\bapt(-get)?\s+install\b", cmd) and not re.search(r"\S+=\S+", cmd):
                            fail(f"{path.name} job {job_name}: unpinned apt install in a job with id-token: write")

    ci, deploy = docs.get("ci.yml"), docs.get("deploy.yml")
    if not ci or not deploy:
        fail("ci.yml and deploy.yml must both exist")
        return
    # PyYAML reads the `on:` key as True.
    ci_on, dep_on = ci.get(True) or ci.get("on") or {}, deploy.get(True) or deploy.get("on") or {}

    # CI: every pull request and every push to main, running the test command.
    if "pull_request" not in ci_on:
        fail("ci.yml does not run on pull requests")
    push = ci_on.get("push") or {}
    if "main" not in (push.get("branches") or []):
        fail("ci.yml does not run on pushes to main")
    runs = [s.get("run", "") for j in ci["jobs"].values() for s in j.get("steps") or []]
    if not any(re.search(r"(^|\s)\./tests/run(\s|$)", r) and "--no-lint" not in r for r in runs):
        fail("ci.yml does not run the test command (./tests/run)")
    if any("id-token" in (j.get("permissions") or {}) for j in ci["jobs"].values()) \
            or "id-token" in (ci.get("permissions") or {}):
        fail("ci.yml must not ask for an OIDC token")

    # Deploy: never on a push (only after ci passed, or by hand from main), in an environment.
    if "push" in dep_on or "pull_request" in dep_on or "pull_request_target" in dep_on:
        fail("deploy.yml must not run on push or pull requests (it runs after ci passed)")
    wr = dep_on.get("workflow_run")
    if wr is not None:
        if wr.get("workflows") != ["ci"] or "completed" not in (wr.get("types") or []) \
                or wr.get("branches") != ["main"]:
            fail("deploy.yml's workflow_run must be ci, completed, on main only")
    if (deploy.get("permissions") or {}).get("id-token"):
        fail("deploy.yml grants id-token at the top level: only the deploy job may")
    jobs = deploy["jobs"]
    token_jobs = {n: j for n, j in jobs.items() if (j.get("permissions") or {}).get("id-token") == "write"}
    if not token_jobs:
        fail("no deploy.yml job asks for the OIDC token (id-token: write)")
    guard_text = json.dumps(jobs.get("guard", {}))
    for name, job in token_jobs.items():
        env = job.get("environment")
        env = env.get("name") if isinstance(env, dict) else env
        if env != "production":
            fail(f"deploy.yml job {name} holds id-token: write outside the protected environment (environment: {env})")
        needs = job.get("needs") or []
        needs = [needs] if isinstance(needs, str) else needs
        if "guard" not in needs:
            fail(f"deploy.yml job {name} does not need the guard job")
        if "workflow_dispatch" in dep_on:
            if "test" not in needs or jobs.get("test", {}).get("uses") != "./.github/workflows/ci.yml":
                fail(f"deploy.yml job {name}: a dispatched deploy must need the test job (ci.yml, called)")
            cond = str(job.get("if", ""))
            if "needs.test.result == 'success'" not in cond or "needs.guard.result == 'success'" not in cond:
                fail(f"deploy.yml job {name}: its `if` must require the guard and the tests")
        if wr is not None:
            if "conclusion" not in guard_text or "success" not in guard_text:
                fail("deploy.yml's guard does not check that the ci run succeeded")
    if "workflow_dispatch" in dep_on and "refs/heads/main" not in guard_text:
        fail("deploy.yml's guard does not refuse a dispatch from any ref but main")
    print(f"workflows: {len(docs)} file(s) read")
    done("workflows")


# --- build image ----------------------------------------------------------------------------

def pins(text, name):
    """name==version from a requirements file."""
    m = re.search(rf"^{re.escape(name)}==(\S+)", text, re.M | re.I)
    return m.group(1).rstrip(" \\") if m else None


def build_image(root):
    df = (root / "build-image" / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG\s+([A-Z0-9_]+)=(\S+)", df, re.M))
    need = ["TERRAFORM_VERSION", "TERRAFORM_SHA256_ARM64", "AWS_PROVIDER_VERSION", "ANSIBLE_VERSION",
            "POSTGRESQL_CLIENT_VERSION", "SESSION_MANAGER_PLUGIN_VERSION", "SESSION_MANAGER_PLUGIN_COMMIT"]
    for a in need:
        if a not in args:
            fail(f"Dockerfile has no ARG {a}=<pinned value>")
    if FAILS:
        return done("build image")
    tf = args["TERRAFORM_VERSION"]

    # Terraform: the buildspec's check, the workflows, the roots' required_version.
    bs = yaml.safe_load((root / "terraform/buildspecs/terraform.yml").read_text())
    bs_tf = (bs.get("env", {}).get("variables") or {}).get("PAIRSCALE_TERRAFORM_VERSION")
    if bs_tf != tf:
        fail(f"buildspecs/terraform.yml checks terraform {bs_tf}, the Dockerfile installs {tf}")
    for wf in ("ci.yml", "deploy.yml"):
        w = yaml.safe_load((root / ".github/workflows" / wf).read_text())
        if (w.get("env") or {}).get("TERRAFORM_VERSION") != tf:
            fail(f"{wf} installs terraform {(w.get('env') or {}).get('TERRAFORM_VERSION')}, the Dockerfile {tf}")
    inst = (root / ".github/scripts/install-terraform.sh").read_text()
    if f"{tf}/arm64) sum={args['TERRAFORM_SHA256_ARM64']}" not in inst:
        fail(f"install-terraform.sh pins another arm64 checksum for terraform {tf} than the Dockerfile")
    if "TERRAFORM_SHA256_AMD64" in args and f"{tf}/amd64) sum={args['TERRAFORM_SHA256_AMD64']}" not in inst:
        fail(f"install-terraform.sh pins another amd64 checksum for terraform {tf} than the Dockerfile")
    prov = args["AWS_PROVIDER_VERSION"]
    for vf in sorted((root / "terraform/envs").glob("*/*/versions.tf")) + sorted((root / "terraform/envs").glob("*/versions.tf")):
        text = vf.read_text()
        m = re.search(r'required_version\s*=\s*"~>\s*(\d+\.\d+)\.\d+"', text)
        if m and not tf.startswith(m.group(1) + "."):
            fail(f"{vf.relative_to(root)} requires terraform ~> {m.group(1)}.x, the Dockerfile installs {tf}")
        m = re.search(r'hashicorp/aws"\s*\n\s*version\s*=\s*"~>\s*(\d+\.\d+)\.(\d+)"', text)
        if m and not (prov.startswith(m.group(1) + ".") and int(prov.split(".")[2]) >= int(m.group(2))):
            fail(f"{vf.relative_to(root)} requires hashicorp/aws ~> {m.group(1)}.{m.group(2)}, the Dockerfile mirrors {prov}")
    sums = (root / "build-image/aws-provider.sha256").read_text()
    if f"hashicorp/aws {prov}:" not in sums:
        fail(f"build-image/aws-provider.sha256 is not the digest list of hashicorp/aws {prov}")

    # Ansible and boto3: the Dockerfile, its requirements (hashed), the test setup's venv.
    req = (root / "build-image/requirements.txt").read_text()
    setup = (root / "tests/requirements/ansible.txt").read_text()
    if pins(req, "ansible") != args["ANSIBLE_VERSION"]:
        fail(f"build-image/requirements.txt pins ansible {pins(req, 'ansible')}, the Dockerfile says {args['ANSIBLE_VERSION']}")
    for pkg in ("ansible", "boto3"):
        if pins(req, pkg) != pins(setup, pkg):
            fail(f"{pkg}: build-image/requirements.txt pins {pins(req, pkg)}, tests/requirements/ansible.txt (tests/setup/25-ansible.sh) {pins(setup, pkg)}")
    entries = re.split(r"\n(?=[A-Za-z0-9])", "\n".join(l for l in req.splitlines() if not l.startswith("#")).strip())
    for e in entries:
        if "==" not in e or "--hash=sha256:" not in e:
            fail(f"build-image/requirements.txt: {e.splitlines()[0]} is not pinned with a hash")
    if "--require-hashes" not in df:
        fail("the Dockerfile installs its Python packages without --require-hashes")

    # Every download in the Dockerfile is checked against a pinned digest.
    for n, line in enumerate(df.splitlines(), 1):
        if re.search(r"\b(curl|wget)\b", line) and "apt-get" not in line and not re.search(r"^\s*curl=", line.strip()):
            if "sha256sum -c" not in df:
                fail(f"Dockerfile:{n}: a download with no sha256sum -c")
    if "sha256sum -c" not in df or "aws-provider.sha256" not in df:
        fail("the Dockerfile does not check Terraform and the provider against pinned digests")
    # apt packages at pinned versions, in every stage.
    for apt in re.finditer(r"apt-get install[^\n]*\\\n((?:.*\\\n)*)", df):
        for pkg in re.findall(r"^\s+(\S+)\s*\\?$", apt.group(1), re.M):
            if pkg.startswith("&&"):
                break
            if "=" not in pkg:
                fail(f"Dockerfile: apt package {pkg} without a pinned version")
    # Source fetched with git: by a pinned commit, checked after the checkout.
    commit = args["SESSION_MANAGER_PLUGIN_COMMIT"]
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        fail(f"SESSION_MANAGER_PLUGIN_COMMIT {commit} is not a full commit id")
    for n, line in enumerate(df.splitlines(), 1):
        m = re.search(r"\bgit\s+(clone|fetch)\b.*", line)
        if m and not re.search(r'"\$\{([A-Z0-9_]+_COMMIT)\}"', line):
            fail(f"Dockerfile:{n}: git {m.group(1)} of something else than a pinned *_COMMIT")
        elif m:
            arg = re.search(r'"\$\{([A-Z0-9_]+_COMMIT)\}"', line).group(1)
            if f'test "$(git rev-parse HEAD)" = "${{{arg}}}"' not in df:
                fail(f"Dockerfile:{n}: the checkout of {arg} is not checked against it (git rev-parse HEAD)")
    if "github.com/aws/session-manager-plugin.git" not in df:
        fail("the Dockerfile does not build the Session Manager plugin from aws/session-manager-plugin")
    if not re.search(r'session-manager-plugin --version \| grep -qx "\$\{SESSION_MANAGER_PLUGIN_VERSION\}"', df):
        fail("the image does not check that its session-manager-plugin is SESSION_MANAGER_PLUGIN_VERSION")

    # The tag the deploy pushes and the tag the module uses are made from the same files.
    ecr = (root / "terraform/modules/orchestrator/ecr.tf").read_text()
    script = (root / ".github/scripts/build-image-tag.sh").read_text()
    files_tf = re.search(r"build_image_files\s*=\s*\[([^\]]*)\]", ecr)
    files_sh = re.search(r"for f in ([^;]+); do", script)
    if not files_tf or not files_sh or re.findall(r'"([^"]+)"', files_tf.group(1)) != files_sh.group(1).split():
        fail("ecr.tf's build_image_files and build-image-tag.sh's files differ")
    on_disk = sorted(p.name for p in (root / "build-image").iterdir() if p.is_file())
    if files_tf and sorted(re.findall(r'"([^"]+)"', files_tf.group(1))) != on_disk:
        fail(f"the build image tag covers {files_tf.group(1).strip()}, build-image/ holds {on_disk}")
    print(f"build image: terraform {tf}, hashicorp/aws {prov}, ansible {args['ANSIBLE_VERSION']}, "
          f"postgresql-client {args['POSTGRESQL_CLIENT_VERSION']}, "
          f"session-manager-plugin {args['SESSION_MANAGER_PLUGIN_VERSION']} ({commit[:12]})")
    done("build image")


# --- the deploy role's trust policy ---------------------------------------------------------

def trust_policy(path, owner, repo, env):
    policy = json.loads(pathlib.Path(path).read_text())
    host = "token.actions.githubusercontent.com"
    stmts = policy.get("Statement")
    stmts = [stmts] if isinstance(stmts, dict) else (stmts or [])
    if not stmts:
        fail("the trust policy has no statement")
    for i, st in enumerate(stmts):
        if st.get("Effect") != "Allow":
            continue
        actions = st.get("Action")
        actions = [actions] if isinstance(actions, str) else actions
        if actions != ["sts:AssumeRoleWithWebIdentity"]:
            fail(f"statement {i}: actions {actions}, expected only sts:AssumeRoleWithWebIdentity")
        fed = (st.get("Principal") or {}).get("Federated")
        if not isinstance(fed, str) or not fed.endswith(f":oidc-provider/{host}"):
            fail(f"statement {i}: principal {st.get('Principal')} is not the GitHub OIDC provider")
        cond = st.get("Condition") or {}
        allowed_ops = {"StringEquals", "StringLike"}
        subs, auds = [], []
        for op, kv in cond.items():
            for key, val in kv.items():
                vals = [val] if isinstance(val, str) else val
                if key == f"{host}:sub":
                    if op not in allowed_ops:
                        fail(f"statement {i}: the sub condition uses {op}, not StringEquals/StringLike")
                    subs += [(op, v) for v in vals]
                elif key == f"{host}:aud":
                    if op != "StringEquals":
                        fail(f"statement {i}: the aud condition uses {op}, not StringEquals")
                    auds += vals
        if auds != ["sts.amazonaws.com"]:
            fail(f"statement {i}: aud must be exactly sts.amazonaws.com, is {auds}")
        if not subs:
            fail(f"statement {i}: no condition on {host}:sub (any repository could assume the role)")
        allowed = {f"repo:{owner}/{repo}:environment:{env}", f"repo:{owner}/{repo}:ref:refs/heads/main"}
        for op, v in subs:
            if v not in allowed:
                fail(f"statement {i}: sub {op} {v!r} is not pinned to repo:{owner}/{repo} and the environment {env} or main")
            if "*" in v or "?" in v:
                fail(f"statement {i}: sub {v!r} has a wildcard")
    done("trust policy")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "workflows":
        workflows(pathlib.Path(sys.argv[2]))
    elif cmd == "build-image":
        build_image(pathlib.Path(sys.argv[2]))
    elif cmd == "trust-policy":
        trust_policy(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
