//! Places in flight this replica has given back that Redis may not know of yet.
//!
//! A request's place among its subject's requests in flight is given back by its settlement
//! (`ZREM`), which reaches Redis with a later admission or the settler (`settle.rs`), behind any
//! settlements queued before it. A client that waits for each answer before asking again would
//! otherwise find its last place still taken whenever the queue holds more than an admission
//! carries, or on a cluster, where nothing is carried: under a limit of one, every other request
//! refused. So a place given back is also written here, when the request ends (before its
//! answer's last bytes leave), and the next admission of the same subject on this replica removes
//! it from the set in Redis itself, in its own transaction, ahead of counting
//! (`RedisStore::admission_commands`). Removing a place whose request has ended is always right,
//! and doing it twice is harmless, so the settlement still carries every `ZREM`; once Redis has
//! it (from the settlement or from this subject's admission), the place is crossed out here. So
//! what is kept is what is on its way: at most the queue's backlog, plus any place whose
//! settlement a full queue dropped, until its subject is next admitted here.
//!
//! Lock-free: places are kept in shards by their subject's tag, each a queue. Taking a subject's
//! places goes through its shard once, putting back the other subjects' places; a place held
//! meanwhile by another admission is missed, and can refuse a request it should not have: an error
//! on the side of the limit, only when two subjects of one shard are admitted at the same instant.

use crossbeam_queue::SegQueue;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

const SHARDS: usize = 64;

/// A place given back: its subject's tag and its member in the in-flight set.
struct Place {
    tag: String,
    member: String,
}

pub(super) struct Released {
    shards: Box<[SegQueue<Place>]>,
}

impl Default for Released {
    fn default() -> Self {
        Released { shards: (0..SHARDS).map(|_| SegQueue::new()).collect() }
    }
}

impl Released {
    fn shard(&self, tag: &str) -> &SegQueue<Place> {
        let mut hasher = std::hash::DefaultHasher::new();
        tag.hash(&mut hasher);
        &self.shards[(hasher.finish() % SHARDS as u64) as usize]
    }

    /// Notes that `member`'s place in `tag`'s in-flight set is free.
    pub(super) fn give_back(&self, tag: &str, member: &str) {
        self.shard(tag).push(Place { tag: tag.to_owned(), member: member.to_owned() });
    }

    /// The places of `tag` given back and not yet crossed out, for an admission to remove. They
    /// stay noted until a `ZREM` of theirs is answered: if this admission fails, the next one
    /// tries again.
    pub(super) fn of(&self, tag: &str) -> Vec<String> {
        let mut members = Vec::new();
        self.sift(tag, |place| {
            if place.tag == tag {
                members.push(place.member.clone());
            }
            true
        });
        members
    }

    /// Crosses out places Redis has been told of (`members`, all of subject `tag`).
    pub(super) fn forget(&self, tag: &str, members: &HashSet<&str>) {
        self.sift(tag, |place| !(place.tag == tag && members.contains(place.member.as_str())));
    }

    /// Goes through `tag`'s shard once, keeping the places `keep` says to keep.
    fn sift(&self, tag: &str, mut keep: impl FnMut(&Place) -> bool) {
        let shard = self.shard(tag);
        // As many as were there when it started: places pushed back are not looked at again.
        let mut kept = Vec::new();
        for _ in 0..shard.len() {
            let Some(place) = shard.pop() else { break };
            if keep(&place) {
                kept.push(place);
            }
        }
        for place in kept {
            shard.push(place);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(SegQueue::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subjects_places_are_found_until_redis_has_them() {
        let released = Released::default();
        // Enough subjects that several share a shard.
        for subject in 0..200 {
            released.give_back(&format!("k p {subject}"), &format!("r:{subject}"));
        }
        released.give_back("k p 7", "r:1000");
        assert_eq!(released.of("k p 7"), ["r:7", "r:1000"]);
        assert_eq!(released.of("k p 7"), ["r:7", "r:1000"], "still noted: an admission may fail");
        assert!(released.of("k p nobody").is_empty());
        released.forget("k p 7", &HashSet::from(["r:7"]));
        assert_eq!(released.of("k p 7"), ["r:1000"]);
        released.forget("k p 8", &HashSet::from(["r:1000"]));
        assert_eq!(released.of("k p 7"), ["r:1000"], "crossed out only for its own subject");
        assert_eq!(released.len(), 200);
        for subject in 0..200 {
            let tag = format!("k p {subject}");
            let members = released.of(&tag);
            released.forget(&tag, &members.iter().map(String::as_str).collect());
        }
        assert_eq!(released.len(), 0);
    }
}
