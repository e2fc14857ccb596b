//! tokens (in progress)
