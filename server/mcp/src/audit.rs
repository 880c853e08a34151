//! The append-only audit log of writes (`$CODEMEM_HOME/audit.log`): one JSON object per line
//! with time, token name, tool, namespace and outcome. Never rewritten or truncated.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

pub const AUDIT_FILE: &str = "audit.log";

#[derive(Debug, Serialize)]
pub struct AuditRecord<'a> {
    pub time: String,
    pub token: &'a str,
    pub tool: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

pub struct AuditLog {
    path: PathBuf,
    lock: Mutex<()>,
}

impl AuditLog {
    pub fn new(home: &Path) -> AuditLog {
        AuditLog {
            path: home.join(AUDIT_FILE),
            lock: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line (a single write on an O_APPEND file, so concurrent processes do not
    /// interleave). A failure is logged, not returned: the write it records already happened.
    pub fn record(&self, mut rec: AuditRecord<'_>) {
        let time = rfc3339_now();
        rec.time = time;
        let mut line = match serde_json::to_vec(&rec) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("audit record not serialisable: {e}");
                return;
            }
        };
        line.push(b'\n');
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut opts = std::fs::OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        if let Err(e) = opts.open(&self.path).and_then(|mut f| f.write_all(&line)) {
            tracing::error!(
                "cannot append to the audit log {}: {e}",
                self.path.display()
            );
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for now (UTC), without a date-time dependency.
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc3339(secs)
}

fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_800_000), "2026-11-27T17:20:00Z");
    }

    #[test]
    fn appends_json_lines() {
        let home = tempfile::tempdir().unwrap();
        let log = AuditLog::new(home.path());
        for ok in [true, false] {
            log.record(AuditRecord {
                time: String::new(),
                token: "default",
                tool: "remember",
                namespace: Some("shared"),
                id: None,
                ok,
                error: None,
            });
        }
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["token"], "default");
        assert_eq!(lines[1]["ok"], false);
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }
}
