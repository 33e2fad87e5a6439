//! A model of the backend the client syncs with: the README's wire protocol (`/sync` with
//! `lastSync` and `changes`, answered with `updates`, `timestamp`/`cursor`, `clear`, `more` and
//! `now`; `/clear`; the `/events` stream) over the core's own merge rule, with the reference
//! server's echo policy: every entry whose latest accepted write has a sequence number above
//! `lastSync`, once, except the request's own winning writes; a losing change is answered with
//! what beat it. Its state is durable: a crash loses requests in flight, nothing acknowledged.
use std::collections::BTreeMap;

use mfe_shared_cache_core::message::encode_sync_answer;
use mfe_shared_cache_core::wire::{ClearRequest, SyncRequest};
use mfe_shared_cache_core::{wire_text, Entry, Stamp};

/// Updates per `/sync` answer before it pages (`more: true`), small so paging is exercised.
pub const MAX_UPDATES: usize = 4;

#[derive(Default)]
pub struct Backend {
    pub seq: u64,
    pub entries: BTreeMap<String, (Entry, u64)>,
    pub epoch: Option<(Stamp, u64)>,
}

/// What a request did to the backend's state, for the event streams.
pub enum Accepted {
    Change(String, Entry, u64),
    Clear(Stamp, u64),
}

impl Backend {
    /// Merges one write; `Ok(seq)` when it won, `Err(winner)` when it lost (`None`: a clear beat it).
    fn merge(&mut self, key: String, entry: Entry, accepted: &mut Vec<Accepted>) -> Result<u64, Option<Entry>> {
        if self.epoch.as_ref().is_some_and(|(epoch, _)| entry.stamp <= *epoch) {
            return Err(None);
        }
        if let Some((held, _)) = self.entries.get(&key) {
            if held.stamp >= entry.stamp {
                return Err(Some(held.clone()));
            }
        }
        self.seq += 1;
        accepted.push(Accepted::Change(key.clone(), entry.clone(), self.seq));
        self.entries.insert(key, (entry, self.seq));
        Ok(self.seq)
    }

    fn merge_epoch(&mut self, epoch: Stamp, accepted: &mut Vec<Accepted>) -> bool {
        if self.epoch.as_ref().is_some_and(|(held, _)| *held >= epoch) {
            return false;
        }
        self.seq += 1;
        self.entries.retain(|_, (entry, _)| entry.stamp > epoch);
        accepted.push(Accepted::Clear(epoch.clone(), self.seq));
        self.epoch = Some((epoch, self.seq));
        true
    }

    /// `POST /sync`: the answer's status and body, and what was accepted.
    pub fn sync(&mut self, body: &str, now: u64) -> (u16, String, Vec<Accepted>) {
        let mut accepted = Vec::new();
        let request: SyncRequest = match serde_json::from_str(body) {
            Ok(request) => request,
            Err(e) => return (400, error_body(&format!("bad body: {e}")), accepted),
        };
        let mut writes = Vec::new();
        for change in request.changes {
            match change.into_entry() {
                Ok(write) => writes.push(write),
                Err(e) => return (400, error_body(&e.to_string()), accepted),
            }
        }
        let mut own = Vec::new();
        let mut lost: BTreeMap<String, Entry> = BTreeMap::new();
        let mut cleared = false;
        for (key, entry) in writes {
            match self.merge(key.clone(), entry, &mut accepted) {
                Ok(seq) => {
                    own.push(seq);
                    lost.remove(&key);
                }
                Err(Some(winner)) => {
                    lost.insert(key, winner);
                }
                Err(None) => cleared = true,
            }
        }
        let mut rows: Vec<(&String, &Entry, u64)> =
            self.entries.iter().filter(|(_, (_, seq))| *seq > request.last_sync && !own.contains(seq)).map(|(k, (e, s))| (k, e, *s)).collect();
        rows.sort_by_key(|(_, _, seq)| *seq);
        let more = rows.len() > MAX_UPDATES;
        rows.truncate(MAX_UPDATES);
        let cursor = if more { rows.last().map_or(self.seq, |(_, _, seq)| *seq) } else { self.seq };
        let clear = self
            .epoch
            .as_ref()
            .filter(|(_, seq)| (*seq > request.last_sync && *seq <= cursor) || cleared)
            .map(|(epoch, _)| epoch);
        let updates = rows.iter().map(|(k, e, _)| (k.as_str(), *e)).chain(lost.iter().map(|(k, e)| (k.as_str(), e)));
        let out = encode_sync_answer(updates, cursor, clear, more, std::iter::empty(), now);
        (200, out, accepted)
    }

    /// `POST /clear`.
    pub fn clear(&mut self, body: &str) -> (u16, String, Vec<Accepted>) {
        let mut accepted = Vec::new();
        let request: ClearRequest = match serde_json::from_str(body) {
            Ok(request) => request,
            Err(e) => return (400, error_body(&format!("bad body: {e}")), accepted),
        };
        let took = self.merge_epoch(request.stamp(), &mut accepted);
        (200, format!("{{\"success\":true,\"timestamp\":{},\"accepted\":{took}}}", self.seq), accepted)
    }

    /// The events a stream opened at `cursor` starts with: what it missed, in sequence order,
    /// then `ready`.
    pub fn catch_up(&self, cursor: u64, heartbeat_ms: u64) -> String {
        let mut items: Vec<Accepted> = self
            .entries
            .iter()
            .filter(|(_, (_, seq))| *seq > cursor)
            .map(|(k, (e, s))| Accepted::Change(k.clone(), e.clone(), *s))
            .collect();
        if let Some((epoch, seq)) = self.epoch.as_ref().filter(|(_, seq)| *seq > cursor) {
            items.push(Accepted::Clear(epoch.clone(), *seq));
        }
        items.sort_by_key(|item| match item {
            Accepted::Change(_, _, seq) | Accepted::Clear(_, seq) => *seq,
        });
        let mut out: String = items.iter().map(event).collect();
        out.push_str(&format!("event: ready\ndata: {{\"cursor\":{},\"heartbeat\":{heartbeat_ms}}}\n\n", self.seq));
        out
    }

    /// What a client holding every accepted write shows at `now`: live values, and the epoch.
    pub fn visible(&self, now: u64) -> BTreeMap<String, (Stamp, String)> {
        self.entries
            .iter()
            .filter(|(_, (e, _))| e.is_live(now))
            .filter_map(|(k, (e, _))| Some((k.clone(), (e.stamp.clone(), e.value.clone()?))))
            .collect()
    }
}

/// One pushed event in the reference server's format.
pub fn event(item: &Accepted) -> String {
    let mut data = String::new();
    match item {
        Accepted::Change(key, entry, seq) => {
            wire_text::write_change(&mut data, key, entry);
            format!("id: {seq}\nevent: change\ndata: {data}\n\n")
        }
        Accepted::Clear(epoch, seq) => {
            wire_text::write_clear(&mut data, epoch);
            format!("id: {seq}\nevent: clear\ndata: {data}\n\n")
        }
    }
}

fn error_body(message: &str) -> String {
    let mut out = String::from("{\"error\":\"bad_request\",\"message\":");
    mfe_shared_cache_core::json::write_string(&mut out, message);
    out.push('}');
    out
}
