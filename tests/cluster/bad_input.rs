//! Bad input at volume, against the real service.

use super::*;

// ---------------------------------------------------------------------------
// Bad input at volume, against the real service
// ---------------------------------------------------------------------------

/// xorshift64*: a tiny deterministic generator, seeded per run (printed to reproduce).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// 1..=max characters a lattice name may hold.
    fn name(&mut self, max: usize) -> String {
        const OK: &[u8] = b"ABCXYZabcxyz0189_-";
        (0..1 + self.below(max))
            .map(|_| *self.pick(OK) as char)
            .collect()
    }

    /// Valid characters, but more of them than a lattice name may hold.
    fn long_name(&mut self) -> String {
        let unit = self.name(10);
        unit.repeat(129 / unit.len() + 1 + self.below(20))
    }

    /// A name with at least one character a lattice name may not hold.
    fn bad_name(&mut self) -> String {
        const BAD: &[&str] = &[
            ".", "*", ">", " ", "\t", "/", "$", "é", "\u{0}", "\u{7f}", "{", "\"", "\\", "日本",
            "\r",
        ];
        let mut name = self.name(20);
        let at = self.below(name.len() + 1);
        let bad: &str = BAD[self.below(BAD.len())];
        name.insert_str(at, bad);
        name
    }

    /// Any JSON value other than the one a field wants.
    fn wrong_value(&mut self) -> Value {
        match self.below(7) {
            0 => Value::Null,
            1 => json!(self.next() % 1000),
            2 => json!(-1.5),
            3 => json!([self.name(5)]),
            4 => json!({ "x": 1 }),
            5 => json!(self.bad_name()),
            _ => json!(true),
        }
    }
}

/// A request that must be refused, and the subject it goes to.
fn invalid_request(rng: &mut Rng) -> (String, Vec<u8>) {
    const ENDPOINTS: &[&str] = &["lattice", "wadm", "status", "lattice.scoped"];
    let endpoint = *rng.pick(ENDPOINTS);
    let subject = format!("wasmcloud.provision.{endpoint}");
    let object = |rng: &mut Rng, key: &str, value: Value| {
        let mut body = serde_json::Map::new();
        body.insert(key.to_string(), value);
        if key != "dry_run" && rng.below(2) == 0 {
            body.insert("dry_run".into(), json!(true));
        }
        Value::Object(body).to_string().into_bytes()
    };
    let body: Vec<u8> = match rng.below(11) {
        // A plain-text name with a forbidden character (wadm takes no text at all).
        0 => rng.bad_name().into_bytes(),
        // Not UTF-8.
        1 => {
            let mut b = rng.name(10).into_bytes();
            let at = rng.below(b.len() + 1);
            b.insert(at, *rng.pick(&[0xff, 0xfe, 0xc3, 0x80]));
            b
        }
        // An unknown field.
        2 => {
            let key = format!("x{}", rng.name(8));
            object(rng, &key, json!(1))
        }
        // A known field with the wrong type or value.
        3 => {
            let key = *rng.pick(&["lattice", "dry_run", "multitenant", "wadm"]);
            let value = if key == "lattice" {
                match rng.below(3) {
                    0 => json!(rng.bad_name()),
                    1 => json!(rng.long_name()),
                    _ => rng.wrong_value(),
                }
            } else {
                let v = rng.wrong_value();
                if v.is_boolean() {
                    json!("true")
                } else {
                    v
                }
            };
            object(rng, key, value)
        }
        // Replicas JetStream cannot have.
        4 => {
            let replicas = [
                json!(0),
                json!(2),
                json!(4),
                json!(6),
                json!(-3),
                json!(3.5),
                json!("3"),
                Value::Null,
            ];
            let value = rng.pick(&replicas).clone();
            object(rng, "replicas", value)
        }
        // Broken JSON.
        5 => {
            let valid = json!({ "lattice": rng.name(10) }).to_string();
            valid.as_bytes()[..rng.below(valid.len() - 1) + 1].to_vec()
        }
        // JSON that is not an object (a string is a name: a bad one). Bare `42` or `null`
        // are plain-text lattice names, so they are not here.
        6 => match rng.below(3) {
            0 => b"[1,2,3]".to_vec(),
            1 => json!([{ "lattice": rng.name(5) }]).to_string().into_bytes(),
            _ => json!(rng.bad_name()).to_string().into_bytes(),
        },
        // Too long a name.
        7 => rng.long_name().into_bytes(),
        // Too large a body.
        8 => vec![b'a'; 16 * 1024 + 1 + rng.below(4096)],
        // Nested deeper than any parser should follow.
        9 => {
            let depth = 200 + rng.below(5000);
            let mut b = vec![b'['; depth];
            b.extend(vec![b']'; depth]);
            b
        }
        // Control characters and whitespace only.
        _ => rng
            .pick(&[&b" "[..], b"\t", b"\r\r\n", b"\n\n", b"\0", b" default"])
            .to_vec(),
    };
    // The scoped endpoint with a valid subject lattice refuses a body naming another one.
    let (subject, body) = if endpoint == "lattice.scoped" {
        if rng.below(3) == 0 {
            (
                format!("wasmcloud.provision.lattice.{}", rng.name(10)),
                format!("other{}", rng.name(5)).into_bytes(),
            )
        } else {
            (
                format!("wasmcloud.provision.lattice.{}", rng.name(10)),
                body,
            )
        }
    } else {
        (subject, body)
    };
    (subject, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_invalid_requests_get_well_formed_errors_and_create_nothing() {
    let _machine = MACHINE.read().await;
    const REQUESTS: usize = 400;
    let seed = std::env::var("INVALID_REQUESTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("INVALID_REQUESTS_SEED={seed}");
    let mut rng = Rng(seed);
    let server = NatsServer::start();
    let instance = start_instance(&server.url(), Settings::default()).await;
    let client = common::connect(&server.url()).await;
    wait_discoverable(&client, 1).await;

    let requests: Vec<(String, Vec<u8>)> =
        (0..REQUESTS).map(|_| invalid_request(&mut rng)).collect();
    let replies: Vec<(String, Vec<u8>, Reply)> = stream::iter(requests)
        .map(|(subject, body)| {
            let client = client.clone();
            async move {
                let reply = call(&client, &subject, body.clone()).await;
                (subject, body, reply)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut codes: BTreeMap<u16, usize> = BTreeMap::new();
    for (subject, body, reply) in &replies {
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        reply.assert_well_formed_error(&format!("{subject} {shown:?} (seed {seed})"));
        assert!(
            reply.code == 400 || reply.code == 403,
            "{subject} {shown:?} (seed {seed}): {reply:?}"
        );
        *codes.entry(reply.code).or_default() += 1;
    }
    assert_eq!(
        stream_count(&client).await,
        0,
        "an invalid request created a stream"
    );
    assert!(instance.is_running());
    eprintln!("{REQUESTS} invalid requests: replies by code {codes:?}; no stream created");
    instance.stop().await;
}
