# pairscale-router (crates/localstack/router) on $ROUTER_PORT in front of moto: it serves Lambda Invoke
# with the real handler binaries and CodeBuild builds with local commands, and forwards
# everything else to moto. moto's Step Functions interpreter calls back through it, because
# 10-moto.sh started moto with MOTO_PORT=$ROUTER_PORT. Must be sourced after 10-moto.sh.
#
# Exports for the tests:
#   PAIRSCALE_ROUTER_URL  the router (http://127.0.0.1:$ROUTER_PORT); its control API is
#                         under /_router/ (functions, CodeBuild projects, builds, faults)
#   AWS_ENDPOINT_URL      the router too, so that every SDK client goes through it
#   ROUTER_LOG            the router's log
: "${ROUTER_PORT:?tests/setup/10-moto.sh must be sourced before 15-router.sh}"
: "${MOTO_URL:?tests/setup/10-moto.sh must be sourced before 15-router.sh}"

log "building pairscale-router"
cargo build --locked --quiet -p pairscale-router || die "cannot build pairscale-router"
ps_router_bin="$CARGO_TARGET_DIR/debug/pairscale-router"
[ -x "$ps_router_bin" ] || die "no router binary at $ps_router_bin"

export ROUTER_LOG="$PS_WORK/router.log"
"$ps_router_bin" --listen "127.0.0.1:$ROUTER_PORT" --moto "$MOTO_URL" --state-dir "$PS_WORK/router" \
  > "$PS_WORK/router.out" 2> "$ROUTER_LOG" &
track_pid $! router

ps_router_ok=0
for _ in $(seq 1 150); do
  if curl -sf -o /dev/null "http://127.0.0.1:$ROUTER_PORT/_router/health"; then ps_router_ok=1; break; fi
  sleep 0.2
done
[ "$ps_router_ok" = 1 ] || { tail -20 "$ROUTER_LOG"; die "the router did not start on $ROUTER_PORT"; }

# moto keeps this setting in memory only: set it after every moto start.
curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
  -d '{"stepfunctions": {"execute_state_machine": true}}' "$MOTO_URL/moto-api/config" \
  || die "cannot enable Step Functions execution in moto"

export PAIRSCALE_ROUTER_URL="http://127.0.0.1:$ROUTER_PORT"
export AWS_ENDPOINT_URL=$PAIRSCALE_ROUTER_URL
log "router at $PAIRSCALE_ROUTER_URL in front of moto at $MOTO_URL"
