//! [`Resting`]: what a parked connection keeps while it waits in the
//! [parking](crate::parking).
//!
//! A parked link needs neither its socket (the parking holds it), nor its keep alive timer
//! (the parking keeps the deadline), nor the flags of a running link, nor the place for its
//! work (it parks only without any). The parking holds one of these for every idle
//! connection, so it keeps only the rest: 248 bytes, where the whole link takes 320 and its
//! allocation the next size of the allocator up.

use std::marker::PhantomData;
use std::sync::Arc;

use tern_codec::ProtocolVersion;
use tokio::io::{AsyncRead, AsyncWrite};

use super::link::Link;
use super::steps::Connection;
use crate::auth::reauth::Reauth;
use crate::hub::Hub;
use crate::session::Session;

/// A parked connection: its session and what its link gets back when it resumes.
pub(super) struct Resting<S, H> {
    session: Session,
    hub: Arc<Hub>,
    reauth: Option<Box<Reauth>>,
    version: ProtocolVersion,
    connection: u64,
    held: H,
    /// The kind of stream the link runs over when it resumes.
    stream: PhantomData<fn() -> S>,
}

impl<S, H> Resting<S, H>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// A link with nothing left to do, without its socket (taken out to be parked).
    pub(super) fn from_link(link: Link<S, H>) -> Self {
        let Link {
            conn,
            session,
            connection,
            held,
            ..
        } = link;
        debug_assert!(conn.work.is_none(), "a link parks only without work");
        Resting {
            session,
            hub: conn.hub,
            reauth: conn.reauth,
            version: conn.version,
            connection,
            held,
            stream: PhantomData,
        }
    }

    /// The link again, over `stream` (`None`: the socket failed on its way back).
    pub(super) fn into_link(self, stream: Option<S>) -> Link<S, H> {
        let Resting {
            session,
            hub,
            reauth,
            version,
            connection,
            held,
            stream: PhantomData,
        } = self;
        let conn = Connection {
            hub,
            version,
            reauth,
            work: None,
        };
        Link::resumed(stream, conn, session, connection, held)
    }
}
