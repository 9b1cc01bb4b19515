#!/usr/bin/python3
"""Runs a command and reports how much CPU other processes used while it ran: the machine's busy
time over the run (/proc/stat) minus the command's own (its rusage, children included), as a
percentage of every CPU for the run's wall time. A speed measured on a shared machine means
something only when this is near 0: an OpenMP program loses far more than the share taken (its
threads wait at each barrier for the one that was descheduled). The load average says less: on
a virtual machine it can sit near 1 with every CPU idle.

Usage: foreign_cpu.py OUT_FILE COMMAND [ARG...]
Writes the percentage (e.g. "0.4") to OUT_FILE and exits with COMMAND's exit code."""
import os
import subprocess
import sys
import time


def busy_seconds():
    """CPU seconds all CPUs spent on anything but idle and I/O wait since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.split("\n\n")[1])
    out, command = sys.argv[1], sys.argv[2:]
    start, busy_start = time.monotonic(), busy_seconds()
    try:
        child = subprocess.Popen(command)
    except OSError as e:
        sys.exit(f"foreign_cpu.py: cannot run {command[0]}: {e.strerror}")
    _, status, usage = os.wait4(child.pid, 0)
    wall, busy = time.monotonic() - start, busy_seconds() - busy_start
    own = usage.ru_utime + usage.ru_stime
    share = max(0.0, busy - own) / (os.cpu_count() * wall) if wall > 0 else 0.0
    with open(out, "w") as f:
        f.write(f"{100 * share:.1f}\n")
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
