// What the browser benchmarks read of Chromium's processes under this one (Linux /proc).
import { readdirSync, readFileSync } from 'node:fs';

/** Processes descended from this one: pid -> command line. */
export function descendants() {
  const parent = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* gone */ }
  }
  const out = new Map();
  const mine = new Set([process.pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (mine.has(ppid) && !mine.has(pid)) {
        mine.add(pid);
        grew = true;
        try { out.set(pid, readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')); } catch { /* gone */ }
      }
    }
  }
  return out;
}

/** Peak resident memory (VmHWM) of a process, MiB; null when it is gone. */
export function vmHwmMiB(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+) kB/m);
    return m ? Number(m[1]) / 1024 : null;
  } catch { return null; }
}

/** The largest peak resident memory of a Chromium renderer under this process, MiB. */
export function rendererPeakMiB() {
  let peak = null;
  for (const [pid, cmd] of descendants()) {
    if (!cmd.includes('--type=renderer')) continue;
    const hwm = vmHwmMiB(pid);
    if (hwm !== null) peak = Math.max(peak ?? 0, hwm);
  }
  return peak;
}
