//! Alarms told to systems outside vigil: webhooks (and MQTT).

pub mod webhooks;
