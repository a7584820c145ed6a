//! Emulated stimulator (in progress).
