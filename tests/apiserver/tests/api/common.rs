//! Shared helpers: a server per test, a kube client for it, namespaces, and waiting for the next
//! event of a stream (bounded, so a missing event fails the test instead of hanging it).

use std::fmt::Debug;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::core::Status;
use switchboard_test_apiserver::{ApiServer, Options};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A started server and a kube client pointed at it.
pub struct Env {
    pub server: ApiServer,
    pub client: kube::Client,
}

/// A server whose periodic bookmarks never come during a test (raw watches would see them
/// between the events a test expects); `send_bookmarks` sends one on demand.
pub fn start() -> Result<Env, Error> {
    start_with(Options { bookmark_interval: Duration::from_secs(3600), ..Options::default() })
}

pub fn start_with(options: Options) -> Result<Env, Error> {
    let server = ApiServer::start(options)?;
    let config = kube::Config::new(server.url().parse()?);
    let client = kube::Client::try_from(config)?;
    Ok(Env { server, client })
}

impl Env {
    /// Creates a namespace (objects in a namespace that does not exist are refused).
    pub async fn namespace(&self, name: &str) -> Result<(), Error> {
        let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        Api::<Namespace>::all(self.client.clone()).create(&PostParams::default(), &namespace).await?;
        Ok(())
    }
}

/// The Status a request failed with, or a test failure saying it did not fail that way.
#[expect(clippy::panic, reason = "a test helper: an unexpected success fails the test with what came back")]
pub fn api_error<T: Debug>(result: Result<T, kube::Error>) -> Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The next item of a stream, failing the test if none comes within 20 s.
#[expect(clippy::panic, reason = "a test helper: a missing event fails the test instead of hanging it")]
pub async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("the stream ended"),
        Err(_) => panic!("no event within 20 s"),
    }
}
