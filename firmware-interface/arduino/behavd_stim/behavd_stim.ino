// behavd stimulator reference firmware (PROTOCOL.md v1) for Arduino Uno / Nano (ATmega328P).
// Pins: D9 = channel 0, D10 = channel 1 (Timer1 output compare), D8 = input 0 (ICP1),
// D13 = high once the device clock runs. Serial 115200 8N1.
// The engine is stim.cpp; the board layer hw_avr.cpp; the codec protocol.cpp.
#include "stim.h"

int stim_read_byte(void) { return Serial.read(); }
void stim_write(const uint8_t* data, size_t n) { Serial.write(data, n); }

void setup() {
  Serial.begin(115200);
  stim_setup();
}

void loop() { stim_poll(); }
