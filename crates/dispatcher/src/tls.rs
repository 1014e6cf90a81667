//! TLS to the dispatcher database, in libpq's terms: `disable` (plain text) or `verify-full`
//! (encrypted, the server's certificate chained to a trusted CA and naming the host connected
//! to). Nothing in between: `require` encrypts without knowing who answers, which protects
//! nothing from the one who would read the password.
//!
//! The trusted CAs are a PEM bundle the operator gives (RDS: the region's bundle), or else the
//! system's root certificates.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::error::{DispatcherError, Result};

/// How the dispatcher database connection is secured.
#[derive(Clone)]
pub enum DbTls {
    /// Plain text: a database on a network nothing else shares, or a local test.
    Disable,
    /// TLS required, the certificate verified against these roots and the host name.
    VerifyFull(Arc<ClientConfig>),
}

impl fmt::Debug for DbTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mode())
    }
}

impl DbTls {
    /// `mode` as libpq names it (`disable` or `verify-full`), with the CA bundle for
    /// verify-full (`None`: the system's roots). A bundle with `disable` is refused: it says
    /// the operator meant to verify.
    pub fn from_mode(mode: &str, ca_pem: Option<&str>) -> Result<Self> {
        match (mode, ca_pem) {
            ("verify-full", ca) => Self::verify_full(ca),
            ("disable", None) => Ok(Self::Disable),
            ("disable", Some(_)) => Err(invalid(
                "sslmode",
                mode,
                "is disable, yet a CA bundle is configured (set verify-full to use it)",
            )),
            _ => Err(invalid("sslmode", mode, "must be disable or verify-full")),
        }
    }

    /// verify-full against the certificates of `ca_pem`, or the system's roots.
    pub fn verify_full(ca_pem: Option<&str>) -> Result<Self> {
        let mut roots = RootCertStore::empty();
        match ca_pem {
            Some(pem) => {
                let certs: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_slice_iter(pem.as_bytes())
                        .collect::<std::result::Result<_, _>>()
                        .map_err(|_| invalid("ca bundle", "<PEM>", "is not valid PEM"))?;
                if certs.is_empty() {
                    return Err(invalid("ca bundle", "<PEM>", "holds no certificate"));
                }
                for cert in certs {
                    roots.add(cert).map_err(|_| {
                        invalid(
                            "ca bundle",
                            "<PEM>",
                            "holds a certificate that does not parse",
                        )
                    })?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
                if roots.is_empty() {
                    return Err(invalid(
                        "ca bundle",
                        "",
                        "is not given, and the system has no root certificates",
                    ));
                }
            }
        }
        let config = ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|_| {
            invalid(
                "tls",
                "",
                "no TLS version in common with the crypto provider",
            )
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self::VerifyFull(Arc::new(config)))
    }

    /// libpq's name for it.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::VerifyFull(_) => "verify-full",
        }
    }
}

fn invalid(field: &'static str, value: &str, reason: &'static str) -> DispatcherError {
    DispatcherError::InvalidInput {
        field,
        value: value.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_other_than_disable_and_verify_full_are_refused_by_name() {
        for mode in ["require", "prefer", "allow", "verify-ca", "", "VERIFY-FULL"] {
            let e = DbTls::from_mode(mode, None).expect_err(mode);
            let shown = e.to_string();
            assert!(
                shown.contains("sslmode") && shown.contains("disable or verify-full"),
                "{shown}"
            );
        }
        assert_eq!(
            DbTls::from_mode("disable", None).expect("disable").mode(),
            "disable"
        );
    }

    #[test]
    fn a_bundle_with_disable_is_refused() {
        let e = DbTls::from_mode("disable", Some("x")).expect_err("bundle without verify");
        assert!(e.to_string().contains("verify-full"), "{e}");
    }

    #[test]
    fn a_bundle_without_a_certificate_is_refused() {
        for pem in [
            "",
            "not pem at all",
            "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
        ] {
            let e = DbTls::verify_full(Some(pem)).expect_err(pem);
            assert!(e.to_string().contains("ca bundle"), "{e}");
        }
    }

    #[test]
    fn the_debug_form_is_the_mode() {
        assert_eq!(format!("{:?}", DbTls::Disable), "disable");
    }
}
