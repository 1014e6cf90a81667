"""The orchestrator's Terraform held against the Rust code it deploys.

    python3 contract.py env          TERRAFORM_JSON
    python3 contract.py iam          TERRAFORM_JSON
    python3 contract.py fleet-config TERRAFORM_JSON FIXTURE
    python3 contract.py fleet-config-bounds WORKDIR
    python3 contract.py db-tls-bounds WORKDIR

TERRAFORM_JSON holds what Terraform evaluates for terraform/envs/example/orchestrator (written
by tests/checks/62-terraform-contract.sh with `terraform console`): per function its binary,
the names of its environment variables and its role's statements; the VPC functions; and the
fleet configuration JSON the module writes to SSM.

env           per function: the variables its binary reads == the variables Terraform sets,
              but for those Terraform sets only with an input given (CONDITIONAL_ENV), which
              the binary must not require.
iam           per function: the AWS actions its binary can call == the actions of its own
              statements; the rest of its role is an allow-list of platform actions.
fleet-config  the configuration JSON passes FleetConfig::from_json (run, through crates/core's
              check_fleet_config example) and
              equals FIXTURE, which a Rust test parses with FleetConfig::from_json. With
              PAIRSCALE_UPDATE_FIXTURES=1 the fixture is rewritten instead.
codebuild TERRAFORM_JSON OUTPUTS_JSON
              the Terraform build's role == the actions the pairs root's resource types need
              (PAIRS_RESOURCE_ACTIONS) + its state backend + CodeBuild's own; the Ansible
              build's role == the AWS calls of the playbooks' AWS modules and plugins
              (ANSIBLE_AWS_ACTIONS) + CodeBuild's own; on "*" only actions AWS authorises on
              "*" alone; a tag that any role's condition reads can be written only when the
              resource is made, or never under a pairscale:* key. OUTPUTS_JSON is
              `terraform output -json` of tests/terraform after its apply to the emulator (the
              rendered policies: their resources are unknown to `terraform console`).
fleet-config-bounds
              the module's fleet_config variable (type, defaults, validation blocks) accepts
              exactly what FleetConfig accepts, probed at and beyond every bound (terraform
              console on a provider-less copy of the variable; WORKDIR holds it).
db-tls-bounds the module's dispatcher_db_sslmode and dispatcher_db_ca_bundle accept disable and
              verify-full, a PEM bundle of up to 8,192 characters with verify-full, and their
              defaults (verify-full, no bundle), and refuse anything else (require, prefer, a
              bundle with disable, one too large or not PEM) with an error naming the variable
              (terraform console, as fleet-config-bounds; WORKDIR holds the copy).

Standard library only. Prints what it compared and every difference; exits 1 on any.
"""

import json
import os
import re
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from rustsrc import (IDENT, Unmodelled, last_type_name, load, matching, split_top,  # noqa: E402
                     string_consts)

ROOT = Path(os.environ.get("PAIRSCALE_ROOT") or Path(__file__).resolve().parents[2]).resolve()
LAMBDAS = ROOT / "crates/lambdas"

# AWS SDK crate -> IAM service prefix.
SDK_PREFIX = {"dynamodb": "dynamodb", "ssm": "ssm", "ec2": "ec2", "ecs": "ecs", "sfn": "states",
              "codebuild": "codebuild", "kms": "kms", "s3": "s3", "cloudwatch": "cloudwatch",
              "cloudwatchlogs": "logs", "lambda": "lambda"}

# Actions a call implies beyond its own, with the reason. Keyed by adapter method.
IMPLIED = {
    # FleetParams::secret reads a SecureString with WithDecryption: SSM decrypts it with the
    # parameter's KMS key in the caller's name.
    ("FleetParams", "secret"): {"kms:Decrypt"},
}

# What every function's role carries besides the calls of its code.
PLATFORM_ALL = {
    "logs:CreateLogStream", "logs:PutLogEvents",  # its own log group
    "xray:PutTraceSegments", "xray:PutTelemetryRecords",  # active tracing
}
# ... and a function in the VPC (Lambda creates its network interfaces in the role's name).
PLATFORM_VPC = {
    "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
}

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg)


def ok(msg):
    print("ok   " + msg)


def finish():
    if failures:
        print(f"{len(failures)} difference(s)", file=sys.stderr)
        sys.exit(1)


# ----- the binaries ------------------------------------------------------------------------

def cargo_bins():
    """[[bin]] name -> path of crates/lambdas/Cargo.toml."""
    text = (LAMBDAS / "Cargo.toml").read_text(encoding="utf-8")
    bins = {}
    for block in re.split(r"^\[\[bin\]\]\s*$", text, flags=re.M)[1:]:
        block = re.split(r"^\[", block, flags=re.M)[0]
        name = re.search(r'^name\s*=\s*"([^"]+)"', block, re.M)
        path = re.search(r'^path\s*=\s*"([^"]+)"', block, re.M)
        if name and path:
            bins[name.group(1)] = LAMBDAS / path.group(1)
    return bins


def bin_file(binary):
    bins = cargo_bins()
    if binary not in bins:
        raise Unmodelled(f"{binary} is not a [[bin]] of crates/lambdas/Cargo.toml")
    path = bins[binary]
    for rf in load(ROOT, path.relative_to(ROOT).parent):
        if rf.path == path:
            return rf
    raise Unmodelled(f"{path} does not exist")


def config_var(binfile, name):
    """Occurrences of variable `name` in the bin: the fields and methods used on it, and
    whether it is used whole (handed on, cloned, ...)."""
    m = binfile.masked
    used, whole = set(), False
    for hit in re.finditer(r"(?<![\w.])" + name + r"\b", m):
        if re.match(r"\s*=", m[hit.end():]) and re.search(r"\blet\s+(mut\s+)?$", m[:hit.start()]):
            continue  # its definition
        if re.match(r"\s*::", m[hit.end():]):
            continue  # a path (`config::Config`), not the variable
        after = re.match(r"\s*\.\s*(" + IDENT + r")(\s*\()?", m[hit.end():])
        if after:
            used.add((after.group(1), bool(after.group(2))))
        else:
            whole = True
    return used, whole


# ----- environment -------------------------------------------------------------------------

def env_of_config_type(config_rs, type_name, consts):
    """field -> (env var names, required) for `type_name::from_lookup` in config.rs."""
    (from_lookup,) = config_rs.methods(type_name, "from_lookup") or [None]
    if from_lookup is None:
        raise Unmodelled(f"{type_name}::from_lookup not found in {config_rs.rel}")
    m, src = from_lookup.masked(), from_lookup.text()
    envs = lambda s: sorted(set(re.findall(r"\b(ENV_\w+)\b", s)))  # noqa: E731
    fields = {}

    def required(segment, env):
        if re.search(r"\brequired\s*\(\s*" + env + r"\b", segment):
            return True
        g = re.search(r"(\bmatch\s+)?\bget\s*\(\s*" + env + r"\s*\)", segment)
        if not g:
            return None
        if g.group(1):  # match get(ENV) { None => .., Some(v) => .. }
            arm = re.search(r"\bNone\s*=>\s*(.*?)(?:,|\n)", segment[g.end():], re.S)
            if not arm:
                return None
            return bool(re.match(r"\s*(return\b|Err\b|\{?\s*return\b)", arm.group(1)))
        # get(ENV).a(..).b(..): required when the chain turns None into an error.
        chain, p = [], g.end()
        while True:
            cm = re.match(r"\s*\.\s*(" + IDENT + r")\s*(\()?", segment[p:])
            if not cm:
                break
            chain.append(cm.group(1))
            p += cm.end()
            if cm.group(2):
                p = matching(segment, p - 1)
        for c in chain:
            if c in ("ok_or", "ok_or_else", "expect", "unwrap"):
                return True
            if c.startswith("unwrap_or") or c in ("ok", "filter", "map", "and_then", "is_some"):
                if c.startswith("unwrap_or"):
                    return False
                continue
        return False

    # `let field = ..;` statements, up to the next `let` of the body's top level.
    lets = list(re.finditer(r"\blet\s+(" + IDENT + r")\s*=", m))
    for i, hit in enumerate(lets):
        end = lets[i + 1].start() if i + 1 < len(lets) else m.rfind("Ok(")
        seg = m[hit.end():end]
        for env in envs(seg):
            fields.setdefault(hit.group(1), {})[env] = required(seg, env)
    # The struct literal `Ok(Type { a, b: expr, .. })`.
    lit = re.search(r"\bOk\s*\(\s*" + type_name + r"\s*\{", m)
    if not lit:
        raise Unmodelled(f"{type_name}::from_lookup does not end in Ok({type_name} {{ .. }})")
    body = m[lit.end():matching(m, lit.end() - 1) - 1]
    for part in split_top(body):
        fm = re.match(r"\s*(" + IDENT + r")\s*(?::\s*(.*))?$", part, re.S)
        if not fm:
            raise Unmodelled(f"cannot read {part.strip()!r} in {type_name}'s literal")
        if fm.group(2):
            for env in envs(fm.group(2)):
                fields.setdefault(fm.group(1), {})[env] = required(fm.group(2), env)
    out = {}
    for field, by_env in fields.items():
        for env, req in by_env.items():
            if env not in consts:
                raise Unmodelled(f"{env} (read by {type_name}) is not a string constant of {config_rs.rel}")
            if req is None:
                raise Unmodelled(f"cannot tell whether {type_name} requires {env}: teach contract.py")
        if field not in config_rs.structs.get(type_name, {}):
            continue  # a local that is not a field (e.g. a closure)
        out[field] = ({consts[e] for e in by_env}, any(by_env.values()))
    missing = set(config_rs.structs.get(type_name, {})) - set(out)
    for field in sorted(missing):
        print(f"note {type_name}.{field} is not read from the environment")
    return out


def fields_used_by_method(config_rs, type_name, method, seen=None):
    seen = seen or set()
    if method in seen:
        return set()
    seen.add(method)
    out = set()
    for fn in config_rs.methods(type_name, method):
        for name, call in re.findall(r"\bself\s*\.\s*(" + IDENT + r")(\s*\()?", fn.masked()):
            if call:
                out |= fields_used_by_method(config_rs, type_name, name, seen)
            else:
                out.add(name)
    return out


def env_read_by(binary):
    """(variables the binary reads, those of them it requires, explanation lines)."""
    bf = bin_file(binary)
    (config_rs,) = [f for f in load(ROOT, "crates/lambdas/src") if f.rel.endswith("src/config.rs")]
    consts = string_consts(config_rs)
    reads, required, why = set(), set(), []
    for var, type_name in re.findall(r"\blet\s+(" + IDENT + r")\s*=\s*(" + IDENT + r")\s*::\s*from_env\s*\(",
                                     bf.masked):
        if type_name not in config_rs.structs:
            raise Unmodelled(f"{bf.rel}: {type_name}::from_env is not a configuration of {config_rs.rel}")
        fields = env_of_config_type(config_rs, type_name, consts)
        used, whole = config_var(bf, var)
        used_fields = set()
        for name, is_call in used:
            if is_call:
                used_fields |= fields_used_by_method(config_rs, type_name, name)
            else:
                used_fields.add(name)
        if whole:
            used_fields |= set(fields)
        for field, (envs, req) in sorted(fields.items()):
            if field in used_fields or req:
                reads |= envs
                if req:
                    required |= envs
                why.append(f"{binary}: {type_name}.{field} <- {', '.join(sorted(envs))}"
                           f"{' (required)' if req else ''}{'' if field in used_fields else ' (unused, but required)'}")
    for name in re.findall(r"\b(ENV_\w+)\b", bf.masked):
        reads.add(consts[name])
        why.append(f"{binary}: reads {consts[name]} itself")
    for name in re.findall(r'env\s*::\s*var(?:_os)?\s*\(\s*"([^"]+)"', bf.src):
        reads.add(name)
        why.append(f"{binary}: reads {name} itself")
    if re.search(r"\bruntime\s*::\s*init_logging\s*\(", bf.masked):
        (rt,) = [f for f in load(ROOT, "crates/lambdas/src") if f.rel.endswith("src/runtime.rs")]
        (init,) = rt.free("init_logging")
        if re.search(r"EnvFilter\s*::\s*(try_)?from_default_env", init.masked()):
            reads.add("RUST_LOG")
            why.append(f"{binary}: runtime::init_logging reads RUST_LOG (EnvFilter's default)")
        elif "env" in init.masked().lower():
            raise Unmodelled("runtime::init_logging reads the environment in a way contract.py does not know")
    return reads, required, why


def stray_env_reads():
    """Environment reads outside the configuration types: each would be a variable no check
    sees. Lambda-set AWS_* variables are read by the SDK and runtime, not by this code."""
    out = []
    for rf in load(ROOT, "crates/lambdas/src", "crates/aws/src", "crates/core/src", "crates/media/src"):
        for hit in re.finditer(r"\benv\s*::\s*var(?:_os)?\s*\(", rf.masked):
            fn = next((f for f in rf.fns if f.body[0] <= hit.start() < f.body[1]), None)
            if rf.rel.endswith("lambdas/src/config.rs") and fn and fn.name == "from_env":
                continue
            if rf.rel.startswith("crates/lambdas/src/bin/"):
                continue  # read by env_read_by
            line = rf.src.count("\n", 0, hit.start()) + 1
            out.append(f"{rf.rel}:{line}")
    return out


# Variables a function reads that Terraform sets only when the input behind them is given
# (an empty value would not mean "unset"), with that input. The evaluated root
# (envs/example/orchestrator) leaves them unset; tests/terraform gives them, and verify.py checks
# them on the function. Each must be optional to the binary and named in the module's locals.tf.
CONDITIONAL_ENV = {
    ("drain", "PAIRSCALE_DISPATCHER_DB_CA_PARAM"): "dispatcher_db_ca_bundle",
}


def check_env(tf):
    for stray in stray_env_reads():
        fail(f"environment read outside a configuration type at {stray}: model it in contract.py")
    locals_tf = (ROOT / "terraform/modules/orchestrator/locals.tf").read_text(encoding="utf-8")
    for fn, binary in sorted(tf["binaries"].items()):
        try:
            reads, required, why = env_read_by(binary)
        except Unmodelled as e:
            fail(f"{fn}: {e}")
            continue
        for w in why:
            print("     " + w)
        sets = set(tf["environment"][fn])
        reserved = {k for k in sets if k.startswith("AWS_") or k.startswith("LAMBDA_")}
        if reserved:
            fail(f"{fn}: Terraform sets reserved variables {sorted(reserved)}")
        conditional = {v: given for (f, v), given in CONDITIONAL_ENV.items() if f == fn}
        for v, given in sorted(conditional.items()):
            if v not in reads:
                fail(f"{fn} ({binary}): contract.py's CONDITIONAL_ENV lists {v}, which it never reads")
            elif v in required:
                fail(f"{fn} ({binary}): requires {v}, which Terraform sets only with {given}")
            elif not re.search(r"\b" + v + r"\b", locals_tf):
                fail(f"{fn}: terraform/modules/orchestrator/locals.tf never sets {v} (set with {given})")
            else:
                print(f"     {fn}: {v} is optional to {binary} and set with {given} only"
                      f" ({'set' if v in sets else 'unset'} here)")
        unset = (reads - sets) - set(conditional)
        if sets == reads or (not unset and sets <= reads):
            ok(f"{fn} ({binary}): Terraform sets exactly what it reads: {sorted(sets)}"
               + (f", and {sorted(reads - sets)} with the inputs behind them" if reads - sets else ""))
        else:
            if unset:
                fail(f"{fn} ({binary}): reads {sorted(unset)}, which Terraform does not set")
            if sets - reads:
                fail(f"{fn} ({binary}): Terraform sets {sorted(sets - reads)}, which it never reads")
    finish()


# ----- IAM ---------------------------------------------------------------------------------

class Adapters:
    """The AWS adapters (crates/aws/src): methods by owner type, call edges, and the IAM
    actions each method's own body names."""

    def __init__(self):
        self.files = load(ROOT, "crates/aws/src")
        self.by_owner = {}
        for rf in self.files:
            for fn in rf.fns:
                if fn.owner:
                    self.by_owner.setdefault(fn.owner, []).append(fn)
        self.structs = {k: v for rf in self.files for k, v in rf.structs.items()}

    def has(self, owner):
        return owner in self.by_owner

    def methods(self, owner, name=None):
        return [f for f in self.by_owner.get(owner, []) if name is None or f.name == name]

    def trait_methods(self, owner, trait):
        return [f for f in self.by_owner.get(owner, []) if f.trait == trait]

    @staticmethod
    def own_actions(fn):
        m, src = fn.masked(), fn.text()
        acts = set()
        for hit in re.finditer(r"\bclassify\s*\(\s*\"", m):
            lit = re.match(r'"([^"]*)"', src[hit.end() - 1:])
            acts.add(lit.group(1))
        # SDK operations on the client, whether or not they are classified.
        sdks = sorted(set(re.findall(r"\baws_sdk_(\w+)", fn.file.masked)))
        for op in re.findall(r"\bclient\s*\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)", m):
            if len(sdks) != 1 or sdks[0] not in SDK_PREFIX:
                raise Unmodelled(f"{fn.where()}: client.{op}() of an unknown AWS service ({sdks})")
            acts.add(f"{SDK_PREFIX[sdks[0]]}:{''.join(w.title() for w in op.split('_'))}")
        for a in list(acts):
            if not re.fullmatch(r"[a-z0-9-]+:[A-Z][A-Za-z0-9]+", a):
                raise Unmodelled(f"{fn.where()}: {a!r} is not an IAM action")
        if "dynamodb:TransactWriteItems" in acts:
            # No IAM action of its own: each item is authorised as the operation it performs.
            # The items may be built by helpers beside the call (a fence check every fenced
            # transaction shares), so the builders are looked for in the whole file.
            acts.discard("dynamodb:TransactWriteItems")
            for builder, action in (("ConditionCheck", "ConditionCheckItem"), ("Put", "PutItem"),
                                    ("Update", "UpdateItem"), ("Delete", "DeleteItem")):
                if re.search(r"\b" + builder + r"\s*::\s*builder\b", fn.file.masked):
                    acts.add("dynamodb:" + action)
        return acts

    def callees(self, fn):
        m = fn.masked()
        out = []
        for name in re.findall(r"\bself\s*\.\s*(" + IDENT + r")\s*\(", m):
            out += self.methods(fn.owner, name)
        for field, name in re.findall(r"\bself\s*\.\s*(" + IDENT + r")\s*\.\s*(" + IDENT + r")\s*\(", m):
            ftype = self.structs.get(fn.owner, {}).get(field)
            if ftype:
                out += self.methods(last_type_name(ftype), name)
        for name in re.findall(r"(?<![\w.:])(" + IDENT + r")\s*\(", m):
            # A free function of this file, else of any adapter file (`use super::..`).
            out += fn.file.free(name) or [f for rf in self.files for f in rf.free(name)]
        return out

    def calling_methods(self):
        """Every adapter function whose own body makes an AWS call."""
        return [f for rf in self.files for f in rf.fns if self.own_actions(f)]

    def reach(self, roots):
        """Actions reachable from root methods, with the path that reaches each."""
        acts, seen, todo = {}, set(), [(r, [repr(r)]) for r in roots]
        self.reached = set()
        while todo:
            fn, path = todo.pop()
            if id(fn) in seen:
                continue
            seen.add(id(fn))
            self.reached.add(id(fn))
            for a in self.own_actions(fn):
                acts.setdefault(a, " -> ".join(path))
            for a in IMPLIED.get((fn.owner, fn.name), ()):
                acts.setdefault(a, " -> ".join(path) + " (implied)")
            for c in self.callees(fn):
                todo.append((c, path + [repr(c)]))
        return acts


def handler_struct(name):
    for rf in load(ROOT, "crates/lambdas/src/handlers"):
        if name in rf.structs:
            return rf, rf.structs[name]
    raise Unmodelled(f"handler struct {name} not found in crates/lambdas/src/handlers")


def roots_of(binary, adapters):
    """The adapter methods a binary can call: for each adapter it hands its handler, the
    trait methods the handler calls on that field (all of them when the handler passes the
    field on); and the methods it calls itself on adapters it holds."""
    bf = bin_file(binary)
    m = bf.masked
    roots = []
    for hit in re.finditer(r"\b(" + IDENT + r"Handler)\s*\{", m):
        hfile, hfields = handler_struct(hit.group(1))
        body = m[hit.end():matching(m, hit.end() - 1) - 1]
        for part in split_top(body):
            fm = re.match(r"\s*(" + IDENT + r")\s*(?::\s*(.*))?$", part, re.S)
            if not fm or fm.group(1) not in hfields:
                raise Unmodelled(f"{bf.rel}: cannot read {part.strip()[:60]!r} in the {hit.group(1)} literal")
            if "dyn " not in hfields[fm.group(1)]:
                continue  # plain data (a project name, a TTL)
            if not fm.group(2) or not re.match(r"\s*Arc\s*::\s*new\s*\(", fm.group(2)):
                raise Unmodelled(f"{bf.rel}: {hit.group(1)}.{fm.group(1)} is not Arc::new(Adapter..): "
                                 "contract.py cannot tell which adapter it is")
            field = fm.group(1)
            adapter = re.search(r"Arc\s*::\s*new\s*\(\s*(?:[\w:]*::)?([A-Z]\w*)", fm.group(2)).group(1)
            trait = last_type_name(hfields[field])
            if not adapters.has(adapter):
                continue
            calls, whole = set(), False
            for use in re.finditer(r"\bself\s*\.\s*" + field + r"\b", hfile.masked):
                call = re.match(r"\s*\.\s*(" + IDENT + r")\s*\(", hfile.masked[use.end():])
                if call and call.group(1) not in ("as_ref", "clone", "as_deref"):
                    calls.add(call.group(1))
                else:
                    whole = True
            impl = adapters.trait_methods(adapter, trait)
            if not impl:
                raise Unmodelled(f"{adapter} does not implement {trait} in crates/aws/src")
            chosen = impl if whole else [f for f in impl if f.name in calls]
            unknown = calls - {f.name for f in impl}
            if unknown:
                raise Unmodelled(f"{hfile.rel}: self.{field}.{sorted(unknown)} is not a {trait} method of {adapter}")
            roots += chosen
    for var, adapter in re.findall(r"\blet\s+(" + IDENT + r")\s*=\s*(?:[\w:]*::)?([A-Z]\w*)\s*::\s*new\s*\(", m):
        if not adapters.has(adapter):
            continue
        used, whole = config_var(bf, var)
        if whole:
            roots += adapters.methods(adapter)
        for name, is_call in used:
            if is_call:
                roots += adapters.methods(adapter, name)
    return roots


def check_iam(tf):
    for crate in ("core", "media", "dispatcher", "esl", "lambdas"):
        for rf in load(ROOT, f"crates/{crate}/src"):
            if re.search(r"\baws_sdk_\w+\s*::", rf.masked) and not rf.rel.startswith("crates/lambdas/src/bin/"):
                fail(f"{rf.rel} uses the AWS SDK outside crates/aws: its calls are not modelled")
    adapters = Adapters()
    reached = set()
    for fn, binary in sorted(tf["binaries"].items()):
        try:
            roots = roots_of(binary, adapters)
            code = adapters.reach(roots)
            reached |= adapters.reached
        except Unmodelled as e:
            fail(f"{fn}: {e}")
            continue
        for a, path in sorted(code.items()):
            print(f"     {fn}: {a:32} via {path}")
        statements = tf["permissions"][fn]
        platform = PLATFORM_ALL | (PLATFORM_VPC if fn in tf["vpc_functions"] else set())
        # The statements that carry the function's own calls: every statement with an action
        # outside the platform allow-list.
        own = {a for st in statements for a in st["actions"] if a not in platform or a in code}
        granted = {a for st in statements for a in st["actions"]}
        for st in statements:
            for a in st["actions"]:
                if a == "*" or a.endswith(":*"):
                    fail(f"{fn}: statement {st['sid']} grants a wildcard action {a}")
        missing = set(code) - granted
        extra = own - set(code)
        if not missing and not extra:
            ok(f"{fn} ({binary}): role grants exactly its calls {sorted(code)} + platform "
               f"{sorted(granted - set(code))}")
        for a in sorted(missing):
            fail(f"{fn} ({binary}): calls {a} (via {code[a]}) but its role does not grant it")
        for a in sorted(extra):
            sid = [st["sid"] for st in statements if a in st["actions"]]
            fail(f"{fn} ({binary}): role grants {a} (statement {', '.join(sid)}) which the code never calls")
        unused_platform = (platform - granted) & PLATFORM_ALL
        if unused_platform:
            fail(f"{fn}: role lacks platform actions {sorted(unused_platform)} (logs, tracing)")
        if fn in tf["vpc_functions"] and not PLATFORM_VPC <= granted:
            fail(f"{fn}: in the VPC but its role lacks {sorted(PLATFORM_VPC - granted)}")
    for f in adapters.calling_methods():
        if id(f) not in reached:
            print(f"note {f} ({f.where()}) makes AWS calls that no function reaches")
    finish()


# ----- CodeBuild roles ---------------------------------------------------------------------

# What the AWS provider (hashicorp/aws ~> 5.100, internal/service/...) calls to create, read,
# update and delete each resource type the pairs root may declare. A type the root declares
# that is missing here fails the check: teach the table first.
EBS_KEY = {"kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext",
           "kms:ReEncryptFrom", "kms:ReEncryptTo"}
PAIRS_RESOURCE_ACTIONS = {
    # ec2/ec2_instance.go. Create: RunInstances with the tags and volume_tags as tag
    # specifications (CreateTags on creation), the instance profile's role passed, then the
    # update step the create ends in (MonitorInstances for monitoring = true). Read:
    # DescribeInstances, DescribeInstanceAttribute (termination/stop protection, shutdown
    # behaviour, user data), DescribeInstanceTypes and DescribeInstanceCreditSpecifications
    # (burstable types), DescribeVolumes and DescribeTags (block devices and their tags),
    # DescribeImages (the AMI's root device), DescribeVpcs/DescribeSubnets (security group ids
    # vs names in the VPC), DescribeNetworkInterfaces (the primary interface). Update:
    # ModifyInstanceAttribute (type, groups, flags) between StopInstances and StartInstances,
    # ModifyInstanceMetadataOptions, Monitor/UnmonitorInstances, ModifyVolume (root volume
    # size), CreateTags/DeleteTags (tags changed). Delete: TerminateInstances. The root volume
    # is encrypted with the fleet's key, so EC2 uses the key in the caller's name at launch and
    # start (EBS user guide, "Requirements for Amazon EBS encryption": EBS_KEY below).
    "aws_instance": EBS_KEY | {
        "ec2:RunInstances", "ec2:CreateTags", "iam:PassRole", "ec2:MonitorInstances",
        "ec2:DescribeInstances", "ec2:DescribeInstanceAttribute", "ec2:DescribeInstanceTypes",
        "ec2:DescribeInstanceCreditSpecifications", "ec2:DescribeVolumes", "ec2:DescribeTags",
        "ec2:DescribeImages", "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeNetworkInterfaces",
        "ec2:ModifyInstanceAttribute", "ec2:StopInstances", "ec2:StartInstances",
        "ec2:ModifyInstanceMetadataOptions", "ec2:UnmonitorInstances", "ec2:ModifyVolume",
        "ec2:DeleteTags", "ec2:TerminateInstances",
    },
    # ec2/ec2_instance_state.go (a warm pair's node stopped, a serving one's running). Create
    # and update: DescribeInstances (waiting until the instance is neither pending nor
    # stopping, and for the state asked), then StopInstances or StartInstances when it is not
    # in that state already. Read: DescribeInstanceStatus (IncludeAllInstances, for a stopped
    # instance too). Delete: no call (the instance is left as it is; aws_instance ends it).
    "aws_ec2_instance_state": EBS_KEY | {
        "ec2:DescribeInstances", "ec2:StopInstances", "ec2:StartInstances", "ec2:DescribeInstanceStatus",
    },
    # ec2/vpc_security_group.go. Create: CreateSecurityGroup (tag specifications), then the
    # default egress rule revoked; read DescribeSecurityGroups; in-line rules (none here, but
    # the type supports them) Authorize/Revoke and UpdateSecurityGroupRuleDescriptions*;
    # delete: DescribeNetworkInterfaces (lingering interfaces), DeleteSecurityGroup.
    "aws_security_group": {
        "ec2:CreateSecurityGroup", "ec2:CreateTags", "ec2:DeleteTags", "ec2:DescribeSecurityGroups",
        "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress",
        "ec2:UpdateSecurityGroupRuleDescriptionsIngress", "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
        "ec2:DescribeNetworkInterfaces", "ec2:DeleteSecurityGroup",
    },
    # ec2/vpc_security_group_ingress_rule.go (and _egress_rule.go): Authorize* with the rule's
    # tags as tag specifications, DescribeSecurityGroupRules, ModifySecurityGroupRules,
    # CreateTags/DeleteTags (tags changed), Revoke*.
    "aws_vpc_security_group_ingress_rule": {
        "ec2:AuthorizeSecurityGroupIngress", "ec2:CreateTags", "ec2:DeleteTags",
        "ec2:DescribeSecurityGroupRules", "ec2:ModifySecurityGroupRules", "ec2:RevokeSecurityGroupIngress",
    },
    "aws_vpc_security_group_egress_rule": {
        "ec2:AuthorizeSecurityGroupEgress", "ec2:CreateTags", "ec2:DeleteTags",
        "ec2:DescribeSecurityGroupRules", "ec2:ModifySecurityGroupRules", "ec2:RevokeSecurityGroupEgress",
    },
    # ecs/task_definition.go: RegisterTaskDefinition (its roles passed), DescribeTaskDefinition,
    # tags (TagResource/UntagResource/ListTagsForResource), DeregisterTaskDefinition.
    "aws_ecs_task_definition": {
        "ecs:RegisterTaskDefinition", "iam:PassRole", "ecs:DescribeTaskDefinition", "ecs:TagResource",
        "ecs:UntagResource", "ecs:ListTagsForResource", "ecs:DeregisterTaskDefinition",
    },
    # ecs/service.go: CreateService, DescribeServices (and the cluster, DescribeClusters, while
    # waiting for the service to settle), UpdateService, tags, DeleteService.
    "aws_ecs_service": {
        "ecs:CreateService", "ecs:DescribeServices", "ecs:DescribeClusters", "ecs:UpdateService",
        "ecs:TagResource", "ecs:UntagResource", "ecs:ListTagsForResource", "ecs:DeleteService",
    },
    # meta/region_data_source.go: the provider's configured region, no call.
    "data.aws_region": set(),
}

# The pairs root's state (S3 backend with a DynamoDB lock table, SSE-KMS bucket). The
# provider's sts:GetCallerIdentity needs no permission.
TERRAFORM_BACKEND = {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "dynamodb:GetItem", "dynamodb:PutItem",
                     "dynamodb:DeleteItem", "kms:Decrypt", "kms:GenerateDataKey"}
# What CodeBuild itself does in a build's role: its log stream, the source bundle.
CODEBUILD_PLATFORM = {"logs:CreateLogStream", "logs:PutLogEvents", "s3:GetObject", "s3:GetObjectVersion",
                      "kms:Decrypt", "kms:GenerateDataKey"}
# ... and, for a project in a VPC (the Ansible one reaches the dispatcher database), the
# interface it makes in the role's name (CodeBuild user guide, "Use CodeBuild with Amazon VPC"),
# and its PARAMETER_STORE environment variables (GetParameters, decrypted with the fleet key).
CODEBUILD_VPC = {"ec2:CreateNetworkInterface", "ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces",
                 "ec2:DeleteNetworkInterface", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
                 "ec2:DescribeVpcs", "ec2:CreateNetworkInterfacePermission"}
CODEBUILD_PARAMETERS = {"ssm:GetParameters", "kms:Decrypt"}
# A project that pulls its image with its own role (image_pull_credentials_type SERVICE_ROLE,
# an image in the account's ECR) makes these calls in the role's name.
CODEBUILD_IMAGE_PULL = {"ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                        "ecr:BatchCheckLayerAvailability"}


def codebuild_pulls_with_role(project):
    text = (ROOT / "terraform/modules/orchestrator/codebuild.tf").read_text(encoding="utf-8")
    block = hcl_block(text, f'resource "aws_codebuild_project" "{project}" {{')
    return re.search(r'image_pull_credentials_type\s*=\s*"SERVICE_ROLE"', block) is not None

# The AWS calls of the modules and plugins the playbooks use (amazon.aws, as installed by
# tests/requirements/ansible.txt), by fully qualified name.
ANSIBLE_AWS_ACTIONS = {
    # plugins/inventory/aws_ec2.py: describe_instances (DescribeRegions only without `regions`).
    "amazon.aws.aws_ec2": {"ec2:DescribeInstances"},
    # plugins/modules/ec2_vpc_subnet_info.py: describe_subnets.
    "amazon.aws.ec2_vpc_subnet_info": {"ec2:DescribeSubnets"},
    # plugins/connection/aws_ssm.py + plugin_utils/ssm/: start_session, terminate_session;
    # files through S3: head_bucket (authorised as s3:ListBucket), presigned put_object and
    # get_object URLs, delete_object.
    "amazon.aws.aws_ssm": {"ssm:StartSession", "ssm:TerminateSession", "s3:ListBucket", "s3:PutObject",
                           "s3:GetObject", "s3:DeleteObject"},
}
# Collections whose modules make no AWS call.
ANSIBLE_NO_AWS = ("ansible.builtin.", "ansible.posix.", "community.general.", "community.postgresql.")

# Actions AWS authorises on "*" only (no resource-level permissions): the only ones a build
# role may grant on "*".
STAR_ONLY = re.compile(r"^(ec2:Describe(?!InstanceAttribute)\w+|ecs:(DeregisterTaskDefinition|DescribeTaskDefinition)"
                       r"|ecr:GetAuthorizationToken)$")
# ... and the exceptions, each with its reason.
STAR_EXCEPTIONS = {
    ("ansible", "ec2:CreateNetworkInterface"):
        "CodeBuild creates the build's interface in the role's name before its id exists; its "
        "user guide's VPC policy grants it on *",
    ("ansible", "ec2:DeleteNetworkInterface"):
        "the interface CodeBuild made for the build, deleted by CodeBuild; as above",
}

TAGGING = re.compile(r"^(ec2:(CreateTags|DeleteTags)|\w+:(TagResource|UntagResource|AddTagsToResource|RemoveTagsFromResource))$")


def declared_types(paths):
    """resource and data source types declared in the .tf files under paths."""
    out = {}
    for base in paths:
        for tf in sorted(Path(base).glob("*.tf")):
            text = tf.read_text(encoding="utf-8")
            for kind, typ in re.findall(r'^\s*(resource|data)\s+"([a-z0-9_]+)"\s+"[^"]+"\s*\{', text, re.M):
                out.setdefault(typ if kind == "resource" else f"data.{typ}", []).append(str(tf.relative_to(ROOT)))
    return out


def ansible_aws_users():
    """Fully qualified module, plugin and connection names the playbooks, roles and inventory use."""
    used = {}
    # Where modules, plugins and connections are named (defaults and vars hold data, such as
    # sysctl keys, that look like names).
    files = [f for f in (ROOT / "ansible").rglob("*.yml")
             if f.parent.name in ("tasks", "handlers", "playbooks", "inventory") or f.parent.parent.name == "playbooks"]
    for f in sorted(files):
        text = f.read_text(encoding="utf-8")
        rel = str(f.relative_to(ROOT))
        names = set(re.findall(r"^\s*-?\s*([a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+)\s*:", text, re.M))
        names |= set(re.findall(r"^\s*plugin:\s*([a-z0-9_.]+)\s*$", text, re.M))
        names |= set(re.findall(r"^\s*ansible_connection:\s*([a-z0-9_.]+)\s*$", text, re.M))
        for n in names:
            used.setdefault(n, []).append(rel)
        if re.search(r"^\s*plugin:\s*amazon\.aws\.aws_ec2\s*$", text, re.M) and not re.search(r"^regions:", text, re.M):
            used.setdefault("amazon.aws.aws_ec2 (no regions)", []).append(rel)
    return used


def statements_of(outputs, role):
    doc = json.loads(outputs["orchestrator"]["value"]["iam_policies"][role]["policy"])
    sts = doc["Statement"]
    return sts if isinstance(sts, list) else [sts]


def aslist(v):
    return v if isinstance(v, list) else [v]


def check_role_actions(name, granted_by_sid, needed_by_why):
    granted = {a for acts in granted_by_sid.values() for a in acts}
    needed = set(needed_by_why)
    for a in sorted(needed - granted):
        fail(f"{name}: needs {a} ({'; '.join(sorted(needed_by_why[a]))}) but its role does not grant it")
    for a in sorted(granted - needed):
        sids = [sid for sid, acts in granted_by_sid.items() if a in acts]
        fail(f"{name}: grants {a} (statement {', '.join(sids)}) which nothing it runs needs")
    if needed == granted:
        ok(f"{name}: grants exactly what it needs ({len(needed)} actions)")


def check_codebuild(tf, outputs):
    perms = tf["codebuild_permissions"]
    by_sid = {p: {} for p in perms}
    for p, sts in perms.items():
        for st in sts:
            by_sid[p].setdefault(st["sid"], set()).update(st["actions"])

    # Terraform: the pairs root's resource types.
    roots = [ROOT / "terraform/modules/pairs"] + sorted((ROOT / "terraform/envs").glob("*/pairs"))
    types = declared_types(roots)
    needed = {}
    for typ, where in sorted(types.items()):
        if typ not in PAIRS_RESOURCE_ACTIONS:
            fail(f"the pairs root declares {typ} ({', '.join(sorted(set(where)))}), which "
                 f"PAIRS_RESOURCE_ACTIONS does not model: add the provider's calls for it")
            continue
        print(f"     pairs root: {typ:40} {sorted(PAIRS_RESOURCE_ACTIONS[typ])}")
        for a in PAIRS_RESOURCE_ACTIONS[typ]:
            needed.setdefault(a, set()).add(typ)
    for a in TERRAFORM_BACKEND:
        needed.setdefault(a, set()).add("state backend")
    for a in CODEBUILD_PLATFORM | (CODEBUILD_IMAGE_PULL if codebuild_pulls_with_role("terraform") else set()):
        needed.setdefault(a, set()).add("CodeBuild")
    check_role_actions("Terraform build", by_sid["terraform"], needed)

    # Ansible: the AWS modules and plugins of the playbooks.
    needed = {}
    for name, where in sorted(ansible_aws_users().items()):
        if name == "amazon.aws.aws_ec2 (no regions)":
            needed.setdefault("ec2:DescribeRegions", set()).add(name)
        elif name in ANSIBLE_AWS_ACTIONS:
            print(f"     ansible: {name:40} {sorted(ANSIBLE_AWS_ACTIONS[name])}")
            for a in ANSIBLE_AWS_ACTIONS[name]:
                needed.setdefault(a, set()).add(name)
        elif not name.startswith(ANSIBLE_NO_AWS):
            fail(f"ansible uses {name} ({', '.join(sorted(set(where)))}), which ANSIBLE_AWS_ACTIONS does not model")
    for a in CODEBUILD_PLATFORM | CODEBUILD_VPC | CODEBUILD_PARAMETERS | (
            CODEBUILD_IMAGE_PULL if codebuild_pulls_with_role("ansible") else set()):
        needed.setdefault(a, set()).add("CodeBuild")
    check_role_actions("Ansible build", by_sid["ansible"], needed)

    # "*" only where AWS accepts nothing else.
    before = len(failures)
    for p in ("terraform", "ansible"):
        for st in statements_of(outputs, f"build-{p}"):
            if "*" not in aslist(st.get("Resource", [])):
                continue
            for a in aslist(st["Action"]):
                if STAR_ONLY.match(a):
                    continue
                if (p, a) in STAR_EXCEPTIONS:
                    print(f"     {p} build: {a} on * ({STAR_EXCEPTIONS[(p, a)]})")
                    continue
                fail(f"{p} build: statement {st.get('Sid')} grants {a} on *, which has resource-level permissions")
    if len(failures) == before:
        ok("CodeBuild roles: on * only actions AWS authorises on * alone (and the named exceptions)")

    # Tags that conditions read can only be written at creation, or under other keys.
    roles = outputs["orchestrator"]["value"]["iam_policies"]
    read_by_conditions = set()
    for role in roles:
        for st in statements_of(outputs, role):
            for test, kv in (st.get("Condition") or {}).items():
                for key in kv:
                    if re.search(r"(?i):resourcetag/", key):
                        read_by_conditions |= {r.split(":")[2] for r in aslist(st.get("Resource", [])) if r.startswith("arn:")}
    print(f"     tag conditions guard resources of: {sorted(read_by_conditions)}")
    checked = 0
    for role in sorted(roles):
        for st in statements_of(outputs, role):
            tagging = [a for a in aslist(st.get("Action", [])) if TAGGING.match(a)]
            if not tagging:
                continue
            services = {r.split(":")[2] for r in aslist(st.get("Resource", [])) if r.startswith("arn:")}
            if "*" in aslist(st.get("Resource", [])):
                services.add("*")
            if not services & (read_by_conditions | {"*"}):
                continue
            checked += 1
            cond = st.get("Condition") or {}
            at_creation = any(k.lower() == "ec2:createaction" for kv in cond.values() for k in kv) \
                and "ec2:DeleteTags" not in tagging
            keys_denied = any(test.startswith("ForAllValues:StringNotLike") or test.startswith("ForAllValues:StringNotEquals")
                              for test, kv in cond.items() for k in kv if k.lower() == "aws:tagkeys"
                              and any(v in ("pairscale:*", "pairscale:fleet") for v in aslist(kv[k])))
            keys_present = any(test == "Null" and str(kv.get("aws:TagKeys")).lower() == "false" for test, kv in cond.items())
            own_only = any(k.lower().startswith("aws:resourcetag/pairscale:fleet") for kv in cond.values() for k in kv)
            if at_creation:
                ok(f"{role}: {st.get('Sid')} tags only on creation ({', '.join(tagging)})")
            elif keys_denied and keys_present and own_only:
                ok(f"{role}: {st.get('Sid')} retags only the fleet's own resources, never a pairscale:* key")
            else:
                fail(f"{role}: statement {st.get('Sid')} grants {', '.join(tagging)} on resources that tag "
                     f"conditions guard, without ec2:CreateAction nor (own resources, aws:TagKeys present, no pairscale:* key)")
    if not checked:
        fail("no tagging statement was checked: the policies are not what this check expects")
    finish()


# ----- fleet configuration -----------------------------------------------------------------

def rust_judge():
    """The path of crates/core's check_fleet_config example (FleetConfig::from_json as a
    filter), built once: the one copy of the configuration's rules judges every probe."""
    import subprocess
    global _JUDGE
    if _JUDGE is None:
        subprocess.run(["cargo", "build", "--quiet", "--locked", "-p", "pairscale-core",
                        "--example", "check_fleet_config"], cwd=ROOT, check=True)
        target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
        _JUDGE = target / "debug" / "examples" / "check_fleet_config"
    return _JUDGE


_JUDGE = None


def fleet_config_errors_all(raws):
    """FleetConfig::from_json's verdict on each JSON text: its complaint, or None."""
    import subprocess
    r = subprocess.run([str(rust_judge())], input="".join(json.dumps(json.loads(x)) + "\n" for x in raws),
                       capture_output=True, text=True, check=True, timeout=60)
    verdicts = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(verdicts) == len(raws), r.stdout
    return [None if v["ok"] else v["error"] for v in verdicts]


def fleet_config_errors(raw):
    try:
        json.loads(raw)
    except ValueError as e:
        return f"config: not JSON ({e})"
    return fleet_config_errors_all([raw])[0]


def rust_hangup_causes():
    import subprocess
    r = subprocess.run([str(rust_judge()), "--causes"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def check_fleet_config(tf, fixture):
    raw = tf["fleet_config_json"]
    print(f"     envs/example/orchestrator writes: {raw}")
    err = fleet_config_errors(raw)
    if err:
        fail(f"the example env's fleet configuration would be refused by FleetConfig::from_json: {err}")
    else:
        ok("the example env's fleet configuration passes FleetConfig's rules")
    fixture = Path(fixture).resolve()
    want = raw + "\n"
    if os.environ.get("PAIRSCALE_UPDATE_FIXTURES") == "1":
        fixture.write_text(want, encoding="utf-8")
        ok(f"rewrote {fixture.relative_to(ROOT)}")
    elif not fixture.exists() or fixture.read_text(encoding="utf-8") != want:
        fail(f"{fixture.relative_to(ROOT)} is stale: it is not what Terraform writes now; rewrite it with "
             f"PAIRSCALE_UPDATE_FIXTURES=1 ./tests/run (or that variable and this check alone), and commit it")
    else:
        ok(f"{fixture.relative_to(ROOT)} is what Terraform writes")
    finish()


# ----- fleet configuration: Terraform's validation against the same rules ------------------

def hcl_block(text, header):
    """The text of the block that starts with `header` (quoted strings and heredocs skipped
    when matching braces)."""
    start = text.index(header)
    i, depth = text.index("{", start), 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif text.startswith("<<", i):
            hm = re.match(r"<<-?(\w+)\n", text[i:])
            end = re.compile(r"^\s*" + hm.group(1) + r"\s*$", re.M).search(text, i + hm.end())
            i = end.end() - 1
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
        i += 1
    raise Unmodelled(f"unterminated block {header}")


BASE = {"min_pairs": 1, "max_pairs": 10, "max_step": 3, "cooldown_out_seconds": 60,
        "cooldown_in_seconds": 600,
        "drain": {"deadline_seconds": 600, "policy": "wait", "hard_max_seconds": 3600}}


def probes():
    """(name, fleet_config) at and beyond every bound FleetConfig checks."""
    def at(path, value):
        c = json.loads(json.dumps(BASE))
        *outer, last = path.split(".")
        obj = c
        for k in outer:
            obj = obj.setdefault(k, {})
        if value is DELETE:
            del obj[last]
        else:
            obj[last] = value
        shown = "<absent>" if value is DELETE else json.dumps(value)
        if len(shown) > 30:
            shown = f"<{len(shown)} characters of JSON>"
        return (f"{path}={shown}", c)

    out = [("base", BASE)]
    for path, values in [
        ("max_pairs", [1000, 1001]), ("min_pairs", [10, 11, -1, 1.5, DELETE]),
        ("max_step", [0, 1, 1000, 1001, DELETE]),
        ("cooldown_out_seconds", [86400, 86401]), ("cooldown_in_seconds", [86400, 86401, DELETE]),
        ("drain.deadline_seconds", [0, 1, 3600, 3601, DELETE]),
        ("drain.policy", ["force", "abort", "stop", DELETE]),
        ("drain.hard_max_seconds", [599, 600, 604800, 604801, None]),
        ("drain.check_interval_seconds", [0, 1, 3600, 3601]),
        ("drain.hupall_cause", ["", "NORMAL_CLEARING", "SYSTEM_SHUTDOWN", "normal", "NONE", "MANAGER_REQEUST",
                                "A" * 64]),
        ("race_spares", [0, 10, 11]),
        ("pair_capacity_channels", [0, 1, None, 2**32 - 1, 2**32]),
        ("build_poll_seconds", [0, 1, 600, 601]), ("build_timeout_seconds", [9, 10, 28800, 28801]),
        ("build_retries", [0, 5, 6, 1.5]), ("build_retry_seconds", [0, 1, 900, 901]),
        ("sip_port", [0, 1, 65535, 65536]), ("esl_port", [0, 1, 65535, 65536]),
        ("dispatcher_set_id", [0, 1, 65535, 65536]),
        ("image_id", [None, "ami-0123abcd", "ami-0123456789abcdef0", "ami-0123abc", "ami-0123456789abcdef",
                      "ami-0123456789ABCDEF0", "ami-0123abcg", "", "i-0123abcd", " ami-0123abcd"]),
        ("alarm_steps", [{"a": 3}, {"a": -3}, {"a": 4}, {"a": -4}, {"a": 0}, {"a": 1.5}, {"": 1},
                         {"x" * 255: 1}, {"x" * 256: 1}]),
        ("kamailio_rpc_urls", [None, [], ["http://10.0.32.10:5071/RPC", "http://10.0.33.10:5071/RPC"],
                               ["http://a:5071/RPC", "http://a:5071/RPC"],
                               [f"http://10.0.0.{i}:5071/RPC" for i in range(1, 9)],
                               [f"http://10.0.0.{i}:5071/RPC" for i in range(1, 10)],
                               ["https://kamailio-a.internal/RPC"], ["http://[fd00::10]:5071/RPC"], ["http://h:080"],
                               ["http://h:0/RPC"], ["http://h:1/RPC"], ["http://h:65535/RPC"], ["http://h:65536/RPC"],
                               ["http://h/" + "x" * 246], ["http://h/" + "x" * 247], ["ftp://h/RPC"], ["HTTP://h/RPC"],
                               ["10.0.0.1:5071/RPC"], ["http://user@h/RPC"], ["http://h/R PC"], ["http://[::1/RPC"],
                               ["http://[]:5071/RPC"], ["http://h:/RPC"], ["http://h:123456/RPC"], [5]]),
        ("canary.enabled", [False, True]),
        ("canary.destination", ["", "pairscale-canary", "x}&park()", "d" * 64, "d" * 65, "+15551234"]),
        ("canary.sip_profile", ["external", "a b", "p/q"]),
        ("canary.seconds", [0, 1, 30, 31, 1.5]),
        ("canary.min_mos", [0.99, 1, 3.555, 4.5, 4.51, 5.5]),
        ("canary.quality_sample", [0, 1, 20, 21]),
        ("canary.measure_every_minutes", [0, 1, 1440, 1441, 1.5]),
        ("canary.operator_metric", [None] + [dict(OPERATOR_METRIC, **change) for change in [
            {}, {"namespace": "a:b"}, {"namespace": ""}, {"namespace": "n" * 255}, {"namespace": "n" * 256},
            {"metric_name": ""}, {"metric_name": "m" * 256}, {"statistic": "Minimum"}, {"statistic": "p50"},
            {"window_seconds": 60}, {"window_seconds": 3600}, {"window_seconds": 3660}, {"window_seconds": 90},
            {"window_seconds": 0}, {"dimensions": {"Fleet": "voice-eu"}}, {"dimensions": {"Fleet": ""}},
            {"dimensions": {"": "x"}}, {"dimensions": {"d": "v" * 1024}}, {"dimensions": {"d": "v" * 1025}},
            {"dimensions": {f"d{i}": "v" for i in range(30)}}, {"dimensions": {f"d{i}": "v" for i in range(31)}},
        ]]),
    ]:
        out += [at(path, v) for v in values]
    # The warm pool: of the fleet's image only, and within the 1,000 pairs with max_pairs.
    for image, max_pairs, pools in [(None, 10, [0, 1]), ("ami-0123abcd", 10, [0, 1, 100, 101, -1, 1.5]),
                                    ("ami-0123abcd", 900, [100]), ("ami-0123abcd", 901, [100])]:
        for pool in pools:
            c = json.loads(json.dumps(BASE))
            c.update({"warm_pool": pool, "max_pairs": max_pairs})
            if image is not None:
                c["image_id"] = image
            out.append((f"warm_pool={pool} (image_id {image}, max_pairs {max_pairs})", c))
    # The policy (crates/core/src/policy.rs): each field at and beyond its bounds.
    def policy(change=None, schedule=None):
        c = json.loads(json.dumps(BASE))
        c["policy"] = dict(POLICY, **(change or {}))
        if schedule is not None:
            c["policy"]["schedules"] = [dict(SCHEDULE, **schedule)]
        shown = json.dumps(change or schedule or {})
        if len(shown) > 40:
            shown = f"<{len(shown)} characters of JSON>"
        return (f"policy{'.schedules[0]' if schedule is not None else ''} {shown}", c)
    out.append(("policy absent", BASE))
    out += [policy(ch) for ch in [
        {}, {"target_channels_per_pair": 0}, {"target_channels_per_pair": 100000},
        {"target_channels_per_pair": 100001}, {"target_channels_per_pair": 1.5},
        {"scale_in_stabilization_seconds": 0}, {"scale_in_stabilization_seconds": 86400},
        {"scale_in_stabilization_seconds": 86401}, {"max_step_out": None}, {"max_step_out": 0},
        {"max_step_out": 3}, {"max_step_out": 4}, {"max_step_in": 0}, {"max_step_in": 3},
        {"max_step_in": 4}, {"suspended": True}, {"schedules": []},
        {"schedules": [dict(SCHEDULE, name=f"s{i}") for i in range(50)]},
        {"schedules": [dict(SCHEDULE, name=f"s{i}") for i in range(51)]},
        {"predictive": None}, {"predictive": {"mode": "forecast_only"}},
        {"predictive": {"mode": "forecast_and_scale"}}, {"predictive": {"mode": "always"}},
        {"predictive": {"mode": "forecast_only", "weeks": 0}},
        {"predictive": {"mode": "forecast_only", "weeks": 8, "min_weeks": 8}},
        {"predictive": {"mode": "forecast_only", "weeks": 9}},
        {"predictive": {"mode": "forecast_only", "weeks": 3, "min_weeks": 4}},
        {"predictive": {"mode": "forecast_only", "min_weeks": 0}},
        {"predictive": {"mode": "forecast_only", "target_channels_per_pair": 0}},
        {"predictive": {"mode": "forecast_only", "target_channels_per_pair": 100000}},
        {"predictive": {"mode": "forecast_only", "target_channels_per_pair": 100001}},
        {"predictive": {"mode": "forecast_only", "headroom_sigmas": 10}},
        {"predictive": {"mode": "forecast_only", "headroom_sigmas": 11}},
        {"predictive": {"mode": "forecast_only", "headroom_sigmas": 2.5}},
        {"trend": None}, {"trend": {}}, {"trend": {"window_seconds": 59}},
        {"trend": {"window_seconds": 60, "noise_sigmas": 0}},
        {"trend": {"window_seconds": 3600, "noise_sigmas": 100}},
        {"trend": {"window_seconds": 3601}}, {"trend": {"noise_sigmas": 101}},
        {"trend": {"noise_sigmas": -1}}, {"trend": {"headroom_sigmas": 10}},
        {"trend": {"headroom_sigmas": 11}}, {"trend": {"headroom_sigmas": 0.5}},
    ]]
    out += [policy(schedule=ch) for ch in [
        {}, {"name": ""}, {"name": "n" * 64}, {"name": "n" * 65}, {"name": "a b"},
        {"days": []}, {"days": ["sat", "sun"]}, {"days": ["Mon"]}, {"days": ["monday"]},
        {"from": "00:00", "to": "23:59"}, {"from": "24:00"}, {"to": "8:00"}, {"to": "08:60"},
        {"from": "22:00", "to": "06:00"}, {"to": "08:00"},
        {"min_pairs": 0}, {"min_pairs": 1}, {"min_pairs": 10}, {"min_pairs": 11},
        {"time_zone": "America/New_York"}, {"time_zone": "UTC"},
        {"time_zone": "Europe/Berlim"}, {"time_zone": ""},
    ]]
    # deadline at the top of its range with a hard maximum to match.
    c = json.loads(json.dumps(BASE))
    c["drain"].update(deadline_seconds=604800, hard_max_seconds=604800)
    out.append(("drain.deadline_seconds=604800", c))
    c = json.loads(json.dumps(BASE))
    c["drain"].update(deadline_seconds=604801, hard_max_seconds=604801)
    out.append(("drain.deadline_seconds=604801", c))
    c = json.loads(json.dumps(BASE))
    c["drain"].update(policy="force")
    del c["drain"]["hard_max_seconds"]
    out.append(("drain.policy=force, no hard maximum", c))
    # The history budget (crates/core/src/history.rs): either side of 20,000 events.
    for timeout, poll in [(28800, 15), (28800, 60), (28800, 120), (3600, 15), (3600, 10)]:
        c = json.loads(json.dumps(BASE))
        c.update(build_timeout_seconds=timeout, build_poll_seconds=poll)
        out.append((f"builds of {timeout} s polled every {poll} s", c))
    # A scale-out's edge polled every 20 s, where each retry of its three Terraform builds adds
    # four rounds: 4,059 s fits with 5 retries and 4,060 s does not; 4,259 s and 4,260 s with none.
    for timeout, retries in [(4059, 5), (4060, 5), (4259, 0), (4260, 0)]:
        c = json.loads(json.dumps(BASE))
        c.update(build_timeout_seconds=timeout, build_poll_seconds=20, build_retries=retries)
        out.append((f"builds of {timeout} s polled every 20 s, retried {retries} times", c))
    for hard_max, interval in [(7200, 5), (7200, 10), (604800, 60), (604800, 600), (86400, 60)]:
        c = json.loads(json.dumps(BASE))
        c["drain"].update(hard_max_seconds=hard_max, check_interval_seconds=interval)
        out.append((f"a drain of up to {hard_max} s checked every {interval} s", c))
    # Either side of the scale-in's own edge, where the drain's rounds (and the last look's two
    # more), its force rounds and max_step all count: at max_step 3 a drain of 1,117 s checked
    # every 2 s fits and 1,118 s does not; at max_step 10, 1,047 s and 1,048 s.
    for max_step, hard_max in [(3, 1117), (3, 1118), (10, 1047), (10, 1048)]:
        c = json.loads(json.dumps(BASE))
        c["max_step"] = max_step
        # The edges above are a scale-in's without retries; each retry moves them.
        c["build_retries"] = 0
        c["drain"].update(hard_max_seconds=hard_max, check_interval_seconds=2)
        out.append((f"max_step {max_step}, a drain of up to {hard_max} s checked every 2 s", c))
    return out


OPERATOR_METRIC = {"namespace": "Voice", "metric_name": "CallMos"}
POLICY = {"target_channels_per_pair": 100}
SCHEDULE = {"name": "office", "days": ["mon", "tue"], "from": "08:00", "to": "18:00",
            "time_zone": "Europe/Berlin", "min_pairs": 4}
# Probes Terraform accepts and FleetConfig alone refuses, each with why no HCL can tell.
RUST_ONLY = {
    'policy.schedules[0] {"time_zone": "Europe/Berlim"}':
        "an IANA zone name is checked against the zone rules bundled with the functions; Terraform has none",
    'policy.schedules[0] {"time_zone": ""}':
        "an IANA zone name is checked against the zone rules bundled with the functions; Terraform has none",
}


class _Delete:
    pass


DELETE = _Delete()


def check_fleet_config_bounds(workdir):
    """Terraform's fleet_config variable (its type, defaults and validation blocks, copied
    verbatim from the module into a provider-less root) accepts exactly what FleetConfig
    accepts: a probe Terraform refuses must be refused by from_json; a probe it accepts must
    render JSON that from_json accepts. The hangup causes Terraform lists are FleetConfig's."""
    import subprocess
    import tempfile
    variables = (ROOT / "terraform/modules/orchestrator/variables.tf").read_text(encoding="utf-8")
    block = hcl_block(variables, 'variable "fleet_config" {')
    work = Path(tempfile.mkdtemp(prefix="fleet-config-", dir=workdir))
    (work / "main.tf").write_text(block + "\n", encoding="utf-8")
    seen = []
    for name, cfg in probes():
        (work / "probe.tfvars.json").write_text(json.dumps({"fleet_config": cfg}), encoding="utf-8")
        r = subprocess.run(["terraform", "console", "-no-color", "-var-file=probe.tfvars.json"],
                           input="jsonencode(var.fleet_config)\n", capture_output=True, text=True, cwd=work,
                           timeout=60)
        if "Error:" in r.stderr:
            reason = re.sub(r"\s+", " ", r.stderr.split("Error:", 1)[1])[:160]
            seen.append((name, cfg, reason))
        else:
            seen.append((name, json.loads(json.loads(r.stdout.strip())), None))
    verdicts = fleet_config_errors_all([json.dumps(cfg) for _, cfg, _ in seen])
    for (name, cfg, refused), why in zip(seen, verdicts):
        if refused and why:
            ok(f"{name}: both refuse (FleetConfig: {why})")
        elif refused:
            fail(f"{name}: Terraform refuses what FleetConfig accepts: {refused}")
        elif why and name in RUST_ONLY:
            ok(f"{name}: FleetConfig alone refuses ({why}): {RUST_ONLY[name]}")
        elif why:
            fail(f"{name}: Terraform accepts and would write {json.dumps(cfg)[:200]}, "
                 f"which FleetConfig refuses: {why}")
        elif name in RUST_ONLY:
            fail(f"{name}: listed in RUST_ONLY, yet FleetConfig accepts it: remove it from the list")
        else:
            ok(f"{name}: both accept")
    listed = re.search(r"contains\((\[[^\]]*\]),\s*var\.fleet_config\.drain\.hupall_cause\)", variables)
    if not listed:
        fail("terraform/modules/orchestrator/variables.tf: no contains([...], var.fleet_config.drain.hupall_cause) validation")
    elif json.loads(re.sub(r",\s*\]", "]", listed.group(1))) != rust_hangup_causes():
        fail("the hangup causes variables.tf lists are not crates/core/src/hangup.rs's KNOWN_CAUSES")
    else:
        ok("the hangup causes variables.tf lists are crates/core/src/hangup.rs's KNOWN_CAUSES")
    finish()


# ----- the dispatcher database's TLS inputs ------------------------------------------------

DB_TLS_VARIABLES = ("dispatcher_db_sslmode", "dispatcher_db_ca_bundle")


def db_tls_probes():
    """(name, variables given, the variable whose validation must refuse them, or None)."""
    pem = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
    sized = lambda n: pem + "#" * (n - len(pem))  # noqa: E731
    fixture = (ROOT / "tests/fixtures/dispatcher-db-ca-bundle.pem").read_text(encoding="utf-8")
    out = [("defaults", {}, None)]
    out += [(f"sslmode {m!r}", {"dispatcher_db_sslmode": m}, None) for m in ("verify-full", "disable")]
    # What libpq takes besides, none of which checks that the certificate is the server's.
    out += [(f"sslmode {m!r}", {"dispatcher_db_sslmode": m}, "dispatcher_db_sslmode")
            for m in ("require", "prefer", "allow", "verify-ca", "VERIFY-FULL", "verify_full", "")]
    out += [
        ("a bundle, sslmode left at its default", {"dispatcher_db_ca_bundle": pem}, None),
        ("a bundle with verify-full", {"dispatcher_db_sslmode": "verify-full", "dispatcher_db_ca_bundle": pem}, None),
        ("a bundle with disable", {"dispatcher_db_sslmode": "disable", "dispatcher_db_ca_bundle": pem},
         "dispatcher_db_ca_bundle"),
        ("tests/fixtures/dispatcher-db-ca-bundle.pem", {"dispatcher_db_ca_bundle": fixture}, None),
        ("a bundle of 8,192 characters", {"dispatcher_db_ca_bundle": sized(8192)}, None),
        ("a bundle of 8,193 characters", {"dispatcher_db_ca_bundle": sized(8193)}, "dispatcher_db_ca_bundle"),
        ("a bundle that is not PEM", {"dispatcher_db_ca_bundle": "MIIBtest"}, "dispatcher_db_ca_bundle"),
        ("an empty bundle", {"dispatcher_db_ca_bundle": ""}, "dispatcher_db_ca_bundle"),
        ("a private key for a bundle", {"dispatcher_db_ca_bundle": "-----BEGIN PRIVATE KEY-----\nx\n"},
         "dispatcher_db_ca_bundle"),
    ]
    return out


def check_db_tls_bounds(workdir):
    """The module's dispatcher_db_sslmode and dispatcher_db_ca_bundle (copied verbatim into a
    provider-less root) accept what the drain function and the Ansible build can use, with the
    defaults the Rust side assumes, and refuse the rest with an error that names the variable."""
    import subprocess
    import tempfile
    variables = (ROOT / "terraform/modules/orchestrator/variables.tf").read_text(encoding="utf-8")
    work = Path(tempfile.mkdtemp(prefix="db-tls-", dir=workdir))
    (work / "main.tf").write_text("\n\n".join(hcl_block(variables, f'variable "{v}" {{')
                                               for v in DB_TLS_VARIABLES) + "\n", encoding="utf-8")
    for name, given, refuser in db_tls_probes():
        (work / "probe.tfvars.json").write_text(json.dumps(given), encoding="utf-8")
        r = subprocess.run(["terraform", "console", "-no-color", "-var-file=probe.tfvars.json"],
                           input="jsonencode([var.dispatcher_db_sslmode, var.dispatcher_db_ca_bundle])\n",
                           capture_output=True, text=True, cwd=work, timeout=60)
        err = re.sub(r"\s+", " ", r.stderr.split("Error:", 1)[1]) if "Error:" in r.stderr else None
        if err is None:
            got = json.loads(json.loads(r.stdout.strip()))
            want = [given.get("dispatcher_db_sslmode", "verify-full"), given.get("dispatcher_db_ca_bundle")]
            if refuser:
                fail(f"{name}: Terraform accepts it ({got[0]!r}); {refuser}'s validation must refuse it")
            elif got != want:
                fail(f"{name}: Terraform evaluates it to {json.dumps(got)[:120]}, not {json.dumps(want)[:120]}")
            else:
                ok(f"{name}: accepted, sslmode {got[0]}, {'no bundle' if got[1] is None else f'a bundle of {len(got[1])} characters'}")
        elif not refuser:
            fail(f"{name}: Terraform refuses it: {err[:200]}")
        elif not re.search(r"(^|\s)" + refuser + r" (must|is) ", err):
            fail(f"{name}: refused, but not by {refuser}'s validation naming it: {err[:240]}")
        else:
            msg = re.search(r"(^|\s)(" + refuser + r" (must|is) .*?)( This was checked|$)", err).group(2)
            ok(f"{name}: refused: {msg[:160]}")
    finish()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    what = sys.argv[1]
    tf = json.load(open(sys.argv[2], encoding="utf-8")) if what in ("env", "iam", "fleet-config", "codebuild") else None
    if what == "env":
        check_env(tf)
    elif what == "iam":
        check_iam(tf)
    elif what == "fleet-config":
        check_fleet_config(tf, sys.argv[3])
    elif what == "fleet-config-bounds":
        check_fleet_config_bounds(sys.argv[2])
    elif what == "db-tls-bounds":
        check_db_tls_bounds(sys.argv[2])
    elif what == "codebuild":
        check_codebuild(tf, json.load(open(sys.argv[3], encoding="utf-8")))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
