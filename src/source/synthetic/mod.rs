//! Synthetic sources (being written).
