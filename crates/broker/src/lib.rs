//! The Tern MQTT broker as a library.
