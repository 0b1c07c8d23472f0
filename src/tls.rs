//! SIP over TLS (RFC 3261 §26.2, RFC 5630): the listener's certificate chain and key from
//! PEM files, checked at start and by `check-config`, TLS 1.2 and 1.3 only (rustls on
//! ring), and optionally mutual TLS: a peer must then present a certificate issued by a
//! configured CA, in addition to passing the IP access list.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::key_error::KeyError;

/// A certificate expiring within this many days is reported as a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// Longest a TLS handshake may take before the connection is dropped (a peer that opens
/// a connection and sends nothing must not hold a task).
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where the TLS material lives (`[sip] tls_cert`, `tls_key`, `tls_client_ca`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The leaf's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Mutual TLS: peers must present a certificate issued by one of these CAs (PEM).
    pub client_ca: Option<PathBuf>,
}

/// The loaded TLS material, ready for the listeners.
#[derive(Debug, Clone)]
pub struct TlsContext {
    /// The server side: certificate, key, versions and client verification.
    pub server: Arc<ServerConfig>,
    /// The leaf certificate's expiry (Unix seconds).
    pub not_after: i64,
    /// What is legal but worth a look (a certificate about to expire).
    pub warnings: Vec<String>,
}

/// rustls on ring: classic key exchange (X25519, P-256, P-384), which every SIP trunk
/// speaks; rustls marks it deprecated because it lacks the post-quantum hybrid
/// (X25519MLKEM768) that only its aws-lc-rs provider offers, a C build this project does
/// not take on yet.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, KeyError> {
    let bad = |msg: String| KeyError::new(key, format!("{}: {msg}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(pem_error(e)))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE in the file".into()));
    }
    Ok(certs)
}

type ChainAndKey = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The certificate chain and its key from their PEM files.
fn chain_and_key(files: &TlsFiles) -> Result<ChainAndKey, KeyError> {
    let chain = certs("sip.tls_cert", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        KeyError::new(
            "sip.tls_key",
            format!("{}: {}", files.key.display(), pem_error(e)),
        )
    })?;
    Ok((chain, key))
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => format!("cannot read: {io}"),
        other => format!("not valid PEM: {other:?}"),
    }
}

/// The client side, for connections holdless opens (to trunks, contact centers, callers):
/// servers are verified against `ca` (`sip.tls_ca`, PEM) or else the system's roots, with
/// SNI; holdless presents its own certificate (`files`) to peers that ask for one.
pub fn client_config(
    files: Option<&TlsFiles>,
    ca: Option<&Path>,
) -> Result<Arc<ClientConfig>, KeyError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for c in certs("sip.tls_ca", path)? {
                roots
                    .add(c)
                    .map_err(|e| KeyError::new("sip.tls_ca", format!("{}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "reading the system's TLS roots");
            }
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!(
                    "no system TLS roots found: outbound TLS will fail unless sip.tls_ca is set"
                );
            }
        }
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| KeyError::new("sip.tls_ca", format!("TLS versions: {e}")))?
        .with_root_certificates(roots);
    let config = match files {
        Some(f) => {
            let (chain, key) = chain_and_key(f)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| KeyError::new("sip.tls_key", format!("{}: {e}", f.key.display())))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

impl TlsContext {
    /// Loads and checks the files: each error names its key and file and says what is
    /// wrong; `now` (Unix seconds) decides expiry.
    pub fn load(files: &TlsFiles, now: i64) -> Result<TlsContext, KeyError> {
        let (chain, key) = chain_and_key(files)?;
        let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).map_err(|e| {
            KeyError::new(
                "sip.tls_cert",
                format!(
                    "{}: the first certificate does not parse: {e}",
                    files.cert.display()
                ),
            )
        })?;
        let not_after = leaf.validity().not_after.timestamp();
        let not_before = leaf.validity().not_before.timestamp();
        let subject = leaf.subject().to_string();
        if not_after <= now {
            return Err(KeyError::new(
                "sip.tls_cert",
                format!(
                    "{}: the certificate ({subject}) has expired",
                    files.cert.display()
                ),
            ));
        }
        let mut warnings = Vec::new();
        if not_before > now {
            warnings.push(format!(
                "sip.tls_cert: {}: the certificate ({subject}) is not valid yet",
                files.cert.display()
            ));
        }
        let days = (not_after - now) / 86_400;
        if days < EXPIRY_WARNING_DAYS {
            warnings.push(format!(
                "sip.tls_cert: {}: the certificate ({subject}) expires in {days} days",
                files.cert.display()
            ));
        }
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| KeyError::new("sip.tls_cert", format!("TLS versions: {e}")))?;
        let builder = match &files.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for c in certs("sip.tls_client_ca", path)? {
                    roots.add(c).map_err(|e| {
                        KeyError::new("sip.tls_client_ca", format!("{}: {e}", path.display()))
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| {
                            KeyError::new("sip.tls_client_ca", format!("{}: {e}", path.display()))
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let server = builder.with_single_cert(chain, key).map_err(|e| {
            KeyError::new(
                "sip.tls_key",
                format!("{} with {}: {e}", files.key.display(), files.cert.display()),
            )
        })?;
        Ok(TlsContext {
            server: Arc::new(server),
            not_after,
            warnings,
        })
    }
}
