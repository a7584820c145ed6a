//! Synthetic sources: a simulated UCLA Miniscope and overhead behavior cameras filming one
//! simulated mouse, with ground truth, realistic pacing and injectable faults.
//!
//! Each source owns its own copy of the [`Animal`], built from the configured seed and
//! advanced in fixed ticks to the nominal time of every frame it renders (frame `k` at
//! `k / fps`). Sources given the same seed therefore film the same animal without sharing
//! state, and frame content depends only on the seed and the device frame number, never on
//! pacing or on which frames were lost.
//!
//! Pacing and faults (see [`crate::config::source::FaultPlan`]) are shared: device frame `k`
//! is due at `t0 + k / fps`, `t0` being the monotonic time of the first `next_frame` call.
//! Dropped frames, frames lost in a stall and frames due while disconnected never arrive, so
//! the device counter of the next delivered frame jumps.

mod animal;
mod arena_view;
mod behavior_camera;
mod faults;
mod miniscope;
mod mouse;
mod neurons;
mod noise;
mod sprite;
mod tissue;

#[cfg(test)]
mod tests_animal;
#[cfg(test)]
mod tests_behavior;
#[cfg(test)]
mod tests_miniscope;

pub use animal::{
    ARENA_CM, Animal, BodyPose, NEAR_WALL_CM, Skeleton, TICK_NS, skeleton, wall_distance,
};
pub use behavior_camera::SyntheticBehaviorCamera;
pub use miniscope::SyntheticMiniscope;
