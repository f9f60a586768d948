use super::*;
use crate::conf::domain::DomainDef;

const DOMAIN: &str = "<domain type='qemu'><name>d</name><uuid>11111111-2222-3333-4444-555555555555</uuid>\
<memory>1024</memory><os><type>hvm</type></os><devices>\
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/a.qcow2'/><target dev='vda'/></disk>\
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/img/b.raw'/><target dev='vdb'/></disk>\
</devices></domain>";

fn domain() -> Arc<DomainDef> {
    Arc::new(DomainDef::parse(DOMAIN).unwrap())
}

fn with_checkpoint(name: &str, xml: &str) -> Checkpoints {
    let mut list = Checkpoints::new(Domain::VIR_FROM_QEMU);
    let prepared = list.prepare_create(CheckpointDef::parse(xml, false).unwrap(), &domain(), 100).unwrap();
    assert_eq!(prepared.def.name, name);
    list.commit(prepared).unwrap();
    list
}

fn context<'a>(domain: &'a Arc<DomainDef>, list: &'a Checkpoints, busy: bool, now: i64) -> BeginContext<'a> {
    BeginContext {
        from: Domain::VIR_FROM_QEMU,
        api: "qemuBackupBegin",
        domain,
        checkpoints: list,
        busy,
        now,
        tls_configured: false,
    }
}

fn begin(xml: &str, checkpoint: Option<&str>, list: &Checkpoints) -> Result<Begin> {
    prepare_begin(&context(&domain(), list, false, 1700000000), 0, xml, checkpoint)
}

fn err(r: Result<Begin>) -> (Code, String) {
    let e = r.unwrap_err();
    (e.code, e.message)
}

#[test]
fn a_bare_request_backs_up_every_disk_in_full_to_generated_qcow2_files() {
    let b = begin("<domainbackup/>", None, &Checkpoints::new(Domain::VIR_FROM_QEMU)).unwrap();
    assert!(b.checkpoint.is_none());
    let out = b.def.format(false);
    assert!(out.contains("<target file='/img/a.qcow2.1700000000'/>"), "{out}");
    assert!(out.contains("<target file='/img/b.raw.1700000000'/>"), "{out}");
    assert!(b.def.disks.iter().all(|d| d.format.as_deref() == Some("qcow2") && d.state == Some(DiskState::Running)));
    let indexes: Vec<u32> = b.def.disks.iter().map(|d| d.index).collect();
    assert_eq!(indexes, [3, 4]);
}

#[test]
fn the_new_checkpoint_names_the_stores_and_must_be_new() {
    let empty = Checkpoints::new(Domain::VIR_FROM_QEMU);
    let b = begin("<domainbackup/>", Some("<domaincheckpoint><name>c1</name></domaincheckpoint>"), &empty).unwrap();
    assert_eq!(b.def.disks[0].store.as_deref(), Some(std::path::Path::new("/img/a.qcow2.c1")));
    assert_eq!(b.checkpoint.unwrap().def.name, "c1");
    let list = with_checkpoint("c1", "<domaincheckpoint><name>c1</name></domaincheckpoint>");
    let (code, message) =
        err(begin("<domainbackup/>", Some("<domaincheckpoint><name>c1</name></domaincheckpoint>"), &list));
    assert_eq!(code, Code::VIR_ERR_OPERATION_FAILED);
    assert!(message.contains("c1 already exists"), "{message}");
}

#[test]
fn errors_in_libvirts_order() {
    let empty = Checkpoints::new(Domain::VIR_FROM_QEMU);
    let dom = domain();
    let e = prepare_begin(&context(&dom, &empty, true, 1), 2, "<x/>", None).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (Code::VIR_ERR_INVALID_ARG, "unsupported flags (0x2) in function qemuBackupBegin")
    );
    let e = prepare_begin(&context(&dom, &empty, true, 1), 1, "<domainbackup/>", None).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (Code::VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: another backup job is already running")
    );
    assert_eq!(
        err(begin("<domainbackup mode='pull'><server name='localhost'/></domainbackup>", None, &empty)),
        (
            Code::VIR_ERR_OPERATION_UNSUPPORTED,
            "Operation not supported: <domainbackup> must specify TCP port for now".into()
        )
    );
    let tls = "<domainbackup mode='pull'><server name='localhost' port='10809' tls='yes'/></domainbackup>";
    assert_eq!(
        err(begin(tls, None, &empty)).1,
        "Requested operation is not valid: backup TLS directory not configured"
    );
    let configured = BeginContext { tls_configured: true, ..context(&dom, &empty, false, 1) };
    let accepted = prepare_begin(&configured, 0, tls, None).unwrap();
    assert_eq!(accepted.def.server.unwrap().tls, Some(true));
    let none =
        "<domainbackup><disks><disk name='vda' backup='no'/><disk name='vdb' backup='no'/></disks></domainbackup>";
    assert_eq!(
        err(begin(none, None, &empty)),
        (Code::VIR_ERR_CONFIG_UNSUPPORTED, "unsupported configuration: no disks selected for backup".into())
    );
    // The schema already refuses a pull scratch in another format than qcow2.
    let raw_pull = "<domainbackup mode='pull'><server transport='unix' socket='/run/s'/><disks>\
        <disk name='vda' type='file'><driver type='raw'/><scratch file='/tmp/s'/></disk></disks></domainbackup>";
    assert_eq!(err(begin(raw_pull, None, &empty)).0, Code::VIR_ERR_XML_INVALID_SCHEMA);
    let (code, message) = err(begin("<domainbackup><incremental>nosuch</incremental></domainbackup>", None, &empty));
    assert_eq!(code, Code::VIR_ERR_NO_DOMAIN_CHECKPOINT);
    assert_eq!(
        message,
        "Domain checkpoint not found: Checkpoint 'nosuch' for incremental backup of disk 'vda' not found"
    );
}

#[test]
fn an_incremental_disk_needs_a_bitmap_in_its_checkpoint() {
    let list = with_checkpoint(
        "c1",
        "<domaincheckpoint><name>c1</name><disks><disk name='vda'/><disk name='vdb' checkpoint='no'/></disks></domaincheckpoint>",
    );
    let (code, message) = err(begin("<domainbackup><incremental>c1</incremental></domainbackup>", None, &list));
    assert_eq!(code, Code::VIR_ERR_CHECKPOINT_INCONSISTENT);
    assert!(message.ends_with("missing or broken bitmap 'c1' for disk 'vdb'"), "{message}");
    let only_vda = "<domainbackup><incremental>c1</incremental><disks>\
        <disk name='vda' type='file'><target file='/bk/a'/></disk><disk name='vdb' backup='no'/></disks></domainbackup>";
    let b = begin(only_vda, None, &list).unwrap();
    assert_eq!(b.def.disks[0].mode, Some(DiskBackupMode::Incremental));
    assert_eq!(b.def.disks[0].incremental.as_deref(), Some("c1"));
}

#[test]
fn pull_exports_are_named_after_the_disks() {
    let list = with_checkpoint("c1", "<domaincheckpoint><name>c1</name></domaincheckpoint>");
    let xml = "<domainbackup mode='pull'><incremental>c1</incremental><server transport='unix' socket='/run/s'/>\
        <disks><disk name='vda' type='file'><scratch file='/tmp/s'/></disk>\
        <disk name='vdb' type='file' backupmode='full' exportname='other'><scratch file='/tmp/t'/></disk></disks></domainbackup>";
    let b = begin(xml, None, &list).unwrap();
    let vda = &b.def.disks[0];
    assert_eq!((vda.export_name.as_deref(), vda.export_bitmap.as_deref()), (Some("vda"), Some("backup-vda")));
    assert_eq!(temporary_bitmap(vda), "backup-vda");
    let vdb = &b.def.disks[1];
    assert_eq!((vdb.export_name.as_deref(), vdb.export_bitmap.as_deref()), (Some("other"), None));
}

#[test]
fn statistics_follow_libvirts_layout() {
    let progress = Progress { total: 100, processed: 40, temp_used: 0, temp_total: 0 };
    let running = active_stats(BackupMode::Push, 12, &progress);
    assert_eq!(running.job_type, 2);
    let names: Vec<&str> = running.params.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["operation", "time_elapsed", "disk_total", "disk_processed", "disk_remaining"]);
    assert_eq!(running.params[0].1, TypedValue::Int(9));
    assert_eq!(running.params[4].1, TypedValue::ULLong(60));

    let pull = Finished {
        outcome: Outcome::Completed,
        mode: BackupMode::Pull,
        elapsed_ms: 5,
        progress: Progress { temp_used: 1, temp_total: 2, ..Default::default() },
        error: Some("Operation canceled".into()),
    };
    let names: Vec<String> = pull.stats().params.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["operation", "time_elapsed", "disk_temp_used", "disk_temp_total", "success", "errmsg"]);
    assert_eq!(pull.info().file_total, 0);

    let empty_push = stats_params(BackupMode::Push, 1, &Progress::default(), Some((Outcome::Failed, None)));
    assert_eq!(empty_push.len(), 3);
    assert_eq!(empty_push[2], ("success".to_string(), TypedValue::Boolean(false)));

    let info = job_info(3, BackupMode::Push, 7, &progress);
    assert_eq!((info.file_total, info.file_processed, info.file_remaining, info.data_remaining), (100, 40, 60, 60));
}

#[test]
fn completed_statistics_are_read_once_unless_kept() {
    let done = Finished {
        outcome: Outcome::Cancelled,
        mode: BackupMode::Push,
        elapsed_ms: 1,
        progress: Progress::default(),
        error: None,
    };
    let completed = StatsFlags::VIR_DOMAIN_JOB_STATS_COMPLETED as u32;
    let keep = StatsFlags::VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED as u32;
    let mut slot = JobSlot { completed: Some(done) };
    assert_eq!(slot.stats(None, 0).job_type, 0);
    let running = active_stats(BackupMode::Push, 1, &Progress::default());
    assert_eq!(slot.stats(Some(running.clone()), 0), running);
    // While a job runs, COMPLETED reports nothing and keeps the record.
    assert_eq!(slot.stats(Some(running), completed).job_type, 0);
    assert_eq!(slot.stats(None, completed | keep).job_type, 5);
    assert_eq!(slot.stats(None, completed).job_type, 5);
    let gone = slot.stats(None, completed);
    assert_eq!((gone.job_type, gone.params.len()), (0, 0));
}

#[test]
fn outcomes() {
    assert_eq!(Outcome::of(BackupMode::Pull, false, true), Outcome::Completed);
    assert_eq!(Outcome::of(BackupMode::Push, false, true), Outcome::Cancelled);
    assert_eq!(Outcome::of(BackupMode::Pull, true, true), Outcome::Failed);
    assert_eq!(Outcome::of(BackupMode::Push, false, false), Outcome::Completed);
    let kept = Finished {
        outcome: Outcome::Cancelled,
        mode: BackupMode::Pull,
        elapsed_ms: 3,
        progress: Progress { temp_used: 1, ..Default::default() },
        error: Some("x".into()),
    };
    let text = serde_json::to_string(&kept).unwrap();
    assert!(text.contains("\"outcome\":\"cancelled\"") && text.contains("\"mode\":\"pull\""), "{text}");
    assert_eq!(serde_json::from_str::<Finished>(&text).unwrap(), kept);
    assert_eq!(Outcome::Cancelled.job_type(), 5);
    assert_eq!(Outcome::Failed.block_job_status(), 1);
}
