#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::remote_write::run(data));
