// behavd_stim engine, see stim.h. Times are hardware ticks (HW_TICKS_PER_US per us) inside,
// microseconds on the wire.
#include "stim.h"

#include <string.h>

#include "hw.h"
#include "protocol.h"

using namespace bstim;

static const uint64_t NEVER = ~(uint64_t)0;
static const uint64_t TPU = HW_TICKS_PER_US;

enum Mode : uint8_t { M_IDLE = 0, M_TRAIN, M_LEVEL };
enum Cause : uint8_t { C_NOMINAL = 0, C_MAXON, C_DUTY, C_WATCHDOG };

struct Seg {  // `count` pulses of width `w`, rising edges `p` apart, from `start` (ticks)
  uint64_t start, w, p;
  uint16_t count;
};
#define NSEG 4

struct Chan {
  uint32_t max_on_us;
  uint16_t duty_pm, duty_win_ms;
  volatile uint8_t mode;
  volatile bool on;
  bool waiting_wd;  // next rise not armed: it lies beyond the watchdog deadline
  uint8_t fall_cause;
  uint16_t seq, count, index, skipped;
  uint64_t width_t, period_t, first_rise, rise, rise_sched;
  uint64_t fall_nominal, fall_maxon, fall_duty;
  Seg hist[NSEG];
  uint8_t nhist;
};
static Chan chans[HW_CHANNELS];

// ---- global state ----------------------------------------------------------------------------
static volatile uint8_t faults;
static uint16_t rx_errors;
static uint16_t wd_ms;
static volatile bool wd_armed;
static volatile uint64_t wd_deadline;
static uint64_t last_frame;
static uint64_t next_heartbeat;
static FrameRx rx;

// ---- event queue (ISR -> main loop) ----------------------------------------------------------
struct Event {
  uint8_t type;  // T_PULSE_DONE, T_FAULT, T_INPUT_EVENT
  uint8_t ch, a;  // a: flags / fault code / level
  uint16_t seq, index;
  uint32_t detail;
  uint64_t t1, t2;
};
#define NEV 8  // RAM is tight on the ATmega328P (2 KB)
static Event events[NEV];
static volatile uint8_t ev_head, ev_tail;
static uint32_t input_count[HW_INPUTS];

static Event* ev_alloc(void) {  // interrupts disabled
  uint8_t n = (uint8_t)((ev_head + 1) % NEV);
  if (n == ev_tail) return 0;  // full: dropped
  Event* e = &events[ev_head];
  memset(e, 0, sizeof *e);
  return e;
}
static void ev_commit(void) { ev_head = (uint8_t)((ev_head + 1) % NEV); }

static void queue_fault(uint8_t code, uint8_t ch, uint64_t t, uint32_t detail) {
  Event* e = ev_alloc();
  if (!e) return;
  e->type = T_FAULT; e->a = code; e->ch = ch; e->t1 = t; e->detail = detail;
  ev_commit();
}

// ---- duty-cycle history ----------------------------------------------------------------------
static uint64_t div64(uint64_t n, uint64_t d) {
  if (!(n >> 32) && !(d >> 32)) return (uint32_t)n / (uint32_t)d;
  return n / d;
}

static uint64_t seg_on(const Seg& s, uint64_t a, uint64_t b) {  // on ticks of s within [a, b)
  if (!s.count || b <= s.start || b <= a) return 0;
  uint64_t jhi = s.count == 1 ? 0 : div64(b - s.start - 1, s.p);
  if (jhi > (uint64_t)s.count - 1) jhi = s.count - 1;
  uint64_t jlo = 0;
  if (a >= s.start + s.w) {
    if (s.count == 1) return 0;
    jlo = div64(a - s.start - s.w, s.p) + 1;
  }
  if (jlo > jhi) return 0;
  uint64_t sum = (jhi - jlo + 1) * s.w;
  uint64_t lo_start = s.start + jlo * s.p, hi_end = s.start + jhi * s.p + s.w;
  if (lo_start < a) sum -= a - lo_start;
  if (hi_end > b) sum -= hi_end - b;
  return sum;
}

static uint64_t hist_on(const Chan& c, uint64_t a, uint64_t b) {
  uint64_t sum = 0;
  for (uint8_t i = 0; i < c.nhist; i++) sum += seg_on(c.hist[i], a, b);
  return sum;
}

static inline bool duty_enabled(const Chan& c) { return c.duty_pm < 1000 && c.duty_win_ms; }
static inline uint64_t win_t(const Chan& c) { return (uint64_t)c.duty_win_ms * 1000 * TPU; }
static inline uint64_t cap_t(const Chan& c) { return (uint64_t)c.duty_win_ms * c.duty_pm * TPU; }

static void hist_record(Chan& c, uint64_t rise, uint64_t fall) {
  if (fall <= rise) return;
  uint64_t w = fall - rise, W = win_t(c);
  // forget what left every window that can still matter
  uint8_t k = 0;
  for (uint8_t i = 0; i < c.nhist; i++) {
    Seg& s = c.hist[i];
    while (s.count > 1 && s.start + s.w + W <= rise) { s.start += s.p; s.count--; }
    if (s.start + s.w + (s.count - 1) * s.p + W > rise) c.hist[k++] = s;
  }
  c.nhist = k;
  if (c.nhist) {
    Seg& s = c.hist[c.nhist - 1];
    if (s.w == w && rise > s.start) {
      if (s.count == 1 && rise - s.start > w) { s.p = rise - s.start; s.count = 2; return; }
      if (s.count > 1 && s.count < 0xFFFF && rise == s.start + s.count * s.p) { s.count++; return; }
    }
  }
  if (c.nhist == NSEG) {  // merge the two oldest, packed against the later end (conservative)
    Seg& a = c.hist[0];
    Seg& b = c.hist[1];
    uint64_t end = b.start + (b.count - 1) * b.p + b.w;
    uint64_t on = a.count * a.w + b.count * b.w;
    a.start = end - on; a.w = on; a.p = 0; a.count = 1;
    for (uint8_t i = 1; i + 1 < NSEG; i++) c.hist[i] = c.hist[i + 1];
    c.nhist--;
  }
  Seg& n = c.hist[c.nhist++];
  n.start = rise; n.w = w; n.p = 0; n.count = 1;
}

// Would a pulse [r, r + w) exceed the cap? (the windows ending at its fall are the worst)
static bool duty_exceeds(const Chan& c, uint64_t r, uint64_t w) {
  if (!duty_enabled(c)) return false;
  uint64_t W = win_t(c);
  uint64_t a = r + w > W ? r + w - W : 0;
  return hist_on(c, a, r) + (w < W ? w : W) > cap_t(c);
}

// The longest on time (ticks) from t that keeps every window within the cap.
static uint64_t duty_room(const Chan& c, uint64_t t) {
  uint64_t W = win_t(c), cap = cap_t(c), lo = 0, hi = cap;
  while (lo < hi) {  // f(T) = hist(t + T - W, t) + T is non-decreasing
    uint64_t mid = lo + (hi - lo + 1) / 2;
    uint64_t a = t + mid > W ? t + mid - W : 0;
    if (hist_on(c, a, t) + mid <= cap) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// Train-only on time in the worst window (PROTOCOL.md: NACK 6 if the train alone exceeds).
static uint64_t train_worst_us(uint32_t w, uint16_t n, uint32_t p, uint64_t W) {
  if (n == 1) return w < W ? w : W;
  uint64_t M = n - 1, full = 0, total;
  if (W >= w) {
    full = div64(W - w, p);
    if (full > M) full = M;
    full += 1;
  }
  total = full * w;
  if (full <= M && W > full * p) {
    uint64_t part = W - full * p;
    total += part < w ? part : w;
  }
  return total;
}

// ---- channel state machine (interrupts disabled) ---------------------------------------------
static void arm_fall(uint8_t ch) {
  Chan& c = chans[ch];
  uint64_t t = c.fall_nominal;
  uint8_t cause = C_NOMINAL;
  if (c.fall_maxon < t) { t = c.fall_maxon; cause = C_MAXON; }
  if (c.fall_duty < t) { t = c.fall_duty; cause = C_DUTY; }
  uint64_t wd = wd_deadline - HW_LATENCY_TICKS;
  if (wd_armed && wd < t) { t = wd; cause = C_WATCHDOG; }
  c.fall_cause = cause;
  if (t == NEVER) hw_alarm_cancel(ch);
  else hw_alarm(ch, t, false);
}

static void train_end(uint8_t ch, uint64_t t) {
  Chan& c = chans[ch];
  if (c.mode == M_TRAIN && c.skipped) queue_fault(FAULT_DUTY, ch, t, c.skipped);
  c.mode = M_IDLE;
  c.waiting_wd = false;
}

static void arm_rise_alarm(uint8_t ch) {
  Chan& c = chans[ch];
  uint64_t r = c.first_rise + (uint64_t)c.index * c.period_t;
  if (wd_armed && r >= wd_deadline) {
    c.waiting_wd = true;
    hw_alarm_cancel(ch);
    return;
  }
  c.waiting_wd = false;
  uint64_t got = hw_alarm(ch, r, true);
  if (got != r && c.index == 0) c.first_rise = got;  // the train's grid starts at its first rise
}

// Next pulse of the train from c.index on, skipping what the duty cap forbids.
static void next_pulse(uint8_t ch, uint64_t now) {
  Chan& c = chans[ch];
  while (c.index < c.count) {
    uint64_t r = c.first_rise + (uint64_t)c.index * c.period_t;
    if (!duty_exceeds(c, r, c.width_t)) {
      arm_rise_alarm(ch);
      return;
    }
    c.skipped++;
    faults |= FB_DUTY;
    c.index++;
  }
  train_end(ch, now);
}

static void pulse_done(uint8_t ch, uint64_t fall, uint8_t flags) {
  Chan& c = chans[ch];
  Event* e = ev_alloc();
  if (e) {
    e->type = T_PULSE_DONE; e->ch = ch; e->seq = c.seq; e->index = c.index;
    e->t1 = c.rise; e->t2 = fall; e->a = flags;
    ev_commit();
  }
}

void stim_isr_edge(uint8_t ch, uint64_t sched, uint64_t tick, bool on) {
  Chan& c = chans[ch];
  if (on) {  // falls are timed from the scheduled rise: both edges have the same latency
    c.on = true;
    c.rise = tick;
    c.rise_sched = sched;
    c.fall_nominal = sched + c.width_t;
    c.fall_maxon = c.max_on_us ? sched + (uint64_t)c.max_on_us * TPU : NEVER;
    c.fall_duty = NEVER;
    arm_fall(ch);
    return;
  }
  c.on = false;
  hist_record(c, c.rise, tick);
  uint8_t cause = c.fall_cause;
  if (cause == C_MAXON) {
    faults |= FB_MAX_ON;
    queue_fault(FAULT_MAX_ON, ch, tick, (uint32_t)((tick - c.rise) / TPU));
  }
  if (c.mode == M_TRAIN) {
    pulse_done(ch, tick, cause == C_MAXON ? PF_MAX_ON : cause == C_WATCHDOG ? PF_CUT : 0);
    if (cause == C_WATCHDOG) { train_end(ch, tick); return; }
    c.index++;
    next_pulse(ch, tick);
  } else {  // level
    if (cause == C_DUTY) {
      faults |= FB_DUTY;
      queue_fault(FAULT_DUTY, ch, tick, 0);
    }
    c.mode = M_IDLE;
  }
}

// Stop whatever runs on ch now (replacing PULSE / SET_LEVEL / STOP_ALL / watchdog).
static uint64_t cancel(uint8_t ch) {
  Chan& c = chans[ch];
  uint64_t t;
  if (c.on) {
    t = hw_output_now(ch, false);
    c.on = false;
    hist_record(c, c.rise, t);
    if (c.mode == M_TRAIN) pulse_done(ch, t, PF_CUT);
  } else {
    hw_alarm_cancel(ch);
    t = hw_now();
  }
  if (c.mode == M_TRAIN) train_end(ch, t);
  c.mode = M_IDLE;
  return t;
}

void stim_isr_input(uint8_t in, uint64_t tick, bool level) {
  input_count[in]++;
  Event* e = ev_alloc();
  if (!e) return;
  e->type = T_INPUT_EVENT; e->ch = in; e->a = level; e->t1 = tick; e->detail = input_count[in];
  ev_commit();
}

// Deadline moved (valid frame): re-aim the falls and the rises that waited for it.
static void rearm_after_feed(void) {
  for (uint8_t ch = 0; ch < HW_CHANNELS; ch++) {
    Chan& c = chans[ch];
    if (c.on) {
      if (hw_alarm_movable(ch)) arm_fall(ch);
    } else if (c.mode == M_TRAIN && c.waiting_wd) {
      arm_rise_alarm(ch);
    }
  }
}

// ---- messages --------------------------------------------------------------------------------
static void send(const Msg& m) {
  uint8_t f[kMaxFrame];
  size_t n = encode_frame(m, f);
  if (n) stim_write(f, n);
}

static void send_ok(uint16_t seq, uint64_t t) {
  Msg m; memset(&m, 0, sizeof m);
  m.type = T_OK; m.seq = seq; m.device_us = t / TPU;
  send(m);
}

static void send_nack(uint16_t seq, uint8_t reason) {
  Msg m; memset(&m, 0, sizeof m);
  m.type = T_NACK; m.seq = seq; m.reason = reason;
  send(m);
}

static void handle(const Msg& q, uint64_t now) {
  switch (q.type) {
    case T_HELLO: {
      Msg m; memset(&m, 0, sizeof m);
      m.type = T_CAPABILITIES; m.protocol = kProtocol;
      m.fw_major = FW_MAJOR; m.fw_minor = FW_MINOR; m.fw_patch = FW_PATCH;
      m.channels = HW_CHANNELS; m.inputs = HW_INPUTS; m.tick_ns = HW_TICK_NS;
      memcpy(m.board, HW_BOARD, sizeof HW_BOARD - 1);
      send(m);
      break;
    }
    case T_PING: {
      Msg m; memset(&m, 0, sizeof m);
      m.type = T_PONG; m.token = q.token; m.device_us = hw_now() / TPU;
      send(m);
      break;
    }
    case T_PULSE: {
      if (q.channel >= HW_CHANNELS) { send_nack(q.seq, NACK_BAD_CHANNEL); break; }
      if (!q.width_us || !q.count || (q.count > 1 && q.period_us <= q.width_us)) {
        send_nack(q.seq, NACK_BAD_ARGUMENT); break;
      }
      if (faults & FB_WATCHDOG) { send_nack(q.seq, NACK_FAULT_LATCHED); break; }
      Chan& c = chans[q.channel];
      if (duty_enabled(c) &&
          train_worst_us(q.width_us, (uint16_t)q.count, q.period_us, (uint64_t)c.duty_win_ms * 1000) >
              (uint64_t)c.duty_win_ms * c.duty_pm) {
        send_nack(q.seq, NACK_DUTY); break;
      }
      hw_irqstate_t s = hw_irq_save();
      uint64_t t = cancel(q.channel);
      c.mode = M_TRAIN; c.seq = q.seq; c.count = (uint16_t)q.count; c.index = 0; c.skipped = 0;
      c.width_t = (uint64_t)q.width_us * TPU;
      c.period_t = q.count > 1 ? (uint64_t)q.period_us * TPU : 0;
      c.first_rise = t + HW_GUARD_TICKS;
      next_pulse(q.channel, t);
      hw_irq_restore(s);
      break;
    }
    case T_SET_LEVEL: {
      if (q.channel >= HW_CHANNELS) { send_nack(q.seq, NACK_BAD_CHANNEL); break; }
      if (q.level > 1) { send_nack(q.seq, NACK_BAD_ARGUMENT); break; }
      Chan& c = chans[q.channel];
      if (q.level == 0) {
        hw_irqstate_t s = hw_irq_save();
        uint64_t t = cancel(q.channel);
        hw_irq_restore(s);
        send_ok(q.seq, t);
        break;
      }
      if (faults & FB_WATCHDOG) { send_nack(q.seq, NACK_FAULT_LATCHED); break; }
      if (c.mode == M_LEVEL && c.on) { send_ok(q.seq, hw_now()); break; }
      uint64_t room = NEVER;
      if (duty_enabled(c)) {
        room = duty_room(c, hw_now());
        if (room < HW_GUARD_TICKS) { send_nack(q.seq, NACK_DUTY); break; }
      }
      hw_irqstate_t s = hw_irq_save();
      cancel(q.channel);
      uint64_t t = hw_output_now(q.channel, true);
      c.mode = M_LEVEL; c.on = true; c.rise = t;
      c.rise_sched = t - HW_LATENCY_TICKS;  // the rise was immediate, the fall will be late
      c.fall_nominal = NEVER;
      c.fall_maxon = c.max_on_us ? c.rise_sched + (uint64_t)c.max_on_us * TPU : NEVER;
      c.fall_duty = room == NEVER ? NEVER : c.rise_sched + room;
      arm_fall(q.channel);
      hw_irq_restore(s);
      send_ok(q.seq, t);
      break;
    }
    case T_STOP_ALL: {
      hw_irqstate_t s = hw_irq_save();
      uint64_t t = 0;
      for (uint8_t ch = 0; ch < HW_CHANNELS; ch++) t = cancel(ch);
      hw_irq_restore(s);
      send_ok(q.seq, t);
      break;
    }
    case T_SET_SAFETY: {
      if (q.channel >= HW_CHANNELS) { send_nack(q.seq, NACK_BAD_CHANNEL); break; }
      if (!q.max_duty_permille || q.max_duty_permille > 1000 ||
          (q.max_duty_permille < 1000 && !q.duty_window_ms)) {
        send_nack(q.seq, NACK_BAD_ARGUMENT); break;
      }
      hw_irqstate_t s = hw_irq_save();
      Chan& c = chans[q.channel];
      c.max_on_us = q.max_on_us; c.duty_pm = q.max_duty_permille; c.duty_win_ms = q.duty_window_ms;
      wd_ms = q.watchdog_ms;
      wd_armed = wd_ms != 0;
      wd_deadline = now + (uint64_t)wd_ms * 1000 * TPU;
      for (uint8_t ch = 0; ch < HW_CHANNELS; ch++)
        if (chans[ch].on && hw_alarm_movable(ch)) {
          if (ch == q.channel)
            chans[ch].fall_maxon = chans[ch].max_on_us
                ? chans[ch].rise_sched + (uint64_t)chans[ch].max_on_us * TPU : NEVER;
          arm_fall(ch);
        } else if (chans[ch].mode == M_TRAIN && chans[ch].waiting_wd) {
          arm_rise_alarm(ch);
        }
      hw_irq_restore(s);
      send_ok(q.seq, now);
      break;
    }
    case T_HEARTBEAT_HOST:
      break;
    case T_CLEAR_FAULTS:
      faults = 0;
      send_ok(q.seq, hw_now());
      break;
    default:
      send_nack(q.seq, NACK_UNKNOWN_TYPE);
  }
}

static void on_frame(const uint8_t* p, uint8_t len) {
  uint64_t now = hw_now();
  last_frame = now;
  if (wd_ms) {  // every valid frame feeds the watchdog
    hw_irqstate_t s = hw_irq_save();
    wd_deadline = now + (uint64_t)wd_ms * 1000 * TPU;
    wd_armed = true;
    rearm_after_feed();
    hw_irq_restore(s);
  }
  Msg q;
  DecodeResult r = decode_payload(p, len, q);
  if (r == DEC_UNKNOWN_TYPE || p[0] >= 0x80) {
    send_nack(len >= 3 ? (uint16_t)(p[1] | (p[2] << 8)) : 0, NACK_UNKNOWN_TYPE);
    return;
  }
  if (r == DEC_BAD_LENGTH) { send_nack(q.seq, NACK_BAD_LENGTH); return; }
  handle(q, now);
}

static void check_watchdog(void) {
  if (!wd_armed) return;
  uint64_t now = hw_now();
  if (now < wd_deadline) return;
  hw_irqstate_t s = hw_irq_save();
  if (!wd_armed || now < wd_deadline) { hw_irq_restore(s); return; }
  wd_armed = false;
  faults |= FB_WATCHDOG;
  for (uint8_t ch = 0; ch < HW_CHANNELS; ch++) cancel(ch);
  queue_fault(FAULT_WATCHDOG, 0, wd_deadline, (uint32_t)((now - last_frame) / (1000 * TPU)));
  hw_irq_restore(s);
}

static void drain_events(void) {
  while (ev_tail != ev_head) {
    Event e = events[ev_tail];
    ev_tail = (uint8_t)((ev_tail + 1) % NEV);
    Msg m; memset(&m, 0, sizeof m);
    m.type = e.type;
    if (e.type == T_PULSE_DONE) {
      m.seq = e.seq; m.channel = e.ch; m.index = e.index;
      m.rise_us = e.t1 / TPU; m.fall_us = e.t2 / TPU; m.flags = e.a;
    } else if (e.type == T_FAULT) {
      m.code = e.a; m.channel = e.ch; m.device_us = e.t1 / TPU; m.detail = e.detail;
    } else {
      m.input = e.ch; m.level = e.a; m.device_us = e.t1 / TPU; m.count = e.detail;
    }
    send(m);
  }
}

void stim_setup(void) {
  memset(chans, 0, sizeof chans);
  for (uint8_t ch = 0; ch < HW_CHANNELS; ch++) chans[ch].duty_pm = 1000;
  hw_init();
  next_heartbeat = 250000 * TPU;
}

void stim_poll(void) {
  for (uint8_t i = 0; i < 32; i++) {
    int b = stim_read_byte();
    if (b < 0) break;
    switch (rx.push((uint8_t)b)) {
      case FrameRx::FRAME: on_frame(rx.payload(), rx.payload_len()); break;
      case FrameRx::ERROR: rx_errors++; break;
      case FrameRx::OVERFLOW:
        rx_errors++;
        faults |= FB_RX_OVERFLOW;
        queue_fault(FAULT_RX_OVERFLOW, 0, hw_now(), rx.overflow_bytes());
        break;
      default: break;
    }
    check_watchdog();
  }
  check_watchdog();
  drain_events();
  uint64_t now = hw_now();
  if (now >= next_heartbeat) {
    next_heartbeat += 250000 * TPU;
    if (next_heartbeat <= now) next_heartbeat = now + 250000 * TPU;
    Msg m; memset(&m, 0, sizeof m);
    m.type = T_HEARTBEAT; m.device_us = now / TPU; m.faults = faults; m.rx_errors = rx_errors;
    send(m);
  }
}
