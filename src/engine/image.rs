//! Offline operations on qcow2 images with `qemu-img`: internal snapshots and persistent
//! bitmaps of an image no process has open (the domain is shut off and its root locked).
//!
//! Applying an internal snapshot is refused by QEMU while the image holds any persistent
//! bitmap, enabled or not ("Device has active dirty bitmaps"), and bitmaps are not part
//! of a snapshot: [`apply_snapshot`] sets them aside in a small image of their own,
//! applies the snapshot and puts them back. Every step can be run again, so an operation
//! cut short is finished by running it again.

use std::ffi::OsStr;
use std::path::Path;

use serde_json::Value;

use super::FROM;
use crate::error::{Error, Result};

/// A persistent bitmap of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBitmap {
    pub name: String,
    /// Recording writes (`auto` in QEMU's flags).
    pub enabled: bool,
    pub granularity: u64,
}

/// What `qemu-img info` says of an image's snapshots and bitmaps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageState {
    pub virtual_size: u64,
    /// The names of its internal snapshots.
    pub snapshots: Vec<String>,
    pub bitmaps: Vec<ImageBitmap>,
    /// The image it reads through to, as its header names it.
    pub backing: Option<String>,
}

impl ImageState {
    pub fn has_bitmap(&self, name: &str) -> bool {
        self.bitmaps.iter().any(|b| b.name == name)
    }
}

/// Runs `qemu-img` and returns what it printed; on failure, the error `failure` words
/// from qemu-img's own reason.
pub(super) fn qemu_img<S: AsRef<OsStr>>(args: &[S], failure: impl FnOnce(&str) -> String) -> Result<Vec<u8>> {
    let out = std::process::Command::new("qemu-img")
        .args(args)
        .output()
        .map_err(|e| Error::system(FROM, "cannot run qemu-img", &e))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(Error::internal(FROM, failure(why.trim().trim_start_matches("qemu-img: "))));
    }
    Ok(out.stdout)
}

/// `qemu_img` failing with "cannot <what> of image '<path>': <why>".
fn run<S: AsRef<OsStr>>(args: &[S], what: &str, path: &Path) -> Result<Vec<u8>> {
    qemu_img(args, |why| format!("cannot {what} of image '{}': {why}", path.display()))
}

/// Reads an image's snapshots and bitmaps (sharing it with a process that has it open,
/// for a look before an operation).
pub fn state(path: &Path) -> Result<ImageState> {
    let out = run(
        &[
            OsStr::new("info"),
            OsStr::new("-U"),
            OsStr::new("--output=json"),
            OsStr::new("-f"),
            OsStr::new("qcow2"),
            path.as_os_str(),
        ],
        "read the snapshots and bitmaps",
        path,
    )?;
    let info: Value = serde_json::from_slice(&out).map_err(|e| {
        Error::internal(FROM, format!("cannot read qemu-img's description of '{}': {e}", path.display()))
    })?;
    Ok(parse_state(&info))
}

fn parse_state(info: &Value) -> ImageState {
    let snapshots = info["snapshots"]
        .as_array()
        .map(|list| list.iter().filter_map(|s| s["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let bitmaps = info["format-specific"]["data"]["bitmaps"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|b| {
                    let flags = b["flags"].as_array().cloned().unwrap_or_default();
                    Some(ImageBitmap {
                        name: b["name"].as_str()?.to_string(),
                        enabled: flags.iter().any(|f| f == "auto"),
                        granularity: b["granularity"].as_u64().unwrap_or(65536),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let backing = info["full-backing-filename"]
        .as_str()
        .or(info["backing-filename"].as_str())
        .filter(|b| !b.is_empty())
        .map(str::to_string);
    ImageState { virtual_size: info["virtual-size"].as_u64().unwrap_or(0), snapshots, bitmaps, backing }
}

/// The image as `--image-opts` name it: a qcow2 image over a file (commas in the path
/// doubled). `qemu-img snapshot` takes no `-f` before QEMU 10.
fn qcow2_image_opts(path: &Path) -> std::ffi::OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut opts = b"driver=qcow2,file.driver=file,file.filename=".to_vec();
    for &byte in path.as_os_str().as_bytes() {
        opts.push(byte);
        if byte == b',' {
            opts.push(b',');
        }
    }
    std::ffi::OsString::from_vec(opts)
}

fn snapshot_op(path: &Path, flag: &str, name: &str, what: &str) -> Result<()> {
    let image = qcow2_image_opts(path);
    let args = [OsStr::new("snapshot"), OsStr::new("--image-opts"), OsStr::new(flag), OsStr::new(name), &image];
    run(&args, what, path).map(|_| ())
}

/// Takes an internal snapshot named `name`.
pub fn create_snapshot(path: &Path, name: &str) -> Result<()> {
    snapshot_op(path, "-c", name, &format!("take snapshot '{name}'"))
}

/// Deletes the internal snapshot `name`.
pub fn delete_snapshot(path: &Path, name: &str) -> Result<()> {
    snapshot_op(path, "-d", name, &format!("delete snapshot '{name}'"))
}

fn bitmap_op(path: &Path, ops: &[&OsStr], bitmap: &str, what: &str) -> Result<()> {
    let mut args: Vec<&OsStr> = vec![OsStr::new("bitmap"), OsStr::new("-f"), OsStr::new("qcow2")];
    args.extend_from_slice(ops);
    args.push(path.as_os_str());
    args.push(OsStr::new(bitmap));
    run(&args, what, path).map(|_| ())
}

/// Adds a persistent bitmap, enabled or not.
pub fn add_bitmap(path: &Path, name: &str, enabled: bool, granularity: u64) -> Result<()> {
    let granularity = granularity.to_string();
    let mut ops = vec![OsStr::new("--add"), OsStr::new("-g"), OsStr::new(&granularity)];
    if !enabled {
        ops.push(OsStr::new("--disable"));
    }
    bitmap_op(path, &ops, name, &format!("add bitmap '{name}'"))
}

/// Removes a persistent bitmap.
pub fn remove_bitmap(path: &Path, name: &str) -> Result<()> {
    bitmap_op(path, &[OsStr::new("--remove")], name, &format!("remove bitmap '{name}'"))
}

/// Adds the bits of `source` (a bitmap of the image at `source_path`) to `target`.
pub fn merge_bitmap(path: &Path, target: &str, source_path: &Path, source: &str) -> Result<()> {
    let mut ops = vec![OsStr::new("--merge"), OsStr::new(source)];
    // A bitmap of the same image is named alone (opening the image twice would conflict
    // with its own lock).
    if source_path != path {
        ops.extend([OsStr::new("-b"), source_path.as_os_str(), OsStr::new("-F"), OsStr::new("qcow2")]);
    }
    bitmap_op(path, &ops, target, &format!("merge bitmap '{source}' into '{target}'"))
}

/// Writes what an overlay holds into the image below it (which then reads as the
/// overlay did); the overlay is left as it is.
pub fn commit(overlay: &Path) -> Result<()> {
    let args = [OsStr::new("commit"), OsStr::new("-q"), OsStr::new("-d"), OsStr::new("-f"), OsStr::new("qcow2")];
    let args: Vec<&OsStr> = args.into_iter().chain([overlay.as_os_str()]).collect();
    run(&args, "commit", overlay).map(drop)
}

/// Makes a qcow2 image name another as the image it reads through to, without
/// looking at either's data (the new one reads the same as the old).
pub fn set_backing(path: &Path, backing: &Path, backing_format: &str) -> Result<()> {
    with_backing("rebase", &["-u"], path, backing, backing_format, "change the backing file")
}

/// Runs `qemu-img <command> -q <flags> -f qcow2 -b <backing> -F <format> <path>`.
fn with_backing(command: &str, flags: &[&str], path: &Path, backing: &Path, format: &str, what: &str) -> Result<()> {
    let mut args = vec![OsStr::new(command), OsStr::new("-q")];
    args.extend(flags.iter().map(OsStr::new));
    args.extend([OsStr::new("-f"), OsStr::new("qcow2"), OsStr::new("-b"), backing.as_os_str()]);
    args.extend([OsStr::new("-F"), OsStr::new(format), path.as_os_str()]);
    run(&args, what, path).map(drop)
}

/// Creates an external snapshot's overlay: a new qcow2 `overlay` reading through
/// `backing` (of `backing_format`), which holds a new empty bitmap, recording, for each
/// bitmap of a qcow2 `backing` that `carry` names (so that a checkpoint goes on
/// recording there).
pub fn create_overlay(
    overlay: &Path,
    backing: &Path,
    backing_format: &str,
    carry: impl Fn(&str) -> bool,
) -> Result<()> {
    let mut bitmaps = if backing_format == "qcow2" { state(backing)?.bitmaps } else { Vec::new() };
    bitmaps.retain(|b| carry(&b.name));
    with_backing("create", &[], overlay, backing, backing_format, "create the overlay")?;
    for bitmap in &bitmaps {
        add_bitmap(overlay, &bitmap.name, true, bitmap.granularity)?;
    }
    Ok(())
}

/// Makes `aside` a new empty qcow2 image of `size` bytes (replacing one left earlier).
fn create_aside(aside: &Path, size: u64) -> Result<()> {
    let _ = std::fs::remove_file(aside);
    run(
        &[
            OsStr::new("create"),
            OsStr::new("-q"),
            OsStr::new("-f"),
            OsStr::new("qcow2"),
            aside.as_os_str(),
            OsStr::new(&size.to_string()),
        ],
        "create the image that keeps the bitmaps",
        aside,
    )
    .map(|_| ())
}

/// Sets every bitmap of `path` aside into a new image `aside`, after adding the bits of
/// `fresh` to every other bitmap. Run again, it starts over.
pub fn set_bitmaps_aside(path: &Path, aside: &Path, fresh: &str) -> Result<()> {
    let state = state(path)?;
    if state.has_bitmap(fresh) {
        for bitmap in state.bitmaps.iter().filter(|b| b.name != fresh) {
            merge_bitmap(path, &bitmap.name, path, fresh)?;
        }
    }
    create_aside(aside, state.virtual_size)?;
    for bitmap in &state.bitmaps {
        add_bitmap(aside, &bitmap.name, bitmap.enabled, bitmap.granularity)?;
        merge_bitmap(aside, &bitmap.name, path, &bitmap.name)?;
    }
    Ok(())
}

/// With the bitmaps set aside in `aside`: removes them from the image, applies its
/// internal snapshot `snapshot`, puts the bitmaps back (`fresh` empty: it records what
/// changes from now on) and removes `aside`. Run again, it finishes.
pub fn apply_snapshot(path: &Path, aside: &Path, snapshot: &str, fresh: &str) -> Result<()> {
    let saved = state(aside)?;
    for bitmap in &state(path)?.bitmaps {
        remove_bitmap(path, &bitmap.name)?;
    }
    snapshot_op(path, "-a", snapshot, &format!("apply snapshot '{snapshot}'"))?;
    for bitmap in &saved.bitmaps {
        add_bitmap(path, &bitmap.name, bitmap.enabled, bitmap.granularity)?;
        if bitmap.name != fresh {
            merge_bitmap(path, &bitmap.name, aside, &bitmap.name)?;
        }
    }
    std::fs::remove_file(aside).map_err(|e| Error::system(FROM, format!("cannot remove '{}'", aside.display()), &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_img_info_is_read() {
        let info: Value = serde_json::from_str(
            r#"{"virtual-size": 1048576, "snapshots": [{"name": "s1", "id": "1"}],
                "backing-filename": "b.qcow2", "full-backing-filename": "/d/b.qcow2",
                "format-specific": {"type": "qcow2", "data": {"bitmaps": [
                    {"flags": ["auto"], "name": "c1", "granularity": 65536},
                    {"flags": [], "name": "c0", "granularity": 131072}]}}}"#,
        )
        .unwrap();
        let state = parse_state(&info);
        assert_eq!(state.virtual_size, 1 << 20);
        assert_eq!(state.snapshots, ["s1"]);
        assert_eq!(state.backing.as_deref(), Some("/d/b.qcow2"));
        assert_eq!(
            state.bitmaps,
            [
                ImageBitmap { name: "c1".into(), enabled: true, granularity: 65536 },
                ImageBitmap { name: "c0".into(), enabled: false, granularity: 131072 }
            ]
        );
        assert!(state.has_bitmap("c0") && !state.has_bitmap("c2"));
        assert_eq!(parse_state(&serde_json::json!({})), ImageState::default());
    }

    #[test]
    fn image_options_double_commas() {
        let opts = qcow2_image_opts(Path::new("/a,b/c.qcow2"));
        assert_eq!(opts, "driver=qcow2,file.driver=file,file.filename=/a,,b/c.qcow2");
    }
}
