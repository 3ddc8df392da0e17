//! The TLS flags of `tern pub` and `tern sub`, as mosquitto_pub and mosquitto_sub spell
//! them, and the [`TlsOptions`] they become. TLS is on with `--cafile`, `--capath`,
//! `--tls-use-os-certs` or an `mqtts://` URL; the other TLS flags without it are usage errors.

use clap::Args;
use tern_client::{TlsOptions, TlsVersion};

use super::Failure;

/// The TLS flags, as mosquitto_pub and mosquitto_sub spell them.
#[derive(Debug, Args)]
pub(crate) struct TlsArgs {
    /// File of trusted CA certificates (PEM); turns TLS on.
    #[arg(long = "cafile", value_name = "FILE")]
    cafile: Option<std::path::PathBuf>,
    /// Directory of trusted CA certificates (PEM files); turns TLS on.
    #[arg(long = "capath", value_name = "DIR")]
    capath: Option<std::path::PathBuf>,
    /// Trust the built-in Mozilla root certificates; turns TLS on.
    #[arg(long = "tls-use-os-certs")]
    os_certs: bool,
    /// Client certificate (PEM), with --key.
    #[arg(long = "cert", value_name = "FILE", requires = "key")]
    cert: Option<std::path::PathBuf>,
    /// Client private key (PEM), with --cert.
    #[arg(long = "key", value_name = "FILE", requires = "cert")]
    key: Option<std::path::PathBuf>,
    /// Do not check that the server certificate names the host.
    #[arg(long = "insecure")]
    insecure: bool,
    /// ALPN protocol to offer.
    #[arg(long = "tls-alpn", value_name = "PROTOCOL")]
    alpn: Option<String>,
    /// TLS version: tlsv1.3 or tlsv1.2.
    #[arg(long = "tls-version", value_name = "VERSION", value_parser = parse_tls_version)]
    tls_version: Option<TlsVersion>,
}

impl TlsArgs {
    /// The TLS options, `None` without TLS; `url_tls`: the `-L` URL was `mqtts://`.
    pub(super) fn options(&self, url_tls: bool) -> Result<Option<TlsOptions>, Failure> {
        let on = url_tls || self.cafile.is_some() || self.capath.is_some() || self.os_certs;
        if !on {
            let stray = [
                (self.cert.is_some(), "--cert"),
                (self.key.is_some(), "--key"),
                (self.insecure, "--insecure"),
                (self.alpn.is_some(), "--tls-alpn"),
                (self.tls_version.is_some(), "--tls-version"),
            ];
            if let Some((_, flag)) = stray.iter().find(|(given, _)| *given) {
                return Err(Failure::usage(format!(
                    "{flag} is a TLS option; turn TLS on with --cafile FILE, --capath DIR,                      --tls-use-os-certs or -L mqtts://..."
                )));
            }
            return Ok(None);
        }
        let mut tls = TlsOptions::new();
        if let Some(file) = &self.cafile {
            tls = tls.ca_file(file);
        }
        if let Some(dir) = &self.capath {
            tls = tls.ca_dir(dir);
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            tls = tls.client_cert(cert, key);
        }
        if self.insecure {
            tls = tls.verify_hostname(false);
        }
        if let Some(alpn) = &self.alpn {
            tls = tls.alpn([alpn.as_bytes()]);
        }
        if let Some(version) = self.tls_version {
            tls = tls.version(version);
        }
        Ok(Some(tls))
    }
}

/// `--tls-version`: tlsv1.3 or tlsv1.2 (rustls has nothing older).
fn parse_tls_version(s: &str) -> Result<TlsVersion, String> {
    match s {
        "tlsv1.3" => Ok(TlsVersion::Tls13),
        "tlsv1.2" => Ok(TlsVersion::Tls12),
        "tlsv1.1" | "tlsv1" => Err(format!(
            "{s} is not supported (insecure); use tlsv1.2 or tlsv1.3"
        )),
        _ => Err("invalid TLS version; use tlsv1.3 or tlsv1.2".into()),
    }
}
