//! Watching a backup job: a thread per job waits for its copies to end (events on the
//! engine's second monitor, or polling), judges how it ended, and finishes it — the
//! cleanup recorded first, so that a process that dies in the middle leaves the rest to
//! the next one, which takes orphaned jobs over.

use crate::conf::backup::BackupMode;
use crate::driver::events;
use crate::driver::jobs::{Finished, Outcome};
use crate::driver::qemu::backup::job::{ActiveJob, JobEngine, Verdict};
use crate::driver::qemu::backup::{listen_address, what};
use crate::driver::qemu::checkpoint::bitmap_disks;
use crate::driver::qemu::domain::engine_disks;
use crate::driver::qemu::intent::{self, DaemonRecord, Intent};
use crate::driver::qemu::state::{DRIVERS, Inner, QemuDriver};
use crate::driver::qemu::store::Scope;
use crate::engine::backup::{self as qmp_backup, NbdAddress};
use crate::engine::commands::{self, Action, JobState};
use crate::engine::qmp::Qmp;
use crate::engine::{self, Access, Session, daemon};
use crate::error::Result;
use crate::uuid::Uuid;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

/// Jobs this process watches, by root, domain and start time.
pub(crate) static WATCHED: LazyLock<Mutex<HashSet<(PathBuf, Uuid, u64)>>> = LazyLock::new(Default::default);

/// What the watcher saw when the copies ended.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    /// The final state of each copy.
    pub(crate) states: Vec<JobState>,
    /// The engine went away before the copies ended.
    pub(crate) engine_gone: bool,
}

/// Waits until every copy has concluded, or the engine is gone.
pub(crate) fn observe(engine: &JobEngine, ids: &[String]) -> Observed {
    let done =
        |states: &[JobState]| ids.iter().all(|id| states.iter().find(|s| &s.id == id).is_none_or(JobState::concluded));
    let timeout = engine::default_timeout();
    // Events on the second monitor tell when to look again.
    if let Some(mut monitor) = engine.events.as_ref().and_then(|p| Qmp::connect(p, timeout).ok()) {
        while let Ok(states) = commands::jobs(&mut monitor) {
            if done(&states) {
                return Observed { states, engine_gone: false };
            }
            if monitor.next_event(Duration::from_millis(500)).is_err() {
                break;
            }
        }
    }
    // Otherwise (or once that monitor closed): poll through short connections.
    loop {
        let answer = Qmp::connect(&engine.qmp, timeout).and_then(|mut m| commands::jobs(&mut m));
        match answer {
            Ok(states) => {
                if done(&states) {
                    return Observed { states, engine_gone: false };
                }
            }
            Err(_) => return Observed { states: Vec::new(), engine_gone: true },
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl QemuDriver {
    /// This driver as an `Arc`, for threads that outlive the call.
    pub(crate) fn shared(&self) -> Option<Arc<QemuDriver>> {
        DRIVERS.lock().get(self.root()).and_then(Weak::upgrade)
    }

    /// Starts the thread that finishes the job when its copies end (once per job and
    /// process). A job whose end was already judged goes straight to its cleanup.
    pub(crate) fn watch(&self, domain: &str, uuid: Uuid, job: ActiveJob) {
        let domain = domain.to_string();
        let key = (self.root().to_path_buf(), uuid, job.started_ms);
        if !WATCHED.lock().insert(key.clone()) {
            return;
        }
        let Some(driver) = self.shared() else {
            WATCHED.lock().remove(&key);
            return;
        };
        let thread_key = key.clone();
        let spawned = std::thread::Builder::new().name("virbackup-job".into()).spawn(move || {
            let observed =
                if job.finishing.is_some() { Observed::default() } else { observe(&job.engine, &job.job_ids()) };
            if let Err(e) = driver.finish_backup(&domain, uuid, job.started_ms, observed) {
                eprintln!("virbackup: warning : finishing the backup job failed: {}", e.message);
            }
            // Only now: until the job is finished, no other thread may take it over.
            WATCHED.lock().remove(&thread_key);
        });
        if spawned.is_err() {
            WATCHED.lock().remove(&key);
        }
    }

    /// Takes over the jobs whose watching process is gone. Returns whether a job file
    /// changed.
    pub(crate) fn adopt_orphan_jobs(&self, inner: &mut Inner) -> Result<bool> {
        let me = std::process::id();
        let my_start = daemon::start_time(me);
        let mut any = false;
        for domain in &mut inner.domains {
            let mut changed = false;
            let uuid = domain.def().uuid;
            let name = domain.name().to_string();
            let Some(job) = domain.jobs.active.as_mut() else { continue };
            let mine = job.owner == me && (job.owner_started.is_none() || job.owner_started == my_start);
            let owner_alive = daemon::alive(job.owner)
                && (job.owner_started.is_none() || daemon::start_time(job.owner) == job.owner_started);
            if !mine && owner_alive {
                continue;
            }
            if !mine {
                job.owner = me;
                job.owner_started = my_start;
                changed = true;
            }
            let job = job.clone();
            if changed {
                domain.jobs.save(&self.layout, domain.name())?;
                any = true;
            }
            self.watch(&name, uuid, job);
        }
        Ok(any)
    }

    /// How a job ended, from what the watcher saw.
    pub(crate) fn judge(job: &ActiveJob, observed: &Observed) -> Verdict {
        let mode = job.mode();
        let mut failed = observed.engine_gone;
        let mut cancelled = false;
        let mut error = observed.engine_gone.then(|| "the engine of the domain exited during the backup".to_string());
        for disk in &job.disks {
            match observed.states.iter().find(|s| s.id == disk.job_id) {
                Some(state) => {
                    if let Some(e) = &state.error {
                        if job.aborting {
                            cancelled = true;
                        } else {
                            failed = true;
                        }
                        error.get_or_insert_with(|| e.clone());
                    }
                }
                None if !observed.engine_gone => {
                    failed = true;
                    error.get_or_insert_with(|| format!("the copy of disk '{}' disappeared", disk.target));
                }
                None => {}
            }
        }
        Verdict {
            outcome: Outcome::of(mode, failed, cancelled),
            error,
            progress: job.progress(mode, &observed.states),
            elapsed_ms: job.elapsed_ms(),
        }
    }

    /// Ends a job whose copies ended: judges it (and records the verdict first, so that a
    /// process taking over after a death in the middle goes on from there), closes what
    /// it opened, keeps or removes what it wrote, records its figures and raises its
    /// events. Every cleanup step tolerates having been done already.
    pub(crate) fn finish_backup(&self, domain: &str, uuid: Uuid, started_ms: u64, observed: Observed) -> Result<()> {
        let raised = self.with_state(Scope::Domain(domain), true, |inner, layout| {
            let Some(at) = inner.domains.iter().position(|d| d.def().uuid == uuid) else { return Ok(Vec::new()) };
            let Some(mut job) = inner.domains[at].jobs.active.clone().filter(|j| j.started_ms == started_ms) else {
                return Ok(Vec::new());
            };
            let verdict = match &job.finishing {
                Some(verdict) => verdict.clone(),
                None => {
                    let verdict = Self::judge(&job, &observed);
                    job.finishing = Some(verdict.clone());
                    let domain = &mut inner.domains[at];
                    domain.jobs.active = Some(job.clone());
                    domain.jobs.save(layout, domain.name())?;
                    verdict
                }
            };
            let def = job.def();
            let mode = def.mode;
            let outcome = verdict.outcome;

            let domain = &inner.domains[at];
            let disks = engine_disks(domain.def()).unwrap_or_default();
            let engine_alive = job.engine.daemon.is_none_or(|pid| daemon::is_ours(pid, &job.engine.qmp, None));
            let mut checkpoint_bitmaps_removed = false;
            if engine_alive
                && let Ok(mut session) =
                    Session::open(Access::Existing { qmp: &job.engine.qmp }, &disks, &what(domain.name()))
            {
                for disk in &job.disks {
                    session.dismiss_job(&disk.job_id);
                    if let Some(id) = &disk.export_id {
                        session.remove_export(id);
                    }
                }
                if job.nbd_server {
                    session.stop_nbd_server();
                }
                if let Some(id) = &job.tls_object {
                    session.remove_object(id);
                }
                for disk in &job.disks {
                    session.close_store(&job.store_of(disk));
                    if let Some((node, name)) = disk.bitmap.as_ref().filter(|(node, _)| *node == disk.node) {
                        session.remove_bitmap(node, name);
                    }
                }
                if outcome != Outcome::Completed
                    && let Some(name) = &job.checkpoint
                    && let Ok(checkpoint) = domain.checkpoints.get(name)
                {
                    let mut actions = Vec::new();
                    let present = session.bitmaps().unwrap_or_default();
                    for (target, bitmap) in bitmap_disks(checkpoint, domain.def()) {
                        let there = present.get(target).is_some_and(|l| l.iter().any(|b| b.name == bitmap));
                        if let (true, Ok(node)) = (there, session.node(target)) {
                            actions.push(Action::RemoveBitmap { node: node.to_string(), name: bitmap.to_string() });
                        }
                    }
                    checkpoint_bitmaps_removed = session.transaction(&actions).is_ok();
                }
            }
            if let Some(pid) = job.engine.daemon {
                let record = DaemonRecord {
                    qmp: job.engine.qmp.clone(),
                    pidfile: job.engine.qmp.with_extension("pid"),
                    sockets: job.engine.events.iter().cloned().collect(),
                    pid: Some(pid),
                    started: None,
                };
                record.stop_and_clean();
                intent::kill_point("backup-finish-daemon-stopped");
            }
            // What the job wrote.
            for disk in &job.disks {
                let keep = mode == BackupMode::Push && outcome == Outcome::Completed;
                if keep {
                    let _ = qmp_backup::sync_file(&disk.store);
                } else if disk.created {
                    let _ = std::fs::remove_file(&disk.store);
                }
            }
            if job.nbd_server
                && let Ok(NbdAddress::Unix(socket)) = listen_address(def)
            {
                intent::remove_socket(&socket);
            }
            let finished = Finished {
                outcome,
                mode,
                elapsed_ms: verdict.elapsed_ms,
                progress: verdict.progress,
                error: verdict.error.clone(),
            };
            // The job no longer holds the disks (its daemon is gone).
            inner.domains[at].jobs.active = None;
            // A checkpoint made with a backup that did not complete would be a base for
            // incrementals that miss data: it goes too (its bitmaps first).
            if outcome != Outcome::Completed
                && let Some(name) = &job.checkpoint
                && inner.domains[at].checkpoints.get(name).is_ok()
            {
                if !checkpoint_bitmaps_removed {
                    // A daemon that died may or may not have written the new bitmap.
                    let checkpoint = inner.domains[at].checkpoints.get(name)?.clone();
                    let dom_name = inner.domains[at].name().to_string();
                    self.journaled(inner, Intent::new("backup cleanup", &dom_name), |inner, journal| {
                        self.remove_bitmaps(&inner.domains[at], &[checkpoint], true, journal)
                    })?;
                }
                self.delete_checkpoint_metadata(&mut inner.domains[at], layout, name, 0)?;
            }
            let domain = &mut inner.domains[at];
            domain.jobs.active = None;
            domain.jobs.completed = Some(finished.clone());
            domain.jobs.save(layout, domain.name())?;
            let mut def = def.clone();
            for disk in def.disks.iter_mut().filter(|d| d.backup) {
                disk.state = Some(outcome.disk_state());
            }
            let paths: Vec<(String, String)> = job.disks.iter().map(|d| (d.target.clone(), d.source.clone())).collect();
            Ok(finished.events(events::driver_key(self), &domain.id(), &def, &paths))
        })?;
        raised.into_iter().for_each(events::emit);
        Ok(())
    }
}
