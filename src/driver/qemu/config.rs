//! The driver's settings: `DIR/etc/qemu.conf`, in libvirt's syntax and with libvirt's
//! names, read where an embedded libvirt reads its root's. A missing file means the
//! defaults.

use std::path::{Path, PathBuf};

use super::state::FROM;
use super::store::Layout;
use crate::conf::settings::Settings;
use crate::error::{Code, Error, Result};

/// The credentials a pull backup's NBD server uses for TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackupTls {
    /// Holds `ca-cert.pem`, `server-cert.pem`, `server-key.pem` (and `dh-params.pem`).
    pub dir: PathBuf,
    /// Clients must present a certificate signed by the CA.
    pub verify: bool,
}

/// The system folders libvirt falls back on, as libvirt names them.
const SYSTEM_BACKUP_DIR: &str = "/etc/pki/libvirt-backup";
const SYSTEM_DEFAULT_DIR: &str = "/etc/pki/qemu";

pub(crate) struct Config {
    settings: Settings,
}

impl Config {
    pub fn load(layout: &Layout) -> Result<Config> {
        let path = layout.settings_file();
        let text = layout.read(&path).map_err(|e| {
            Error::new(FROM, Code::VIR_ERR_CONF_SYNTAX, format!("cannot read '{}': {e}", path.display()))
        })?;
        let settings = match text {
            Some(text) => Settings::parse(&text, &path.to_string_lossy())?,
            None => Settings::default(),
        };
        Ok(Config { settings })
    }

    /// TLS for pull backups, as libvirt resolves it: `backup_tls_x509_cert_dir`, else
    /// `/etc/pki/libvirt-backup` when it exists, else `default_tls_x509_cert_dir`, else
    /// `/etc/pki/qemu` when it exists; `backup_tls_x509_verify`, else
    /// `default_tls_x509_verify`, else on. `None` when no folder is configured.
    pub fn backup_tls(&self) -> Result<Option<BackupTls>> {
        let configured = |name: &str| -> Result<Option<PathBuf>> {
            let Some(dir) = self.settings.string(name)? else { return Ok(None) };
            if !Path::new(dir).exists() {
                return Err(Error::new(
                    FROM,
                    Code::VIR_ERR_CONF_SYNTAX,
                    format!("{name} directory '{dir}' does not exist"),
                ));
            }
            Ok(Some(PathBuf::from(dir)))
        };
        let existing = |dir: &str| Path::new(dir).is_dir().then(|| PathBuf::from(dir));
        let dir = match configured("backup_tls_x509_cert_dir")? {
            Some(dir) => Some(dir),
            None => match existing(SYSTEM_BACKUP_DIR) {
                Some(dir) => Some(dir),
                None => configured("default_tls_x509_cert_dir")?.or_else(|| existing(SYSTEM_DEFAULT_DIR)),
            },
        };
        let verify = match self.settings.bool("backup_tls_x509_verify")? {
            Some(verify) => verify,
            None => self.settings.bool("default_tls_x509_verify")?.unwrap_or(true),
        };
        Ok(dir.map(|dir| BackupTls { dir, verify }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config { settings: Settings::parse(text, "qemu.conf").unwrap() }
    }

    #[test]
    fn backup_tls_as_libvirt_resolves_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().display();
        let tls = config(&format!("backup_tls_x509_cert_dir = \"{path}\"")).backup_tls().unwrap().unwrap();
        assert_eq!(tls, BackupTls { dir: dir.path().to_path_buf(), verify: true });
        let tls = config(&format!("default_tls_x509_cert_dir = \"{path}\"\ndefault_tls_x509_verify = 0"))
            .backup_tls()
            .unwrap()
            .unwrap();
        assert!(!tls.verify);
        let tls = config(&format!(
            "backup_tls_x509_cert_dir = \"{path}\"\nbackup_tls_x509_verify = 1\ndefault_tls_x509_verify = 0"
        ))
        .backup_tls()
        .unwrap()
        .unwrap();
        assert!(tls.verify, "the backup setting wins");
        let e = config("backup_tls_x509_cert_dir = \"/no/such/dir\"").backup_tls().unwrap_err();
        assert_eq!(e.code, Code::VIR_ERR_CONF_SYNTAX);
        assert_eq!(
            e.message,
            "configuration file syntax error: backup_tls_x509_cert_dir directory '/no/such/dir' does not exist"
        );
        if !Path::new(SYSTEM_BACKUP_DIR).exists() && !Path::new(SYSTEM_DEFAULT_DIR).exists() {
            assert_eq!(config("").backup_tls().unwrap(), None);
        }
    }
}
