// behavd_stim engine: command dispatch, pulse trains, safety interlocks (PROTOCOL.md section 4).
// Portable: uses only hw.h, protocol.h and the byte I/O functions below.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define FW_MAJOR 1
#define FW_MINOR 0
#define FW_PATCH 0

// Provided by the sketch.
int stim_read_byte(void);                        // -1 when none
void stim_write(const uint8_t* data, size_t n);  // may block

void stim_setup(void);
void stim_poll(void);  // call from loop()
