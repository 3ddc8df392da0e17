//! Publishes one message and waits until the broker has it.
//!
//! ```text
//! cargo run -p tern-client --example publish -- [URL] [TOPIC] [MESSAGE] [QOS]
//! cargo run -p tern-client --example publish -- mqtt://localhost:1883 greenhouse/temp 21.5 1
//! ```

use tern_client::{Client, ConnectOptions, QoS};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "mqtt://localhost:1883".into());
    let topic = args.next().unwrap_or_else(|| "greenhouse/temp".into());
    let message = args.next().unwrap_or_else(|| "21.5".into());
    let qos = match args.next().as_deref() {
        None | Some("1") => QoS::AtLeastOnce,
        Some("0") => QoS::AtMostOnce,
        Some("2") => QoS::ExactlyOnce,
        Some(other) => return Err(format!("QoS must be 0, 1 or 2, not {other}").into()),
    };

    let client = Client::connect(ConnectOptions::from_url(&url)?).await?;
    let reason = client.publish(&topic, message, qos, false).await?;
    println!("published to {topic} at QoS {}: {reason:?}", u8::from(qos));
    client.disconnect().await;
    Ok(())
}
