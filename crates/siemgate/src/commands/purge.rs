//! `siemgate purge`: retention by hand; the server runs the same in the background.

use super::{now, open_store};
use crate::cli::PurgeArgs;
use crate::output::say;

pub async fn run(args: PurgeArgs, database: &str) -> anyhow::Result<()> {
    let store = open_store(database).await?;
    let cutoff = now().add_ticks(-args.older_than.ticks());
    let purged = store.purge_before(cutoff).await?;
    say!("purged {purged} detections processed before {cutoff}")?;
    Ok(())
}
