//! Copying a whole store into another, empty one, of either backend: what
//! `siemgate migrate` does.
//!
//! The registry (tenants, apps, users, signing keys, refresh tokens) is small
//! and goes over whole, in one transaction. Detections go over as stored
//! rows, a page at a time in `(LastProcessedTimeUtc, FullId)` order, with
//! their rendered JSON and their stamps untouched, so a follower's checkpoint
//! means the same on the new store as on the old. At most two pages are in
//! memory at once, however many detections the store holds.

use std::collections::BTreeMap;
use std::fmt;

use siemgate_model::Timestamp;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::{App, RefreshGrant, Store, StoreError, StoredKey, Tenant, User};

/// Detections read and written per page: about 9 MB of rendered JSON, one
/// transaction on the target.
pub const PAGE_ROWS: usize = 5_000;

/// Everything a store holds besides detections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// Oldest first, with their states and creation times.
    pub tenants: Vec<Tenant>,
    pub apps: Vec<App>,
    pub users: Vec<User>,
    /// Retired keys first, the signing key last, as `Store::signing_keys`
    /// lists them; a token signed by any of them keeps verifying.
    pub signing_keys: Vec<StoredKey>,
    /// Outstanding refresh tokens, so that clients signed in through the
    /// sign-in page stay signed in. Authorization codes are not part of it:
    /// they live five minutes and are redeemed within seconds of being
    /// issued, so none is still useful once a store has been moved.
    pub refresh_tokens: Vec<RefreshGrant>,
    /// The newest `LastProcessedTimeUtc` the store handed out; a store the
    /// registry is imported into stamps new detections after it.
    pub last_processed: Timestamp,
}

impl Default for Registry {
    /// A new store's: nothing, and no stamp handed out yet.
    fn default() -> Registry {
        Registry {
            tenants: Vec::new(),
            apps: Vec::new(),
            users: Vec::new(),
            signing_keys: Vec::new(),
            refresh_tokens: Vec::new(),
            last_processed: Timestamp::from_unix_ticks(0),
        }
    }
}

/// One detection exactly as a store keeps it: the rendered JSON object,
/// its `LastProcessedTimeUtc`, and the columns that filters read.
#[derive(Clone, PartialEq, Eq)]
pub struct DetectionRow {
    pub full_id: String,
    pub processed: Timestamp,
    /// `MachineGroup`, lower-cased.
    pub machine_group: String,
    /// The tag lists as `;tag1;tag2;`.
    pub device_tags: String,
    pub cloud_tags: String,
    pub alert_id: String,
    pub device_id: String,
    pub body: Vec<u8>,
}

impl DetectionRow {
    /// Where a page ending with this row ends.
    pub fn key(&self) -> DetectionKey {
        DetectionKey { processed: self.processed, full_id: self.full_id.clone() }
    }
}

impl fmt::Debug for DetectionRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DetectionRow")
            .field("full_id", &self.full_id)
            .field("processed", &self.processed)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A position in a tenant's detections, in delivery order: the next page
/// starts just after it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DetectionKey {
    pub processed: Timestamp,
    pub full_id: String,
}

impl DetectionKey {
    /// The `(processed ticks, FullId)` a page starts after: `after`'s, or
    /// for the first page one below any stamp there can be.
    pub(crate) fn page_start(after: Option<DetectionKey>) -> (i64, String) {
        match after {
            Some(key) => (key.processed.unix_ticks(), key.full_id),
            None => (i64::MIN, String::new()),
        }
    }
}

/// The newest stamp of `rows` no later than `now`: how far importing them
/// moves a store's last stamp. A later one, from an archive imported with
/// its own times, must not drag every new stamp after it.
pub(crate) fn newest_stamp_by(rows: &[DetectionRow], now: Timestamp) -> Option<Timestamp> {
    rows.iter().map(|r| r.processed).filter(|&p| p <= now).max()
}

/// How much of each kind a store holds, for checking a copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    pub tenants: usize,
    pub apps: usize,
    pub users: usize,
    pub signing_keys: usize,
    pub refresh_tokens: usize,
    /// Detections per tenant, by tenant id, with the tenant's name.
    pub detections: BTreeMap<Uuid, (String, u64)>,
}

impl Census {
    /// Counts what `store` holds.
    pub async fn take(store: &dyn Store) -> Result<Census, StoreError> {
        let registry = store.export_registry().await?;
        Census::of(store, &registry).await
    }

    async fn of(store: &dyn Store, registry: &Registry) -> Result<Census, StoreError> {
        let mut detections = BTreeMap::new();
        for tenant in &registry.tenants {
            let n = store.detection_count(tenant.id).await?;
            detections.insert(tenant.id, (tenant.name.clone(), n));
        }
        Ok(Census {
            tenants: registry.tenants.len(),
            apps: registry.apps.len(),
            users: registry.users.len(),
            signing_keys: registry.signing_keys.len(),
            refresh_tokens: registry.refresh_tokens.len(),
            detections,
        })
    }

    /// Every detection, of every tenant.
    pub fn total_detections(&self) -> u64 {
        self.detections.values().map(|(_, n)| n).sum()
    }

    /// True when the store holds nothing a copy could collide with.
    pub fn is_empty(&self) -> bool {
        self.tenants == 0 && self.signing_keys == 0
    }

    /// Each count where `other` differs from this one, as
    /// `"apps: 3 in the source, 2 in the target"`; empty when they agree.
    pub fn differences(&self, other: &Census) -> Vec<String> {
        let mut out = Vec::new();
        let mut compare = |what: &str, mine: u64, theirs: u64| {
            if mine != theirs {
                out.push(format!("{what}: {mine} in the source, {theirs} in the target"));
            }
        };
        compare("tenants", self.tenants as u64, other.tenants as u64);
        compare("apps", self.apps as u64, other.apps as u64);
        compare("users", self.users as u64, other.users as u64);
        compare("signing keys", self.signing_keys as u64, other.signing_keys as u64);
        compare("refresh tokens", self.refresh_tokens as u64, other.refresh_tokens as u64);
        let ids = self.detections.keys().chain(other.detections.keys());
        let ids: std::collections::BTreeSet<&Uuid> = ids.collect();
        for id in ids {
            let (name, mine) = self.detections.get(id).map_or(("", 0), |(n, c)| (n.as_str(), *c));
            let theirs = other.detections.get(id).map_or(0, |(_, c)| *c);
            let name = if name.is_empty() { &other.detections[id].0 } else { name };
            compare(&format!("detections of tenant {name} ({id})"), mine, theirs);
        }
        out
    }
}

/// How far a copy got: what `copy_store` reports as it goes and when done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Detections written to the target so far.
    pub detections: u64,
    /// Detections the source held when the copy started.
    pub of: u64,
}

/// Why a copy stopped, and whether the target was written to by then.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Nothing was written: the target held this before the copy began.
    #[error("the target is not empty: it holds {}", describe_holdings(.0))]
    TargetNotEmpty(Census),

    /// Nothing was written: the source could not be read, or the target
    /// refused the registry (which goes in one transaction).
    #[error("{0}")]
    BeforeWriting(StoreError),

    /// The target holds the registry and part of the detections.
    #[error("{error} (after {} of {} detections were copied)", .progress.detections, .progress.of)]
    Partial { progress: Progress, error: StoreError },
}

/// What a store holds, in words: `2 tenants (contoso, fabrikam) with 1000
/// detections, 1 signing key`.
pub fn describe_holdings(census: &Census) -> String {
    let names: Vec<&str> = census.detections.values().map(|(name, _)| name.as_str()).collect();
    let mut parts = Vec::new();
    if census.tenants > 0 {
        parts.push(format!(
            "{} ({}) with {}",
            count(census.tenants as u64, "tenant"),
            names.join(", "),
            count(census.total_detections(), "detection")
        ));
    }
    if census.signing_keys > 0 {
        parts.push(count(census.signing_keys as u64, "signing key"));
    }
    if parts.is_empty() { "nothing".into() } else { parts.join(", ") }
}

/// `1 tenant`, `2 tenants`.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// Copies everything `from` holds into `to`, which must be empty: the
/// registry first, then each tenant's detections, page by page, calling
/// `progress` after each page. `from` is only read. Returns the census of
/// the source, taken before copying.
///
/// Nothing stops another process writing to `from` meanwhile; a caller
/// checks the copy with [`Census`] afterwards.
pub async fn copy_store(
    from: &dyn Store,
    to: &dyn Store,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<Census, CopyError> {
    let target = Census::take(to).await.map_err(CopyError::BeforeWriting)?;
    if !target.is_empty() {
        return Err(CopyError::TargetNotEmpty(target));
    }
    let registry = from.export_registry().await.map_err(CopyError::BeforeWriting)?;
    let census = Census::of(from, &registry).await.map_err(CopyError::BeforeWriting)?;
    to.import_registry(&registry).await.map_err(CopyError::BeforeWriting)?;

    let mut done = Progress { detections: 0, of: census.total_detections() };
    for tenant in &registry.tenants {
        copy_detections(from, to, tenant.id, &mut done, &mut progress)
            .await
            .map_err(|error| CopyError::Partial { progress: done, error })?;
    }
    Ok(census)
}

/// Copies one tenant's detections. A reading task stays one page ahead of
/// the writing, so the source and the target work at the same time.
async fn copy_detections(
    from: &dyn Store,
    to: &dyn Store,
    tenant: Uuid,
    done: &mut Progress,
    progress: &mut (impl FnMut(Progress) + Send),
) -> Result<(), StoreError> {
    let (pages, mut next_page) = mpsc::channel::<Result<Vec<DetectionRow>, StoreError>>(1);
    let read = async move {
        let mut after = None;
        loop {
            let page = from.export_detections(tenant, after.take(), PAGE_ROWS).await;
            let last = page.as_ref().ok().and_then(|rows| rows.last().map(DetectionRow::key));
            let end = page.as_ref().map_or(true, |rows| rows.len() < PAGE_ROWS);
            if pages.send(page).await.is_err() || end {
                return;
            }
            after = last;
        }
    };
    let write = async move {
        while let Some(page) = next_page.recv().await {
            let page = page?;
            let n = page.len() as u64;
            let stored = to.import_detections(tenant, page).await?;
            if stored != n {
                return Err(StoreError::Worker(format!(
                    "the target already held {} of a page of {n} detections of tenant {tenant}",
                    n - stored
                )));
            }
            done.detections += n;
            progress(*done);
        }
        Ok(())
    };
    // Dropping the writer's receiver on an error ends the reader too.
    let ((), written) = tokio::join!(read, write);
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn census(tenants: &[(&str, u64)], keys: usize) -> Census {
        let detections = tenants
            .iter()
            .enumerate()
            .map(|(i, (name, n))| (Uuid::from_u128(i as u128), (name.to_string(), *n)))
            .collect();
        Census { tenants: tenants.len(), signing_keys: keys, detections, ..Census::default() }
    }

    #[test]
    fn differences_name_each_count_and_tenant_that_differs() {
        let source = census(&[("contoso", 10), ("fabrikam", 3)], 2);
        let target = census(&[("contoso", 9)], 2);
        assert_eq!(
            source.differences(&target),
            [
                "tenants: 2 in the source, 1 in the target",
                "detections of tenant contoso (00000000-0000-0000-0000-000000000000): \
                 10 in the source, 9 in the target",
                "detections of tenant fabrikam (00000000-0000-0000-0000-000000000001): \
                 3 in the source, 0 in the target",
            ]
        );
        assert!(source.differences(&source.clone()).is_empty());
    }

    #[test]
    fn holdings_are_described_in_words() {
        assert_eq!(describe_holdings(&Census::default()), "nothing");
        assert_eq!(
            describe_holdings(&census(&[("contoso", 1), ("fabrikam", 2)], 1)),
            "2 tenants (contoso, fabrikam) with 3 detections, 1 signing key"
        );
    }
}
