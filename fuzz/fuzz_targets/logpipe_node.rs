#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::logpipe_node::run_node(data));
