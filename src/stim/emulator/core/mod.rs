//! The emulated device's state machine: safety limits, trains, channels, the watchdog and the
//! event queue, processed in device-time order (see the module above).

use super::*;

#[derive(Debug, Clone, Copy)]
struct Safety {
    max_on_us: u32,
    max_duty_permille: u16,
    duty_window_ms: u16,
}

impl Default for Safety {
    fn default() -> Self {
        Self {
            max_on_us: 0,
            max_duty_permille: 1000,
            duty_window_ms: 0,
        }
    }
}

impl Safety {
    fn duty_capped(&self) -> bool {
        self.max_duty_permille < 1000 && self.duty_window_ms > 0
    }
    fn window_us(&self) -> u64 {
        self.duty_window_ms as u64 * 1000
    }
    fn cap_us(&self) -> u64 {
        self.window_us() * self.max_duty_permille as u64 / 1000
    }
    /// On time of a pulse of `width_us` once `max_on_us` has cut it.
    fn effective_width(&self, width_us: u32) -> u64 {
        if self.max_on_us > 0 {
            width_us.min(self.max_on_us) as u64
        } else {
            width_us as u64
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Train {
    seq: u16,
    width_us: u32,
    count: u16,
    period_us: u32,
    start_us: u64,
    next_index: u16,
    skipped: u32,
}

impl Train {
    fn next_rise(&self) -> Option<u64> {
        (self.next_index < self.count)
            .then(|| self.start_us + self.next_index as u64 * self.period_us as u64)
    }
}

#[derive(Debug, Clone, Copy)]
enum On {
    Pulse { seq: u16, index: u16, width_us: u32 },
    Level,
}

#[derive(Debug, Default)]
struct Channel {
    /// `Some((rise_us, what))` while the output is on.
    on: Option<(u64, On)>,
    train: Option<Train>,
    safety: Safety,
    /// Finished on-intervals `(rise, fall)`, pruned to the duty window.
    history: VecDeque<(u64, u64)>,
}

impl Channel {
    /// When the output must go off (end of pulse or max-on cut), and whether it is a cut.
    fn off_deadline(&self) -> Option<(u64, bool)> {
        let (rise, what) = self.on?;
        let cut = (self.safety.max_on_us > 0).then(|| rise + self.safety.max_on_us as u64);
        match what {
            On::Pulse { width_us, .. } => {
                let end = rise + width_us as u64;
                match cut {
                    Some(c) if c < end => Some((c, true)),
                    _ => Some((end, false)),
                }
            }
            On::Level => cut.map(|c| (c, true)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Due {
    Off(usize, bool),
    Rise(usize),
    Watchdog,
    Heartbeat,
}

pub(super) struct Core {
    clock: DeviceClock,
    shared: Arc<Mutex<Shared>>,
    out: Sender<crate::stim::codec::Frame>,
    caps: Message,
    channels: Vec<Channel>,
    input_levels: Vec<u8>,
    input_counts: Vec<u32>,
    decoder: FrameDecoder,
    /// Device time of the last processed event (monotonic).
    now: u64,
    faults: u8,
    rx_errors: u16,
    watchdog_ms: u16,
    last_valid_us: u64,
    watchdog_fired: bool,
    next_heartbeat_us: u64,
    /// Chunks the reader has read (counted before stamping) and chunks handled here.
    chunks_read: Arc<AtomicU64>,
    chunks_handled: u64,
}

impl Core {
    pub(super) fn new(
        cfg: &EmulatorConfig,
        clock: DeviceClock,
        shared: Arc<Mutex<Shared>>,
        out: Sender<crate::stim::codec::Frame>,
        chunks_read: Arc<AtomicU64>,
    ) -> Self {
        let now = clock.now_us();
        Self {
            clock,
            shared,
            out,
            caps: Message::Capabilities {
                protocol: PROTOCOL_VERSION,
                fw_major: cfg.firmware.0,
                fw_minor: cfg.firmware.1,
                fw_patch: cfg.firmware.2,
                channels: cfg.channels,
                inputs: cfg.inputs,
                tick_ns: 1000,
                board: cfg.board,
            },
            channels: (0..cfg.channels).map(|_| Channel::default()).collect(),
            input_levels: vec![0; cfg.inputs as usize],
            input_counts: vec![0; cfg.inputs as usize],
            decoder: FrameDecoder::new(),
            now,
            faults: 0,
            rx_errors: 0,
            watchdog_ms: 0,
            last_valid_us: now,
            watchdog_fired: false,
            next_heartbeat_us: now + HEARTBEAT_PERIOD_US,
            chunks_read,
            chunks_handled: 0,
        }
    }

    pub(super) fn run(mut self, events: Receiver<Event>) {
        loop {
            let deadline = self.next_due().map_or(self.now + 1_000_000, |(t, _)| t);
            let ev = match events.recv_deadline(self.clock.instant_of(deadline)) {
                Ok(ev) => Some(ev),
                // A chunk the reader has already read may still be on its way (see `reader`):
                // take it before acting on the deadline.
                Err(RecvTimeoutError::Timeout)
                    if self.chunks_handled < self.chunks_read.load(Ordering::SeqCst) =>
                {
                    match events.recv() {
                        Ok(ev) => Some(ev),
                        Err(_) => return,
                    }
                }
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            match ev {
                None => {
                    let now = self.clock.now_us();
                    self.run_due(now);
                }
                Some(Event::Stop) => return,
                Some(Event::Rx(t, bytes)) => {
                    self.chunks_handled += 1;
                    for b in bytes {
                        self.rx_byte(t, b);
                    }
                }
                Some(Event::Input {
                    input,
                    level,
                    device_us,
                }) => {
                    let t = self.advance(device_us);
                    let i = input as usize;
                    if i < self.input_levels.len() && self.input_levels[i] != level {
                        self.input_levels[i] = level;
                        self.input_counts[i] = self.input_counts[i].wrapping_add(1);
                        self.send(Message::InputEvent {
                            input,
                            level,
                            device_us: t,
                            count: self.input_counts[i],
                        });
                    }
                }
            }
        }
    }

    /// Processes everything due up to `t` and returns the (monotonic) time to act at.
    fn advance(&mut self, t: u64) -> u64 {
        self.run_due(t);
        self.now = self.now.max(t);
        self.now
    }

    fn send(&self, m: Message) {
        match self.out.try_send(m.to_frame()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => lock(&self.shared).frames_dropped_tx += 1,
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn publish(&self) {
        let mut s = lock(&self.shared);
        s.faults = self.faults;
        s.rx_errors = self.rx_errors;
    }

    fn set_output(&mut self, ch: usize, level: u8, t: u64) {
        let mut s = lock(&self.shared);
        s.levels[ch] = level;
        s.edges.push(Edge {
            channel: ch as u8,
            level,
            device_us: t,
        });
    }

    fn next_due(&self) -> Option<(u64, Due)> {
        let mut best: Option<(u64, Due)> = None;
        let mut consider = |t: u64, d: Due| {
            if best.is_none_or(|(b, _)| t < b) {
                best = Some((t, d));
            }
        };
        for (i, c) in self.channels.iter().enumerate() {
            if let Some((t, cut)) = c.off_deadline() {
                consider(t, Due::Off(i, cut));
            } else if let Some(t) = c.train.and_then(|tr| tr.next_rise()) {
                consider(t, Due::Rise(i));
            }
        }
        if self.watchdog_ms > 0 && !self.watchdog_fired {
            consider(
                self.last_valid_us + self.watchdog_ms as u64 * 1000,
                Due::Watchdog,
            );
        }
        consider(self.next_heartbeat_us, Due::Heartbeat);
        best
    }

    fn run_due(&mut self, t: u64) {
        while let Some((due_at, what)) = self.next_due() {
            if due_at > t {
                break;
            }
            // Events made due in the past by a command (e.g. a lower max_on) happen now.
            let at = due_at.max(self.now);
            self.now = at;
            match what {
                Due::Off(ch, cut) => {
                    self.output_off(ch, at, if cut { pulse_flag::MAX_ON_CUT } else { 0 })
                }
                Due::Rise(ch) => self.rise(ch, at),
                Due::Watchdog => {
                    self.watchdog_fired = true;
                    for ch in 0..self.channels.len() {
                        self.cancel_channel(ch, at);
                    }
                    self.faults |= fault_bit::WATCHDOG;
                    self.send(Message::Fault {
                        code: fault::WATCHDOG,
                        channel: 0,
                        device_us: at,
                        detail: ((at - self.last_valid_us) / 1000) as u32,
                    });
                    self.publish();
                }
                Due::Heartbeat => {
                    self.send(Message::DeviceHeartbeat {
                        device_us: at,
                        faults: self.faults,
                        rx_errors: self.rx_errors,
                    });
                    self.next_heartbeat_us = due_at + HEARTBEAT_PERIOD_US;
                }
            }
        }
    }

    /// Switches a channel's output off at `t`: PULSE_DONE for a pulse (with `flags`), FAULT 2
    /// for a max-on cut, the on-interval into the duty history.
    fn output_off(&mut self, ch: usize, t: u64, flags: u8) {
        let Some((rise, what)) = self.channels[ch].on.take() else {
            return;
        };
        self.set_output(ch, 0, t);
        let c = &mut self.channels[ch];
        c.history.push_back((rise, t));
        let keep_from = t.saturating_sub(c.safety.window_us());
        while c.history.front().is_some_and(|&(_, f)| f <= keep_from) {
            c.history.pop_front();
        }
        if let On::Pulse { seq, index, .. } = what {
            if c.train
                .is_some_and(|tr| tr.seq == seq && tr.next_rise().is_none())
            {
                c.train = None;
            }
            self.send(Message::PulseDone {
                seq,
                channel: ch as u8,
                index,
                rise_us: rise,
                fall_us: t,
                flags,
            });
        }
        if flags & pulse_flag::MAX_ON_CUT != 0 {
            self.faults |= fault_bit::MAX_ON;
            self.send(Message::Fault {
                code: fault::MAX_ON,
                channel: ch as u8,
                device_us: t,
                detail: (t - rise).min(u32::MAX as u64) as u32,
            });
            self.publish();
        }
    }

    /// Ends whatever runs on a channel at `t` (a running pulse is acknowledged as cut).
    fn cancel_channel(&mut self, ch: usize, t: u64) {
        self.output_off(ch, t, pulse_flag::CANCELLED);
        self.channels[ch].train = None;
    }

    fn rise(&mut self, ch: usize, t: u64) {
        let c = &mut self.channels[ch];
        let Some(tr) = c.train.as_mut() else { return };
        let index = tr.next_index;
        tr.next_index += 1;
        let (seq, width_us) = (tr.seq, tr.width_us);
        let finished = tr.next_rise().is_none();
        let on = (t, t + c.safety.effective_width(width_us));
        let over_cap = c.safety.duty_capped()
            && max_window_on_time(c.history.iter().copied().chain([on]), c.safety.window_us())
                > c.safety.cap_us();
        if !over_cap {
            c.on = Some((
                t,
                On::Pulse {
                    seq,
                    index,
                    width_us,
                },
            ));
            self.set_output(ch, 1, t);
            return;
        }
        tr.skipped += 1;
        let skipped = tr.skipped;
        if finished {
            c.train = None;
        }
        self.faults |= fault_bit::DUTY_CAP;
        self.send(Message::Fault {
            code: fault::DUTY_CAP,
            channel: ch as u8,
            device_us: t,
            detail: skipped,
        });
        self.publish();
    }
}

/// The largest on time within any window of `window_us` over sorted, disjoint on-intervals
/// `(rise, fall)`. The maximum is reached by a window that starts at a rising edge or ends at a
/// falling edge, so only those windows are examined (two pointers, linear time).
pub(super) fn max_window_on_time(
    intervals: impl Iterator<Item = (u64, u64)>,
    window_us: u64,
) -> u64 {
    if window_us == 0 {
        return 0;
    }
    let iv: Vec<(u64, u64)> = intervals.filter(|&(r, f)| f > r).collect();
    let mut prefix = Vec::with_capacity(iv.len() + 1);
    prefix.push(0u64);
    for &(r, f) in &iv {
        prefix.push(prefix.last().copied().unwrap_or(0) + (f - r));
    }
    let mut best = 0;
    // Windows [r_i, r_i + W).
    let mut j = 0;
    for i in 0..iv.len() {
        let end = iv[i].0 + window_us;
        j = j.max(i);
        while j < iv.len() && iv[j].0 < end {
            j += 1;
        }
        // Intervals i..j start inside the window; only the last may stick out.
        let mut sum = prefix[j] - prefix[i];
        sum -= iv[j - 1].1.saturating_sub(end);
        best = best.max(sum);
    }
    // Windows [f_j - W, f_j).
    let mut k = 0;
    for j in 0..iv.len() {
        let start = iv[j].1.saturating_sub(window_us);
        while iv[k].1 <= start {
            k += 1;
        }
        let mut sum = prefix[j + 1] - prefix[k];
        sum -= start.saturating_sub(iv[k].0);
        best = best.max(sum);
    }
    best
}

mod commands;
