//! `monitor_config`: vigil-monitor's readers of files other programs write
//! or operators edit — prometheus.yml (strict, with its `remote_write`
//! section) and file_sd target files (JSON and YAML). Any bytes must give a
//! configuration or an error that names a line, never a panic.

use std::path::Path;

use vigil_examples::monitor::config::Config;
use vigil_examples::monitor::sd::parse_file;

/// Runs one input: the first byte picks the reader, the rest is the text.
pub fn run(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match pick % 3 {
        0 => {
            if let Err(e) = Config::parse(&text, Path::new("prometheus.yml")) {
                let msg = e.to_string();
                assert!(msg.starts_with("prometheus.yml"), "error without the file: {msg}");
            }
        }
        1 => {
            let _ = parse_file(Path::new("targets.json"), &text);
        }
        _ => {
            let _ = parse_file(Path::new("targets.yml"), &text);
        }
    }
}
