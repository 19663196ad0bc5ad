//! TLS with rustls (ring provider): the server's certificate and key for
//! `vigil serve --tls-cert/--tls-key`. (`vigil client`'s trust roots are
//! the `vigil-client` crate's.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("{} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)", .0.display())]
    NoCertificate(PathBuf),
    #[error("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", .0.display())]
    NoKey(PathBuf),
    #[error("the certificate {} and the key {} do not go together: {source}", cert.display(), key.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("TLS setup failed: {0}")]
    Setup(#[source] rustls::Error),
}

/// The PEM files of `vigil serve --tls-cert/--tls-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn certificates(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |source| TlsError::Read {
        what,
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

/// The server side: the chain from `cert` (leaf first) and the key from
/// `key`, checked to belong together so that a mix-up stops startup instead
/// of failing every handshake.
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let chain = certificates(&files.cert, "certificate file")?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoKey(files.key.clone()),
        source => TlsError::Read {
            what: "key file",
            path: files.key.clone(),
            source,
        },
    })?;
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })
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
        let missing = dir.path().join("missing.pem");

        let err = server_config(&TlsFiles {
            cert: missing.clone(),
            key: empty.clone(),
        })
        .unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");

        let err = server_config(&TlsFiles {
            cert: empty.clone(),
            key: empty.clone(),
        })
        .unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate(_)), "{err}");
    }
}
