//! Block commit while a disk is in use: an overlay's data written into the image below
//! it, which then takes its place. Committing the disk's own top image (an active
//! commit) mirrors the writers' new writes into the image below until it is completed,
//! when the writers are switched over; committing an image further down ends with the
//! image over it reading through to the one below. Either way the job stops before its
//! end ([`CommitEnd`]) so that the caller can act while the image below is writable.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{FROM, Session};
use crate::error::{Error, Result};

/// Where a commit waits for its caller before ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitEnd {
    /// An active commit: ready, mirroring, until completed.
    Ready,
    /// Any other: pending, until finalized.
    Pending,
}

impl Session {
    /// Starts committing `top` into `base` on the disk whose top node is `device` (an
    /// active commit when `top` is the device itself) and waits until it stands where
    /// the caller acts; returns how it is to be ended.
    pub fn start_commit(&mut self, job_id: &str, device: &str, top: &str, base: &str) -> Result<CommitEnd> {
        let end = if top == device { CommitEnd::Ready } else { CommitEnd::Pending };
        let mut args = json!({
            "job-id": job_id,
            "device": device,
            "base-node": base,
            "auto-finalize": end == CommitEnd::Ready,
            "auto-dismiss": false,
        });
        if end == CommitEnd::Pending {
            args["top-node"] = json!(top);
        }
        self.execute("block-commit", Some(args))?;
        self.wait_job(job_id, if end == CommitEnd::Ready { "ready" } else { "pending" })?;
        Ok(end)
    }

    /// Ends a commit started by [`Session::start_commit`], and forgets the job.
    pub fn end_commit(&mut self, job_id: &str, end: CommitEnd) -> Result<()> {
        let command = match end {
            CommitEnd::Ready => "job-complete",
            CommitEnd::Pending => "job-finalize",
        };
        self.execute(command, Some(json!({"id": job_id})))?;
        let result = self.wait_job(job_id, "concluded");
        self.dismiss_job(job_id);
        result
    }

    /// Waits until a job stands at `status`; one that concluded otherwise is an error
    /// (and is forgotten), as is one that makes no progress for the QMP timeout.
    fn wait_job(&mut self, job_id: &str, status: &str) -> Result<()> {
        let patience = super::default_timeout();
        let mut progress = (Instant::now(), 0);
        loop {
            let job = self.jobs()?.into_iter().find(|j| j.id == job_id);
            let Some(job) = job else {
                return Err(Error::internal(FROM, format!("block commit '{job_id}' disappeared")));
            };
            if job.status == status && job.error.is_none() {
                return Ok(());
            }
            if job.concluded() {
                self.dismiss_job(job_id);
                let why = job.error.unwrap_or_else(|| "it ended early".to_string());
                return Err(Error::internal(FROM, format!("block commit '{job_id}' failed: {why}")));
            }
            if job.current != progress.1 {
                progress = (Instant::now(), job.current);
            } else if progress.0.elapsed() > patience {
                return Err(Error::internal(FROM, format!("block commit '{job_id}' made no progress")));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Closes a node the engine was given (a node it opened by itself goes with the
    /// last user); one that is gone or in use is left.
    pub fn remove_node(&mut self, node: &str) {
        if !node.starts_with('#') {
            let _ = super::commands::remove_node(&mut self.qmp, node);
        }
    }
}
