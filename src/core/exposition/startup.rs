//! Startup families, read from the startup DAGs: how long each service took
//! to start and where it has got to, so a slow or stuck start shows on a
//! dashboard and an alert can fire on a failed or degraded start (the report
//! endpoint answers one request; Prometheus keeps the history).
//!
//! * `startup_service_duration_seconds{service}`: init plus health check of
//!   a service that finished starting (ready or failed), in seconds.
//! * `startup_service_state{service,state}`: one gauge per state, 1 for the
//!   current one (the Prometheus enum idiom: `max by (service)` works and a
//!   state never seen still has a 0 series).
//! * `startup_complete`: 1 when every run has finished and none failed
//!   (every critical service ready).
//! * `startup_critical_ready`: 1 when every critical service is ready.
//!
//! Only DAGs with services are read; with none, no family is emitted (an
//! app that does not use the DAG gets no always-0 `startup_complete`).
//!
//! ```
//! use reliability_core::core::exposition::startup;
//! use reliability_core::core::startup::{Dag, ServiceSpec};
//! let mut d = Dag::new();
//! d.register(ServiceSpec::new("db", "Database", &[], true)).unwrap();
//! let f = startup::collect(&[&d]);
//! assert_eq!(f[1].name, "startup_service_state");
//! assert!(startup::collect(&[&Dag::new()]).iter().all(|f| f.samples.is_empty()));
//! ```

use super::model::{Family, Kind, Sample, Value};
use crate::core::startup::{Dag, Outcome, Status};

fn b(x: bool) -> Value {
    Value::Number(if x { 1.0 } else { 0.0 })
}

/// The families of every service in `dags` (a service id registered in two
/// DAGs shows once, from the first); the overall gauges are 1 only when they
/// hold for every DAG.
pub fn collect(dags: &[&Dag]) -> Vec<Family> {
    let mut duration = Family::new(
        "startup_service_duration_seconds",
        Kind::Gauge,
        "Time the service took to start (init and health check), in seconds.",
    );
    duration.unit = Some("seconds");
    let mut state = Family::new(
        "startup_service_state",
        Kind::Gauge,
        "1 for the service's current startup state, 0 for the others.",
    );
    let (mut complete, mut critical, mut any) = (true, true, false);
    let mut seen = std::collections::HashSet::new();
    for d in dags.iter().filter(|d| !d.is_empty()) {
        any = true;
        complete &= matches!(d.outcome(), Outcome::Ready | Outcome::Degraded);
        critical &= d.critical_ready();
        for i in 0..d.len() {
            let (id, st) = (&d.spec(i).id, d.state(i));
            if !seen.insert(id.as_str()) {
                continue;
            }
            for s in Status::ALL {
                state.samples.push(Sample::new(
                    vec![("service", id.clone()), ("state", s.as_str().to_string())],
                    b(st.status == s),
                ));
            }
            if let Some(ms) = st.duration_ms() {
                duration.samples.push(Sample::new(
                    vec![("service", id.clone())],
                    Value::Number(ms / 1000.0),
                ));
            }
        }
    }
    let mut overall = Family::new(
        "startup_complete",
        Kind::Gauge,
        "1 when every startup run has finished with every critical service ready.",
    );
    let mut crit = Family::new(
        "startup_critical_ready",
        Kind::Gauge,
        "1 when every critical startup service is ready.",
    );
    if any {
        overall.samples.push(Sample::new(vec![], b(complete)));
        crit.samples.push(Sample::new(vec![], b(critical)));
    }
    vec![duration, state, overall, crit]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::startup::{Phase, ServiceSpec};

    fn value(f: &Family, labels: &[(&str, &str)]) -> Option<f64> {
        f.samples.iter().find_map(|s| {
            let same = s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(k2, v2)| k2 == k && v2 == v));
            match (same, &s.value) {
                (true, Value::Number(x)) => Some(*x),
                _ => None,
            }
        })
    }

    #[test]
    fn states_durations_and_overall_follow_the_run() {
        let mut d = Dag::new();
        d.register(ServiceSpec::new("db", "Database", &[], true))
            .unwrap();
        d.register(ServiceSpec::new("cache", "Cache", &[], false))
            .unwrap();
        d.register(ServiceSpec::new("api", "API", &["cache"], false))
            .unwrap();
        d.begin(1_000.0).unwrap();
        let f = collect(&[&d]);
        assert_eq!(
            value(&f[1], &[("service", "db"), ("state", "pending")]),
            Some(1.0)
        );
        assert_eq!(
            value(&f[1], &[("service", "db"), ("state", "ready")]),
            Some(0.0)
        );
        assert_eq!(value(&f[2], &[]), Some(0.0));
        assert_eq!(value(&f[3], &[]), Some(0.0));
        let started = d.next_runnable(1_000.0, 8);
        assert_eq!(started.len(), 2);
        d.report_ready(0, 1_250.0, 200.0, 50.0).unwrap();
        d.report_failed(1, 1_500.0, "down", Phase::Init, Some(500.0))
            .unwrap();
        let f = collect(&[&d]);
        assert_eq!(value(&f[0], &[("service", "db")]), Some(0.25));
        assert_eq!(value(&f[0], &[("service", "cache")]), Some(0.5));
        assert_eq!(value(&f[0], &[("service", "api")]), None);
        assert_eq!(
            value(&f[1], &[("service", "cache"), ("state", "failed")]),
            Some(1.0)
        );
        assert_eq!(
            value(&f[1], &[("service", "api"), ("state", "degraded")]),
            Some(1.0)
        );
        assert_eq!(f[1].samples.len(), 3 * Status::ALL.len());
        assert_eq!(value(&f[2], &[]), Some(1.0), "degraded is complete");
        assert_eq!(value(&f[3], &[]), Some(1.0));
    }

    #[test]
    fn a_failed_critical_service_is_not_complete_and_ids_show_once() {
        let mut d = Dag::new();
        d.register(ServiceSpec::new("db", "Database", &[], true))
            .unwrap();
        d.begin(0.0).unwrap();
        d.next_runnable(0.0, 1);
        d.report_failed(0, 10.0, "refused", Phase::HealthCheck, Some(5.0))
            .unwrap();
        let mut other = Dag::new();
        other
            .register(ServiceSpec::new("db", "Database", &[], true))
            .unwrap();
        let f = collect(&[&d, &other]);
        assert_eq!(value(&f[2], &[]), Some(0.0));
        assert_eq!(value(&f[3], &[]), Some(0.0));
        assert_eq!(
            value(&f[1], &[("service", "db"), ("state", "failed")]),
            Some(1.0)
        );
        assert_eq!(f[1].samples.len(), Status::ALL.len());
    }
}
