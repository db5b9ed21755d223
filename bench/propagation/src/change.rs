//! When a replica serves a change: the first `config applied` line after which one request
//! with the changed key gets the answer the change calls for.

use crate::http::Http;
use crate::stack::{Event, Replica};
use http::{Method, StatusCode};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio::time::timeout_at;

/// The gateway logs `config applied` once the new table serves (gateway/src/reload.rs `apply`;
/// before 01dc75a it logged just before the swap). Should a probe still meet the old table
/// although the line already announces the changed key count, only the swap can be missing, and
/// no later event would come to wait for: re-probe every [`REPROBE_EVERY`], at most
/// [`MAX_REPROBES`] times, and count it (the summary reports the count; 0 expected).
const REPROBE_EVERY: Duration = Duration::from_millis(1);
const MAX_REPROBES: u32 = 1000;

/// What a replica must show once it serves the change.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The changed VirtualKey's bearer key.
    pub key: String,
    /// 200 from `GET /v1/models` after a create, 401 after a delete.
    pub status: StatusCode,
    /// Keys in the table that carries the change.
    pub keys: u64,
}

/// When and how one replica was found serving the change.
#[derive(Debug, Clone, Copy)]
pub struct Served {
    /// When the bench read the `config applied` line (or, after re-probes, sent the probe that
    /// got the expected answer).
    pub at: Instant,
    pub generation: u64,
    /// `config applied` lines read until then.
    pub lines: u32,
    /// Probes repeated because the line came before the table swap.
    pub reprobes: u32,
}

/// Waits for every replica, all at once; returns them (in their order) with their results.
pub async fn wait_all(
    replicas: Vec<Replica>,
    http: &Http,
    expect: &Expect,
    deadline: Instant,
) -> Result<(Vec<Replica>, Vec<Served>), String> {
    let mut waits = JoinSet::new();
    for (index, mut replica) in replicas.into_iter().enumerate() {
        let (http, expect) = (http.clone(), expect.clone());
        waits.spawn(async move {
            let served = wait_one(&mut replica, &http, &expect, deadline).await;
            (index, replica, served)
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = waits.join_next().await {
        let (index, replica, served) = joined.map_err(|e| format!("a replica wait failed: {e}"))?;
        done.push((index, replica, served?));
    }
    done.sort_by_key(|(index, _, _)| *index);
    Ok(done.into_iter().map(|(_, replica, served)| (replica, served)).unzip())
}

async fn wait_one(
    replica: &mut Replica,
    http: &Http,
    expect: &Expect,
    deadline: Instant,
) -> Result<Served, String> {
    let mut lines = 0;
    loop {
        let event: Event = match timeout_at(deadline.into(), replica.applied.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => return Err(format!("{} exited (its log is in the log directory)", replica.name)),
            Err(_) => {
                return Err(format!(
                    "{} did not serve the change to {} within the timeout ({lines} config applied lines \
                     since the write; expected {} keys and {} from GET /v1/models)",
                    replica.name, expect.key, expect.keys, expect.status
                ));
            }
        };
        lines += 1;
        if probe(http, replica, &expect.key).await? == expect.status {
            return Ok(Served { at: event.at, generation: event.generation, lines, reprobes: 0 });
        }
        if event.keys == expect.keys {
            let (at, reprobes) = reprobe(http, replica, expect).await?;
            return Ok(Served { at, generation: event.generation, lines, reprobes });
        }
    }
}

/// See [`REPROBE_EVERY`].
async fn reprobe(http: &Http, replica: &Replica, expect: &Expect) -> Result<(Instant, u32), String> {
    for attempt in 1..=MAX_REPROBES {
        tokio::time::sleep(REPROBE_EVERY).await;
        let sent = Instant::now();
        if probe(http, replica, &expect.key).await? == expect.status {
            return Ok((sent, attempt));
        }
    }
    Err(format!(
        "{} logged a table of {} keys but GET /v1/models with {} never answered {}",
        replica.name, expect.keys, expect.key, expect.status
    ))
}

/// `GET /v1/models` with `key`; the status.
pub async fn probe(http: &Http, replica: &Replica, key: &str) -> Result<StatusCode, String> {
    let url = format!("http://{}/v1/models", replica.api);
    Ok(http.send(Method::GET, &url, Some(key), None).await?.0)
}
