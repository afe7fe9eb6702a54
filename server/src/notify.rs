//! Notifications: a JSON POST to a webhook and/or an e-mail through an SMTP
//! relay, when a task fails for good and when a source misses its policy's
//! RPO (no restore point younger than `rpo_seconds`).
//!
//! Delivery is best effort and never blocks a task's result: the outcome
//! of each delivery is returned for the caller to log. E-mail goes to a
//! plain SMTP relay (`host:port`, as a local MTA or smarthost on the
//! management network); authenticated and TLS submission are not built in
//! yet.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::{Message, SmtpTransport, Transport};
use serde_json::Value;

#[derive(Clone, Debug, Default)]
pub struct SmtpConfig {
    /// `host:port` of the relay.
    pub server: String,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Notifier {
    pub webhook: Option<String>,
    pub smtp: Option<SmtpConfig>,
}

impl Notifier {
    pub fn is_empty(&self) -> bool {
        self.webhook.is_none() && self.smtp.is_none()
    }

    /// Send `{"event": event, ...body}` to every configured channel.
    /// Returns one line per delivery, saying whether it worked.
    pub fn send(&self, event: &str, subject: &str, body: &Value) -> Vec<String> {
        let mut out = Vec::new();
        let mut doc = body.clone();
        doc["event"] = Value::from(event);
        doc["time"] = Value::from(arca_catalog::now());
        if let Some(url) = &self.webhook {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .into();
            out.push(match agent.post(url).send_json(&doc) {
                Ok(_) => format!("notified {url} ({event})"),
                Err(e) => format!("could not notify {url} ({event}): {e}"),
            });
        }
        if let Some(smtp) = &self.smtp {
            out.push(match send_mail(smtp, subject, &doc) {
                Ok(()) => format!("mailed {} ({event})", smtp.to.join(", ")),
                Err(e) => format!("could not mail {} ({event}): {e}", smtp.to.join(", ")),
            });
        }
        out
    }
}

fn send_mail(c: &SmtpConfig, subject: &str, doc: &Value) -> Result<(), String> {
    let (host, port) = c
        .server
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .unwrap_or((c.server.as_str(), 25));
    let mut b = Message::builder()
        .from(c.from.parse().map_err(|e| format!("from address: {e}"))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &c.to {
        b = b.to(to.parse().map_err(|e| format!("to address {to}: {e}"))?);
    }
    let text = format!(
        "{subject}\n\n{}\n",
        serde_json::to_string_pretty(doc).unwrap_or_default()
    );
    let msg = b.body(text).map_err(|e| e.to_string())?;
    let mailer = SmtpTransport::builder_dangerous(host)
        .port(port)
        .timeout(Some(Duration::from_secs(10)))
        .build();
    mailer.send(&msg).map(|_| ()).map_err(|e| e.to_string())
}
