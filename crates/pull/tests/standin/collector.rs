//! A sink that keeps what it is given in memory and counts what it had to
//! take back, so a test can tell a whole window from half of one.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use siemgate_model::Timestamp;
use siemgate_pull::{Mark, Record, Sink, SinkError};

/// What every collector sharing it has seen; survives a collector, as a
/// sink's committed output survives a restart of the puller.
#[derive(Debug, Default)]
pub struct Delivered {
    /// FullIds committed, in delivery order.
    pub committed: Vec<(String, Timestamp)>,
    pub commits: usize,
    pub roll_backs: usize,
    /// Records written and then taken back.
    pub taken_back: usize,
}

pub type Shared = Arc<Mutex<Delivered>>;

/// One puller's view of the sink: records written since the last commit
/// live only here, so they vanish if the puller does.
#[derive(Debug)]
pub struct Collector {
    delivered: Shared,
    uncommitted: Vec<(String, Timestamp)>,
    rolls_back: bool,
}

impl Collector {
    /// A sink that takes records as they arrive and can take them back (as a
    /// file does) when `rolls_back`, else one that must only ever be given
    /// checked, whole windows (as syslog must).
    pub fn new(delivered: &Shared, rolls_back: bool) -> Box<Collector> {
        Box::new(Collector { delivered: delivered.clone(), uncommitted: Vec::new(), rolls_back })
    }
}

#[async_trait]
impl Sink for Collector {
    async fn write(&mut self, records: &[Record<'_>]) -> Result<(), SinkError> {
        self.uncommitted.extend(records.iter().map(|r| (r.full_id.to_string(), r.processed)));
        Ok(())
    }

    async fn commit(&mut self) -> Result<Mark, SinkError> {
        let mut delivered = self.delivered.lock().unwrap();
        delivered.committed.append(&mut self.uncommitted);
        delivered.commits += 1;
        Ok(Mark::Null)
    }

    fn can_roll_back(&self) -> bool {
        self.rolls_back
    }

    async fn roll_back(&mut self) -> Result<(), SinkError> {
        assert!(self.rolls_back, "the puller rolled back a sink that cannot roll back");
        let mut delivered = self.delivered.lock().unwrap();
        delivered.roll_backs += 1;
        delivered.taken_back += self.uncommitted.len();
        self.uncommitted.clear();
        Ok(())
    }
}
