/*
 * stimrig: run the behavd_stim firmware in simavr (ATmega328P @ 16 MHz), bridge UART0 to a
 * pseudo-terminal and log every edge of the stimulator pins with simulated and host time.
 *
 * The bridge is the harness's own (not libsimavrparts' uart_pty): every 50 µs of simulated time
 * it moves the bytes waiting on the pty into the UART's input FIFO while the UART signals room
 * (XON/XOFF), and the UART paces them to the firmware at its byte time, like a wire. uart_pty
 * only pushes when the UART raises XON or on a 1 ms timer, so an idle link delayed host bytes by
 * up to 1 ms and a burst overflowed the 64-byte FIFO.
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
#include "avr_uart.h"
#include "sim_time.h"

#include <fcntl.h>
#include <pty.h>
#include <termios.h>

#define FREQ 16000000UL

static avr_t *avr;
/* The pty bridge: master fd, bytes read from the host not yet in the UART, the UART's flow state,
   and bytes from the firmware the host has not taken yet. */
static int pty_master = -1;
static char pty_slave_name[128];
static uint8_t rx_buf[4096];
static size_t rx_head, rx_len;
static int uart_xoff;
static uint8_t tx_buf[65536];
static size_t tx_head, tx_len;
static avr_irq_t *uart_input_irq;
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

static void flush_tx(void) {
  while (tx_len > 0) {
    size_t chunk = tx_len < sizeof tx_buf - tx_head ? tx_len : sizeof tx_buf - tx_head;
    ssize_t n = write(pty_master, tx_buf + tx_head, chunk);
    if (n <= 0) return;  // host not reading (EAGAIN) or not connected (EIO): keep for later
    tx_head = (tx_head + (size_t)n) % sizeof tx_buf;
    tx_len -= (size_t)n;
  }
}

/* Firmware → host: each byte the UART shifts out goes to the pty as it leaves the UART. */
static void uart_out_hook(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  (void)param;
  if (tx_len == sizeof tx_buf) return;  // nobody has read 64 KiB: drop, like a dead USB link
  tx_buf[(tx_head + tx_len) % sizeof tx_buf] = (uint8_t)value;
  tx_len++;
  flush_tx();
}

static void uart_xon_hook(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  (void)value;
  (void)param;
  uart_xoff = 0;
}

static void uart_xoff_hook(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  (void)value;
  (void)param;
  uart_xoff = 1;
}

/* Host → firmware: read what the pty holds, then feed the UART FIFO until it says XOFF. */
static void pump_rx(void) {
  if (rx_len < sizeof rx_buf) {
    size_t tail = (rx_head + rx_len) % sizeof rx_buf;
    size_t room = rx_head + rx_len < sizeof rx_buf ? sizeof rx_buf - tail : rx_head - tail;
    ssize_t n = read(pty_master, rx_buf + tail, room);
    if (n > 0) rx_len += (size_t)n;
  }
  while (rx_len > 0 && !uart_xoff) {
    uint8_t b = rx_buf[rx_head];
    rx_head = (rx_head + 1) % sizeof rx_buf;
    rx_len--;
    avr_raise_irq(uart_input_irq, b);
  }
  if (tx_len > 0) flush_tx();
}

static int open_bridge(void) {
  int slave;
  if (openpty(&pty_master, &slave, pty_slave_name, NULL, NULL) != 0) return -1;
  struct termios t;
  tcgetattr(pty_master, &t);
  cfmakeraw(&t);
  tcsetattr(pty_master, TCSANOW, &t);
  close(slave);  // a host opens it by name; EIO on the master until then
  fcntl(pty_master, F_SETFL, fcntl(pty_master, F_GETFL) | O_NONBLOCK);
  uint32_t flags = 0;
  avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
  flags &= ~(uint32_t)(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
  avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
  uart_input_irq = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
                          uart_out_hook, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON),
                          uart_xon_hook, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF),
                          uart_xoff_hook, NULL);
  return 0;
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

  if (open_bridge() != 0) {
    fprintf(stderr, "stimrig: openpty: %s\n", strerror(errno));
    return 1;
  }
  unlink(link_path);
  if (symlink(pty_slave_name, link_path) != 0) {
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

  printf("READY pty=%s link=%s\n", pty_slave_name, link_path);
  fflush(stdout);

  wall_start_ns = mono_ns();
  uint64_t limit_cycles = limit_s > 0 ? (uint64_t)(limit_s * FREQ) : 0;
  /* Real-time mode checks every 50 µs of simulated time and sleeps when the simulation is more
     than 20 µs ahead of the wall clock, so the device clock tracks the host within tens of µs
     (a 1 ms granularity made clock-sync samples jitter by up to 1 ms). */
  const uint64_t check_cycles = FREQ / 20000;
  uint64_t next_check = check_cycles, next_speed = FREQ;
  int state = cpu_Running;
  while (!stop_flag) {
    state = avr_run(avr);
    if (state == cpu_Done || state == cpu_Crashed) break;
    if (avr->cycle >= next_check) {
      next_check = avr->cycle + check_cycles;
      pump_rx();
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
  _exit(state == cpu_Crashed ? 3 : 0);
}
