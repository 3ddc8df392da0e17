//! One benchmark connection: TCP or TLS to the broker, CONNECT/CONNACK and SUBSCRIBE/SUBACK
//! spoken with tern-codec, then the socket handed to a publisher, subscriber or idle loop as
//! a read half and a write half.
//!
//! Handshakes are not the hot path: they encode into a fresh buffer and wait for one packet
//! at a time, under [`HANDSHAKE_TIMEOUT`]. The address is resolved once, by [`Dialer::new`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::BytesMut;
use tern_codec::{
    decode, ClientId, Connect, MqttString, Packet, PacketId, ProtocolVersion, QoS, Subscribe,
    SubscriptionOptions, TopicFilter, MAX_PACKET_SIZE,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

/// Longest wait for a TCP connect, a TLS handshake, a CONNACK or a SUBACK.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How the clients' sessions are opened.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Protocol version.
    pub(crate) version: ProtocolVersion,
    /// Keep alive, seconds.
    pub(crate) keep_alive: u16,
    /// Clean start / clean session.
    pub(crate) clean: bool,
    /// MQTT 5 Session Expiry Interval.
    pub(crate) session_expiry: u32,
    /// User name.
    pub(crate) username: Option<String>,
    /// Password.
    pub(crate) password: Option<String>,
}

/// Opens connections to one broker.
#[derive(Clone)]
pub(crate) struct Dialer {
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// The session every client opens.
    pub(crate) session: Session,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .field("session", &self.session)
            .finish()
    }
}

/// The byte stream of a connection.
#[derive(Debug)]
enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An open MQTT connection after CONNACK.
#[derive(Debug)]
pub(crate) struct Link {
    stream: Stream,
    /// Bytes read and not decoded yet.
    pub(crate) read: BytesMut,
    /// The connection's protocol version.
    pub(crate) version: ProtocolVersion,
    /// The broker's Receive Maximum (65,535 when it sends none).
    pub(crate) receive_maximum: u16,
    /// Session Present of the CONNACK.
    pub(crate) session_present: bool,
    /// Packets that arrived before the SUBACK (a resumed session's queued messages), for
    /// the subscriber loop to handle first.
    pub(crate) early: Vec<Packet>,
}

/// The two halves of a connection's stream.
pub(crate) type Halves<'a> = (
    Box<dyn AsyncRead + Unpin + Send + 'a>,
    Box<dyn AsyncWrite + Unpin + Send + 'a>,
);

impl Dialer {
    /// A dialer for `host:port` (resolved now), with TLS when `tls` is given.
    pub(crate) async fn new(
        host: &str,
        port: u16,
        tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
        session: Session,
    ) -> anyhow::Result<Dialer> {
        let addr = tokio::net::lookup_host((host, port))
            .await
            .context("cannot resolve the host")?
            .next()
            .ok_or_else(|| anyhow!("the host has no address"))?;
        Ok(Dialer {
            addr,
            tls: tls.map(|(config, name)| (TlsConnector::from(config), name)),
            session,
        })
    }

    /// Connects and completes CONNECT/CONNACK as `client_id`.
    pub(crate) async fn connect(&self, client_id: &str) -> anyhow::Result<Link> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, self.open(client_id))
            .await
            .map_err(|_| anyhow!("no CONNACK within {HANDSHAKE_TIMEOUT:?}"))?
    }

    async fn open(&self, client_id: &str) -> anyhow::Result<Link> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("cannot connect to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let stream = match &self.tls {
            None => Stream::Tcp(tcp),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .context("TLS handshake failed")?;
                Stream::Tls(Box::new(tls))
            }
        };
        let s = &self.session;
        let mut link = Link {
            stream,
            read: BytesMut::with_capacity(256),
            version: s.version,
            receive_maximum: u16::MAX,
            session_present: false,
            early: Vec::new(),
        };
        let mut connect = Connect {
            protocol: s.version,
            clean_start: s.clean,
            keep_alive: s.keep_alive,
            client_id: ClientId::new(MqttString::try_from(client_id)?),
            username: s
                .username
                .as_deref()
                .map(MqttString::try_from)
                .transpose()?,
            password: s.password.clone().map(|p| p.into_bytes().into()),
            ..Connect::default()
        };
        if s.session_expiry > 0 {
            connect.properties.session_expiry_interval = Some(s.session_expiry);
        }
        link.send(&Packet::Connect(Box::new(connect))).await?;
        match link.recv().await? {
            Packet::ConnAck(ack) if !ack.reason_code.is_error() => {
                link.session_present = ack.session_present;
                link.receive_maximum = ack.properties.receive_maximum.map_or(u16::MAX, |m| m.get());
                Ok(link)
            }
            Packet::ConnAck(ack) => bail!("CONNECT refused: {:?}", ack.reason_code),
            other => bail!("expected CONNACK, got {:?}", other.packet_type()),
        }
    }
}

impl Link {
    /// Writes one packet (handshakes only).
    async fn send(&mut self, packet: &Packet) -> anyhow::Result<()> {
        let mut buf = BytesMut::with_capacity(packet.encoded_len(self.version));
        packet.encode(self.version, &mut buf)?;
        match &mut self.stream {
            Stream::Tcp(s) => s.write_all(&buf).await?,
            Stream::Tls(s) => {
                s.write_all(&buf).await?;
                s.flush().await?;
            }
        }
        Ok(())
    }

    /// Reads one packet (handshakes only).
    async fn recv(&mut self) -> anyhow::Result<Packet> {
        loop {
            if let Some(packet) = decode(&mut self.read, self.version, MAX_PACKET_SIZE)? {
                return Ok(packet);
            }
            let n = match &mut self.stream {
                Stream::Tcp(s) => s.read_buf(&mut self.read).await?,
                Stream::Tls(s) => s.read_buf(&mut self.read).await?,
            };
            if n == 0 {
                bail!("the broker closed the connection");
            }
        }
    }

    /// Subscribes to `filter` at `qos`; returns the QoS granted, or an error if refused.
    pub(crate) async fn subscribe(
        &mut self,
        filter: &TopicFilter,
        qos: QoS,
    ) -> anyhow::Result<QoS> {
        let packet_id = PacketId::new(1).ok_or_else(|| anyhow!("packet id 1"))?;
        let subscribe = Subscribe {
            packet_id,
            properties: Default::default(),
            filters: vec![(filter.clone(), SubscriptionOptions::with_qos(qos))],
        };
        self.send(&Packet::Subscribe(subscribe)).await?;
        let ack = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
            loop {
                match self.recv().await? {
                    Packet::SubAck(ack) => return anyhow::Ok(ack),
                    other => self.early.push(other),
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no SUBACK within {HANDSHAKE_TIMEOUT:?}"))??;
        match ack.reason_codes.first().map(|c| *c as u8) {
            Some(granted @ 0..=2) => Ok(QoS::from_u8(granted)?),
            Some(code) => bail!(
                "SUBSCRIBE to {} refused (reason code 0x{code:02x})",
                filter.as_str()
            ),
            None => bail!("SUBACK without a reason code"),
        }
    }

    /// Splits the stream for a loop that reads and writes at once.
    pub(crate) fn halves(&mut self) -> (Halves<'_>, &mut BytesMut) {
        let halves: Halves<'_> = match &mut self.stream {
            Stream::Tcp(s) => {
                let (r, w) = s.split();
                (Box::new(r), Box::new(w))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(&mut **s);
                (Box::new(r), Box::new(w))
            }
        };
        (halves, &mut self.read)
    }

    /// Keeps only a small read buffer (idle connections hold many).
    pub(crate) fn shrink(&mut self) {
        if self.read.is_empty() {
            self.read = BytesMut::new();
        }
    }
}

/// Writes some of `buf`, or flushes when it is empty (TLS keeps written records until
/// flushed). Returns the bytes written.
pub(crate) async fn write_or_flush<W: AsyncWrite + Unpin + ?Sized>(
    wr: &mut W,
    buf: &[u8],
) -> std::io::Result<usize> {
    if buf.is_empty() {
        wr.flush().await?;
        return Ok(0);
    }
    match wr.write(buf).await? {
        0 => Err(std::io::ErrorKind::WriteZero.into()),
        n => Ok(n),
    }
}
