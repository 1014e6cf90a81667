# A second PostgreSQL of this run's own that speaks TLS with a server certificate from a CA made
# here (and a second, unrelated CA), for the dispatcher database's sslmode=verify-full: the Rust
# adapter (crates/dispatcher/tests/tls.rs) and psql as the Ansible role runs it (check 70).
# The machine's own server (30-kamailio.sh) carries a certificate nothing here can verify.
#
# The certificate names DNS:localhost and IP:127.0.0.1; the server also listens on 127.0.0.2,
# which the certificate does not name (a host-name mismatch, for the tests). It takes TLS
# sessions only (hostssl), so whatever gets in used TLS. Runs as the postgres
# user, in a folder of its own, stopped and removed when the run ends.
#
# Exports for the tests:
#   PAIRSCALE_TEST_PG_TLS_URL       postgres URL (127.0.0.1) of a database with the dispatcher table
#   PAIRSCALE_TEST_PG_TLS_CA        PEM of the CA that signed the server's certificate
#   PAIRSCALE_TEST_PG_TLS_OTHER_CA  PEM of a CA that did not

apt_ensure postgresql postgresql-client openssl

ps_tls_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$ps_tls_bin/initdb" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql (postgresql)"

# Outside $PS_WORK: the postgres user must reach it, and its data folder must be its own.
ps_tls_dir=$(mktemp -d /tmp/pairscale-pgtls.XXXXXX)
chmod 755 "$ps_tls_dir"
[ "$(id -u)" != 0 ] || chown postgres:postgres "$ps_tls_dir"
on_cleanup "remove $ps_tls_dir" rm -rf "$ps_tls_dir"

ps_tls_cert() { # ps_tls_cert NAME SUBJECT [CA_NAME EXTENSIONS]: NAME.key and NAME.pem
  local name=$1 subj=$2
  if [ $# = 2 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 \
      -subj "$subj" -keyout "$ps_tls_dir/$name.key" -out "$ps_tls_dir/$name.pem" 2>/dev/null
  else
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "$subj" -keyout "$ps_tls_dir/$name.key" -out "$ps_tls_dir/$name.csr" 2>/dev/null &&
      openssl x509 -req -in "$ps_tls_dir/$name.csr" -days 3 -CA "$ps_tls_dir/$3.pem" \
        -CAkey "$ps_tls_dir/$3.key" -CAcreateserial -extfile <(printf '%s\n' "$4") \
        -out "$ps_tls_dir/$name.pem" 2>/dev/null
  fi
}
ps_tls_cert ca "/CN=pairscale test dispatcher DB CA" || die "could not make the test CA"
ps_tls_cert other-ca "/CN=pairscale test unrelated CA" || die "could not make the second CA"
ps_tls_cert server "/CN=localhost" ca "$(printf '%s\n' \
  'subjectAltName = DNS:localhost, IP:127.0.0.1' 'basicConstraints = CA:FALSE' \
  'keyUsage = digitalSignature' 'extendedKeyUsage = serverAuth')" \
  || die "could not make the server certificate"
[ "$(id -u)" != 0 ] || chown postgres:postgres "$ps_tls_dir/server.key" "$ps_tls_dir/server.pem"
chmod 600 "$ps_tls_dir/server.key"

ps_tls_port=$(free_port)
ps_tls_as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
ps_tls_as_pg "$ps_tls_bin/initdb" -D "$ps_tls_dir/data" -U postgres --auth-local=trust \
  --auth-host=scram-sha-256 > "$ps_tls_dir/initdb.log" 2>&1 \
  || { cat "$ps_tls_dir/initdb.log" >&2; die "initdb failed for the TLS PostgreSQL"; }
# TLS sessions only over TCP (a client connecting to 127.0.0.2 also comes from 127.0.0.1), so
# a client that gets in used TLS.
sed -i 's/^host\([[:space:]]\+all[[:space:]]\+all[[:space:]]\+127\.0\.0\.1\/32\)/hostssl\1/' \
  "$ps_tls_dir/data/pg_hba.conf"
grep -q '^hostssl[[:space:]]\+all[[:space:]]\+all[[:space:]]\+127\.0\.0\.1/32' "$ps_tls_dir/data/pg_hba.conf" \
  || die "could not make 127.0.0.1 TLS-only in the TLS PostgreSQL's pg_hba.conf"
ps_tls_as_pg "$ps_tls_bin/pg_ctl" -D "$ps_tls_dir/data" -l "$ps_tls_dir/server.log" -w -t 60 \
  -o "-p $ps_tls_port -k $ps_tls_dir -c listen_addresses=127.0.0.1,127.0.0.2 -c fsync=off \
      -c ssl=on -c ssl_cert_file=$ps_tls_dir/server.pem -c ssl_key_file=$ps_tls_dir/server.key" \
  start > /dev/null || { tail -20 "$ps_tls_dir/server.log" >&2; die "the TLS PostgreSQL did not start"; }
on_cleanup "stop the TLS PostgreSQL" ps_tls_as_pg "$ps_tls_bin/pg_ctl" -D "$ps_tls_dir/data" -m immediate stop

ps_tls_psql() { psql -X -q -v ON_ERROR_STOP=1 -h "$ps_tls_dir" -p "$ps_tls_port" -U postgres "$@"; }
ps_tls_psql -d postgres > /dev/null <<SQL || die "could not create the TLS test database"
SET client_min_messages = warning;
CREATE ROLE pairscale_test LOGIN PASSWORD 'pairscale_tls_pw';
CREATE DATABASE pairscale_tls OWNER pairscale_test;
SQL
export PAIRSCALE_TEST_PG_TLS_URL="postgres://pairscale_test:pairscale_tls_pw@127.0.0.1:$ps_tls_port/pairscale_tls"
# The same schema as the shared test database (30-kamailio.sh).
{
  sed -n '/^CREATE TABLE version/,/^);/p' "$ps_kam_schema/standard-create.sql"
  echo "INSERT INTO version (table_name, table_version) VALUES ('version', '1');"
  cat "$ps_kam_schema/dispatcher-create.sql"
  echo "ALTER TABLE dispatcher ADD CONSTRAINT dispatcher_setid_destination_key UNIQUE (setid, destination);"
} | PGSSLMODE=verify-full PGSSLROOTCERT="$ps_tls_dir/ca.pem" \
  psql -X -q -v ON_ERROR_STOP=1 "$PAIRSCALE_TEST_PG_TLS_URL" > /dev/null \
  || die "could not create the dispatcher schema over verify-full TLS on 127.0.0.1:$ps_tls_port"
export PAIRSCALE_TEST_PG_TLS_CA="$ps_tls_dir/ca.pem"
export PAIRSCALE_TEST_PG_TLS_OTHER_CA="$ps_tls_dir/other-ca.pem"
log "PostgreSQL with TLS: 127.0.0.1:$ps_tls_port (and 127.0.0.2, not in its certificate), CA $PAIRSCALE_TEST_PG_TLS_CA"
