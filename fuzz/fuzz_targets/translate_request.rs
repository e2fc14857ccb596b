//! Fuzz target `translate_request`: see `qgate_fuzz::request` for the properties checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qgate_fuzz::request::check(data));
