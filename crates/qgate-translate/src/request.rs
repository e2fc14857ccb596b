//! request (in progress)
