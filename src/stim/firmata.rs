//! Firmata client codec (in progress).
