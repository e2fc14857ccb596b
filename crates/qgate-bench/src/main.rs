//! qgate-bench
fn main() {}
