//! qgate-sim
