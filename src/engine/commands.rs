//! The QMP vocabulary the driver uses, typed: transaction actions, the commands that
//! undo what an operation added, and the one reader of `query-named-block-nodes` and
//! `query-jobs`. Nothing outside the engine builds QMP JSON.

use serde_json::{Value, json};

use super::qmp::{Qmp, QmpError};

/// A dirty bitmap of a block node, as `query-named-block-nodes` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitmapInfo {
    pub name: String,
    /// Dirty bytes.
    pub count: u64,
    pub granularity: u64,
    pub recording: bool,
    pub persistent: bool,
    pub busy: bool,
    pub inconsistent: bool,
}

impl BitmapInfo {
    /// Usable as a checkpoint's record: persistent, recording and consistent.
    pub fn healthy(&self) -> bool {
        self.persistent && self.recording && !self.inconsistent
    }
}

/// A block node, as `query-named-block-nodes` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockNode {
    pub name: String,
    /// The driver (`qcow2`, `raw`, `file`, ...).
    pub driver: String,
    /// The file name of the image the node reads.
    pub file: String,
    /// The size the node offers, in bytes.
    pub virtual_size: Option<u64>,
    pub bitmaps: Vec<BitmapInfo>,
    /// The names of the image's internal snapshots.
    pub snapshots: Vec<String>,
    /// The file of the image this one is an overlay of, if any.
    pub backing_file: Option<String>,
}

/// Every named block node of the process.
pub fn block_nodes(qmp: &mut Qmp) -> Result<Vec<BlockNode>, QmpError> {
    Ok(parse_block_nodes(&qmp.execute("query-named-block-nodes", Some(json!({"flat": true})))?))
}

fn parse_block_nodes(answer: &Value) -> Vec<BlockNode> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    answer
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| BlockNode {
            name: text(&n["node-name"]),
            driver: text(&n["drv"]),
            file: text(&n["file"]),
            virtual_size: n["image"]["virtual-size"].as_u64(),
            backing_file: n["backing_file"].as_str().filter(|f| !f.is_empty()).map(str::to_string),
            snapshots: n["image"]["snapshots"].as_array().into_iter().flatten().map(|s| text(&s["name"])).collect(),
            bitmaps: n["dirty-bitmaps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| BitmapInfo {
                    name: text(&b["name"]),
                    count: b["count"].as_u64().unwrap_or(0),
                    granularity: b["granularity"].as_u64().unwrap_or(0),
                    recording: b["recording"].as_bool().unwrap_or(false),
                    persistent: b["persistent"].as_bool().unwrap_or(false),
                    busy: b["busy"].as_bool().unwrap_or(false),
                    inconsistent: b["inconsistent"].as_bool().unwrap_or(false),
                })
                .collect(),
        })
        .collect()
}

/// The block graph as QEMU tells it (only through a debugging command; its answer is
/// stable since 4.0): edges (parent, child, role) between named nodes, a block backend
/// (an export's, a device's) having no name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockGraph {
    pub edges: Vec<(String, String, String)>,
}

impl BlockGraph {
    /// The node `node` reads through to (its `backing` child), if it has one.
    pub fn backing_child(&self, node: &str) -> Option<&str> {
        self.edges.iter().find(|(p, _, role)| p == node && role == "backing").map(|(_, c, _)| c.as_str())
    }

    /// Whether anything uses `node`: a node over it, or a block backend.
    pub fn is_used(&self, node: &str) -> bool {
        self.edges.iter().any(|(_, c, _)| c == node)
    }
}

pub fn block_graph(qmp: &mut Qmp) -> Result<BlockGraph, QmpError> {
    Ok(parse_block_graph(&qmp.execute("x-debug-query-block-graph", None)?))
}

fn parse_block_graph(graph: &Value) -> BlockGraph {
    let nodes = graph["nodes"].as_array().cloned().unwrap_or_default();
    let name_of = |id: &Value| {
        nodes.iter().find(|n| &n["id"] == id).and_then(|n| n["name"].as_str()).unwrap_or_default().to_string()
    };
    let edges = graph["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (name_of(&e["parent"]), name_of(&e["child"]), e["name"].as_str().unwrap_or_default().to_string()))
        .collect();
    BlockGraph { edges }
}

/// A job as `query-jobs` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub id: String,
    /// `created`, `running`, ..., `concluded`, `null`.
    pub status: String,
    pub current: u64,
    pub total: u64,
    pub error: Option<String>,
}

impl JobState {
    /// The job has ended (successfully or not) and waits to be dismissed.
    pub fn concluded(&self) -> bool {
        matches!(self.status.as_str(), "concluded" | "null")
    }
}

/// The jobs of the process.
pub fn jobs(qmp: &mut Qmp) -> Result<Vec<JobState>, QmpError> {
    Ok(parse_jobs(&qmp.execute("query-jobs", None)?))
}

fn parse_jobs(answer: &Value) -> Vec<JobState> {
    answer
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| JobState {
            id: j["id"].as_str().unwrap_or("").to_string(),
            status: j["status"].as_str().unwrap_or("").to_string(),
            current: j["current-progress"].as_u64().unwrap_or(0),
            total: j["total-progress"].as_u64().unwrap_or(0),
            error: j["error"].as_str().map(str::to_string),
        })
        .collect()
}

/// How a `blockdev-backup` job copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sync {
    /// Everything.
    Full,
    /// Only what the bitmap marks.
    Incremental { bitmap: String },
    /// Nothing but what the guest is about to overwrite (a pull backup's fleecing).
    None,
}

/// One action of a QMP `transaction`: all of them happen, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A persistent bitmap, recording from now on (a checkpoint's).
    AddBitmap {
        node: String,
        name: String,
    },
    /// A temporary, disabled bitmap of the given granularity (0: QEMU's default).
    AddTemporaryBitmap {
        node: String,
        name: String,
        granularity: u64,
    },
    RemoveBitmap {
        node: String,
        name: String,
    },
    /// A persistent bitmap of the given granularity, recording from now on: a
    /// checkpoint's, carried into a new overlay.
    CarryBitmap {
        node: String,
        name: String,
        granularity: u64,
    },
    /// Puts `overlay` (opened without a backing node) on top of `node`: whatever wrote
    /// to `node` writes to `overlay` from now on, which reads through to `node`.
    Snapshot {
        node: String,
        overlay: String,
    },
    /// An internal snapshot of `node`'s image named `name`.
    InternalSnapshot {
        node: String,
        name: String,
    },
    /// Merges `sources` (node, bitmap) into `node`'s bitmap `target`.
    MergeBitmaps {
        node: String,
        target: String,
        sources: Vec<(String, String)>,
    },
    /// A `blockdev-backup` job copying `device` into `target`, at most `speed` bytes
    /// per second when given, with at most `workers` requests in flight when given.
    Backup {
        job_id: String,
        device: String,
        target: String,
        sync: Sync,
        speed: Option<u64>,
        workers: Option<u32>,
    },
}

impl Action {
    pub(super) fn to_qmp(&self) -> Value {
        match self {
            Action::AddBitmap { node, name } => {
                json!({"type": "block-dirty-bitmap-add", "data": {"node": node, "name": name, "persistent": true}})
            }
            Action::AddTemporaryBitmap { node, name, granularity } => {
                let mut data = json!({"node": node, "name": name, "persistent": false, "disabled": true});
                if *granularity > 0 {
                    data["granularity"] = json!(granularity);
                }
                json!({"type": "block-dirty-bitmap-add", "data": data})
            }
            Action::CarryBitmap { node, name, granularity } => json!({
                "type": "block-dirty-bitmap-add",
                "data": {"node": node, "name": name, "persistent": true, "granularity": granularity},
            }),
            Action::Snapshot { node, overlay } => {
                json!({"type": "blockdev-snapshot", "data": {"node": node, "overlay": overlay}})
            }
            Action::RemoveBitmap { node, name } => {
                json!({"type": "block-dirty-bitmap-remove", "data": {"node": node, "name": name}})
            }
            Action::InternalSnapshot { node, name } => {
                json!({"type": "blockdev-snapshot-internal-sync", "data": {"device": node, "name": name}})
            }
            Action::MergeBitmaps { node, target, sources } => {
                let bitmaps: Vec<Value> = sources.iter().map(|(n, b)| json!({"node": n, "name": b})).collect();
                json!({"type": "block-dirty-bitmap-merge", "data": {"node": node, "target": target, "bitmaps": bitmaps}})
            }
            Action::Backup { job_id, device, target, sync, speed, workers } => {
                let mut data = json!({
                    "job-id": job_id,
                    "device": device,
                    "target": target,
                    "auto-finalize": true,
                    "auto-dismiss": false,
                });
                match sync {
                    Sync::Full => data["sync"] = json!("full"),
                    Sync::Incremental { bitmap } => {
                        data["sync"] = json!("incremental");
                        data["bitmap"] = json!(bitmap);
                    }
                    Sync::None => data["sync"] = json!("none"),
                }
                if let Some(speed) = speed {
                    data["speed"] = json!(speed);
                }
                if let Some(workers) = workers {
                    // QEMU marks x-perf unstable: one that does not know it gets the
                    // action without it (see `transaction`).
                    data["x-perf"] = json!({"max-workers": workers});
                }
                json!({"type": "blockdev-backup", "data": data})
            }
        }
    }
}

/// Runs actions atomically; nothing happens if one fails. A QEMU that does not know
/// the copies' tuning (`x-perf`) runs them without it.
pub fn transaction(qmp: &mut Qmp, actions: &[Action]) -> Result<(), QmpError> {
    if actions.is_empty() {
        return Ok(());
    }
    let run = |qmp: &mut Qmp, actions: &[Action]| {
        let actions: Vec<Value> = actions.iter().map(Action::to_qmp).collect();
        qmp.execute("transaction", Some(json!({ "actions": actions }))).map(drop)
    };
    match run(qmp, actions) {
        Err(QmpError::Command { desc, .. }) if desc.contains("x-perf") => {
            let untuned: Vec<Action> = actions
                .iter()
                .cloned()
                .map(|mut action| {
                    if let Action::Backup { workers, .. } = &mut action {
                        *workers = None;
                    }
                    action
                })
                .collect();
            run(qmp, &untuned)
        }
        other => other,
    }
}

// The commands that take out what an operation added. Each fails harmlessly when the
// thing is gone already: callers that undo ignore the result.

/// Removes an export at once, dropping its clients.
pub fn remove_export(qmp: &mut Qmp, id: &str) -> Result<(), QmpError> {
    qmp.execute("block-export-del", Some(json!({"id": id, "mode": "hard"}))).map(drop)
}

pub fn stop_nbd_server(qmp: &mut Qmp) -> Result<(), QmpError> {
    qmp.execute("nbd-server-stop", None).map(drop)
}

/// Cancels a block job at once (a backup's copy).
pub fn cancel_job(qmp: &mut Qmp, id: &str) -> Result<(), QmpError> {
    qmp.execute("block-job-cancel", Some(json!({"device": id, "force": true}))).map(drop)
}

/// Forgets a concluded job.
pub fn dismiss_job(qmp: &mut Qmp, id: &str) -> Result<(), QmpError> {
    qmp.execute("job-dismiss", Some(json!({"id": id}))).map(drop)
}

pub fn remove_bitmap(qmp: &mut Qmp, node: &str, name: &str) -> Result<(), QmpError> {
    qmp.execute("block-dirty-bitmap-remove", Some(json!({"node": node, "name": name}))).map(drop)
}

/// Deletes the internal snapshot `name` of `node`'s image.
pub fn delete_internal_snapshot(qmp: &mut Qmp, node: &str, name: &str) -> Result<(), QmpError> {
    qmp.execute("blockdev-snapshot-delete-internal-sync", Some(json!({"device": node, "name": name}))).map(drop)
}

/// Deletes an object (the TLS credentials of an NBD server that stopped).
pub fn remove_object(qmp: &mut Qmp, id: &str) -> Result<(), QmpError> {
    qmp.execute("object-del", Some(json!({"id": id}))).map(drop)
}

/// Closes a block node (one nothing uses any more).
pub fn remove_node(qmp: &mut Qmp, node: &str) -> Result<(), QmpError> {
    qmp.execute("blockdev-del", Some(json!({"node-name": node}))).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_read_from_query_jobs() {
        let answer = json!([
            {"id": "backup-vda-n", "type": "backup", "status": "running", "current-progress": 5, "total-progress": 9},
            {"id": "x", "type": "backup", "status": "concluded", "current-progress": 1, "total-progress": 1,
             "error": "Operation canceled"}
        ]);
        let jobs = parse_jobs(&answer);
        assert_eq!(
            jobs[0],
            JobState { id: "backup-vda-n".into(), status: "running".into(), current: 5, total: 9, error: None }
        );
        assert!(!jobs[0].concluded());
        assert!(jobs[1].concluded());
        assert_eq!(jobs[1].error.as_deref(), Some("Operation canceled"));
        assert!(parse_jobs(&json!({})).is_empty());
    }

    #[test]
    fn block_nodes_are_read_with_their_bitmaps() {
        let answer = json!([
            {"node-name": "vb-disk0", "drv": "qcow2", "file": "/i/a.qcow2", "image": {"virtual-size": 1024},
             "dirty-bitmaps": [{"name": "c1", "count": 512, "granularity": 65536, "recording": true,
                                "persistent": true, "busy": false}]},
            {"node-name": "vb-file0", "drv": "file", "file": "/i/a.qcow2", "image": {"virtual-size": 2048}}
        ]);
        let nodes = parse_block_nodes(&answer);
        assert_eq!(nodes.len(), 2);
        assert_eq!((nodes[0].name.as_str(), nodes[0].driver.as_str()), ("vb-disk0", "qcow2"));
        assert_eq!(nodes[0].virtual_size, Some(1024));
        assert_eq!(nodes[0].bitmaps[0].count, 512);
        assert!(nodes[0].bitmaps[0].healthy());
        assert!(nodes[1].bitmaps.is_empty());
        assert!(parse_block_nodes(&json!(null)).is_empty());
    }

    #[test]
    fn bitmap_health() {
        let b = BitmapInfo {
            name: "c".into(),
            count: 0,
            granularity: 65536,
            recording: true,
            persistent: true,
            busy: false,
            inconsistent: false,
        };
        assert!(b.healthy());
        assert!(!BitmapInfo { inconsistent: true, ..b.clone() }.healthy());
        assert!(!BitmapInfo { recording: false, ..b }.healthy());
    }

    #[test]
    fn transaction_actions() {
        let add =
            Action::AddTemporaryBitmap { node: "n".into(), name: "backup-vda".into(), granularity: 65536 }.to_qmp();
        assert_eq!(add["data"]["persistent"], false);
        assert_eq!(add["data"]["disabled"], true);
        assert_eq!(add["data"]["granularity"], 65536);
        let add = Action::AddBitmap { node: "n".into(), name: "c1".into() }.to_qmp();
        assert_eq!(add["data"], json!({"node": "n", "name": "c1", "persistent": true}));
        let merge = Action::MergeBitmaps {
            node: "n".into(),
            target: "backup-vda".into(),
            sources: vec![("n".into(), "c1".into())],
        }
        .to_qmp();
        assert_eq!(merge["data"]["bitmaps"][0], json!({"node": "n", "name": "c1"}));
        let inc = Action::Backup {
            job_id: "j".into(),
            device: "d".into(),
            target: "t".into(),
            sync: Sync::Incremental { bitmap: "backup-vda".into() },
            speed: Some(5),
            workers: Some(8),
        }
        .to_qmp();
        assert_eq!(inc["data"]["speed"], 5);
        assert_eq!(
            (inc["data"]["sync"].as_str(), inc["data"]["bitmap"].as_str()),
            (Some("incremental"), Some("backup-vda"))
        );
        assert_eq!(inc["data"]["auto-dismiss"], false);
        assert_eq!(inc["data"]["x-perf"], json!({"max-workers": 8}));
        let fleece = Action::Backup {
            job_id: "j".into(),
            device: "d".into(),
            target: "t".into(),
            sync: Sync::None,
            speed: None,
            workers: None,
        }
        .to_qmp();
        assert!(fleece["data"].get("speed").is_none() && fleece["data"].get("x-perf").is_none());
        assert_eq!(fleece["data"]["sync"], "none");
        let carry = Action::CarryBitmap { node: "o".into(), name: "c1".into(), granularity: 131072 }.to_qmp();
        assert_eq!(carry["data"], json!({"node": "o", "name": "c1", "persistent": true, "granularity": 131072}));
        let snapshot = Action::Snapshot { node: "n".into(), overlay: "o".into() }.to_qmp();
        assert_eq!(snapshot, json!({"type": "blockdev-snapshot", "data": {"node": "n", "overlay": "o"}}));
    }

    #[test]
    fn the_backing_child_is_read_from_the_block_graph() {
        // As QEMU 10 answers after `blockdev-snapshot` put `o` over `n`.
        let graph = json!({
            "nodes": [
                {"name": "o", "type": "block-driver", "id": 5},
                {"name": "n", "type": "block-driver", "id": 2},
                {"name": "", "type": "block-backend", "id": 1},
            ],
            "edges": [
                {"name": "root", "parent": 1, "child": 5},
                {"name": "backing", "parent": 5, "child": 2},
            ],
        });
        let graph = parse_block_graph(&graph);
        assert_eq!(graph.backing_child("o"), Some("n"));
        assert_eq!(graph.backing_child("n"), None);
        assert_eq!(graph.backing_child("gone"), None);
        assert!(graph.is_used("o") && graph.is_used("n") && !graph.is_used("gone"));
    }

    #[test]
    fn a_qemu_without_copy_tuning_gets_the_copies_without_it() {
        use super::super::qmp::fake::{greet_and_negotiate, read_request, serve};
        use std::io::Write;
        let (_dir, path) = serve(|stream| {
            let mut reader = greet_and_negotiate(&stream);
            let mut out = stream.try_clone().unwrap();
            let first = read_request(&mut reader);
            assert_eq!(first["arguments"]["actions"][1]["data"]["x-perf"], json!({"max-workers": 8}));
            let refusal = r#"{"class": "GenericError", "desc": "Parameter 'x-perf' is unexpected"}"#;
            writeln!(out, r#"{{"error": {refusal}, "id": {}}}"#, first["id"]).unwrap();
            let second = read_request(&mut reader);
            let actions = &second["arguments"]["actions"];
            assert!(actions[1]["data"].get("x-perf").is_none(), "{second}");
            assert_eq!(actions[0]["type"], "block-dirty-bitmap-add", "the other actions stay");
            writeln!(out, r#"{{"return": {{}}, "id": {}}}"#, second["id"]).unwrap();
        });
        let mut qmp = Qmp::connect(&path, std::time::Duration::from_secs(5)).unwrap();
        let actions = [
            Action::AddBitmap { node: "n".into(), name: "c1".into() },
            Action::Backup {
                job_id: "j".into(),
                device: "n".into(),
                target: "t".into(),
                sync: Sync::Full,
                speed: None,
                workers: Some(8),
            },
        ];
        transaction(&mut qmp, &actions).unwrap();
    }
}
