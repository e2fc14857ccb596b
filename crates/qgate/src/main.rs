//! qgate binary
fn main() {}
