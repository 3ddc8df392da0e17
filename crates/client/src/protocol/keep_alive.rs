//! Keep alive from the client's side (§3.1.2.10, §3.12).
//!
//! Rules: the client sends a packet at least once per keep alive interval, a PINGREQ when it
//! has nothing else to send [MQTT-3.1.2-20]; the interval is the server's Server Keep Alive
//! when CONNACK carries one [MQTT-3.1.2-21]. If nothing arrives within the ping timeout of a
//! PINGREQ, the connection is dead and the client closes it (§3.12.4 "should close"). Any
//! packet from the server counts as an answer: it proves the connection alive. While the
//! client itself has stopped reading (thousands of messages waiting for full streams), an unanswered
//! PINGREQ proves nothing: the deadline is re-armed instead.

use std::time::{Duration, Instant};

/// What [`KeepAlive::handle_timeout`] asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeepAliveAction {
    /// Nothing is due.
    None,
    /// Send a PINGREQ now.
    Ping,
    /// The ping went unanswered: close the connection.
    Dead,
}

/// Keep alive deadlines of one connection.
#[derive(Debug)]
pub(crate) struct KeepAlive {
    interval: Option<Duration>,
    ping_timeout: Duration,
    last_sent: Instant,
    ping_sent: Option<Instant>,
    paused: bool,
}

impl KeepAlive {
    /// Keep alive off until [`KeepAlive::start`].
    pub(crate) fn new(now: Instant) -> Self {
        KeepAlive {
            interval: None,
            ping_timeout: Duration::ZERO,
            last_sent: now,
            ping_sent: None,
            paused: false,
        }
    }

    /// The client stopped (`true`) or resumed reading from the connection.
    pub(crate) fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Starts the deadlines of a connection; a zero interval turns keep alive off.
    pub(crate) fn start(&mut self, now: Instant, interval: Duration, ping_timeout: Duration) {
        self.interval = (!interval.is_zero()).then_some(interval);
        self.ping_timeout = ping_timeout;
        self.last_sent = now;
        self.ping_sent = None;
    }

    /// Stops the deadlines (connection closed).
    pub(crate) fn stop(&mut self) {
        self.interval = None;
        self.ping_sent = None;
    }

    /// A packet was written.
    pub(crate) fn on_sent(&mut self, now: Instant) {
        self.last_sent = now;
    }

    /// A packet arrived: the connection is alive.
    pub(crate) fn on_received(&mut self) {
        self.ping_sent = None;
    }

    /// The next deadline, if keep alive is on.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let interval = self.interval?;
        Some(match self.ping_sent {
            Some(sent) => sent + self.ping_timeout,
            None => self.last_sent + interval,
        })
    }

    /// What is due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> KeepAliveAction {
        let Some(interval) = self.interval else {
            return KeepAliveAction::None;
        };
        match self.ping_sent {
            Some(sent) if now >= sent + self.ping_timeout && self.paused => {
                // The answer may be waiting unread: ping again after an interval.
                self.ping_sent = None;
                self.last_sent = now;
                KeepAliveAction::None
            }
            Some(sent) if now >= sent + self.ping_timeout => KeepAliveAction::Dead,
            Some(_) => KeepAliveAction::None,
            None if now >= self.last_sent + interval => {
                self.ping_sent = Some(now);
                KeepAliveAction::Ping
            }
            None => KeepAliveAction::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn pings_after_an_idle_interval_3_1_2_20() {
        let t0 = Instant::now();
        let mut ka = KeepAlive::new(t0);
        ka.start(t0, 10 * SEC, 5 * SEC);
        assert_eq!(ka.poll_timeout(), Some(t0 + 10 * SEC));
        ka.on_sent(t0 + 4 * SEC);
        assert_eq!(ka.handle_timeout(t0 + 10 * SEC), KeepAliveAction::None);
        assert_eq!(ka.poll_timeout(), Some(t0 + 14 * SEC));
        assert_eq!(ka.handle_timeout(t0 + 14 * SEC), KeepAliveAction::Ping);
        assert_eq!(ka.poll_timeout(), Some(t0 + 19 * SEC));
        ka.on_received();
        assert_eq!(ka.poll_timeout(), Some(t0 + 14 * SEC));
    }

    #[test]
    fn an_unanswered_ping_means_dead() {
        let t0 = Instant::now();
        let mut ka = KeepAlive::new(t0);
        ka.start(t0, SEC, SEC);
        assert_eq!(ka.handle_timeout(t0 + SEC), KeepAliveAction::Ping);
        assert_eq!(ka.handle_timeout(t0 + SEC + SEC / 2), KeepAliveAction::None);
        assert_eq!(ka.handle_timeout(t0 + 2 * SEC), KeepAliveAction::Dead);
    }

    #[test]
    fn no_death_while_the_client_is_not_reading() {
        let t0 = Instant::now();
        let mut ka = KeepAlive::new(t0);
        ka.start(t0, SEC, SEC);
        ka.set_paused(true);
        assert_eq!(ka.handle_timeout(t0 + SEC), KeepAliveAction::Ping);
        assert_eq!(ka.handle_timeout(t0 + 2 * SEC), KeepAliveAction::None);
        assert_eq!(ka.poll_timeout(), Some(t0 + 3 * SEC));
        assert_eq!(ka.handle_timeout(t0 + 3 * SEC), KeepAliveAction::Ping);
        ka.set_paused(false);
        assert_eq!(ka.handle_timeout(t0 + 4 * SEC), KeepAliveAction::Dead);
    }

    #[test]
    fn zero_interval_is_off() {
        let t0 = Instant::now();
        let mut ka = KeepAlive::new(t0);
        ka.start(t0, Duration::ZERO, SEC);
        assert_eq!(ka.poll_timeout(), None);
        assert_eq!(ka.handle_timeout(t0 + 1000 * SEC), KeepAliveAction::None);
    }
}
