//! What the service and the CLI both do: make the catalog concrete for a request and hand
//! it to the reconciler. Endpoints and CLI commands are thin layers over these methods, so
//! `apply`/`plan` on the command line and a request to the service behave the same.

use std::sync::Arc;

use crate::catalog::{self, Desired, DesiredKey, Operator};
use crate::error::ProvisionError;
use crate::host_auth::HostAuth;
use crate::known::Warm;
use crate::plan::ResourceReport;
use crate::policy::LatticePolicy;
use crate::reconcile::Reconciler;
use crate::settings::Settings;

/// Shared state of a running provisioner.
pub struct Provisioner {
    pub reconciler: Arc<Reconciler>,
    /// The operator's settings (flags and config file).
    pub settings: Settings,
    /// Which lattices are served and how many may exist; applies to every entry point.
    pub policy: LatticePolicy,
    /// Who may bootstrap a host.
    pub host_auth: HostAuth,
    /// `serve --operator`: the operator version whose stream every wadm request (and
    /// status report of wadm) also covers, unless the request names one.
    pub operator: Option<Operator>,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Lattice(String),
    Wadm {
        multitenant: bool,
    },
    /// The Kubernetes operator's stream. It mirrors `wadm_events`: ask for it together with
    /// [`Target::Wadm`] (after it), so that one apply orders the two.
    Operator(Operator),
}

impl Provisioner {
    pub fn new(reconciler: Arc<Reconciler>, settings: Settings) -> Self {
        Provisioner {
            reconciler,
            settings,
            policy: LatticePolicy::default(),
            host_auth: HostAuth::default(),
            operator: None,
        }
    }

    pub fn with_operator(mut self, operator: Option<Operator>) -> Self {
        self.operator = operator;
        self
    }

    pub fn with_policy(mut self, policy: LatticePolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn with_host_auth(mut self, host_auth: HostAuth) -> Self {
        self.host_auth = host_auth;
        self
    }

    /// The catalog keys of a request's resources.
    fn keys_of(targets: &[Target]) -> impl Iterator<Item = &'static str> + '_ {
        targets.iter().flat_map(|t| {
            let scope = match t {
                Target::Lattice(_) => catalog::Scope::Lattice,
                Target::Wadm { .. } => catalog::Scope::Wadm,
                Target::Operator(v) => catalog::Scope::Operator(*v),
            };
            catalog::rows(scope).map(|r| r.key)
        })
    }

    /// Whether a request may ask for these replicas (see
    /// [`Settings::check_request_replicas`]): the operator's replicas are a floor, and
    /// raising them is the operator's choice.
    pub fn check_request_replicas(
        &self,
        targets: &[Target],
        replicas: Option<usize>,
    ) -> Result<(), ProvisionError> {
        match replicas {
            Some(r) => self
                .settings
                .check_request_replicas(r, Self::keys_of(targets)),
            None => Ok(()),
        }
    }

    /// A note for a reply whose request asked for fewer replicas than the operator's.
    pub fn replicas_note(&self, targets: &[Target], replicas: Option<usize>) -> Option<String> {
        self.settings
            .below_floor_note(replicas?, Self::keys_of(targets))
    }

    /// Checks a request against the policy before anything else: each lattice among the
    /// targets against the allowed names (403), the replicas against the operator's
    /// (see [`Provisioner::check_request_replicas`]). Returns the lattices.
    fn admissible<'a>(
        &self,
        targets: &'a [Target],
        replicas: Option<usize>,
    ) -> Result<Vec<&'a str>, ProvisionError> {
        let mut lattices = Vec::new();
        for t in targets {
            if let Target::Lattice(l) = t {
                self.policy.check_allowed(l)?;
                lattices.push(l.as_str());
            }
        }
        self.check_request_replicas(targets, replicas)?;
        Ok(lattices)
    }

    /// The desired resources of every target, in order.
    fn desired_all(&self, targets: &[Target], replicas: Option<usize>) -> Vec<Desired> {
        targets
            .iter()
            .flat_map(|t| self.desired(t, replicas))
            .collect()
    }

    pub fn js_domain(&self) -> Option<&str> {
        self.reconciler.js().domain()
    }

    /// The desired resources of a target, with a request's replicas applied.
    pub fn desired(&self, target: &Target, replicas: Option<usize>) -> Vec<Desired> {
        self.desired_keys(target, replicas)
            .into_iter()
            .map(DesiredKey::desired)
            .collect()
    }

    /// What [`Provisioner::desired`] is built from, without building the configs (the
    /// warm path needs only these).
    pub fn desired_keys(&self, target: &Target, replicas: Option<usize>) -> Vec<DesiredKey> {
        let settings = match replicas {
            Some(r) => std::borrow::Cow::Owned(self.settings.for_request(r)),
            None => std::borrow::Cow::Borrowed(&self.settings),
        };
        match target {
            Target::Lattice(l) => catalog::lattice_keys(l, &settings),
            Target::Wadm { multitenant } => catalog::wadm_keys(*multitenant, &settings),
            Target::Operator(operator) => catalog::operator_keys(*operator, &settings),
        }
    }

    /// The reports of the targets' resources from this instance's knowledge alone, when
    /// every one of them was seen in place and no lattice needs counting against
    /// `--max-lattices`: no JetStream call. `None` sends the request to [`Provisioner::apply`].
    /// A lattice that is not allowed is refused here as there (403).
    pub fn warm(
        &self,
        targets: &[Target],
        replicas: Option<usize>,
    ) -> Result<Option<Warm>, ProvisionError> {
        let lattices = self.admissible(targets, replicas)?;
        if !self.policy.admits_known(&lattices) {
            return Ok(None);
        }
        let keys = targets
            .iter()
            .flat_map(|t| self.desired_keys(t, replicas))
            .collect();
        Ok(self.reconciler.warm(keys).ok())
    }

    /// Ensures the targets' resources: the warm answer when there is one, else
    /// [`Provisioner::ensure`]. Drift is reported in the reports, not as an error.
    pub async fn apply(
        &self,
        targets: &[Target],
        replicas: Option<usize>,
    ) -> Result<Vec<ResourceReport>, ProvisionError> {
        match self.warm(targets, replicas)? {
            Some(warm) => Ok(warm.reports),
            None => self.ensure(targets, replicas).await,
        }
    }

    /// Ensures the targets' resources without first trying the warm answer as a whole (for
    /// a request whose warm answer was just tried): each resource is still answered from
    /// its verdict while that is fresh, and checked with JetStream otherwise.
    pub async fn ensure(
        &self,
        targets: &[Target],
        replicas: Option<usize>,
    ) -> Result<Vec<ResourceReport>, ProvisionError> {
        let lattices = self.admissible(targets, replicas)?;
        // Held until the new lattices exist, so that the cap counts them. Only with a cap,
        // and boxed: its state would otherwise weigh on every request's task.
        let admission = match self.policy.max_lattices() {
            Some(_) => Some(
                Box::pin(
                    self.policy
                        .admit(&lattices, &self.reconciler, &self.settings),
                )
                .await?,
            ),
            None => None,
        };
        let reports = self
            .reconciler
            .apply(self.desired_all(targets, replicas))
            .await?;
        if let Some(admission) = &admission {
            admission.settle(&self.reconciler, &self.settings).await;
        }
        self.policy.record(&lattices);
        Ok(reports)
    }

    /// Plans the targets' resources and changes nothing.
    pub async fn plan(
        &self,
        targets: &[Target],
        replicas: Option<usize>,
    ) -> Result<Vec<ResourceReport>, ProvisionError> {
        self.admissible(targets, replicas)?;
        let items = self
            .reconciler
            .plan(self.desired_all(targets, replicas))
            .await?;
        Ok(items.iter().map(ResourceReport::planned).collect())
    }

    /// Apply or plan.
    pub async fn run(
        &self,
        targets: &[Target],
        replicas: Option<usize>,
        dry_run: bool,
    ) -> Result<Vec<ResourceReport>, ProvisionError> {
        if dry_run {
            self.plan(targets, replicas).await
        } else {
            self.apply(targets, replicas).await
        }
    }
}
