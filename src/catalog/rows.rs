//! The rows of the catalog: every resource host, wadm, the operator and the provisioner
//! itself need, with its settings exactly as the app would create it.

use super::{
    Access, App, Backup, MirrorShape, Operator, Retention, Row, Scope, Shape, SourceRow,
    StreamShape,
};

/// wadm's `DEFAULT_EXPIRY_TIME` for its event and command streams.
const WADM_MAX_AGE_SECS: u64 = 70;

/// The catalog. Order matters only in that a sourcing stream comes after its sources;
/// [`Desired::depends_on`](super::Desired::depends_on) makes that explicit for the
/// executor.
pub static CATALOG: &[Row] = &[
    Row {
        key: "latticedata",
        scope: Scope::Lattice,
        name: "LATTICEDATA_{lattice}",
        needed_by: App::Host,
        shape: Shape::Kv,
        access: &[Access::Info, Access::KvReadWriteWatch],
        backup: Backup::Recommended,
    },
    Row {
        key: "configdata",
        scope: Scope::Lattice,
        name: "CONFIGDATA_{lattice}",
        needed_by: App::Host,
        shape: Shape::Kv,
        access: &[Access::Info, Access::KvReadWriteWatch],
        backup: Backup::Recommended,
    },
    Row {
        key: "wadm_manifests",
        scope: Scope::Wadm,
        name: "wadm_manifests",
        needed_by: App::Wadm,
        shape: Shape::Kv,
        access: &[Access::Info, Access::KvReadWrite],
        backup: Backup::Recommended,
    },
    Row {
        key: "wadm_state",
        scope: Scope::Wadm,
        name: "wadm_state",
        needed_by: App::Wadm,
        shape: Shape::Kv,
        access: &[Access::Info, Access::KvReadWrite],
        backup: Backup::Optional,
    },
    Row {
        key: "wadm_events",
        scope: Scope::Wadm,
        name: "wadm_events",
        needed_by: App::Wadm,
        shape: Shape::Stream(StreamShape {
            subjects: &["wadm.evt.*.>"],
            subjects_multitenant: &["wadm.evt.*.>"],
            retention: Retention::Limits,
            max_age_secs: WADM_MAX_AGE_SECS,
            max_msgs_per_subject: None,
            allow_direct: false,
            description:
                "A stream that stores all events coming in on the wadm.evt subject in a cluster",
            sources: &[],
            subjects_checked_by_wadm: true,
        }),
        access: &[Access::Info, Access::Publish],
        backup: Backup::Optional,
    },
    Row {
        key: "wadm_commands",
        scope: Scope::Wadm,
        name: "wadm_commands",
        needed_by: App::Wadm,
        shape: Shape::Stream(StreamShape {
            subjects: &["wadm.cmd.*"],
            subjects_multitenant: &["wadm.cmd.*"],
            retention: Retention::WorkQueue,
            max_age_secs: WADM_MAX_AGE_SECS,
            max_msgs_per_subject: None,
            allow_direct: false,
            description: "A stream that stores all commands for wadm",
            sources: &[],
            subjects_checked_by_wadm: true,
        }),
        access: &[Access::Info, Access::DurablePull, Access::Publish],
        backup: Backup::Optional,
    },
    Row {
        key: "wadm_status",
        scope: Scope::Wadm,
        name: "wadm_status",
        needed_by: App::Wadm,
        shape: Shape::Stream(StreamShape {
            subjects: &["wadm.status.*.*"],
            subjects_multitenant: &["wadm.status.*.*"],
            retention: Retention::Limits,
            max_age_secs: 0,
            max_msgs_per_subject: Some(10),
            allow_direct: true,
            description: "A stream that stores all status updates for wadm applications",
            sources: &[],
            subjects_checked_by_wadm: false,
        }),
        access: &[Access::Info, Access::DirectRead, Access::Publish],
        backup: Backup::Optional,
    },
    Row {
        key: "wasmbus_events",
        scope: Scope::Wadm,
        name: "wasmbus_events",
        needed_by: App::Wadm,
        shape: Shape::Stream(StreamShape {
            subjects: &["wasmbus.evt.*.>"],
            subjects_multitenant: &["*.wasmbus.evt.*.>"],
            retention: Retention::Limits,
            max_age_secs: WADM_MAX_AGE_SECS,
            max_msgs_per_subject: None,
            allow_direct: false,
            description:
                "A stream that stores all events coming in on the wasmbus.evt subject in a cluster",
            sources: &[],
            subjects_checked_by_wadm: true,
        }),
        access: &[Access::Info, Access::Subscribe],
        backup: Backup::Optional,
    },
    Row {
        key: "wadm_notify",
        scope: Scope::Wadm,
        name: "wadm_notify",
        needed_by: App::Wadm,
        shape: Shape::Stream(StreamShape {
            subjects: &["wadm.notify.*"],
            subjects_multitenant: &["wadm.notify.*"],
            retention: Retention::Interest,
            max_age_secs: WADM_MAX_AGE_SECS,
            max_msgs_per_subject: None,
            allow_direct: false,
            description: "A stream for capturing all notification events for wadm",
            sources: &[],
            subjects_checked_by_wadm: false,
        }),
        access: &[Access::Info, Access::EphemeralPull, Access::Publish],
        backup: Backup::Optional,
    },
    Row {
        key: "wadm_event_consumer",
        scope: Scope::Wadm,
        name: "wadm_event_consumer",
        needed_by: App::Wadm,
        shape: Shape::Stream(StreamShape {
            subjects: &[],
            subjects_multitenant: &[],
            retention: Retention::WorkQueue,
            max_age_secs: WADM_MAX_AGE_SECS,
            max_msgs_per_subject: None,
            allow_direct: false,
            description: "A stream that sources from wadm_events and wasmbus_events for wadm event consumer's use",
            sources: &[
                SourceRow {
                    from: "wasmbus_events",
                    transform_src: "wasmbus.evt.*.>",
                    transform_src_multitenant: "*.wasmbus.evt.*.>",
                    transform_dest: "wadm_event_consumer.evt.{{wildcard(1)}}.>",
                    transform_dest_multitenant: "wadm_event_consumer.evt.{{wildcard(2)}}.>",
                },
                SourceRow {
                    from: "wadm_events",
                    transform_src: "wadm.evt.*.>",
                    transform_src_multitenant: "wadm.evt.*.>",
                    transform_dest: "wadm_event_consumer.evt.{{wildcard(1)}}.>",
                    transform_dest_multitenant: "wadm_event_consumer.evt.{{wildcard(1)}}.>",
                },
            ],
            subjects_checked_by_wadm: false,
        }),
        access: &[Access::Info, Access::DurablePull],
        backup: Backup::Optional,
    },
    // The Kubernetes operator's stream, as wasmcloud-operator 0.4.x–0.5.0 / wadm-operator
    // create it (`get_or_create_stream`, async-nats 0.33): a work-queue mirror of
    // `wadm_events` whose transform puts each lattice's events under `<stream>.<l>.>`,
    // where the operator's per-lattice consumer (filter `<stream>.<l>.>`) reads them.
    Row {
        key: "wasmcloud_operator_events",
        scope: Scope::Operator(Operator::V0_4),
        name: "wasmcloud_operator_events",
        needed_by: App::Operator,
        shape: Shape::Mirror(MirrorShape {
            retention: Retention::WorkQueue,
            max_age_secs: WADM_MAX_AGE_SECS,
            description: "Stream for wadm events consumed by the wasmCloud K8s Operator",
            mirror: SourceRow {
                from: "wadm_events",
                transform_src: "wadm.evt.*.>",
                transform_src_multitenant: "wadm.evt.*.>",
                transform_dest: "wasmcloud_operator_events.{{wildcard(1)}}.>",
                transform_dest_multitenant: "wasmcloud_operator_events.{{wildcard(1)}}.>",
            },
        }),
        access: &[
            Access::Info,
            Access::NamedPull {
                consumer: "wasmcloud_operator_service-{lattice}",
            },
        ],
        // A mirror of wadm_events: made again from it, nothing of its own to keep.
        backup: Backup::Never,
    },
    Row {
        key: "wadm_operator_events",
        scope: Scope::Operator(Operator::V0_5),
        name: "wadm_operator_events",
        needed_by: App::Operator,
        shape: Shape::Mirror(MirrorShape {
            retention: Retention::WorkQueue,
            max_age_secs: WADM_MAX_AGE_SECS,
            description: "Stream for wadm events consumed by the wadm K8s Operator",
            mirror: SourceRow {
                from: "wadm_events",
                transform_src: "wadm.evt.*.>",
                transform_src_multitenant: "wadm.evt.*.>",
                transform_dest: "wadm_operator_events.{{wildcard(1)}}.>",
                transform_dest_multitenant: "wadm_operator_events.{{wildcard(1)}}.>",
            },
        }),
        access: &[
            Access::Info,
            Access::NamedPull {
                consumer: "wadm_operator_service-{lattice}",
            },
        ],
        // A mirror of wadm_events: made again from it, nothing of its own to keep.
        backup: Backup::Never,
    },
    // `--max-lattices` across instances: new lattices are reserved here, one
    // compare-and-set at a time, before they are created (see `admission.rs`).
    Row {
        key: "provisioner_admissions",
        scope: Scope::Provisioner,
        name: "wasmcloud_provisioner_admissions",
        needed_by: App::Provisioner,
        shape: Shape::Kv,
        access: &[Access::Info, Access::KvReadWrite],
        // Reservations that live minutes: nothing to restore.
        backup: Backup::Never,
    },
];
