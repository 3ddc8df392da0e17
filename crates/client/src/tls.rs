//! [`TlsOptions`]: how the client secures its connection with TLS (rustls with the aws-lc-rs
//! provider), and how they become a `rustls::ClientConfig`.
//!
//! Rules:
//! - Trust: the CA certificates given ([`TlsOptions::ca_file`], [`TlsOptions::ca_dir`],
//!   [`TlsOptions::ca_pem`]); without any, the Mozilla root set compiled in from
//!   `webpki-roots` (no dependence on the machine's certificate store, so a container without
//!   `ca-certificates` behaves like a desktop).
//! - The server name checked, and sent as SNI, is the host connected to (an IP address is
//!   checked against the certificate's IP SANs and sends no SNI), unless
//!   [`TlsOptions::server_name`] names another.
//! - [`TlsOptions::verify_hostname`] `(false)` still checks the chain but not the name (what
//!   mosquitto's `--insecure` does); [`TlsOptions::insecure`] checks nothing at all.
//! - A client certificate and its key ([`TlsOptions::client_cert`]) answer a server that
//!   asks for one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// A TLS protocol version, for [`TlsOptions::version`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// Where trusted CA certificates come from.
#[derive(Debug, Clone)]
enum CaSource {
    File(PathBuf),
    Dir(PathBuf),
    Pem(Vec<u8>),
}

/// The client's certificate chain and key.
#[derive(Clone)]
enum Identity {
    Files { cert: PathBuf, key: PathBuf },
    Pem { cert: Vec<u8>, key: Vec<u8> },
}

/// TLS settings of a connection, set on
/// [`ConnectOptions::tls`](crate::ConnectOptions::tls) (`mqtts://` URLs turn TLS on with
/// the defaults).
///
/// ```
/// use tern_client::{ConnectOptions, TlsOptions};
///
/// let tls = TlsOptions::new()
///     .ca_file("/etc/mosquitto/ca.crt")
///     .client_cert("/etc/tern/client.crt", "/etc/tern/client.key")
///     .alpn(["mqtt"]);
/// let options = ConnectOptions::new("broker.example", 8883).tls(tls);
/// assert!(options.tls_options().is_some());
/// ```
#[derive(Clone, Default)]
pub struct TlsOptions {
    ca: Vec<CaSource>,
    identity: Option<Identity>,
    insecure: bool,
    skip_hostname: bool,
    alpn: Vec<Vec<u8>>,
    server_name: Option<String>,
    version: Option<TlsVersion>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key's bytes must not reach a log; its path may.
        let identity = match &self.identity {
            Some(Identity::Files { cert, key }) => Some(format!("{cert:?} + {key:?}")),
            Some(Identity::Pem { .. }) => Some("<PEM in memory>".to_owned()),
            None => None,
        };
        f.debug_struct("TlsOptions")
            .field("ca", &self.ca)
            .field("identity", &identity)
            .field("insecure", &self.insecure)
            .field("verify_hostname", &!self.skip_hostname)
            .field("alpn", &self.alpn)
            .field("server_name", &self.server_name)
            .field("version", &self.version)
            .finish()
    }
}

/// Why the TLS settings cannot be used (a file missing or not PEM, a key that does not fit).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} holds no PEM certificate; give a PEM file (-----BEGIN CERTIFICATE-----)")]
    NoCertificate { what: String },
    #[error("{what} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { what: String },
    #[error("{what}: {message}")]
    Pem { what: String, message: String },
    #[error("CA certificate from {what} refused: {source}")]
    BadCa { what: String, source: rustls::Error },
    #[error("client certificate or key refused: {0}")]
    BadIdentity(rustls::Error),
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("server name {0:?} is neither a DNS name nor an IP address")]
    BadServerName(String),
}

/// Why [`TlsOptions::rustls_config`] cannot build a configuration: a file missing or not
/// PEM, a key that does not fit its certificate, a server name that is neither a DNS name nor
/// an IP address.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct TlsSetupError(TlsConfigError);

impl TlsOptions {
    /// The rustls configuration these settings describe and the server name to check for
    /// `host`, for a program that opens its own TLS connections with tokio-rustls (`tern
    /// bench` does, to speak MQTT without the client's bookkeeping).
    pub fn rustls_config(
        &self,
        host: &str,
    ) -> Result<(Arc<ClientConfig>, ServerName<'static>), TlsSetupError> {
        self.build(host).map_err(TlsSetupError)
    }

    /// TLS with the defaults: trust the Mozilla root set, check the server's name, no
    /// client certificate, no ALPN, TLS 1.2 or 1.3.
    pub fn new() -> Self {
        TlsOptions::default()
    }

    /// Trusts the CA certificates in this PEM file (instead of the built-in roots).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca.push(CaSource::File(path.into()));
        self
    }

    /// Trusts every PEM certificate in the files of this directory (`*.pem`, `*.crt`), as
    /// mosquitto's `--capath`.
    pub fn ca_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca.push(CaSource::Dir(path.into()));
        self
    }

    /// Trusts the CA certificates in these PEM bytes.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca.push(CaSource::Pem(pem.into()));
        self
    }

    /// Presents this certificate (chain, PEM) and private key (PEM) when the server asks.
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.identity = Some(Identity::Files {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }

    /// Like [`TlsOptions::client_cert`], from PEM bytes.
    pub fn client_cert_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.identity = Some(Identity::Pem {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }

    /// **Insecure, for testing only.** `true` accepts any server certificate: expired,
    /// self-signed, for another name. The connection is encrypted but anyone on the path can
    /// pretend to be the server. Default false.
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// `false` checks the server's certificate chain but not that it names the host (what
    /// mosquitto's `--insecure` does); also insecure, as any certificate from a trusted CA is
    /// accepted. Default true.
    pub fn verify_hostname(mut self, verify: bool) -> Self {
        self.skip_hostname = !verify;
        self
    }

    /// ALPN protocol names offered, in order of preference (`"mqtt"`, or `"x-amzn-mqtt-ca"`
    /// for AWS IoT on port 443).
    pub fn alpn<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// The name checked in the server's certificate and sent as SNI, when it is not the host
    /// connected to.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Allows only this TLS version (default: 1.2 and 1.3).
    pub fn version(mut self, version: TlsVersion) -> Self {
        self.version = Some(version);
        self
    }

    /// The rustls configuration these settings describe, and the server name for `host`.
    pub(crate) fn build(
        &self,
        host: &str,
    ) -> Result<(Arc<ClientConfig>, ServerName<'static>), TlsConfigError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match self.version {
            Some(TlsVersion::Tls12) => &[&rustls::version::TLS12],
            Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
            None => rustls::DEFAULT_VERSIONS,
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)?;
        let roots = Arc::new(self.roots()?);
        let verifier: Arc<dyn ServerCertVerifier> = if self.insecure {
            Arc::new(AcceptAnything(provider))
        } else {
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| TlsConfigError::Rustls(rustls::Error::General(e.to_string())))?;
            if self.skip_hostname {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(identity) => {
                let (chain, key) = identity.load()?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(TlsConfigError::BadIdentity)?
            }
        };
        config.alpn_protocols = self.alpn.clone();
        let name = self.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| TlsConfigError::BadServerName(name.to_owned()))?;
        Ok((Arc::new(config), server_name))
    }

    fn roots(&self) -> Result<RootCertStore, TlsConfigError> {
        let mut roots = RootCertStore::empty();
        if self.ca.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            return Ok(roots);
        }
        for source in &self.ca {
            let (what, certs) = match source {
                CaSource::File(path) => (path.display().to_string(), certs_in(path)?),
                CaSource::Pem(pem) => ("PEM bytes".to_owned(), pem_certs(pem, "PEM bytes")?),
                CaSource::Dir(dir) => {
                    // A system directory (/etc/ssl/certs) may hold a certificate webpki
                    // cannot use; the others still count, as with OpenSSL's CApath.
                    let (added, _) = roots.add_parsable_certificates(certs_in_dir(dir)?);
                    if added == 0 {
                        return Err(TlsConfigError::NoCertificate {
                            what: format!("{} (no usable CA certificate)", dir.display()),
                        });
                    }
                    continue;
                }
            };
            for cert in certs {
                roots.add(cert).map_err(|source| TlsConfigError::BadCa {
                    what: what.clone(),
                    source,
                })?;
            }
        }
        Ok(roots)
    }
}

impl Identity {
    fn load(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsConfigError> {
        match self {
            Identity::Files { cert, key } => {
                let chain = certs_in(cert)?;
                let key_pem = read(key)?;
                Ok((chain, pem_key(&key_pem, &key.display().to_string())?))
            }
            Identity::Pem { cert, key } => Ok((
                pem_certs(cert, "client certificate PEM")?,
                pem_key(key, "client key PEM")?,
            )),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|source| TlsConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

fn certs_in(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    pem_certs(&read(path)?, &path.display().to_string())
}

fn certs_in_dir(dir: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|source| TlsConfigError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let mut certs = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let is_cert = path
            .extension()
            .is_some_and(|e| e == "pem" || e == "crt" || e == "0");
        if is_cert && path.is_file() {
            // Files that are not PEM certificates are passed over, as OpenSSL does.
            certs.extend(certs_in(&path).unwrap_or_default());
        }
    }
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            what: format!("{} (no *.pem or *.crt file)", dir.display()),
        });
    }
    Ok(certs)
}

fn pem_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::Pem {
            what: what.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            what: what.to_owned(),
        });
    }
    Ok(certs)
}

fn pem_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsConfigError::NoKey {
            what: what.to_owned(),
        },
        e => TlsConfigError::Pem {
            what: what.to_owned(),
            message: e.to_string(),
        },
    })
}

/// Checks the chain, not the name (`verify_hostname(false)`).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Accepts any certificate (`insecure(true)`); the handshake signatures are still checked,
/// so the peer holds the key of the certificate it shows.
#[derive(Debug)]
struct AcceptAnything(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_are_named() {
        let err = TlsOptions::new()
            .ca_file("/nonexistent/ca.crt")
            .build("localhost")
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.crt"), "{err}");
        let err = TlsOptions::new()
            .ca_pem("not a certificate")
            .build("localhost")
            .unwrap_err();
        assert!(matches!(err, TlsConfigError::NoCertificate { .. }), "{err}");
    }

    #[test]
    fn a_ca_directory_takes_the_pem_files_in_it() {
        let dir = std::env::temp_dir().join(format!("tern-capath-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a certificate").unwrap();
        std::fs::write(dir.join("junk.pem"), "no PEM here").unwrap();
        let err = TlsOptions::new().ca_dir(&dir).build("h").unwrap_err();
        assert!(err.to_string().contains("no *.pem or *.crt"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn default_roots_and_ip_server_names() {
        let (config, name) = TlsOptions::new().alpn(["mqtt"]).build("127.0.0.1").unwrap();
        assert_eq!(config.alpn_protocols, vec![b"mqtt".to_vec()]);
        assert!(matches!(name, ServerName::IpAddress(_)));
        let (_, name) = TlsOptions::new().build("broker.example").unwrap();
        assert!(matches!(name, ServerName::DnsName(_)));
    }
}
