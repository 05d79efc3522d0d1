//! The outcome of one `apply`: every resource's report, or the first error carrying the
//! outcome of every resource, so that an operator sees what was done before the failure.

use serde::Serialize;
use serde_json::json;

use crate::catalog::{Desired, Kind};
use crate::error::{Outcome, ProvisionError, FAILED};
use crate::plan::ResourceReport;

pub(super) type EnsureResult = Result<ResourceReport, ProvisionError>;

/// Which resource an outcome is about, for the entry of one that failed.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Named {
    name: String,
    kind: Kind,
    stream: String,
}

impl Named {
    pub(super) fn of(d: &Desired) -> Self {
        Named {
            name: d.name.clone(),
            kind: d.row.kind(),
            stream: d.stream.clone(),
        }
    }
}

/// All reports, or the first error carrying every outcome in its details; `names` are the
/// resources in the same order, so that a failed one is named like the others.
pub(super) fn collect_reports(
    reports: Vec<Option<EnsureResult>>,
    names: &[Named],
) -> Result<Vec<ResourceReport>, ProvisionError> {
    let reports: Vec<EnsureResult> = reports
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ProvisionError::internal("resource was not handled"))))
        .collect();
    let Some(first_error) = reports.iter().find_map(|r| r.as_ref().err()).cloned() else {
        return Ok(reports.into_iter().filter_map(Result::ok).collect());
    };
    let outcome =
        reports
            .iter()
            .zip(names)
            .fold(Outcome::default(), |outcome, (r, named)| match r {
                Ok(report) => outcome.resource(&report.name, report.action.as_str(), report),
                Err(e) => outcome.resource(
                    &named.name,
                    FAILED,
                    json!({
                        "name": named.name,
                        "kind": named.kind,
                        "stream": named.stream,
                        "action": FAILED,
                        "error": e.body()["error"],
                    }),
                ),
            });
    Err(first_error.with_outcome(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;
    use crate::error::ErrorKind;
    use crate::plan::{plan_item, Action};
    use crate::settings::Settings;

    #[test]
    fn a_failed_resource_is_named_in_the_error_body() {
        let s = Settings::default();
        let desired = catalog::lattice_resources("x", &s);
        let names: Vec<Named> = desired.iter().map(Named::of).collect();
        let first = plan_item(desired[0].clone(), None);
        let reports = vec![
            Some(Ok(ResourceReport::from_plan(&first, Action::Created, 1))),
            Some(Err(ProvisionError::new(
                ErrorKind::InsufficientStorage,
                "full",
            ))),
        ];
        let e = collect_reports(reports, &names).unwrap_err();
        assert_eq!(e.code(), 507);
        let body = e.body();
        let failed = &body["resources"][1];
        assert_eq!(failed["action"], "failed", "{body}");
        assert_eq!(failed["name"], "CONFIGDATA_x", "{body}");
        assert_eq!(failed["stream"], "KV_CONFIGDATA_x", "{body}");
        assert_eq!(failed["kind"], "kv", "{body}");
        assert_eq!(failed["error"]["code"], 507, "{body}");
        assert_eq!(body["resources"][0]["name"], "LATTICEDATA_x", "{body}");
    }
}
