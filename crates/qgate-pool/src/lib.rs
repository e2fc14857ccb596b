//! qgate-pool
