//! Certificates made by the test with rcgen: a CA, a server certificate for `localhost` and
//! 127.0.0.1, and a client certificate, written as PEM files into a directory of the test's.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// A CA and what it signed, as PEM strings and files.
pub struct TestPki {
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// Files: `ca.crt`, `server.crt`, `server.key`, `client.crt`, `client.key`.
    pub dir: PathBuf,
    /// The client certificate and key (PEM).
    pub client_cert_pem: String,
    /// The client key (PEM).
    pub client_key_pem: String,
}

impl TestPki {
    /// Path of one of the files.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn ca(name: &str) -> (Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("CA signs itself");
    (cert, key)
}

fn leaf(
    name: &str,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
    ca: &(Certificate, KeyPair),
) -> (Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca.0, &ca.1).expect("CA signs");
    (cert, key)
}

/// Makes a fresh CA with a server and a client certificate in `dir`.
pub fn generate(dir: &Path) -> TestPki {
    std::fs::create_dir_all(dir).expect("create the certificate directory");
    let ca = ca("Tern test CA");
    let server = leaf(
        "localhost",
        vec![
            SanType::DnsName("localhost".try_into().expect("a DNS name")),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ],
        ExtendedKeyUsagePurpose::ServerAuth,
        &ca,
    );
    let client = leaf(
        "tern-test-client",
        Vec::new(),
        ExtendedKeyUsagePurpose::ClientAuth,
        &ca,
    );
    let write = |name: &str, pem: &str| std::fs::write(dir.join(name), pem).expect("write PEM");
    write("ca.crt", &ca.0.pem());
    write("server.crt", &server.0.pem());
    write("server.key", &server.1.serialize_pem());
    write("client.crt", &client.0.pem());
    write("client.key", &client.1.serialize_pem());
    TestPki {
        ca_pem: ca.0.pem(),
        dir: dir.to_owned(),
        client_cert_pem: client.0.pem(),
        client_key_pem: client.1.serialize_pem(),
    }
}

/// The PEM certificate of a CA that signed nothing the server has.
pub fn stranger_ca_pem() -> String {
    ca("Someone else's CA").0.pem()
}
