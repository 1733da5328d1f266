//! vigil-monitor's command line, with Prometheus's flag names and defaults
//! where Prometheus has the flag (`--config.file`, `--storage.tsdb.path`,
//! `--web.listen-address`, …). The listen address defaults to loopback, not
//! all interfaces.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Parsed flags.
#[derive(Debug, Clone)]
pub struct Flags {
    /// `--config.file`.
    pub config_file: PathBuf,
    /// `--storage.tsdb.path`.
    pub storage_path: PathBuf,
    /// `--storage.tsdb.retention.time` (`None`: 0, keep for ever).
    pub retention_time: Option<Duration>,
    /// `--storage.tsdb.retention.size` (`None`: no limit).
    pub retention_size: Option<u64>,
    /// `--web.listen-address`.
    pub listen: SocketAddr,
    /// `--web.enable-lifecycle`: `/-/reload` and `/-/quit`.
    pub enable_lifecycle: bool,
    /// `--web.enable-admin-api`.
    pub enable_admin_api: bool,
    /// `--web.enable-remote-write-receiver`: `POST /api/v1/write`.
    pub enable_remote_write_receiver: bool,
    /// `--web.external-url`.
    pub external_url: String,
    /// `--query.max-samples`.
    pub query_max_samples: usize,
    /// `--query.timeout`.
    pub query_timeout: Duration,
    /// `--query.max-concurrency`.
    pub query_max_concurrency: usize,
    /// `--query.lookback-delta`.
    pub lookback_delta: Duration,
    /// `--rules.alert.resend-delay`.
    pub resend_delay: Duration,
    /// `--alertmanager.notification-queue-capacity`.
    pub notification_queue_capacity: usize,
    /// `--log.level`.
    pub log_level: String,
    /// Every flag and its value as given or defaulted, for
    /// `/api/v1/status/flags`.
    pub all: Vec<(String, String)>,
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    /// Run the server.
    Run(Box<Flags>),
    /// `--help`.
    Help,
    /// `--version`.
    Version,
}

const DEFS: &[(&str, &str, &str)] = &[
    ("config.file", "prometheus.yml", "Configuration file path."),
    (
        "storage.tsdb.path",
        "data/",
        "Base path for metrics storage.",
    ),
    (
        "storage.tsdb.retention.time",
        "15d",
        "How long to retain samples in storage (0: for ever).",
    ),
    (
        "storage.tsdb.retention.size",
        "0B",
        "Maximum number of bytes that can be stored for blocks (0B: no limit).",
    ),
    (
        "web.listen-address",
        "127.0.0.1:9090",
        "Address to listen on for the UI, API and telemetry.",
    ),
    (
        "web.enable-lifecycle",
        "false",
        "Enable shutdown and reload via HTTP request.",
    ),
    (
        "web.enable-admin-api",
        "false",
        "Enable API endpoints for admin control actions.",
    ),
    (
        "web.enable-remote-write-receiver",
        "false",
        "Enable the API endpoint accepting remote write requests.",
    ),
    (
        "web.external-url",
        "",
        "The URL under which the monitor is externally reachable.",
    ),
    (
        "query.max-samples",
        "50000000",
        "Maximum number of samples a single query can load into memory.",
    ),
    (
        "query.timeout",
        "2m",
        "Maximum time a query may take before being aborted.",
    ),
    (
        "query.max-concurrency",
        "20",
        "Maximum number of queries executed concurrently.",
    ),
    (
        "query.lookback-delta",
        "5m",
        "The maximum lookback duration for retrieving metrics during expression evaluations.",
    ),
    (
        "rules.alert.resend-delay",
        "1m",
        "Minimum amount of time to wait before resending an alert to Alertmanager.",
    ),
    (
        "alertmanager.notification-queue-capacity",
        "10000",
        "The capacity of the queue for pending Alertmanager notifications.",
    ),
    (
        "log.level",
        "info",
        "Only log messages with the given severity or above: debug, info, warn, error.",
    ),
];

const BOOLS: &[&str] = &[
    "web.enable-lifecycle",
    "web.enable-admin-api",
    "web.enable-remote-write-receiver",
];

/// The `--help` text.
pub fn help() -> String {
    let mut s = String::from(
        "usage: vigil-monitor [<flags>]\n\nThe Vigil monitoring server (Prometheus-compatible).\n\nFlags:\n  -h, --help     Show this help.\n      --version  Show the version.\n",
    );
    for (name, default, what) in DEFS {
        let dflt = if BOOLS.contains(name) || default.is_empty() {
            String::new()
        } else {
            format!(" (default: {default:?})")
        };
        s.push_str(&format!("      --{name}  {what}{dflt}\n"));
    }
    s
}

/// Parses the arguments after the program name. Errors read as
/// Prometheus's (kingpin's) do: `unknown long flag '--x'`.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut values: Vec<(String, String)> = DEFS
        .iter()
        .map(|(n, d, _)| (n.to_string(), d.to_string()))
        .collect();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            _ => {}
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(format!("unexpected {arg}, try --help"));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        if let Some(neg) = name.strip_prefix("no-")
            && BOOLS.contains(&neg)
            && inline.is_none()
        {
            set(&mut values, neg, "false");
            continue;
        }
        if !DEFS.iter().any(|(n, _, _)| *n == name) {
            return Err(format!("unknown long flag '--{name}', try --help"));
        }
        let value = if BOOLS.contains(&name.as_str()) {
            inline.unwrap_or_else(|| "true".into())
        } else {
            match inline {
                Some(v) => v,
                None => it
                    .next()
                    .ok_or_else(|| format!("expected argument for flag '--{name}'"))?,
            }
        };
        set(&mut values, &name, &value);
    }
    let get = |n: &str| {
        values
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let duration = |n: &str| -> Result<Duration, String> {
        let v = get(n);
        vigil_rules::parse_duration(&v)
            .filter(|ms| *ms >= 0)
            .map(|ms| Duration::from_millis(ms as u64))
            .ok_or_else(|| format!("invalid duration {v:?} for flag '--{n}'"))
    };
    let boolean = |n: &str| -> Result<bool, String> {
        match get(n).as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(format!("invalid boolean {other:?} for flag '--{n}'")),
        }
    };
    let number = |n: &str| -> Result<usize, String> {
        let v = get(n);
        v.parse()
            .map_err(|_| format!("invalid number {v:?} for flag '--{n}'"))
    };
    let listen_text = get("web.listen-address");
    let listen = listen_text
        .parse::<SocketAddr>()
        .or_else(|_| {
            // `:9090` means every interface in Go; keep to loopback unless
            // an address is given.
            listen_text
                .strip_prefix(':')
                .ok_or(())
                .and_then(|p| format!("127.0.0.1:{p}").parse().map_err(|_| ()))
        })
        .map_err(|_| format!("invalid address {listen_text:?} for flag '--web.listen-address'"))?;
    let retention_time = duration("storage.tsdb.retention.time")?;
    let retention_size = parse_size(&get("storage.tsdb.retention.size")).ok_or_else(|| {
        format!(
            "invalid size {:?} for flag '--storage.tsdb.retention.size'",
            get("storage.tsdb.retention.size")
        )
    })?;
    let log_level = get("log.level");
    if !["debug", "info", "warn", "error"].contains(&log_level.as_str()) {
        return Err(format!(
            "invalid log level {log_level:?} for flag '--log.level'"
        ));
    }
    Ok(Command::Run(Box::new(Flags {
        config_file: PathBuf::from(get("config.file")),
        storage_path: PathBuf::from(get("storage.tsdb.path")),
        retention_time: (!retention_time.is_zero()).then_some(retention_time),
        retention_size: (retention_size > 0).then_some(retention_size),
        listen,
        enable_lifecycle: boolean("web.enable-lifecycle")?,
        enable_admin_api: boolean("web.enable-admin-api")?,
        enable_remote_write_receiver: boolean("web.enable-remote-write-receiver")?,
        external_url: get("web.external-url"),
        query_max_samples: number("query.max-samples")?,
        query_timeout: duration("query.timeout")?,
        query_max_concurrency: number("query.max-concurrency")?.max(1),
        lookback_delta: duration("query.lookback-delta")?,
        resend_delay: duration("rules.alert.resend-delay")?,
        notification_queue_capacity: number("alertmanager.notification-queue-capacity")?,
        log_level,
        all: values,
    })))
}

fn set(values: &mut [(String, String)], name: &str, value: &str) {
    if let Some(slot) = values.iter_mut().find(|(k, _)| k == name) {
        slot.1 = value.to_string();
    }
}

/// Parses Prometheus's byte sizes (`512MB`, `1GB`, `0B`; base 1024 as
/// Prometheus's units.Base2Bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit {
        "" | "B" => 1,
        "KB" | "KiB" => 1 << 10,
        "MB" | "MiB" => 1 << 20,
        "GB" | "GiB" => 1 << 30,
        "TB" | "TiB" => 1 << 40,
        "PB" | "PiB" => 1 << 50,
        "EB" | "EiB" => 1 << 60,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Flags, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(f) => Ok(*f),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_are_prometheus_but_on_loopback() {
        let f = run(&[]).unwrap();
        assert_eq!(f.listen.to_string(), "127.0.0.1:9090");
        assert_eq!(f.config_file, PathBuf::from("prometheus.yml"));
        assert_eq!(f.retention_time, Some(Duration::from_secs(15 * 86_400)));
        assert_eq!(f.retention_size, None);
        assert!(!f.enable_lifecycle && !f.enable_admin_api);
        assert_eq!(f.query_timeout, Duration::from_secs(120));
        assert_eq!(f.query_max_samples, 50_000_000);
    }

    #[test]
    fn both_value_forms_booleans_and_negation() {
        let f = run(&[
            "--config.file=a.yml",
            "--storage.tsdb.path",
            "/tmp/x",
            "--web.enable-lifecycle",
            "--web.enable-admin-api=true",
            "--no-web.enable-admin-api",
            "--storage.tsdb.retention.size=512MB",
            "--storage.tsdb.retention.time=0",
            "--web.listen-address=:9091",
        ])
        .unwrap();
        assert_eq!(f.config_file, PathBuf::from("a.yml"));
        assert_eq!(f.storage_path, PathBuf::from("/tmp/x"));
        assert!(f.enable_lifecycle);
        assert!(!f.enable_admin_api);
        assert_eq!(f.retention_size, Some(512 << 20));
        assert_eq!(f.retention_time, None);
        assert_eq!(f.listen.to_string(), "127.0.0.1:9091");
        assert!(
            f.all
                .contains(&("web.enable-lifecycle".into(), "true".into()))
        );
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(
            run(&["--nope"]).unwrap_err(),
            "unknown long flag '--nope', try --help"
        );
        assert!(
            run(&["--query.timeout=5x"])
                .unwrap_err()
                .contains("--query.timeout")
        );
        assert!(
            run(&["--config.file"])
                .unwrap_err()
                .contains("expected argument")
        );
        assert!(run(&["--storage.tsdb.retention.size=5XB"]).is_err());
        assert!(matches!(
            parse(["--help".to_string()]).unwrap(),
            Command::Help
        ));
    }
}
