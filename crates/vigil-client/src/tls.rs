//! The client's TLS with rustls (ring provider): the public web roots, or
//! one private CA with `--ca-cert`, for HTTPS and wss:// alike. (The
//! server's certificate and key are the server's `tls` module.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA certificate file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("{} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)", .0.display())]
    NoCertificate(PathBuf),
    #[error("the certificate in {} is not usable as a CA: {source}", path.display())]
    BadCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("TLS setup failed: {0}")]
    Setup(#[source] rustls::Error),
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}

/// Every certificate in `ca` as the only trust roots (like `curl --cacert`),
/// or the public web roots without it. No ALPN is offered, so the server
/// answers HTTP/1.1, which WebSockets need.
pub fn client_config(ca: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in certificates(path)? {
                roots.add(cert).map_err(|source| TlsError::BadCa {
                    path: path.to_owned(),
                    source,
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(
        ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn unusable_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "empty.pem", "not a pem file\n");
        let err = client_config(Some(&empty)).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate(_)), "{err}");
        assert!(err.to_string().contains("empty.pem"), "{err}");

        let err = client_config(Some(&dir.path().join("missing.pem"))).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }

    /// The hub's WebSocket needs HTTP/1.1; offering h2 would let the server
    /// pick it.
    #[test]
    fn the_client_offers_no_alpn_with_or_without_a_ca() {
        assert!(client_config(None).unwrap().alpn_protocols.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(vec!["ca.test".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let ca = write(dir.path(), "ca.pem", &ca.pem());
        assert!(client_config(Some(&ca)).unwrap().alpn_protocols.is_empty());
    }
}
