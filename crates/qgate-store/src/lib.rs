//! qgate-store
