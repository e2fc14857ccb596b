//! thinking (in progress)
