//! Criterion benchmarks of the translation hot path (filled in by the translation work).
fn main() {}
