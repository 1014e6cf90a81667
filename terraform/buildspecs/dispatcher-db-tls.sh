# shellcheck shell=bash
# Sourced by terraform/buildspecs/ansible.yml before ansible-playbook (and by
# tests/checks/70-ansible.sh, which runs the dispatcher role through it against a PostgreSQL
# that speaks TLS): libpq's TLS settings for the psql the dispatcher role runs, from the
# project's environment (terraform/modules/orchestrator/codebuild.tf).
#
#   PGSSLMODE                   disable or verify-full (unset: verify-full, as the drain
#                               function's PAIRSCALE_DISPATCHER_DB_SSLMODE); anything else is
#                               refused
#   PAIRSCALE_DISPATCHER_DB_CA  the CA bundle's PEM text (dispatcher_db_ca_bundle), if any
#
# With verify-full it exports PGSSLROOTCERT: the bundle written to a file of its own, or
# without one the system's root certificates (/etc/ssl/certs/ca-certificates.crt, from Debian's
# ca-certificates; the build image's psql 15 does not know PGSSLROOTCERT=system). Returns
# non-zero, saying why, when it cannot.

case "${PGSSLMODE:-verify-full}" in
  disable)
    export PGSSLMODE
    ;;
  verify-full)
    export PGSSLMODE=verify-full
    if [ -n "${PAIRSCALE_DISPATCHER_DB_CA:-}" ]; then
      case $PAIRSCALE_DISPATCHER_DB_CA in
        *"-----BEGIN CERTIFICATE-----"*) ;;
        *) echo "PAIRSCALE_DISPATCHER_DB_CA holds no PEM certificate (-----BEGIN CERTIFICATE-----)" >&2; return 1 ;;
      esac
      PGSSLROOTCERT=$(mktemp "${TMPDIR:-/tmp}/dispatcher-db-ca.XXXXXX") || return 1
      printf '%s\n' "$PAIRSCALE_DISPATCHER_DB_CA" > "$PGSSLROOTCERT" || return 1
      export PGSSLROOTCERT
      echo "dispatcher database: TLS verify-full, certificates from PAIRSCALE_DISPATCHER_DB_CA ($PGSSLROOTCERT)"
    else
      export PGSSLROOTCERT=/etc/ssl/certs/ca-certificates.crt
      [ -s "$PGSSLROOTCERT" ] || { echo "no $PGSSLROOTCERT for PGSSLMODE=verify-full: install ca-certificates, or give the orchestrator dispatcher_db_ca_bundle" >&2; return 1; }
      echo "dispatcher database: TLS verify-full, the system's root certificates ($PGSSLROOTCERT)"
    fi
    ;;
  *)
    echo "PGSSLMODE is '$PGSSLMODE': the dispatcher database takes disable or verify-full (dispatcher_db_sslmode)" >&2
    return 1
    ;;
esac
