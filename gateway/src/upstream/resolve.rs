//! The upstream DNS resolver: every address a host name resolves to is checked against the
//! provider's [`AddressRule`] before a connection is attempted.
//!
//! The check runs on every connect, not once at config time, so a name that is re-pointed after
//! validation (DNS rebinding: a short TTL, first a public answer, then 169.254.169.254) is refused
//! at the moment it would matter. Refused addresses are dropped; a name left with none fails the
//! connect with the reason, which reaches the client's error through hyper-util's cause chain
//! (`client error (Connect): dns error: upstream host "..." resolves only to refused addresses`).
//!
//! IP literals never get here: hyper-util's `HttpConnector` connects to a literal host directly,
//! without calling its resolver (`SocketAddrs::try_parse` in `connect/http.rs`). That is why config
//! validation checks literal hosts with [`AddressRule::check_host`]; this resolver covers names.

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use switchboard_config::AddressRule;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A resolver that drops the addresses `rule` refuses. `R` is hyper-util's [`GaiResolver`]
/// (the system's `getaddrinfo` on a blocking thread) in production, a fixed map in tests.
#[derive(Debug, Clone)]
pub struct GuardedResolver<R = GaiResolver> {
    inner: R,
    rule: AddressRule,
}

impl<R> GuardedResolver<R> {
    pub fn new(inner: R, rule: AddressRule) -> Self {
        GuardedResolver { inner, rule }
    }
}

impl<R> Service<Name> for GuardedResolver<R>
where
    R: Service<Name>,
    R::Response: Iterator<Item = SocketAddr>,
    R::Error: Into<BoxError>,
    R::Future: Send + 'static,
{
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    // Boxed: one allocation per DNS lookup, next to a blocking-pool `getaddrinfo` call, and it
    // keeps `HttpClient` a nameable type.
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let rule = self.rule;
        let host: Box<str> = name.as_str().into();
        let lookup = self.inner.call(name);
        Box::pin(async move {
            let addrs = lookup.await.map_err(Into::into)?;
            keep_allowed(rule, &host, addrs).map_err(Into::into)
        })
    }
}

/// The addresses `rule` allows, in the resolver's order; an error if it refused every one.
fn keep_allowed(
    rule: AddressRule,
    host: &str,
    addrs: impl Iterator<Item = SocketAddr>,
) -> Result<std::vec::IntoIter<SocketAddr>, RefusedAddresses> {
    let mut kept = Vec::new();
    let mut refused: Vec<(IpAddr, String)> = Vec::new();
    for addr in addrs {
        match rule.check_ip(addr.ip()) {
            Ok(()) => kept.push(addr),
            // getaddrinfo may list an address once per socket type; one mention is enough.
            Err(reason) if !refused.iter().any(|(ip, _)| *ip == addr.ip()) => {
                refused.push((addr.ip(), reason))
            }
            Err(_) => {}
        }
    }
    if kept.is_empty() && !refused.is_empty() {
        return Err(RefusedAddresses { host: host.into(), refused });
    }
    if !refused.is_empty() {
        // Not an error (the allowed addresses are used), but a name that mixes in a metadata or
        // loopback address is worth a look.
        tracing::debug!(host, refused = refused.len(), "dropped refused upstream addresses");
    }
    Ok(kept.into_iter())
}

/// A host name that resolved only to addresses its provider may not connect to. The message names
/// the host and addresses only (nothing secret) and says how to opt out.
#[derive(Debug)]
pub struct RefusedAddresses {
    host: Box<str>,
    refused: Vec<(IpAddr, String)>,
}

/// How many refused addresses the message lists; a name with more is abbreviated.
const LISTED: usize = 4;

impl fmt::Display for RefusedAddresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "upstream host {:?} resolves only to refused addresses (", self.host)?;
        for (i, (ip, reason)) in self.refused.iter().take(LISTED).enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            write!(f, "{separator}{ip}: {reason}")?;
        }
        if self.refused.len() > LISTED {
            write!(f, " and {} more", self.refused.len() - LISTED)?;
        }
        f.write_str("); set allow_private_network: true to allow them")
    }
}

impl std::error::Error for RefusedAddresses {}

/// A fake resolver for tests here and in `client.rs`.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::collections::HashMap;
    use std::future::{Ready, ready};
    use std::io;
    use std::sync::Arc;

    /// A resolver answering from a fixed map; an unknown name fails like NXDOMAIN.
    #[derive(Clone)]
    pub(crate) struct FakeDns(Arc<HashMap<&'static str, Vec<IpAddr>>>);

    impl FakeDns {
        pub(crate) fn new(entries: &[(&'static str, &[&str])]) -> Self {
            let map = entries
                .iter()
                .map(|(name, ips)| (*name, ips.iter().map(|ip| ip.parse().unwrap()).collect()))
                .collect();
            FakeDns(Arc::new(map))
        }
    }

    impl Service<Name> for FakeDns {
        type Response = std::vec::IntoIter<SocketAddr>;
        type Error = io::Error;
        type Future = Ready<Result<Self::Response, io::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, name: Name) -> Self::Future {
            ready(match self.0.get(name.as_str()) {
                // Port 0, as getaddrinfo without a service; the connector sets the URL's port.
                Some(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect::<Vec<_>>().into_iter()),
                None => Err(io::Error::new(io::ErrorKind::NotFound, "no such host")),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::FakeDns;
    use super::*;
    use std::str::FromStr;

    fn dns() -> FakeDns {
        FakeDns::new(&[
            ("metadata.internal", &["169.254.169.254"]),
            ("mixed.example", &["169.254.169.254", "93.184.216.34", "::1", "fd00:ec2::254", "2001:db8::1"]),
            ("loopback.example", &["127.0.0.1", "::1"]),
            ("many.example", &["169.254.0.1", "169.254.0.2", "169.254.0.3", "169.254.0.4", "169.254.0.5"]),
            ("twice.example", &["169.254.169.254", "169.254.169.254"]),
        ])
    }

    async fn resolve(rule: AddressRule, host: &str) -> Result<Vec<IpAddr>, String> {
        let mut resolver = GuardedResolver::new(dns(), rule);
        std::future::poll_fn(|cx| resolver.poll_ready(cx)).await.map_err(|e| e.to_string())?;
        let name = Name::from_str(host).unwrap();
        match resolver.call(name).await {
            Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect()),
            Err(err) => Err(err.to_string()),
        }
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|ip| ip.parse().unwrap()).collect()
    }

    #[tokio::test]
    async fn mixed_answers_keep_only_allowed_addresses_in_order() {
        let got = resolve(AddressRule::NoLinkLocal, "mixed.example").await;
        assert_eq!(got, Ok(ips(&["93.184.216.34", "::1", "2001:db8::1"])));
        let got = resolve(AddressRule::NoLocal, "mixed.example").await;
        assert_eq!(got, Ok(ips(&["93.184.216.34", "2001:db8::1"])));
    }

    #[tokio::test]
    async fn only_refused_answers_fail_with_the_reason() {
        let err = resolve(AddressRule::NoLinkLocal, "metadata.internal").await.unwrap_err();
        assert_eq!(
            err,
            "upstream host \"metadata.internal\" resolves only to refused addresses (169.254.169.254: \
             link-local address (cloud metadata endpoint)); set allow_private_network: true to allow them"
        );
        let err = resolve(AddressRule::NoLocal, "loopback.example").await.unwrap_err();
        assert!(err.contains("(127.0.0.1: loopback address, ::1: loopback address)"), "{err}");
    }

    #[tokio::test]
    async fn refusals_are_listed_once_and_abbreviated() {
        let err = resolve(AddressRule::NoLinkLocal, "twice.example").await.unwrap_err();
        assert_eq!(err.matches("169.254.169.254").count(), 1, "{err}");
        let err = resolve(AddressRule::NoLinkLocal, "many.example").await.unwrap_err();
        assert!(err.contains("169.254.0.4: link-local address and 1 more)"), "{err}");
        assert!(!err.contains("169.254.0.5"), "{err}");
    }

    #[tokio::test]
    async fn allow_all_passes_everything() {
        let got = resolve(AddressRule::AllowAll, "mixed.example").await;
        assert_eq!(
            got,
            Ok(ips(&["169.254.169.254", "93.184.216.34", "::1", "fd00:ec2::254", "2001:db8::1"]))
        );
        let got = resolve(AddressRule::AllowAll, "metadata.internal").await;
        assert_eq!(got, Ok(ips(&["169.254.169.254"])));
    }

    #[tokio::test]
    async fn loopback_is_allowed_for_files_only() {
        let got = resolve(AddressRule::NoLinkLocal, "loopback.example").await;
        assert_eq!(got, Ok(ips(&["127.0.0.1", "::1"])));
        assert!(resolve(AddressRule::NoLocal, "loopback.example").await.is_err());
    }

    #[tokio::test]
    async fn inner_resolver_errors_pass_through() {
        let err = resolve(AddressRule::NoLocal, "unknown.example").await.unwrap_err();
        assert_eq!(err, "no such host");
    }
}
