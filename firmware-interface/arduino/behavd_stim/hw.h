// Board layer of behavd_stim: a free-running tick clock, per-channel output alarms that change
// the pin at a given tick (from the timer compare interrupt), immediate output changes and
// input edge capture.
// hw_avr.cpp implements it for the ATmega328P (Timer1); a Teensy port replaces only that file.
#pragma once
#include <stdint.h>

#define HW_CHANNELS 2
#define HW_INPUTS 1
#define HW_TICKS_PER_US 2      // 0.5 us ticks
#define HW_TICK_NS 500
#define HW_BOARD "uno"
#define HW_GUARD_TICKS 80      // an alarm closer than this to "now" is moved to now + guard (40 us;
                               // simavr 1.6 misses compare matches programmed closer)
// Typical delay from an alarm's tick to its pin change (interrupt entry to the pin write);
// alarms measured from an immediate edge or a deadline are set this much earlier.
#define HW_LATENCY_TICKS 14

typedef uint8_t hw_irqstate_t;
hw_irqstate_t hw_irq_save(void);       // disable interrupts, return previous state
void hw_irq_restore(hw_irqstate_t s);

void hw_init(void);
uint64_t hw_now(void);                 // ticks since hw_init; interrupt-safe
// Drive channel `ch` to on/off now; cancels its alarm. Returns the tick of the change.
uint64_t hw_output_now(uint8_t ch, bool on);
// The pin of `ch` goes to `on` at `tick` (plus interrupt latency; the engine gets the actual
// tick). An alarm in the past or closer than the
// guard is moved to now + guard. Replaces a previous alarm. Returns the tick it will happen at.
// Call with interrupts disabled. The engine is told through stim_isr_edge().
uint64_t hw_alarm(uint8_t ch, uint64_t tick, bool on);
void hw_alarm_cancel(uint8_t ch);
// false when the channel's alarm is about to fire (or has fired, edge callback pending):
// it must not be moved any more. Call with interrupts disabled.
bool hw_alarm_movable(uint8_t ch);
bool hw_input_level(uint8_t in);

// Implemented by the engine (stim.cpp), called from interrupt context.
// `sched`: the alarm's tick; `actual`: the clock read just after the pin was written.
void stim_isr_edge(uint8_t ch, uint64_t sched, uint64_t actual, bool on);
void stim_isr_input(uint8_t in, uint64_t tick, bool level);
