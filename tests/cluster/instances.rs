//! Two instances under a burst, and SIGTERM during a burst.

use super::*;

// ---------------------------------------------------------------------------
// Many instances
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_and_500_concurrent_requests_create_each_stream_once() {
    let _machine = MACHINE.write().await;
    const REQUESTS: usize = 500;
    let cluster = NatsCluster::start(3);
    // One instance on n1, one on n2; requesters on n1 and n2 in equal numbers, so the
    // queue group (which prefers a local member) splits the burst across both.
    let a = start_instance(&cluster.url(0), r3()).await;
    let b = start_instance(&cluster.url(1), r3()).await;
    let observer = common::connect(&cluster.url(2)).await;
    wait_placeable(&observer).await;
    let ids = wait_discoverable(&observer, 2).await;
    assert_eq!(ids.len(), 2);

    // The server's own records: creation advisories, the API audit trail, and every
    // STREAM.CREATE request as routed.
    let mut created_adv = observer
        .subscribe("$JS.EVENT.ADVISORY.STREAM.CREATED.*")
        .await
        .expect("subscribe");
    let mut audit = observer
        .subscribe("$JS.EVENT.ADVISORY.API")
        .await
        .expect("subscribe");
    let mut creates = observer
        .subscribe("$JS.API.STREAM.CREATE.*")
        .await
        .expect("subscribe");
    observer.flush().await.expect("flush");

    let requesters = [
        common::connect(&cluster.url(0)).await,
        common::connect(&cluster.url(1)).await,
    ];
    let started = Instant::now();
    let replies: Vec<Reply> = stream::iter(0..REQUESTS)
        .map(|i| {
            let client = requesters[i % 2].clone();
            async move { lattice(&client, json!({ "lattice": "burst" })).await }
        })
        .buffer_unordered(REQUESTS)
        .collect()
        .await;
    let elapsed = started.elapsed();

    let mut actions: BTreeMap<(String, String), usize> = BTreeMap::new();
    for reply in &replies {
        assert_eq!(reply.code, 200, "{reply:?}");
        for (stream, r) in reply.by_stream() {
            assert_eq!(r["replicas"], 3, "{r}");
            *actions
                .entry((stream, r["action"].as_str().unwrap_or("").to_string()))
                .or_default() += 1;
        }
    }
    // Requests that joined an instance's create in flight share its outcome, so several
    // replies may say `created`; the server's records below show the stream was created
    // once.
    let streams = ["KV_CONFIGDATA_burst", "KV_LATTICEDATA_burst"];
    for s in streams {
        let created = actions
            .get(&(s.to_string(), "created".to_string()))
            .copied()
            .unwrap_or(0);
        let exists = actions
            .get(&(s.to_string(), "exists".to_string()))
            .copied()
            .unwrap_or(0);
        assert!(created >= 1, "{actions:?}");
        assert_eq!(
            created + exists,
            REQUESTS,
            "only created or exists: {actions:?}"
        );
    }

    // Drain what the server recorded.
    let drain = |sub: &mut async_nats::Subscriber| {
        let mut out = Vec::new();
        while let Some(Some(m)) = sub.next().now_or_never() {
            out.push(m);
        }
        out
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let created: Vec<String> = drain(&mut created_adv)
        .iter()
        .map(|m| m.subject.rsplit('.').next().unwrap_or("").to_string())
        .collect();
    let mut created_count: BTreeMap<String, usize> = BTreeMap::new();
    for s in &created {
        *created_count.entry(s.clone()).or_default() += 1;
    }
    for s in streams {
        assert_eq!(
            created_count.get(s),
            Some(&1),
            "one STREAM.CREATED advisory per stream: {created_count:?}"
        );
    }
    let create_calls: Vec<String> = drain(&mut creates)
        .iter()
        .map(|m| m.subject.to_string())
        .collect();
    let audited: Vec<Value> = drain(&mut audit)
        .iter()
        .filter_map(|m| serde_json::from_slice::<Value>(&m.payload).ok())
        .filter(|v| {
            v["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("$JS.API.STREAM.CREATE."))
        })
        .collect();
    for s in streams {
        let calls = create_calls.iter().filter(|c| c.ends_with(s)).count();
        // Each instance single-flights its own creates: at most one call each.
        assert!((1..=2).contains(&calls), "{s}: {calls} STREAM.CREATE calls");
    }
    eprintln!(
        "{REQUESTS} requests in {elapsed:?}; actions {actions:?}; STREAM.CREATED advisories \
         {created_count:?}; STREAM.CREATE calls {}; audit advisories for them {} (one per \
         server that answered or forwarded)",
        create_calls.len(),
        audited.len()
    );

    // Both instances took part.
    for id in &ids {
        let m = observer
            .request(format!("$SRV.STATS.{SERVICE_NAME}.{id}"), Bytes::new())
            .await
            .expect("stats");
        let v: Value = serde_json::from_slice(&m.payload).expect("stats JSON");
        let handled: u64 = v["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["name"] == "lattice")
            .filter_map(|e| e["num_requests"].as_u64())
            .sum();
        assert!(handled > 0, "instance {id} handled no request: {v}");
    }

    // And the resources ended exactly as the catalog says.
    for d in catalog::lattice_resources("burst", &r3()) {
        let info = stream_info(&observer, &d.stream).await.expect("created");
        assert_catalog_config(&info, &d);
        assert_eq!(peers(&info), 3);
    }
    a.stop().await;
    b.stop().await;
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_answers_every_accepted_request_and_exits_0() {
    let _machine = MACHINE.write().await;
    const BURST: usize = 500;
    let server = NatsServer::start();
    let logs = tempfile::tempdir().expect("temp dir");
    let log_path = logs.path().join("provisioner.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = common::provisioner_command()
        .args(["--server", &server.url(), "--log-format", "json", "serve"])
        // `received` (debug) and `answered` (info) for every request the service takes.
        .env("RUST_LOG", "info,wasmcloud_provisioner::service=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start wasmcloud-provisioner serve");
    let client = common::connect(&server.url()).await;
    wait_discoverable(&client, 1).await;

    // Each request on the scoped subject of a lattice of its own: the subject names the
    // request in the service's log, and each one needs JetStream work.
    let send = |client: async_nats::Client, lattice: String| async move {
        let subject = format!("wasmcloud.provision.lattice.{lattice}");
        let outcome = common::reply::send(
            &client,
            &subject,
            async_nats::Request::new().timeout(Some(REPLY_TIMEOUT)),
        )
        .await;
        (lattice, outcome, Instant::now())
    };
    let (first_tx, mut first_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut requests = Vec::new();
    for i in 0..BURST {
        let request = send(client.clone(), format!("burst{i}"));
        let first_tx = first_tx.clone();
        requests.push(tokio::spawn(async move {
            let done = request.await;
            let _ = first_tx.send(());
            done
        }));
    }
    // And a trickle, one request per millisecond without waiting for replies, until
    // requests are refused (or 3000 were sent): some arrive while the service
    // unsubscribes.
    let refused_seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickle = {
        let client = client.clone();
        let refused_seen = refused_seen.clone();
        tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            for n in 0..3000 {
                tick.tick().await;
                if refused_seen.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let request = send(client.clone(), format!("trickle{n}"));
                let refused_seen = refused_seen.clone();
                sent.push(tokio::spawn(async move {
                    let done = request.await;
                    if matches!(&done.1, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders)
                    {
                        refused_seen.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    done
                }));
            }
            sent
        })
    };
    // SIGTERM once the burst is under way: some replies in, most requests still open.
    for _ in 0..10 {
        first_rx.recv().await.expect("replies arrive");
    }
    assert!(common::cli::sigterm(child.id()), "kill -TERM failed");
    let signalled = Instant::now();
    requests.extend(trickle.await.expect("trickle"));

    let mut replied = HashSet::new();
    let mut replied_after_signal = 0;
    let mut refused = 0;
    let mut timed_out = Vec::new();
    let total = requests.len();
    for request in requests {
        let (lattice, outcome, at) = request.await.expect("request task");
        match outcome {
            Ok(reply) => {
                // Under this load a JetStream call may time out: a 503 is still a reply.
                assert!(
                    reply.code == 200 || reply.code == 503,
                    "{lattice}: {reply:?}"
                );
                if reply.code != 200 {
                    reply.assert_well_formed_error(&lattice);
                }
                replied_after_signal += usize::from(at > signalled);
                replied.insert(lattice);
            }
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => refused += 1,
            Err(_) => timed_out.push(lattice),
        }
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("wait task")
        .expect("wait for the provisioner");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "exit status {status}\n{log}");
    assert!(
        replied_after_signal > 0,
        "no request was still in flight at SIGTERM, so the drain was not exercised"
    );

    // The service's own account of what it took and answered.
    let mut received = HashSet::new();
    let mut answered = HashSet::new();
    let mut from_witness = 0;
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        from_witness += v["missed"].as_u64().unwrap_or(0);
        let lattice = v["span"]["subject"]
            .as_str()
            .and_then(|s| s.strip_prefix("wasmcloud.provision.lattice."))
            .map(str::to_string);
        match (
            v["fields"]["message"].as_str().or(v["message"].as_str()),
            lattice,
        ) {
            (Some("received"), Some(l)) => {
                received.insert(l);
            }
            (Some("answered"), Some(l)) => {
                answered.insert(l);
            }
            (Some(m), _) => assert!(!m.contains("without their replies"), "{line}"),
            _ => {}
        }
    }
    assert!(
        !received.is_empty(),
        "no `received` lines in the log:\n{log}"
    );
    assert_eq!(
        received, answered,
        "every request the service took was answered"
    );
    assert_eq!(answered, replied, "and each answer reached its requester");
    // Nothing is lost on the wire: what the server routed to the endpoints is answered,
    // also what async-nats dropped when they unsubscribed (the shutdown witness has a copy,
    // and it ends only after the server's last message to it); later requests find no
    // responders.
    assert!(timed_out.is_empty(), "lost on the wire: {timed_out:?}");
    assert_eq!(replied.len() + refused + timed_out.len(), total);
    eprintln!(
        "SIGTERM after 10 replies: {total} requests, {} answered ({replied_after_signal} after \
         the signal; {from_witness} of them from the shutdown witness: on the wire when the \
         endpoints stopped, or sent after), {refused} refused (no responders), {} lost on \
         the wire; exit 0",
        replied.len(),
        timed_out.len()
    );
}
