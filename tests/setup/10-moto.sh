# The local AWS emulator (moto server) on a free loopback port, reached by every AWS SDK
# client through the standard AWS_ENDPOINT_URL. Fake credentials only.
venv moto "$PAIRSCALE_ROOT/tests/requirements/moto.txt"
MOTO_HTTP_PORT=$(free_port)
"$VENV_BIN/moto_server" -H 127.0.0.1 -p "$MOTO_HTTP_PORT" > "$PS_WORK/moto.log" 2>&1 &
track_pid $! moto
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_HTTP_PORT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE
wait_http "$AWS_ENDPOINT_URL/moto-api/" 60 || { tail -20 "$PS_WORK/moto.log"; die "moto did not start"; }
log "moto at $AWS_ENDPOINT_URL"
