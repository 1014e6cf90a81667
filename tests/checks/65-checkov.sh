# checkov over the Terraform modules, examples and roots (not tests/terraform, which points at
# an emulator on purpose). Fails on any finding and on any file checkov could not parse.
# Every skipped check is skipped inline where it applies (#checkov:skip=ID:reason) and must
# carry a reason; nothing is skipped here on the command line.

venv checkov "$PAIRSCALE_ROOT/tests/requirements/checkov.txt"
ps_checkov_bin=$VENV_BIN

ps_checkov() {
  local out="$PS_WORK/checkov.json"
  # Exit status is judged from the report below (checkov's own is 1 on findings only).
  "$ps_checkov_bin/checkov" --skip-download --framework terraform --directory "$PAIRSCALE_ROOT/terraform" \
    --output json > "$out" 2> "$PS_WORK/checkov.err" || true
  "$ps_checkov_bin/python" - "$out" "$PS_WORK/checkov.err" <<'PY'
import json, sys
try:
    reports = json.load(open(sys.argv[1]))
except ValueError:
    print("checkov did not produce a JSON report:")
    print(open(sys.argv[2]).read()[-3000:])
    sys.exit(1)
reports = reports if isinstance(reports, list) else [reports]
bad = 0
for r in reports:
    s = r["summary"]
    print(f"checkov {r['check_type']}: {s['passed']} passed, {s['failed']} failed, "
          f"{s['skipped']} skipped, {s['parsing_errors']} parsing errors, {s['resource_count']} resources")
    res = r.get("results", {})
    for c in res.get("failed_checks", []):
        print(f"FAILED {c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']}) {c['check_name']}")
        bad += 1
    for path in res.get("parsing_errors", []):
        print(f"PARSE ERROR {path}")
    bad += s["parsing_errors"]
    for c in res.get("skipped_checks", []):
        reason = (c.get("check_result") or {}).get("suppress_comment", "").strip()
        if not reason or reason == "No comment provided":
            print(f"SKIPPED WITHOUT A REASON {c['check_id']} {c['resource']} ({c['file_path']})")
            bad += 1
    if s["resource_count"] == 0:
        print("checkov saw no resources")
        bad += 1
sys.exit(1 if bad else 0)
PY
}

run_check "checkov (terraform)" ps_checkov
