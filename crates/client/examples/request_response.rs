//! MQTT 5.0 request/response: a responder answers on the request's Response Topic with its
//! Correlation Data; a requester waits for the answer that carries its own.
//!
//! ```text
//! cargo run -p tern-client --example request_response -- [URL]
//! ```

use std::time::Duration;

use tern_client::{Client, ConnectOptions, Publication, QoS};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mqtt://localhost:1883".into());
    let options = ConnectOptions::from_url(&url)?;

    // The responder: upper-cases whatever it is sent.
    let responder = Client::connect(options.clone().client_id("echo-service")).await?;
    let mut requests = responder
        .subscribe("service/upper", QoS::AtLeastOnce)
        .await?;
    let answering = responder.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            let Some(reply_to) = request.properties.response_topic.clone() else {
                continue;
            };
            let text = request.payload_str().unwrap_or_default().to_uppercase();
            let mut reply = Publication::new(reply_to.as_str(), text).qos(QoS::AtLeastOnce);
            if let Some(data) = request.properties.correlation_data.clone() {
                reply = reply.correlation_data(data);
            }
            if let Err(err) = answering.publish_with(reply).await {
                eprintln!("reply failed: {err}");
            }
        }
    });

    // The requester.
    let requester = Client::connect(options.client_id("requester")).await?;
    let reply_topic = format!("replies/{}", requester.client_id());
    let mut replies = requester.subscribe(&reply_topic, QoS::AtLeastOnce).await?;
    let request = Publication::new("service/upper", "hello, greenhouse")
        .qos(QoS::AtLeastOnce)
        .response_topic(reply_topic.as_str())
        .correlation_data("request-1");
    requester.publish_with(request).await?;

    let reply = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(reply) = replies.recv().await {
            if reply.properties.correlation_data.as_deref() == Some(b"request-1".as_slice()) {
                return Some(reply);
            }
        }
        None
    })
    .await?
    .ok_or("the client closed")?;
    println!("reply: {}", reply.payload_str().unwrap_or("<binary>"));

    requester.disconnect().await;
    responder.disconnect().await;
    Ok(())
}
