//! Draws the simulated mouse as seen by the overhead camera: shadow, tail, elliptic body,
//! forepaws, head, ears and nose, placed from the animal's 3-D skeleton so that postures
//! read the way they do on real footage (a long body while exploring, a compact ball while
//! grooming, a short body with a near, large head while rearing).

use super::animal::{ARENA_CM, Animal, Skeleton};
use super::arena_view::{CameraModel, magnification};
use super::sprite::{Canvas, Paint};

const SHADOW: Paint = Paint {
    rgb: [0.0; 3],
    alpha: 0.22,
    highlight: 0.0,
};
const TAIL: Paint = Paint::solid([168.0, 128.0, 122.0]);
const BODY: Paint = Paint {
    rgb: [46.0, 43.0, 42.0],
    alpha: 1.0,
    highlight: 0.6,
};
const HEAD: Paint = Paint {
    rgb: [54.0, 50.0, 49.0],
    alpha: 1.0,
    highlight: 0.5,
};
const EAR: Paint = Paint::solid([92.0, 66.0, 68.0]);
const EAR_INNER: Paint = Paint::solid([156.0, 108.0, 112.0]);
const PINK: Paint = Paint::solid([196.0, 140.0, 140.0]);
const NOSE_TIP: Paint = Paint::solid([128.0, 92.0, 95.0]);

/// Tail segments and their length, cm.
const TAIL_SEGMENTS: usize = 9;
const TAIL_SEGMENT_CM: f32 = 0.95;

/// Draws the animal onto `canvas` and returns the pixel positions of the ground-truth
/// keypoints ([`crate::frame::KEYPOINT_NAMES`] order).
pub(crate) fn draw_mouse(
    canvas: &mut Canvas<'_>,
    cam: &CameraModel,
    animal: &Animal,
) -> [[f32; 2]; 4] {
    let pose = animal.pose();
    let sk = animal.skeleton();
    let (s, c) = pose.heading.sin_cos();
    let (dir, right) = ([c, s], [-s, c]);
    let at = |p: [f32; 3], along: f32, side: f32, dz: f32| {
        [
            p[0] + dir[0] * along + right[0] * side,
            p[1] + dir[1] * along + right[1] * side,
            p[2] + dz,
        ]
    };
    let px = |p: [f32; 3]| cam.project(p);
    let cm = |len: f32, z: f32| len * cam.scale * magnification(z);

    // Body: from the rump (behind the hip, on the floor) to the shoulders (ahead of the neck
    // along the pitched spine), so a rearing body foreshortens.
    let shoulder = 0.6 * pose.pitch.cos();
    let rear = px(at(sk.tail_base, -1.1 + 0.4 * pose.tuck, 0.0, 0.0));
    let front = px(at(sk.neck, shoulder, 0.0, 0.6 * pose.pitch.sin()));
    let mid_z = 0.5 * (sk.tail_base[2] + sk.neck[2]);
    let groom_shake = 0.15 * pose.tuck * pose.groom_phase.sin();
    let centre = [
        0.5 * (rear[0] + front[0]) + cm(groom_shake, mid_z) * right[0],
        0.5 * (rear[1] + front[1]) + cm(groom_shake, mid_z) * right[1],
    ];
    let b = cm(
        1.45 + 0.5 * pose.tuck + 0.2 * pose.pitch.max(0.0).sin(),
        mid_z,
    );
    let a = (0.5 * dist(rear, front)).max(b);
    let body_angle = (front[1] - rear[1]).atan2(front[0] - rear[0]);

    let shadow = px([
        0.5 * (sk.tail_base[0] + sk.neck[0]) + 0.5,
        0.5 * (sk.tail_base[1] + sk.neck[1]) + 0.7,
        0.0,
    ]);
    canvas.ellipse(
        shadow,
        a + cm(0.3, 0.0),
        b + cm(0.3, 0.0),
        body_angle,
        &SHADOW,
    );

    draw_tail(canvas, cam, &sk, pose.heading, pose.tail_phase);
    canvas.ellipse(centre, a, b, body_angle, &BODY);

    // Forepaws: raised in front of the chest (under the head) when rearing.
    if pose.pitch > 0.5 && pose.tuck <= 0.3 {
        for side in [-0.6, 0.6] {
            let p = at(sk.neck, 0.9, side, -1.5);
            canvas.disc(px(p), cm(0.32, p[2]), &PINK);
        }
    }

    // Head: from the back of the skull to the nose tip; raised heads are nearer the camera.
    let head_z = 0.5 * (sk.neck[2] + sk.nose[2]);
    let skull = px(at(sk.neck, -0.3, 0.0, 0.0));
    let nose = px(sk.nose);
    let hb = cm(1.0, head_z);
    let ha = (0.5 * dist(skull, nose) + cm(0.2, head_z)).max(hb);
    let head_centre = [0.5 * (skull[0] + nose[0]), 0.5 * (skull[1] + nose[1])];
    let head_angle = (nose[1] - skull[1]).atan2(nose[0] - skull[0]);
    canvas.ellipse(head_centre, ha, hb, head_angle, &HEAD);

    for ear in [sk.left_ear, sk.right_ear] {
        canvas.disc(px(ear), cm(0.6, ear[2]), &EAR);
        canvas.disc(px(ear), cm(0.33, ear[2]), &EAR_INNER);
    }
    canvas.disc(nose, cm(0.2, sk.nose[2]), &NOSE_TIP);
    // While grooming the forepaws stroke over the snout, in front of the face.
    if pose.tuck > 0.3 {
        for side in [-0.55, 0.55] {
            let p = at(sk.nose, -0.5 + 0.3 * pose.groom_phase.cos(), side, 0.3);
            canvas.disc(px(p), cm(0.3, p[2]), &PINK);
        }
    }

    [nose, px(sk.left_ear), px(sk.right_ear), px(sk.tail_base)]
}

/// The tail: a tapering chain of capsules lying on the floor behind the hip, waving slowly
/// and bending along the walls instead of passing through them.
fn draw_tail(canvas: &mut Canvas<'_>, cam: &CameraModel, sk: &Skeleton, heading: f32, phase: f32) {
    let mut p = [sk.tail_base[0], sk.tail_base[1]];
    let mut prev = cam.project([p[0], p[1], 0.6]);
    for i in 1..=TAIL_SEGMENTS {
        let f = i as f32 / TAIL_SEGMENTS as f32;
        let bend = 0.45 * f * (phase - 0.8 * i as f32).sin();
        let (s, c) = (heading + std::f32::consts::PI + bend).sin_cos();
        p = [
            (p[0] + c * TAIL_SEGMENT_CM).clamp(0.3, ARENA_CM - 0.3),
            (p[1] + s * TAIL_SEGMENT_CM).clamp(0.3, ARENA_CM - 0.3),
        ];
        let next = cam.project([p[0], p[1], 0.3]);
        let r = (0.28 - 0.16 * f) * cam.scale;
        canvas.capsule(prev, next, r, &TAIL);
        prev = next;
    }
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}
