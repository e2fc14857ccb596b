//! Fuzz target `stream_translator`: see `qgate_fuzz::stream` for the properties checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qgate_fuzz::stream::check(data));
