//! Tests of the mailbox: overflow, waking, signals and its size.

use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::message::Message;

fn delivery(qos: QoS, payload: &'static str) -> Delivery {
    let message = Message::detached(
        &"t".try_into().unwrap(),
        payload.as_bytes(),
        qos,
        false,
        Default::default(),
        None,
        Instant::now(),
    );
    Delivery {
        message: Arc::new(message),
        qos,
        retain: false,
        subscription_ids: vec![],
        shared: None,
        stored: None,
    }
}

const LIMITS: QueueLimits = QueueLimits {
    max_messages: 2,
    max_bytes: 1000,
};

#[test]
fn full_queue_drops_qos0_and_evicts_it_for_qos1() {
    let mailbox = Mailbox::new();
    assert_eq!(
        mailbox.push(delivery(QoS::AtMostOnce, "a"), LIMITS),
        Pushed::Queued
    );
    assert_eq!(
        mailbox.push(delivery(QoS::AtLeastOnce, "b"), LIMITS),
        Pushed::Queued
    );
    assert_eq!(
        mailbox.push(delivery(QoS::AtMostOnce, "c"), LIMITS),
        Pushed::Dropped
    );
    assert_eq!(
        mailbox.push(delivery(QoS::ExactlyOnce, "d"), LIMITS),
        Pushed::QueuedEvicting
    );
    assert_eq!(
        mailbox.push(delivery(QoS::AtLeastOnce, "e"), LIMITS),
        Pushed::Dropped
    );
    let payloads: Vec<_> = std::iter::from_fn(|| mailbox.pop())
        .map(|d| d.message.payload.clone())
        .collect();
    assert_eq!(payloads, ["b", "d"]);
}

#[test]
fn byte_limit_applies() {
    let mailbox = Mailbox::new();
    let limits = QueueLimits {
        max_messages: 10,
        max_bytes: 5,
    };
    assert_eq!(
        mailbox.push(delivery(QoS::AtLeastOnce, "abc"), limits),
        Pushed::Queued
    );
    assert_eq!(
        mailbox.push(delivery(QoS::AtLeastOnce, "abc"), limits),
        Pushed::Dropped
    );
}

#[test]
fn offline_mailbox_keeps_only_qos1_and_2() {
    let mailbox = Mailbox::new();
    mailbox.push(delivery(QoS::AtMostOnce, "a"), LIMITS);
    mailbox.set_online(false);
    assert!(mailbox.is_empty());
    assert_eq!(
        mailbox.push(delivery(QoS::AtMostOnce, "b"), LIMITS),
        Pushed::Dropped
    );
    assert_eq!(
        mailbox.push(delivery(QoS::AtLeastOnce, "c"), LIMITS),
        Pushed::Queued
    );
    assert_eq!(mailbox.len(), 1);
}

/// Counts its wake-ups, to see when a parked consumer is woken.
#[derive(Default)]
struct Counter(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn woken(counter: &Counter) -> usize {
    counter.0.load(Ordering::SeqCst)
}

/// A parked consumer is woken by the delivery that makes its queue non-empty, not by
/// the ones after it (it takes all it has room for when it runs); every wake-up also
/// leaves a permit, so that whoever parks next does not sleep past it.
#[test]
fn park_wakes_on_the_first_delivery_and_keeps_a_permit() {
    let mailbox = Mailbox::new();
    let counter = Arc::new(Counter::default());
    let waker = std::task::Waker::from(counter.clone());
    assert!(!mailbox.park(&waker), "nothing came yet");
    mailbox.push(delivery(QoS::AtLeastOnce, "a"), LIMITS);
    mailbox.push(delivery(QoS::AtLeastOnce, "b"), LIMITS);
    assert_eq!(
        woken(&counter),
        1,
        "one wake-up for the queue becoming non-empty"
    );
    assert!(mailbox.park(&waker), "the wake-up also leaves a permit");
    mailbox.pop_into(10, &mut Vec::new());
    // Not parked now: the next delivery leaves a permit instead.
    mailbox.push(delivery(QoS::AtLeastOnce, "c"), LIMITS);
    assert_eq!(woken(&counter), 1);
    assert!(mailbox.park(&waker), "the permit says a delivery came");
    assert!(!mailbox.park(&waker), "a permit is used once");
}

/// Signals wake the parked connection and stay set until a new connection claims the
/// session, which clears them (and the old waker).
#[test]
fn signals_wake_and_stay_until_reset() {
    let mailbox = Mailbox::new();
    let counter = Arc::new(Counter::default());
    assert!(!mailbox.park(&std::task::Waker::from(counter.clone())));
    mailbox.signal(signal::TAKEN_OVER);
    assert_eq!(woken(&counter), 1);
    assert_eq!(mailbox.signals(), signal::TAKEN_OVER);
    mailbox.signal(signal::SHUTDOWN);
    assert_eq!(mailbox.signals(), signal::TAKEN_OVER | signal::SHUTDOWN);
    mailbox.reset_signals();
    assert_eq!(mailbox.signals(), 0);
    assert!(
        !mailbox.park(&std::task::Waker::from(counter)),
        "no permit left"
    );
}

/// Every connection has a mailbox, in an `Arc` (16 bytes more): glibc serves 120
/// bytes from a 128-byte chunk and 121 from a 144-byte one.
#[test]
fn a_mailbox_fits_a_128_byte_chunk() {
    let size = std::mem::size_of::<Mailbox>();
    // 112 bytes (in a 144-byte chunk, with a waker allocated for each parked
    // connection) before the waiter could be the parking's ticket.
    assert!(size <= 104, "a mailbox takes {size} bytes");
}
