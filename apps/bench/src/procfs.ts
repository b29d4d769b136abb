import { readFileSync, readdirSync } from 'node:fs';

// CPU time of the browser's processes, from /proc (Linux): the evidence for "CPU-bound". Each test
// snapshots utime + stime of every process under the Chromium we launched, by role, and reports
// the difference. Parsing is pure (tested in procfs.test.ts); reading returns empty off Linux.

/** Chromium's process roles, from its --type switch. */
export type ProcessRole = 'browser' | 'renderer' | 'network' | 'gpu' | 'other';
export const PROCESS_ROLES: readonly ProcessRole[] = ['browser', 'renderer', 'network', 'gpu', 'other'];

export interface PidStat {
  pid: number;
  ppid: number;
  /** utime + stime, in clock ticks. */
  ticks: number;
}

/** Parses /proc/<pid>/stat. `comm` may hold spaces and parentheses: fields start after the last ')'. */
export function parsePidStat(text: string): PidStat | null {
  const close = text.lastIndexOf(')');
  const open = text.indexOf('(');
  if (close < 0 || open < 0) return null;
  const pid = Number(text.slice(0, open).trim());
  // After ')': state(3) ppid(4) pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
  const f = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const ppid = Number(f[1]);
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  if (![pid, ppid, utime, stime].every(Number.isFinite)) return null;
  return { pid, ppid, ticks: utime + stime };
}

/**
 * The role of a Chromium process from its /proc/<pid>/cmdline: NUL-separated, or space-separated
 * in child processes (Chromium rewrites their title with setproctitle).
 */
export function roleOf(cmdline: string): ProcessRole {
  const args = cmdline.split(/[\0 ]/);
  const type = args.find((a) => a.startsWith('--type='))?.slice('--type='.length);
  if (type === undefined) return 'browser';
  if (type === 'renderer') return 'renderer';
  if (type === 'gpu-process') return 'gpu';
  if (type === 'utility' && args.some((a) => a.includes('NetworkService'))) return 'network';
  return 'other';
}

/** Every pid whose ancestry (through `ppid`) reaches `root`, root included. */
export function descendants(stats: readonly PidStat[], root: number): Set<number> {
  const children = new Map<number, number[]>();
  for (const s of stats) {
    const list = children.get(s.ppid);
    if (list) list.push(s.pid);
    else children.set(s.ppid, [s.pid]);
  }
  const out = new Set<number>();
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop() ?? root;
    if (out.has(pid)) continue;
    out.add(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** CPU ticks per process at one instant: pid -> { role, ticks }. */
export type CpuSnapshot = Map<number, { role: ProcessRole; ticks: number }>;

export type RoleMs = Record<ProcessRole, number>;

export function emptyRoleMs(): RoleMs {
  return { browser: 0, renderer: 0, network: 0, gpu: 0, other: 0 };
}

/** CPU milliseconds spent between two snapshots, by role (a process new in `b` counts whole). */
export function cpuMsBetween(a: CpuSnapshot, b: CpuSnapshot, ticksPerSec: number): RoleMs {
  const out = emptyRoleMs();
  for (const [pid, after] of b) {
    const before = a.get(pid)?.ticks ?? 0;
    out[after.role] += (Math.max(0, after.ticks - before) * 1000) / ticksPerSec;
  }
  return out;
}

/** Sum over roles. */
export function totalMs(r: RoleMs): number {
  return PROCESS_ROLES.reduce((s, k) => s + r[k], 0);
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null; // the process exited meanwhile, or no /proc
  }
}

function allPidStats(): PidStat[] {
  let names: string[];
  try {
    names = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
  const out: PidStat[] = [];
  for (const n of names) {
    const text = readText(`/proc/${n}/stat`);
    const s = text === null ? null : parsePidStat(text);
    if (s) out.push(s);
  }
  return out;
}

/** The pid of the process whose command line holds `marker` (a switch we passed to Chromium). */
export function findProcessByArg(marker: string): number | null {
  for (const s of allPidStats()) {
    const cmd = readText(`/proc/${s.pid}/cmdline`);
    if (cmd?.split('\0').includes(marker)) return s.pid;
  }
  return null;
}

/** Snapshot of `root` and all its descendants (empty when /proc cannot be read). */
export function snapshotTree(root: number | null): CpuSnapshot {
  const snap: CpuSnapshot = new Map();
  if (root === null) return snap;
  const stats = allPidStats();
  const tree = descendants(stats, root);
  for (const s of stats) {
    if (!tree.has(s.pid)) continue;
    snap.set(s.pid, { role: roleOf(readText(`/proc/${s.pid}/cmdline`) ?? ''), ticks: s.ticks });
  }
  return snap;
}

/** Linux USER_HZ: 100 on every mainstream kernel configuration. */
export const TICKS_PER_SEC = 100;
