//! model_map (in progress)
