//! Objects at the edges of the CEL rules that `kubectl apply` must accept: the rules refuse
//! what they are for and nothing beside it (a budget-only policy needs no window, a free model
//! has a price of 0).

use switchboard_test_apiserver::validate::{Error, Validator, documents};

const ACCEPTED: &str = r#"
# A team's daily and monthly budget: calendar windows, so no `window`.
apiVersion: switchboard.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: team-daily, namespace: demo }
spec:
  scope: Team
  limits: { dailyUsd: "50", monthlyUsd: "1000.000001" }
---
# A budget beside a concurrency limit: still no window.
apiVersion: switchboard.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: monthly, namespace: demo }
spec:
  scope: Key
  limits: { monthlyUsd: "0.01", concurrentRequests: 4 }
  mode: Redis
---
# A free model (0 is a price) beside a priced one.
apiVersion: switchboard.dev/v1alpha1
kind: ModelRoute
metadata: { name: r, namespace: demo }
spec:
  model: chat
  backends:
    - providerRef: { name: vllm }
      price: { input: "0", output: "0.000000" }
    - providerRef: { name: openai }
      model: gpt-4o
      price: { input: "2.50", output: "10", cacheRead: "1.25", cacheWrite: "3.750000" }
---
# A budget with only a monthly amount, defaults for the rest.
apiVersion: switchboard.dev/v1alpha1
kind: VirtualKey
metadata: { name: k, namespace: demo }
spec:
  secretRef: { name: k }
  team: search
  budget: { monthlyUsd: "100" }
"#;

#[test]
fn objects_at_the_edges_of_the_rules_are_accepted() -> Result<(), Error> {
    let validator = Validator::new()?;
    let mut failures = Vec::new();
    for object in documents(ACCEPTED)? {
        let name = object.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or_default().to_owned();
        let problems =
            validator.validate(&object).ok_or_else(|| format!("{name}: not a Switchboard kind"))?;
        failures.extend(problems.iter().map(|p| format!("{name}: {p}")));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
