//! Subscribes to a filter and prints every message until Ctrl-C, along with the connection
//! state as it changes (stop and restart the broker to watch it reconnect).
//!
//! ```text
//! cargo run -p tern-client --example subscribe -- [URL] [FILTER]
//! cargo run -p tern-client --example subscribe -- mqtt://localhost:1883 'greenhouse/#'
//! ```

use tern_client::{Client, ConnectOptions, QoS};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "mqtt://localhost:1883".into());
    let filter = args.next().unwrap_or_else(|| "greenhouse/#".into());

    let client = Client::connect(ConnectOptions::from_url(&url)?).await?;
    let mut messages = client.subscribe(&filter, QoS::AtLeastOnce).await?;
    let mut state = client.state();
    eprintln!("subscribed to {filter}; Ctrl-C to stop");
    loop {
        tokio::select! {
            message = messages.recv() => {
                let Some(message) = message else { break };
                match message.payload_str() {
                    Some(text) => println!("{} {text}", message.topic),
                    None => println!("{} <{} bytes>", message.topic, message.payload.len()),
                }
            }
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
                eprintln!("connection: {:?}", *state.borrow_and_update());
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    client.disconnect().await;
    Ok(())
}
