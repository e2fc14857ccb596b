//! response (in progress)
