//! The kinds this server serves: a few built-ins (Namespace, Secret, Event, Lease), the
//! CustomResourceDefinitions themselves and the four Switchboard custom resources, whose names,
//! scope, subresources and printer columns come from `switchboard_crds::all_crds()`. A custom
//! kind is served while its CRD is stored (`crds.rs`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// One served resource.
#[derive(Debug, Clone)]
pub(crate) struct Kind {
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Has a `/status` subresource: the main endpoint ignores `.status`, `/status` changes only it.
    pub status: bool,
    /// A custom resource: schema pruning, defaulting and validation, `metadata.generation`,
    /// and no strategic merge patch (the real apiserver answers 415 for those).
    pub custom: bool,
    /// Served now: always for the built-ins; for a custom kind, while its CRD is stored. Kinds
    /// that are not served are absent from discovery and OpenAPI, and their paths are 404.
    pub served: bool,
    /// `kubectl get` columns after NAME.
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub name: String,
    /// OpenAPI type of the cell: `string`, `integer`, `date` (shown as an age), ...
    pub type_: String,
    pub priority: i32,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A CRD printer column's JSONPath (the simple subset CRDs allow).
    Path(String),
    /// The number of keys of a map (a Secret's DATA column).
    KeyCount(&'static str),
}

impl Kind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `llmproviders.switchboard.dev`, `secrets`: how Status messages name a resource.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }

    /// `LLMProvider.switchboard.dev`: how Invalid messages name a kind.
    pub fn group_kind(&self) -> String {
        if self.group.is_empty() { self.kind.clone() } else { format!("{}.{}", self.kind, self.group) }
    }

    /// The path prefix of this group version: `/api/v1` or `/apis/<group>/<version>`.
    pub fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        vec!["create", "delete", "get", "list", "patch", "update", "watch"]
    }

    /// The name of the CRD that defines this kind: `modelroutes.switchboard.dev`.
    pub fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }
}

fn builtin(group: &str, kind: &str, plural: &str, namespaced: bool) -> Kind {
    Kind {
        group: group.to_owned(),
        version: "v1".to_owned(),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: Vec::new(),
        categories: Vec::new(),
        status: false,
        custom: false,
        served: true,
        columns: Vec::new(),
    }
}

fn column(name: &str, type_: &str, source: Source) -> Column {
    Column { name: name.to_owned(), type_: type_.to_owned(), priority: 0, source }
}

fn path(name: &str, path: &str) -> Column {
    column(name, "string", Source::Path(path.to_owned()))
}

fn age() -> Column {
    column("Age", "date", Source::Path(".metadata.creationTimestamp".to_owned()))
}

/// Every kind this server can serve: built-ins first, then one per CRD (not served until the
/// CRD is stored).
pub(crate) fn all(crds: &[CustomResourceDefinition]) -> Vec<Kind> {
    let mut namespace = builtin("", "Namespace", "namespaces", false);
    namespace.short_names = vec!["ns".to_owned()];
    namespace.status = true;
    namespace.columns = vec![path("Status", ".status.phase"), age()];
    let mut secret = builtin("", "Secret", "secrets", true);
    secret.columns = vec![path("Type", ".type"), column("Data", "string", Source::KeyCount("data")), age()];
    let mut core_event = builtin("", "Event", "events", true);
    core_event.short_names = vec!["ev".to_owned()];
    core_event.columns = vec![
        path("Type", ".type"),
        path("Reason", ".reason"),
        path("Object", ".involvedObject.name"),
        path("Message", ".message"),
        age(),
    ];
    let mut event = builtin("events.k8s.io", "Event", "events", true);
    event.short_names = vec!["ev".to_owned()];
    event.columns = vec![
        path("Type", ".type"),
        path("Reason", ".reason"),
        path("Object", ".regarding.name"),
        path("Note", ".note"),
        age(),
    ];
    let mut lease = builtin("coordination.k8s.io", "Lease", "leases", true);
    lease.columns = vec![path("Holder", ".spec.holderIdentity"), age()];
    let mut crd =
        builtin("apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions", false);
    crd.short_names = vec!["crd".to_owned(), "crds".to_owned()];
    crd.columns = vec![path("Created At", ".metadata.creationTimestamp")];

    let mut kinds = vec![namespace, secret, core_event, event, lease, crd];
    kinds.extend(crds.iter().filter_map(custom));
    kinds
}

/// A CRD's only version as a served kind.
fn custom(crd: &CustomResourceDefinition) -> Option<Kind> {
    let version = crd.spec.versions.first()?;
    let names = &crd.spec.names;
    let columns = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| Column {
            name: c.name.clone(),
            type_: c.type_.clone(),
            priority: c.priority.unwrap_or(0),
            source: Source::Path(c.json_path.clone()),
        })
        .collect();
    Some(Kind {
        group: crd.spec.group.clone(),
        version: version.name.clone(),
        kind: names.kind.clone(),
        plural: names.plural.clone(),
        singular: names.singular.clone().unwrap_or_else(|| names.kind.to_lowercase()),
        namespaced: crd.spec.scope == "Namespaced",
        short_names: names.short_names.clone().unwrap_or_default(),
        categories: names.categories.clone().unwrap_or_default(),
        status: version.subresources.as_ref().is_some_and(|s| s.status.is_some()),
        custom: true,
        served: false,
        columns,
    })
}

/// The CRDs as JSON objects, as generated (what `crds/yaml/` holds).
pub(crate) fn crd_objects(crds: &[CustomResourceDefinition]) -> Vec<Value> {
    crds.iter().filter_map(|crd| serde_json::to_value(crd).ok()).collect()
}
