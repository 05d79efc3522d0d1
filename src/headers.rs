//! The headers of a request that the service reads, and nothing else.
//!
//! async-nats parses every header of a message into a map before the service sees it (a
//! request may carry up to `max_payload` of them: 20,000 lines, or one value of 1 MB).
//! The service reads two by name: `Nats-Request-Info` (for the audit trail) and the host
//! signature. [`keep_only_used`] swaps the parsed map for one with just those two, each
//! bounded, as soon as the service takes a request (before its warm answer or its task):
//! so a request waiting for JetStream holds a few kilobytes of headers, not up to a
//! megabyte, and a burst of such requests does not hold a megabyte each while it is being
//! answered.

use async_nats::{HeaderMap, HeaderValue, Message};

use crate::subjects::{
    MAX_REQUEST_INFO_BYTES, MAX_SIGNATURE_BYTES, REQUEST_INFO_HEADER, SIGNATURE_HEADER,
};

/// The headers the service reads, each with the most bytes of it that are kept. One
/// character (up to 4 bytes) more of `Nats-Request-Info` than the audit trail parses, so
/// that an oversized one is still recorded as truncated.
const USED: &[(&str, usize)] = &[
    (REQUEST_INFO_HEADER, MAX_REQUEST_INFO_BYTES + 4),
    (SIGNATURE_HEADER, MAX_SIGNATURE_BYTES),
];

/// Replaces the message's headers by the ones the service reads, each cut to its bound.
/// Looks them up by name; never walks the others.
pub fn keep_only_used(message: &mut Message) {
    let Some(all) = message.headers.take() else {
        return;
    };
    let mut kept = HeaderMap::new();
    for (name, limit) in USED {
        if let Some(value) = all.get(*name) {
            let value = prefix(value.as_str(), *limit);
            // A parsed value has no line breaks, so this holds; skip it rather than panic.
            if let Ok(value) = value.parse::<HeaderValue>() {
                kept.insert(*name, value);
            }
        }
    }
    if !kept.is_empty() {
        message.headers = Some(kept);
    }
}

/// At most `limit` bytes of `s`, cut at a character boundary.
fn prefix(s: &str, limit: usize) -> &str {
    let mut end = limit.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::origin;

    fn message(headers: Option<HeaderMap>) -> Message {
        Message {
            subject: "wasmcloud.provision.lattice".into(),
            reply: None,
            payload: "x".into(),
            headers,
            status: None,
            description: None,
            length: 0,
        }
    }

    #[test]
    fn only_the_used_headers_are_kept_and_bounded() {
        let mut all = HeaderMap::new();
        for i in 0..20_000 {
            all.insert(format!("X-Hostile-{i}").as_str(), "v");
        }
        all.insert(REQUEST_INFO_HEADER, "ü".repeat(100_000).as_str());
        all.insert(SIGNATURE_HEADER, "s".repeat(10_000).as_str());
        let mut m = message(Some(all));
        keep_only_used(&mut m);
        let kept = m.headers.expect("the used headers are kept");
        assert_eq!(kept.iter().count(), 2);
        let info = kept.get(REQUEST_INFO_HEADER).unwrap().as_str();
        assert!(info.len() <= MAX_REQUEST_INFO_BYTES + 4);
        assert!(info.len() > MAX_REQUEST_INFO_BYTES, "{}", info.len());
        // Still recorded as too large to parse.
        assert_eq!(
            origin::request_info(info),
            Some(serde_json::json!({ "truncated": true }))
        );
        assert_eq!(
            kept.get(SIGNATURE_HEADER).unwrap().as_str().len(),
            MAX_SIGNATURE_BYTES
        );
    }

    #[test]
    fn ordinary_headers_are_kept_whole_and_none_stay_none() {
        let mut all = HeaderMap::new();
        all.insert(REQUEST_INFO_HEADER, r#"{"acc":"A"}"#);
        all.insert("Other", "dropped");
        let mut m = message(Some(all));
        keep_only_used(&mut m);
        let kept = m.headers.unwrap();
        assert_eq!(
            kept.get(REQUEST_INFO_HEADER).unwrap().as_str(),
            r#"{"acc":"A"}"#
        );
        assert!(kept.get("Other").is_none());
        let mut m = message(None);
        keep_only_used(&mut m);
        assert!(m.headers.is_none());
        let mut only_others = HeaderMap::new();
        only_others.insert("Other", "dropped");
        let mut m = message(Some(only_others));
        keep_only_used(&mut m);
        assert!(m.headers.is_none());
    }
}
