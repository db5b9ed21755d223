//! Request URLs: which kind, namespace, object and subresource a path names, and the query
//! parameters. Paths are the apiserver's: `/api/v1/…` for the core group,
//! `/apis/<group>/<version>/…` for the others, then `namespaces/<ns>/<plural>[/<name>[/<sub>]]`
//! or `<plural>[/<name>[/<sub>]]` (cluster-scoped kinds, and lists across all namespaces).

use std::collections::HashMap;

use crate::kinds::Kind;

/// A resource request's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub kind: usize,
    /// `None` for cluster-scoped kinds and for lists and watches across all namespaces.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// What a path is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Version,
    Health,
    CoreVersions,
    Groups,
    Group(String),
    Resources(String, String),
    OpenApiRoot,
    OpenApiDocument(String),
    Resource(Target),
    NotFound,
}

pub(crate) fn route(kinds: &[Kind], path: &str) -> Route {
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez"] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group((*group).to_owned()),
        ["api", version] => Route::Resources(String::new(), (*version).to_owned()),
        ["apis", group, version] => Route::Resources((*group).to_owned(), (*version).to_owned()),
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", rest @ ..] => Route::OpenApiDocument(rest.join("/")),
        ["api", version, rest @ ..] => resource(kinds, "", version, rest),
        ["apis", group, version, rest @ ..] => resource(kinds, group, version, rest),
        _ => Route::NotFound,
    }
}

fn resource(kinds: &[Kind], group: &str, version: &str, rest: &[&str]) -> Route {
    let find = |plural: &str, namespaced: bool| {
        kinds.iter().position(|k| {
            k.served
                && k.group == group
                && k.version == version
                && k.plural == plural
                && k.namespaced == namespaced
        })
    };
    let owned = |s: Option<&&str>| s.map(|s| (*s).to_owned());
    // `namespaces/<ns>/<plural>/…` when <plural> is a namespaced kind of this group version;
    // otherwise `namespaces/…` is the Namespace kind itself (`namespaces/<name>/status`).
    if let ["namespaces", namespace, plural, tail @ ..] = rest
        && let Some(kind) = find(plural, true)
        && tail.len() <= 2
    {
        return Route::Resource(Target {
            kind,
            namespace: Some((*namespace).to_owned()),
            name: owned(tail.first()),
            subresource: owned(tail.get(1)),
        });
    }
    let Some((plural, tail)) = rest.split_first() else { return Route::NotFound };
    if tail.len() > 2 {
        return Route::NotFound;
    }
    if let Some(kind) = find(plural, false) {
        return Route::Resource(Target {
            kind,
            namespace: None,
            name: owned(tail.first()),
            subresource: owned(tail.get(1)),
        });
    }
    // A namespaced kind across all namespaces: lists and watches only.
    match (find(plural, true), tail.is_empty()) {
        (Some(kind), true) => {
            Route::Resource(Target { kind, namespace: None, name: None, subresource: None })
        }
        _ => Route::NotFound,
    }
}

/// Query parameters, percent-decoded (`+` is a space, as in forms).
pub(crate) fn query(raw: Option<&str>) -> HashMap<String, String> {
    raw.unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', high, low]) => hex(*high).zip(hex(*low)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds;

    fn kinds() -> Vec<Kind> {
        let mut kinds = kinds::all(&switchboard_crds::all_crds());
        for kind in &mut kinds {
            kind.served = true;
        }
        kinds
    }

    fn target(path: &str) -> (String, Option<String>, Option<String>, Option<String>) {
        let kinds = kinds();
        match route(&kinds, path) {
            Route::Resource(t) => (kinds[t.kind].plural.clone(), t.namespace, t.name, t.subresource),
            other => panic!("{path}: {other:?}"),
        }
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn resource_paths() {
        assert_eq!(target("/api/v1/namespaces"), ("namespaces".into(), None, None, None));
        assert_eq!(target("/api/v1/namespaces/demo"), ("namespaces".into(), None, s("demo"), None));
        assert_eq!(
            target("/api/v1/namespaces/demo/status"),
            ("namespaces".into(), None, s("demo"), s("status"))
        );
        assert_eq!(target("/api/v1/namespaces/demo/secrets/k"), ("secrets".into(), s("demo"), s("k"), None));
        assert_eq!(target("/api/v1/secrets"), ("secrets".into(), None, None, None));
        assert_eq!(
            target("/apis/switchboard.dev/v1alpha1/namespaces/d/modelroutes/chat/status"),
            ("modelroutes".into(), s("d"), s("chat"), s("status"))
        );
        assert_eq!(
            target("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/modelroutes.switchboard.dev"),
            ("customresourcedefinitions".into(), None, s("modelroutes.switchboard.dev"), None)
        );
        let kinds = kinds();
        for missing in
            ["/api/v1/secrets/k", "/apis/switchboard.dev/v1/modelroutes", "/apis/x/v1/things", "/nope"]
        {
            assert_eq!(route(&kinds, missing), Route::NotFound, "{missing}");
        }
        assert_eq!(
            route(&kinds, "/apis/switchboard.dev/v1alpha1"),
            Route::Resources("switchboard.dev".into(), "v1alpha1".into())
        );
        // A custom kind whose CRD is not stored is not there.
        let unserved = kinds::all(&switchboard_crds::all_crds());
        assert_eq!(route(&unserved, "/apis/switchboard.dev/v1alpha1/modelroutes"), Route::NotFound);
        assert_eq!(
            route(&kinds, "/openapi/v3/apis/switchboard.dev/v1alpha1"),
            Route::OpenApiDocument("apis/switchboard.dev/v1alpha1".into())
        );
    }

    #[test]
    fn query_strings_are_decoded() {
        let q = query(Some("labelSelector=app%3Dsb%2Ctier+in+%28a%29&watch=true&x&bad=%zz"));
        assert_eq!(q["labelSelector"], "app=sb,tier in (a)");
        assert_eq!(q["watch"], "true");
        assert_eq!(q["x"], "");
        assert_eq!(q["bad"], "%zz");
    }
}
