# The local AWS emulator (moto server) on a free loopback port. moto runs Step Functions
# executions itself and reaches every service from inside them (Lambda included) through
# http://localhost:$MOTO_PORT, so MOTO_PORT names the router's port, picked here before moto
# starts; tests/setup/15-router.sh starts the router there and points AWS_ENDPOINT_URL at it.
# moto runs through tests/lib/moto_server.py, which fixes one gap in its bucket-policy evaluation
# (a Deny statement whose condition does not hold must not deny). Fake credentials only.
#
# Exports for the tests:
#   MOTO_URL               moto itself (http://127.0.0.1:PORT)
#   ROUTER_PORT            the port 15-router.sh listens on
#   PAIRSCALE_MOTO_SERVER  the venv's moto_server, for tests that start their own moto
#   AWS_ENDPOINT_URL       moto, until 15-router.sh replaces it with the router
venv moto "$PAIRSCALE_ROOT/tests/requirements/moto.txt"
ROUTER_PORT=$(free_port)
MOTO_HTTP_PORT=$(free_port)
while [ "$MOTO_HTTP_PORT" = "$ROUTER_PORT" ]; do MOTO_HTTP_PORT=$(free_port); done
# moto runs no ECS task: MOTO_ECS_SERVICE_RUNNING makes it report each new service's task as
# running, as ECS does once Fargate started it (what Terraform's wait_for_steady_state waits
# for, and discover requires). A service scaled with UpdateService reports its new count.
MOTO_ECS_SERVICE_RUNNING=1 MOTO_PORT=$ROUTER_PORT "$VENV_BIN/python" "$PAIRSCALE_ROOT/tests/lib/moto_server.py" -H 127.0.0.1 -p "$MOTO_HTTP_PORT" > "$PS_WORK/moto.log" 2>&1 &
track_pid $! moto
export ROUTER_PORT
export MOTO_URL="http://127.0.0.1:$MOTO_HTTP_PORT"
export PAIRSCALE_MOTO_SERVER="$VENV_BIN/moto_server"
export AWS_ENDPOINT_URL=$MOTO_URL
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE
wait_http "$MOTO_URL/moto-api/" 60 || { tail -20 "$PS_WORK/moto.log"; die "moto did not start"; }
log "moto at $MOTO_URL (its MOTO_PORT: $ROUTER_PORT)"
