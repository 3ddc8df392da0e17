//! The Tern MQTT client library (in progress: see issue 5).
