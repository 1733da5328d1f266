//! prometheus.yml loading: a file with every supported field, and one bad
//! file per kind of mistake, each naming the file, line, column and field
//! of its error in its first line (`# expect: ...`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil_examples::monitor::config::{Config, ConfigError};
use vigil_examples::monitor::relabel::Action;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/monitor/config")
}

#[test]
fn good_file_loads_with_every_field() {
    let path = fixtures().join("good.yml");
    let c = Config::load(&path).unwrap();
    assert_eq!(c.path, path);
    assert!(c.source.starts_with("# Every field"));
    assert_eq!(c.global.scrape_interval, Duration::from_secs(15));
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(5));
    assert_eq!(c.global.evaluation_interval, Duration::from_secs(30));
    assert_eq!(
        c.global.external_labels,
        [
            ("cluster".to_string(), "prod-1".to_string()),
            ("region".into(), "eu-west".into())
        ]
    );
    // Relative globs are taken from the file's directory.
    assert_eq!(
        c.rule_files,
        [
            fixtures().join("rules/*.yml").display().to_string(),
            "/etc/vigil/alerts.rules".into()
        ]
    );
    let am = &c.alerting.alertmanagers[0];
    assert_eq!(am.targets, ["127.0.0.1:9093", "am2:9093"]);
    assert_eq!(
        (am.path_prefix.as_str(), am.timeout, am.api_version.as_str()),
        ("/am", Duration::from_secs(3), "v2")
    );

    let p = &c.scrape_configs[0];
    assert_eq!(p.job_name, "prometheus");
    assert_eq!(p.scrape_interval, Duration::from_secs(15));
    assert_eq!(p.scrape_timeout, Duration::from_secs(5));
    assert_eq!(p.static_configs[0].targets, ["localhost:9090"]);

    let n = c.job("node").unwrap();
    assert_eq!(n.scrape_interval, Duration::from_secs(5));
    assert_eq!(n.scrape_timeout, Duration::from_secs(5));
    assert_eq!(n.metrics_path, "/node/metrics");
    assert!(n.honor_labels && !n.honor_timestamps);
    assert_eq!((n.sample_limit, n.label_limit), (5000, 30));
    assert_eq!(n.body_size_limit, 10 << 20);
    assert_eq!(n.params["collect[]"], ["cpu", "meminfo"]);
    assert_eq!(
        n.static_configs[0].labels,
        [("rack".to_string(), "r1".to_string())]
    );
    assert_eq!(
        n.file_sd_configs[0].refresh_interval,
        Duration::from_secs(60)
    );
    assert_eq!(
        n.file_sd_configs[0].files,
        [
            fixtures().join("targets/*.json").display().to_string(),
            fixtures().join("more.yml").display().to_string()
        ]
    );
    let actions: Vec<Action> = n.relabel_configs.iter().map(|r| r.action()).collect();
    assert_eq!(
        actions,
        [
            Action::Replace,
            Action::HashMod,
            Action::Keep,
            Action::LabelMap
        ]
    );
    assert_eq!(n.relabel_configs[0].regex(), r"([^:]+):\d+");
    assert_eq!(n.metric_relabel_configs.len(), 2);
    // remote_write is read by the remote module's parser, in the same pass.
    assert_eq!(c.remote_write.len(), 1);
    assert_eq!(c.remote_write[0].url, "http://127.0.0.1:9009/api/v1/push");
    assert_eq!(c.remote_write[0].remote_timeout, Duration::from_secs(10));
    assert_eq!(c.remote_write[0].queue_config.max_shards, 4);
}

#[test]
fn same_text_gives_equal_configs_and_a_change_does_not() {
    let text = std::fs::read_to_string(fixtures().join("good.yml")).unwrap();
    let a = Config::parse(&text, Path::new("a.yml")).unwrap();
    let b = Config::parse(&text, Path::new("a.yml")).unwrap();
    assert_eq!(a.scrape_configs, b.scrape_configs);
    let c = Config::parse(
        &text.replace("modulus: 4", "modulus: 5"),
        Path::new("a.yml"),
    )
    .unwrap();
    assert_ne!(a.job("node"), c.job("node"));
    assert_eq!(a.job("prometheus"), c.job("prometheus"));
}

#[test]
fn empty_file_is_all_defaults() {
    let c = Config::parse("", Path::new("e.yml")).unwrap();
    assert!(c.scrape_configs.is_empty());
    assert_eq!(c.global.scrape_interval, Duration::from_secs(60));
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(10));
}

#[test]
fn every_bad_file_fails_with_its_position_and_field() {
    let dir = fixtures().join("bad");
    let mut n = 0;
    let mut wrong = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no expect line", path.display()));
        let name = path.file_name().unwrap();
        let err = Config::parse(&text, Path::new(name)).expect_err(&path.display().to_string());
        let msg = err.to_string();
        if !msg.starts_with(expect) || !matches!(err, ConfigError::Invalid { .. }) {
            wrong.push(format!(
                "{}:\n  got      {msg}\n  expected {expect}",
                path.display()
            ));
        }
        n += 1;
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(n >= 20, "only {n} bad fixtures");
}

#[test]
fn missing_file_names_the_path() {
    let err = Config::load(Path::new("/nonexistent/prometheus.yml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/prometheus.yml: cannot read"),
        "{err}"
    );
}
