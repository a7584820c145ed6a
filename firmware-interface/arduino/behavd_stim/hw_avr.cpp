// ATmega328P board layer (Arduino Uno / Nano, 16 MHz), see hw.h.
//   Timer1 free-running, prescaler 8 = 2 MHz ticks (0.5 us), extended to 64 bits in software:
//   every clock read adds the 16-bit difference since the previous read. Reads happen all the
//   time in loop() and at least at every overflow interrupt, so a lost overflow interrupt (seen
//   in simavr 1.6) cannot lose time.
//   Channel 0 = PB1 = D9, channel 1 = PB2 = D10. An alarm programs OCR1A / OCR1B with the low
//   16 bits of its tick; the compare interrupt skips the matches of earlier timer wraps and, at
//   the target, writes the pin first thing, then reads the clock: that reading is the edge
//   time reported (the pin changed 1 to 2 ticks after the scheduled tick). The output-compare
//   pin modes (COM1x) are not used: simavr 1.6 emulates them wrongly in normal mode.
//   Input 0 = ICP1 = PB0 = D8: edges are time-stamped by the input capture hardware.
//   D13 (PB5) goes high when the tick clock starts (clock origin marker for the harness).
#if defined(__AVR__)
#include <avr/interrupt.h>
#include <avr/io.h>

#include "hw.h"

// Set to 1 for active-low hardware (on = pin low).
static const uint8_t kActiveLow[HW_CHANNELS] = {0, 0};

static volatile uint64_t clock_ticks;  // last reading

struct Alarm {
  uint64_t target;
  uint16_t wraps;  // matches to skip before the target's
  bool on, high, active;
};
static Alarm alarms[HW_CHANNELS];

hw_irqstate_t hw_irq_save(void) {
  uint8_t s = SREG;
  cli();
  return s;
}
void hw_irq_restore(hw_irqstate_t s) { SREG = s; }

static inline uint64_t now_locked(void) {  // interrupts disabled
  uint16_t t = TCNT1;
  uint64_t c = clock_ticks;
  c += (uint16_t)(t - (uint16_t)c);
  clock_ticks = c;
  return c;
}

uint64_t hw_now(void) {
  uint8_t s = SREG;
  cli();
  uint64_t r = now_locked();
  SREG = s;
  return r;
}

ISR(TIMER1_OVF_vect) { now_locked(); }

static inline uint8_t pin_mask(uint8_t ch) { return ch == 0 ? _BV(PB1) : _BV(PB2); }
static inline uint8_t ocie(uint8_t ch) { return ch == 0 ? OCIE1A : OCIE1B; }
static inline uint8_t ocf(uint8_t ch) { return ch == 0 ? OCF1A : OCF1B; }

static inline void write_pin(uint8_t ch, bool on) {
  if (on ^ (kActiveLow[ch] != 0)) PORTB |= pin_mask(ch); else PORTB &= ~pin_mask(ch);
}

void hw_init(void) {
  uint8_t s = SREG;
  cli();
  TCCR1B = 0;
  TCCR1A = 0;  // normal mode, output-compare pins disconnected
  TIMSK1 = 0;
  for (uint8_t ch = 0; ch < HW_CHANNELS; ch++) {
    alarms[ch].active = false;
    write_pin(ch, false);
  }
  DDRB |= _BV(PB1) | _BV(PB2) | _BV(PB5);
  DDRB &= ~_BV(PB0);
  TCNT1 = 0;
  clock_ticks = 0;
  TIFR1 = 0xFF;
  TIMSK1 = _BV(TOIE1) | _BV(ICIE1);
  uint8_t ices = (PINB & _BV(PB0)) ? 0 : _BV(ICES1);  // wait for the edge away from the level
  TCCR1B = ices | _BV(CS11);                          // start: 16 MHz / 8
  PORTB |= _BV(PB5);                                  // clock origin marker (2 cycles later)
  SREG = s;
}

uint64_t hw_output_now(uint8_t ch, bool on) {
  uint8_t s = SREG;
  cli();
  alarms[ch].active = false;
  TIMSK1 &= ~_BV(ocie(ch));
  write_pin(ch, on);
  uint64_t t = now_locked();
  SREG = s;
  return t;
}

void hw_alarm_cancel(uint8_t ch) {
  alarms[ch].active = false;
  TIMSK1 &= ~_BV(ocie(ch));
}

uint64_t hw_alarm(uint8_t ch, uint64_t tick, bool on) {
  Alarm& a = alarms[ch];
  TIMSK1 &= ~_BV(ocie(ch));
  uint64_t now = now_locked();
  uint16_t guard = HW_GUARD_TICKS;
  for (;;) {  // program OCR, then make sure the counter has not passed it meanwhile
    if (tick < now + guard) tick = now + guard;
    if (ch == 0) OCR1A = (uint16_t)tick; else OCR1B = (uint16_t)tick;
    TIFR1 = _BV(ocf(ch));
    now = now_locked();
    if (tick > now + 2) break;
    guard *= 2;
  }
  a.target = tick;
  a.on = on;
  a.wraps = (uint16_t)((tick - now - 1) >> 16);  // first match after now is target - wraps * 2^16
  a.active = true;
  TIMSK1 |= _BV(ocie(ch));
  return tick;
}

bool hw_alarm_movable(uint8_t ch) {
  Alarm& a = alarms[ch];
  if (!a.active) return true;
  if (TIFR1 & _BV(ocf(ch))) return false;
  return a.target > now_locked() + HW_GUARD_TICKS;
}

bool hw_input_level(uint8_t in) {
  (void)in;
  return (PINB & _BV(PB0)) != 0;
}

ISR(TIMER1_COMPA_vect) {
  Alarm& a = alarms[0];
  if (a.wraps) { a.wraps--; return; }
  if (!a.active) return;
  write_pin(0, a.on);
  uint64_t t = now_locked();
  a.active = false;
  TIMSK1 &= ~_BV(OCIE1A);
  stim_isr_edge(0, a.target, t, a.on);
}

ISR(TIMER1_COMPB_vect) {
  Alarm& a = alarms[1];
  if (a.wraps) { a.wraps--; return; }
  if (!a.active) return;
  write_pin(1, a.on);
  uint64_t t = now_locked();
  a.active = false;
  TIMSK1 &= ~_BV(OCIE1B);
  stim_isr_edge(1, a.target, t, a.on);
}

ISR(TIMER1_CAPT_vect) {
  uint16_t icr = ICR1;
  uint8_t b = TCCR1B;
  uint64_t now = now_locked();
  uint64_t t = now - (uint16_t)((uint16_t)now - icr);
  bool rising = (b & _BV(ICES1)) != 0;
  TCCR1B = b ^ _BV(ICES1);
  TIFR1 = _BV(ICF1);
  stim_isr_input(0, t, rising);
}
#endif
