/*
 * stimrig: run the behavd_stim firmware in simavr (ATmega328P @ 16 MHz), bridge UART0 to a
 * pseudo-terminal and log every edge of the stimulator pins with simulated and host time.
 *
 *   stimrig -p LINK [-r] [-t SECONDS] [-i PERIOD_US] [-s] FIRMWARE.elf|.hex
 *
 * Log lines on stdout (one per line, flushed; see ../README.md "Harness"):
 *   READY pty=<slave> link=<LINK>
 *   ORIGIN sim_ns=<N>                        device clock start marker (D13 rising edge)
 *   PIN <name> <level> sim_ns=<N> mono_ns=<N>
 *   SPEED sim_s=<x> wall_s=<x> speed=<x>     (-s, once per simulated second)
 *   STATS cycles=<N> sim_s=<x> wall_s=<x> speed=<x>
 * <name> is the Arduino pin: D9 (channel 0), D10 (channel 1), D8 (input 0), D13 (origin).
 * sim_ns = cycle * 1e9 / 16e6 (62.5 ns per cycle, rounded down); mono_ns = CLOCK_MONOTONIC.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "avr_extint.h"
#include "avr_ioport.h"
#include "sim_avr.h"
#include "sim_elf.h"
#include "sim_hex.h"
#include "sim_time.h"
#include "uart_pty.h"

#define FREQ 16000000UL

static avr_t *avr;
static uart_pty_t uart;
static volatile sig_atomic_t stop_flag;
static uint64_t wall_start_ns;
static uint64_t input_half_cycles;
static int input_level;
static int origin_seen;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t sim_ns(void) { return (uint64_t)avr->cycle * 1000000000ULL / FREQ; }

struct pin {
  const char *name;
  char port;
  int bit;
  int last;
};
static struct pin pins[] = {
    {"D9", 'B', 1, -1}, {"D10", 'B', 2, -1}, {"D8", 'B', 0, -1}, {"D13", 'B', 5, -1},
};

static void pin_hook(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  struct pin *p = param;
  int level = value & 1;
  if (level == p->last) return;
  if (p->last == -1 && level == 0) {  // initial low is not an edge
    p->last = 0;
    return;
  }
  p->last = level;
  uint64_t s = sim_ns();
  printf("PIN %s %d sim_ns=%llu mono_ns=%llu\n", p->name, level, (unsigned long long)s,
         (unsigned long long)mono_ns());
  if (p->bit == 5 && level == 1 && !origin_seen) {
    origin_seen = 1;
    printf("ORIGIN sim_ns=%llu\n", (unsigned long long)s);
  }
  fflush(stdout);
}

static avr_cycle_count_t input_toggle(avr_t *a, avr_cycle_count_t when, void *param) {
  (void)param;
  input_level ^= 1;
  avr_raise_irq(avr_io_getirq(a, AVR_IOCTL_IOPORT_GETIRQ('B'), 0), input_level);
  return when + input_half_cycles;
}

static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

static void usage(const char *me) {
  fprintf(stderr,
          "usage: %s -p LINK [-r] [-t SECONDS] [-i PERIOD_US] [-s] FIRMWARE.elf|.hex\n"
          "  -p LINK       symlink LINK -> the pty bridged to UART0 (required)\n"
          "  -r            throttle to real time (default: free-running)\n"
          "  -t SECONDS    stop after this much simulated time\n"
          "  -i PERIOD_US  drive D8 (input 0) with a square wave of this period\n"
          "  -s            print a SPEED line every simulated second\n",
          me);
  exit(2);
}

int main(int argc, char **argv) {
  const char *link_path = NULL;
  int realtime = 0, speed_lines = 0, opt;
  double limit_s = 0, input_period_us = 0;
  while ((opt = getopt(argc, argv, "p:rt:i:s")) != -1) {
    switch (opt) {
      case 'p': link_path = optarg; break;
      case 'r': realtime = 1; break;
      case 't': limit_s = atof(optarg); break;
      case 'i': input_period_us = atof(optarg); break;
      case 's': speed_lines = 1; break;
      default: usage(argv[0]);
    }
  }
  if (!link_path || optind != argc - 1) usage(argv[0]);
  const char *fw_path = argv[optind];

  elf_firmware_t fw;
  memset(&fw, 0, sizeof fw);
  size_t n = strlen(fw_path);
  if (n > 4 && !strcmp(fw_path + n - 4, ".hex")) {
    uint32_t size = 0, start = 0;
    fw.flash = read_ihex_file(fw_path, &size, &start);
    if (!fw.flash) {
      fprintf(stderr, "stimrig: cannot read %s\n", fw_path);
      return 1;
    }
    fw.flashsize = size;
    fw.flashbase = start;
  } else if (elf_read_firmware(fw_path, &fw) != 0) {
    fprintf(stderr, "stimrig: cannot read %s\n", fw_path);
    return 1;
  }
  strcpy(fw.mmcu, "atmega328p");
  fw.frequency = FREQ;

  avr = avr_make_mcu_by_name(fw.mmcu);
  if (!avr) {
    fprintf(stderr, "stimrig: no atmega328p core\n");
    return 1;
  }
  avr_init(avr);
  avr_load_firmware(avr, &fw);
  avr->frequency = FREQ;
  avr->log = LOG_ERROR;
  // simavr's strict level-triggered INT0/INT1 emulation polls every cycle once D2/D3 are low.
  avr_extint_set_strict_lvl_trig(avr, 0, 0);
  avr_extint_set_strict_lvl_trig(avr, 1, 0);

  for (size_t i = 0; i < sizeof pins / sizeof pins[0]; i++)
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ(pins[i].port), pins[i].bit),
                            pin_hook, &pins[i]);

  uart_pty_init(avr, &uart);
  uart_pty_connect(&uart, '0');
  unlink(link_path);
  if (symlink(uart.port[0].slavename, link_path) != 0) {
    fprintf(stderr, "stimrig: symlink %s: %s\n", link_path, strerror(errno));
    return 1;
  }

  if (input_period_us > 0) {
    input_half_cycles = (uint64_t)(input_period_us * (FREQ / 1e6) / 2.0 + 0.5);
    if (input_half_cycles < 1) input_half_cycles = 1;
    avr_cycle_timer_register(avr, input_half_cycles, input_toggle, NULL);
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  printf("READY pty=%s link=%s\n", uart.port[0].slavename, link_path);
  fflush(stdout);

  wall_start_ns = mono_ns();
  uint64_t limit_cycles = limit_s > 0 ? (uint64_t)(limit_s * FREQ) : 0;
  /* Real-time mode checks every 50 µs of simulated time and sleeps when the simulation is more
     than 20 µs ahead of the wall clock, so the device clock tracks the host within tens of µs
     (a 1 ms granularity made clock-sync samples jitter by up to 1 ms). */
  const uint64_t check_cycles = realtime ? FREQ / 20000 : FREQ / 1000;
  uint64_t next_check = check_cycles, next_speed = FREQ;
  int state = cpu_Running;
  while (!stop_flag) {
    state = avr_run(avr);
    if (state == cpu_Done || state == cpu_Crashed) break;
    if (avr->cycle >= next_check) {
      next_check = avr->cycle + check_cycles;
      if (limit_cycles && avr->cycle >= limit_cycles) break;
      if (realtime) {
        uint64_t sim = sim_ns(), wall = mono_ns() - wall_start_ns;
        if (sim > wall + 20000) {
          struct timespec ts = {0, (long)(sim - wall)};
          nanosleep(&ts, NULL);
        }
      }
      if (speed_lines && avr->cycle >= next_speed) {
        next_speed += FREQ;
        double ws = (mono_ns() - wall_start_ns) / 1e9, ss = (double)avr->cycle / FREQ;
        printf("SPEED sim_s=%.3f wall_s=%.3f speed=%.2f\n", ss, ws, ss / ws);
        fflush(stdout);
      }
    }
  }
  double ws = (mono_ns() - wall_start_ns) / 1e9, ss = (double)avr->cycle / FREQ;
  printf("STATS cycles=%llu sim_s=%.3f wall_s=%.3f speed=%.2f state=%d\n",
         (unsigned long long)avr->cycle, ss, ws, ws > 0 ? ss / ws : 0.0, state);
  fflush(stdout);
  unlink(link_path);
  // Not uart_pty_stop(): it can hang joining the pty thread (see test-rigs.md pitfalls).
  _exit(state == cpu_Crashed ? 3 : 0);
}
