use super::*;
use crate::config::source::*;
use crate::frame::PixelFormat;
use crate::source::Source;
use std::io::Write;

fn pgm(path: &str, w: usize, h: usize, rgb: bool, px: &[u8]) {
    let mut f = std::fs::File::create(path).unwrap();
    write!(f, "{}\n{} {}\n255\n", if rgb { "P6" } else { "P5" }, w, h).unwrap();
    f.write_all(px).unwrap();
}

#[test]
fn zz_dump() {
    let mut m = SyntheticMiniscope::new(&SyntheticMiniscopeConfig {
        name: "M".into(),
        fps: 30.0,
        width: 608,
        height: 608,
        neurons: 120,
        seed: 1,
        counter_start: 0,
        pacing: Pacing::Fast,
        compression: None,
        faults: FaultPlan::default(),
    });
    let mut buf = vec![0u8; 608 * 608];
    for k in 0..200 {
        m.next_frame(&mut buf).unwrap();
        if k % 50 == 0 {
            pgm(&format!("/tmp/scope_{k}.pgm"), 608, 608, false, &buf);
        }
    }
    for (fmt, w, h) in [
        (PixelFormat::Gray8, 640, 480),
        (PixelFormat::Rgb8, 1280, 720),
    ] {
        let mut c = SyntheticBehaviorCamera::new(&SyntheticBehaviorConfig {
            name: "B".into(),
            fps: 30.0,
            width: w,
            height: h,
            pixel_format: fmt,
            seed: 1,
            pacing: Pacing::Fast,
            compression: None,
            faults: FaultPlan::default(),
        });
        let rgb = fmt == PixelFormat::Rgb8;
        let mut buf = vec![0u8; (w * h) as usize * if rgb { 3 } else { 1 }];
        let mut seen = [0; 4];
        for k in 0..30 * 600 {
            let s = c.next_frame(&mut buf).unwrap();
            let b = s.ground_truth.unwrap().behavior as usize;
            let p = c.animal().pose();
            let settled = match b {
                0 => p.speed > 6.0,
                1 => p.tuck > 0.9,
                _ => p.pitch > 0.95,
            };
            if settled && seen[b] < 2 && k % 97 == 0 {
                seen[b] += 1;
                pgm(
                    &format!(
                        "/tmp/beh_{}_{}_{}.{}",
                        w,
                        b,
                        seen[b],
                        if rgb { "ppm" } else { "pgm" }
                    ),
                    w as usize,
                    h as usize,
                    rgb,
                    &buf,
                );
                {
                    let k = s.ground_truth.unwrap().keypoints;
                    eprintln!(
                        "CROP /tmp/beh_{}_{}_{} {} {}",
                        w,
                        b,
                        seen[b],
                        (k[0][0] + k[3][0]) / 2.0,
                        (k[0][1] + k[3][1]) / 2.0
                    );
                }
            }
        }
    }
}
