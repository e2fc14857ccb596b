//! Fuzz target `event_stream_decode`: see `qgate_fuzz::decode` for the properties checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qgate_fuzz::decode::check(data));
