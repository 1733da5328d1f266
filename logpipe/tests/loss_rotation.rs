//! Loss test (a): a writer appends numbered lines at 50,000 lines/s while
//! the file is renamed away and recreated every second; every line must
//! arrive exactly once in the file output. The CI variant runs 5 s; the
//! issue's 20 s variant is `--ignored`.

mod common;

use common::*;

fn run(secs: f64) {
    rotation_loss_run(secs, Rotation::Rename, "loss (a) rename every second");
}

#[test]
fn rename_rotation_every_second_loses_nothing() {
    run(5.0);
}

#[test]
#[ignore = "the issue's 20 s run; CI runs the 5 s one"]
fn rename_rotation_every_second_loses_nothing_20s() {
    run(20.0);
}
