//! A stateful, in-memory subset of the Kubernetes API server, for testing Switchboard's
//! operator and `kubectl` against without a cluster. It serves the built-in kinds the operator
//! touches (Namespace, Secret, Event, Lease), the Switchboard CRDs (installed at start, or by a
//! client) and their custom resources, validated by the same schema and CEL checks as
//! `crds/tests` ([`validate`]).
//! See `README.md` for what is and is not implemented.
//!
//! ```no_run
//! # async fn example() -> Result<(), switchboard_test_apiserver::Error> {
//! let server = switchboard_test_apiserver::ApiServer::start(Default::default())?;
//! let url = server.url(); // http://127.0.0.1:PORT, for kube::Config::new or a kubeconfig
//! std::fs::write("kubeconfig", server.kubeconfig())?;
//! # Ok(()) }
//! ```

mod clock;
mod crds;
mod discovery;
mod kinds;
mod lifecycle;
mod patch;
mod route;
mod schema;
mod select;
mod server;
mod status;
mod store;
mod table;
pub mod validate;
mod watch;
mod wording;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch as signal};

pub use validate::Error;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// How many changes the watch history keeps; a watch from an older resourceVersion gets
    /// 410 Expired.
    pub history: usize,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// Log every request (method, path, status) to stderr.
    pub log_requests: bool,
    /// Start with Switchboard's four CRDs installed. Without them, their kinds are served once
    /// a client creates the CRDs (`kubectl apply --server-side -f crds/yaml/`).
    pub install_crds: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            history: 10_000,
            bookmark_interval: Duration::from_secs(10),
            log_requests: false,
            install_crds: true,
        }
    }
}

/// Test hooks, run on the server's thread.
enum Command {
    ExpireWatches(oneshot::Sender<()>),
    CloseWatches(oneshot::Sender<()>),
    SendBookmarks(oneshot::Sender<()>),
    OpenWatches(oneshot::Sender<usize>),
}

/// A running server. It runs on its own thread (with its own runtime), so tests can use any
/// runtime flavour; dropping the handle stops it.
pub struct ApiServer {
    addr: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
    shutdown: signal::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Binds the listener and starts serving; returns once the address is known.
    pub fn start(options: Options) -> Result<Self, Error> {
        let crds = switchboard_crds::all_crds();
        let validator = validate::Validator::new()?;
        let listener = std::net::TcpListener::bind(options.listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (commands, mut command_rx) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = signal::channel(false);
        let kinds = kinds::all(&crds);
        let crd_objects = kinds::crd_objects(&crds);
        let install_crds = options.install_crds;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new().name("test-apiserver".into()).spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let store = store::Store::new(kinds, validator, crd_objects, install_crds, options.history);
                let shared = Rc::new(server::Shared {
                    store: RefCell::new(store),
                    address: addr.to_string(),
                    log_requests: options.log_requests,
                });
                let hooks = Rc::clone(&shared);
                tokio::task::spawn_local(async move {
                    while let Some(command) = command_rx.recv().await {
                        run(&hooks, command);
                    }
                });
                let ticker = Rc::clone(&shared);
                tokio::task::spawn_local(async move {
                    let mut interval = tokio::time::interval(options.bookmark_interval);
                    interval.tick().await;
                    loop {
                        interval.tick().await;
                        let mut store = ticker.store.borrow_mut();
                        let rv = store.resource_version();
                        store.hub.bookmark_all(rv);
                    }
                });
                server::accept_loop(listener, shared, shutdown_rx).await;
            });
            // Dropping the runtime here aborts every connection and watch still open.
        })?;
        Ok(Self { addr, commands, shutdown, thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig (YAML) whose current context talks to this server without credentials.
    pub fn kubeconfig(&self) -> String {
        kubeconfig(&self.url())
    }

    async fn call<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(command(tx)).ok()?;
        rx.await.ok()
    }

    /// Compacts the watch history to the current resourceVersion and ends every open watch with
    /// a 410 `Expired` event, as an apiserver does to a watcher that fell too far behind: kube's
    /// watcher must list again.
    pub async fn expire_watches(&self) {
        self.call(Command::ExpireWatches).await;
    }

    /// Ends every open watch normally (as `timeoutSeconds` running out does).
    pub async fn close_watches(&self) {
        self.call(Command::CloseWatches).await;
    }

    /// Sends a bookmark with the current resourceVersion to every watch that allows them.
    pub async fn send_bookmarks(&self) {
        self.call(Command::SendBookmarks).await;
    }

    /// How many watches are open.
    pub async fn open_watches(&self) -> usize {
        self.call(Command::OpenWatches).await.unwrap_or(0)
    }
}

fn run(shared: &server::Shared, command: Command) {
    let mut store = shared.store.borrow_mut();
    let rv = store.resource_version();
    match command {
        Command::ExpireWatches(done) => {
            store.hub.expire_all(rv);
            let _ = done.send(());
        }
        Command::CloseWatches(done) => {
            store.hub.close_all();
            let _ = done.send(());
        }
        Command::SendBookmarks(done) => {
            store.hub.bookmark_all(rv);
            let _ = done.send(());
        }
        Command::OpenWatches(reply) => {
            let _ = reply.send(store.hub.open_watches());
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A kubeconfig for a server at `url`: one cluster, one user without credentials, one context
/// (namespace `default`).
pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: switchboard-test
  cluster:
    server: {url}
users:
- name: switchboard-test
  user: {{}}
contexts:
- name: switchboard-test
  context:
    cluster: switchboard-test
    user: switchboard-test
    namespace: default
current-context: switchboard-test
"
    )
}
