//! Failed authentications, counted per client id (secrets) and per tenant
//! user (passwords, from every sign-in page alike) so that guessing is
//! slowed to a crawl: after `MAX_FAILURES` within `WINDOW`, the key is
//! refused with 429 until the window has passed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_FAILURES: u32 = 10;
const WINDOW: Duration = Duration::from_secs(60);

/// Client ids remembered at most; past this, entries whose window has passed go.
const MAX_TRACKED: usize = 10_000;

/// The key under which a tenant user's failed sign-ins are counted.
pub fn user_key(tenant: uuid::Uuid, username: &str) -> String {
    format!("user:{tenant}:{}", username.trim().to_lowercase())
}

#[derive(Debug, Default)]
pub struct Failures {
    by_client: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Failures {
    /// Seconds to wait when `client_id` is blocked now.
    pub fn blocked(&self, client_id: &str) -> Option<u64> {
        let map = self.by_client.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let &(count, started) = map.get(client_id)?;
        let elapsed = started.elapsed();
        (count >= MAX_FAILURES && elapsed < WINDOW).then(|| (WINDOW - elapsed).as_secs().max(1))
    }

    pub fn record(&self, client_id: &str) {
        let mut map = self.by_client.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, started)| started.elapsed() < WINDOW);
        }
        let entry = map.entry(client_id.to_owned()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub fn clear(&self, client_id: &str) {
        self.by_client.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(client_id);
    }
}
