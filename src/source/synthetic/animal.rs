//! The simulated mouse in a square open field.
//!
//! The animal advances in fixed [`TICK_NS`] steps drawn from its own seeded generator, so
//! two copies built from the same seed are in the same state at the same simulated time,
//! whatever rates they are sampled at. Each synthetic source owns a copy and advances it to
//! the nominal time of the frame it renders; that is how the Miniscope and the behavior
//! camera film the same animal without sharing anything.
//!
//! Arena coordinates are centimetres with the origin at the floor corner that appears
//! top-left in the overhead camera: x to the right, y down the image, z up from the floor.
//! Headings are radians from +x towards +y (clockwise as seen from above).

use std::f32::consts::{FRAC_PI_2, PI, TAU};

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::noise::{normal, stream_rng};
use crate::frame::Behavior;

/// Side of the square arena floor, centimetres.
pub const ARENA_CM: f32 = 40.0;
/// The fixed simulation step, nanoseconds (5 ms).
pub const TICK_NS: u64 = 5_000_000;
/// Distance (cm) from the hip to the nearest wall below which the animal counts as near a wall.
pub const NEAR_WALL_CM: f32 = 7.0;

const DT: f32 = TICK_NS as f32 * 1e-9;
/// Height of the tail base above the floor, cm.
const HIP_Z: f32 = 1.2;
/// Tail base to neck, cm (stretched posture).
const SPINE_CM: f32 = 5.5;
/// Neck to nose tip, cm.
const HEAD_CM: f32 = 2.6;
/// Where the hip settles, measured from the wall, while rearing against it.
const WALL_REAR_HIP_CM: f32 = 3.7;
/// Closest the nose gets to a wall.
const NOSE_MARGIN_CM: f32 = 0.3;

/// Bout length range of each behavior, seconds (indexed by `Behavior as usize`).
const BOUT_S: [(f32, f32); 4] = [(2.0, 8.0), (3.0, 10.0), (0.5, 2.0), (1.0, 3.0)];
/// Target body pitch of each behavior, radians.
const PITCH: [f32; 4] = [0.05, -0.05, 1.2, 1.3];

/// The animal's body state at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BodyPose {
    /// Hip (tail base) position on the floor, cm.
    pub position: [f32; 2],
    /// Direction the body points, radians from +x towards +y.
    pub heading: f32,
    /// Body pitch, radians: about 0 on all fours, about 1–1.2 when rearing.
    pub pitch: f32,
    /// Hunching, 0 (stretched) to 1 (the compact grooming posture).
    pub tuck: f32,
    /// Walking speed, cm/s.
    pub speed: f32,
    /// Phase of the grooming stroke cycle (about 6 Hz), radians.
    pub groom_phase: f32,
    /// Phase of the tail's lateral wave, radians.
    pub tail_phase: f32,
}

/// Body points in 3-D arena coordinates (cm, z up), derived from a [`BodyPose`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Skeleton {
    /// Base of the tail (the hip), the pivot of rearing.
    pub tail_base: [f32; 3],
    /// Back of the head.
    pub neck: [f32; 3],
    /// Tip of the nose.
    pub nose: [f32; 3],
    /// Left ear.
    pub left_ear: [f32; 3],
    /// Right ear.
    pub right_ear: [f32; 3],
    /// Head pitch, radians (positive nose up).
    pub head_pitch: f32,
}

impl Skeleton {
    /// The ground-truth keypoints in the order of [`crate::frame::KEYPOINT_NAMES`].
    pub fn keypoints(&self) -> [[f32; 3]; 4] {
        [self.nose, self.left_ear, self.right_ear, self.tail_base]
    }
}

/// The simulated mouse: a semi-Markov chain of behaviors driving position, heading and posture.
#[derive(Debug, Clone)]
pub struct Animal {
    rng: Xoshiro256PlusPlus,
    ticks: u64,
    behavior: Behavior,
    bout_left: u32,
    pose: BodyPose,
    omega: f32,
    wall_heading: f32,
}

impl Animal {
    /// A new animal, reproducible from `seed`, exploring at a random spot of the arena.
    pub fn new(seed: u64) -> Self {
        let mut rng = stream_rng(seed, 0xA71A);
        let position = [rng.random_range(12.0..28.0), rng.random_range(12.0..28.0)];
        let heading = rng.random_range(-PI..PI);
        let pose = BodyPose {
            position,
            heading,
            pitch: PITCH[0],
            tuck: 0.0,
            speed: 8.0,
            groom_phase: 0.0,
            tail_phase: 0.0,
        };
        let mut animal = Self {
            rng,
            ticks: 0,
            behavior: Behavior::Explore,
            bout_left: 0,
            pose,
            omega: 0.0,
            wall_heading: 0.0,
        };
        animal.bout_left = animal.bout_ticks(Behavior::Explore);
        animal
    }

    /// Simulated time of the current state, nanoseconds since the start.
    pub fn time_ns(&self) -> u64 {
        self.ticks * TICK_NS
    }

    /// Steps until the state is the one at `t_ns` (rounded down to a tick); never goes back.
    pub fn advance_to_ns(&mut self, t_ns: u64) {
        while self.time_ns() + TICK_NS <= t_ns {
            self.step();
        }
    }

    /// The behavior being performed.
    pub fn behavior(&self) -> Behavior {
        self.behavior
    }

    /// The body state.
    pub fn pose(&self) -> &BodyPose {
        &self.pose
    }

    /// Body points in 3-D arena coordinates.
    pub fn skeleton(&self) -> Skeleton {
        skeleton(&self.pose)
    }

    /// Ground-truth keypoints ([`crate::frame::KEYPOINT_NAMES`] order) in arena coordinates (cm).
    pub fn keypoints(&self) -> [[f32; 3]; 4] {
        self.skeleton().keypoints()
    }

    /// Head orientation as a unit quaternion `[w, x, y, z]`, as a head-mounted IMU reports it,
    /// in an east-north-up world frame (east = arena +x, north = arena −y) with the head frame
    /// x forward (nose), y left, z up.
    pub fn head_quaternion(&self) -> [f32; 4] {
        let p = &self.pose;
        let wobble = p.tuck * p.groom_phase.sin();
        let yaw = -(p.heading + 0.25 * wobble);
        let pitch = self.skeleton().head_pitch;
        let roll = 0.2 * p.tuck * (p.groom_phase + 1.0).sin();
        euler_zyx_quaternion(yaw, -pitch, roll)
    }

    /// Advances one [`TICK_NS`] step.
    pub fn step(&mut self) {
        if self.bout_left == 0 {
            let next = self.choose_next();
            self.begin(next);
        }
        self.bout_left -= 1;
        match self.behavior {
            Behavior::Explore => self.walk(),
            b => self.settle(b),
        }
        let p = &mut self.pose;
        let target = PITCH[self.behavior as usize];
        p.pitch += (target - p.pitch) * (1.0 - (-DT / 0.08f32).exp());
        let tuck_target = if self.behavior == Behavior::Grooming {
            1.0
        } else {
            0.0
        };
        p.tuck += (tuck_target - p.tuck) * (1.0 - (-DT / 0.25f32).exp());
        p.groom_phase = (p.groom_phase + TAU * 6.0 * DT) % TAU;
        p.tail_phase = (p.tail_phase + (2.0 + 0.8 * p.speed) * DT) % TAU;
        self.keep_inside();
        self.ticks += 1;
    }

    /// The next behavior once a bout ends: rearing on a wall only when near one, rearing
    /// in the open only away from the walls; every other bout returns to exploring.
    fn choose_next(&mut self) -> Behavior {
        if self.behavior != Behavior::Explore {
            return Behavior::Explore;
        }
        let u: f32 = self.rng.random();
        let near_wall = wall_distance(self.pose.position) < NEAR_WALL_CM;
        match (near_wall, u) {
            (true, u) if u < 0.7 => Behavior::WallRearing,
            (false, u) if u < 0.65 => Behavior::MidRearing,
            _ => Behavior::Grooming,
        }
    }

    fn begin(&mut self, behavior: Behavior) {
        self.behavior = behavior;
        self.bout_left = self.bout_ticks(behavior);
        if behavior == Behavior::WallRearing {
            self.wall_heading = nearest_wall_heading(self.pose.position);
        }
    }

    /// A bout length in ticks: the mean of two uniforms over the behavior's range.
    fn bout_ticks(&mut self, behavior: Behavior) -> u32 {
        let (lo, hi) = BOUT_S[behavior as usize];
        let u = (self.rng.random::<f32>() + self.rng.random::<f32>()) * 0.5;
        ((lo + (hi - lo) * u) / DT).round().max(1.0) as u32
    }

    /// Locomotion: speed and turning rate follow Ornstein–Uhlenbeck processes; walls steer
    /// the animal along them.
    fn walk(&mut self) {
        let (n1, n2) = (normal(&mut self.rng), normal(&mut self.rng));
        let p = &mut self.pose;
        p.speed += (9.0 - p.speed) * DT / 0.6 + 9.0 * DT.sqrt() * n1;
        p.speed = p.speed.clamp(0.0, 30.0);
        self.omega += -self.omega * DT / 0.3 + 4.0 * DT.sqrt() * n2;
        let steer = wall_steering(p.position, p.heading, p.speed);
        p.heading = wrap_angle(p.heading + (self.omega + steer) * DT);
        let (s, c) = p.heading.sin_cos();
        p.position[0] += c * p.speed * DT;
        p.position[1] += s * p.speed * DT;
    }

    /// Stationary behaviors: the animal brakes; a wall rearing turns to face the wall and
    /// steps up to it.
    fn settle(&mut self, behavior: Behavior) {
        let n = normal(&mut self.rng);
        let brake = (-DT / 0.1f32).exp();
        let p = &mut self.pose;
        p.speed *= brake;
        self.omega *= brake;
        let (s, c) = p.heading.sin_cos();
        p.position[0] += c * p.speed * DT;
        p.position[1] += s * p.speed * DT;
        p.heading = wrap_angle(p.heading + self.omega * DT + 0.15 * DT.sqrt() * n);
        if behavior == Behavior::WallRearing {
            let k = 1.0 - (-DT / 0.12f32).exp();
            p.heading = wrap_angle(p.heading + wrap_angle(self.wall_heading - p.heading) * k);
            let (ws, wc) = self.wall_heading.sin_cos();
            // Move along the wall normal so the hip ends WALL_REAR_HIP_CM from the wall.
            let along = p.position[0] * wc + p.position[1] * ws;
            let goal = if wc + ws > 0.5 {
                ARENA_CM - WALL_REAR_HIP_CM
            } else {
                -WALL_REAR_HIP_CM
            };
            let delta = (goal - along) * (1.0 - (-DT / 0.15f32).exp());
            p.position[0] += wc * delta;
            p.position[1] += ws * delta;
        }
    }

    /// Keeps the hip and the nose inside the arena whatever the posture.
    fn keep_inside(&mut self) {
        let reach = nose_offset(&self.pose);
        let p = &mut self.pose;
        for (i, off) in reach.into_iter().enumerate() {
            let nose = (p.position[i] + off).clamp(NOSE_MARGIN_CM, ARENA_CM - NOSE_MARGIN_CM);
            p.position[i] = (nose - off).clamp(1.5, ARENA_CM - 1.5);
        }
    }
}

/// Distance (cm) from a floor point to the nearest wall.
pub fn wall_distance(p: [f32; 2]) -> f32 {
    p[0].min(p[1]).min(ARENA_CM - p[0]).min(ARENA_CM - p[1])
}

/// Heading that faces the wall nearest to `p`.
fn nearest_wall_heading(p: [f32; 2]) -> f32 {
    let d = [p[0], ARENA_CM - p[0], p[1], ARENA_CM - p[1]];
    let headings = [PI, 0.0, -FRAC_PI_2, FRAC_PI_2];
    let i = (0..4).fold(0, |best, i| if d[i] < d[best] { i } else { best });
    headings[i]
}

/// Turning rate (rad/s) that steers a walking animal away from the walls ahead of it.
fn wall_steering(pos: [f32; 2], heading: f32, speed: f32) -> f32 {
    let (s, c) = heading.sin_cos();
    let look = 9.0 + 0.3 * speed;
    let ahead = [pos[0] + c * look, pos[1] + s * look];
    let margin = 3.0;
    let mut push = [0.0f32; 2];
    for i in 0..2 {
        push[i] += (margin - ahead[i]).max(0.0);
        push[i] -= (ahead[i] - (ARENA_CM - margin)).max(0.0);
    }
    if push == [0.0, 0.0] {
        return 0.0;
    }
    let desired = (s + 0.4 * push[1]).atan2(c + 0.4 * push[0]);
    6.0 * wrap_angle(desired - heading)
}

/// Horizontal offset (cm) from the hip to the nose tip for a pose.
fn nose_offset(p: &BodyPose) -> [f32; 2] {
    let sk = skeleton(p);
    [sk.nose[0] - sk.tail_base[0], sk.nose[1] - sk.tail_base[1]]
}

/// The body points of a pose: the spine pivots up around the hip, the head follows the spine
/// partly, and hunching shortens the body and tucks the head (with the grooming stroke).
pub fn skeleton(p: &BodyPose) -> Skeleton {
    let (s, c) = p.heading.sin_cos();
    let dir = [c, s];
    let right = [-s, c];
    let spine = SPINE_CM * (1.0 - 0.3 * p.tuck);
    let tail_base = [p.position[0], p.position[1], HIP_Z];
    let (ps, pc) = p.pitch.sin_cos();
    let neck = [
        tail_base[0] + dir[0] * spine * pc,
        tail_base[1] + dir[1] * spine * pc,
        HIP_Z + spine * ps,
    ];
    let head_pitch = 0.7 * p.pitch - 0.15 - 0.9 * p.tuck;
    let head = HEAD_CM * (1.0 - 0.25 * p.tuck);
    let (hs, hc) = head_pitch.sin_cos();
    let side = p.tuck * 0.35 * p.groom_phase.sin();
    let fore = p.tuck * 0.2 * p.groom_phase.cos();
    let along = head * hc + fore;
    let nose = [
        neck[0] + dir[0] * along + right[0] * side,
        neck[1] + dir[1] * along + right[1] * side,
        (neck[2] + head * hs).max(0.3),
    ];
    let ear_along = 0.35 * head * hc;
    let ear_z = neck[2] + 0.35 * head * hs + 0.6;
    let ear = |sign: f32| {
        let off = sign * 0.9 + 0.5 * side;
        [
            neck[0] + dir[0] * ear_along + right[0] * off,
            neck[1] + dir[1] * ear_along + right[1] * off,
            ear_z,
        ]
    };
    Skeleton {
        tail_base,
        neck,
        nose,
        left_ear: ear(-1.0),
        right_ear: ear(1.0),
        head_pitch,
    }
}

/// Wraps an angle to (−π, π].
pub(crate) fn wrap_angle(a: f32) -> f32 {
    let w = (a + PI).rem_euclid(TAU) - PI;
    if w <= -PI { w + TAU } else { w }
}

/// Unit quaternion `[w, x, y, z]` of the intrinsic rotation yaw (z), then pitch (y), then roll (x).
pub(crate) fn euler_zyx_quaternion(yaw: f32, pitch: f32, roll: f32) -> [f32; 4] {
    let (sy, cy) = (yaw * 0.5).sin_cos();
    let (sp, cp) = (pitch * 0.5).sin_cos();
    let (sr, cr) = (roll * 0.5).sin_cos();
    let q = [
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    ];
    let n = q.iter().map(|v| v * v).sum::<f32>().sqrt();
    q.map(|v| v / n)
}
