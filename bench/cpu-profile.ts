// Reads a V8 .cpuprofile (node --cpu-prof) into self time per function and per package, for the
// "profile's top items" that issues 9 and 10 ask BENCHMARKS.md to report.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  /** Microseconds on the system's monotonic clock (V8 TimeTicks; process.hrtime on the same machine). */
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  readonly name: string;
  /** Milliseconds of samples whose top frame was this function (or package). */
  readonly ms: number;
  /** Share of the busy time: every sample except (idle). */
  readonly share: number;
}

export interface ProfileSummary {
  /** Whether only the samples inside the requested window were counted (else the whole process life). */
  readonly windowed: boolean;
  readonly busyMs: number;
  readonly idleMs: number;
  readonly functions: SelfTime[];
  readonly packages: SelfTime[];
}

/** Where a frame's code lives: an npm package, a folder of zava-mcp, Node itself, or V8's pseudo-frames. */
function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  if (url.startsWith('node:')) return 'node internals';
  if (url.startsWith('wasm://')) return 'WebAssembly (libpg-query: the SQL guard\'s parser)';
  const own = /\/dist\/(src\/[^/]+)\//.exec(url);
  return own ? `zava-mcp ${own[1]}` : url;
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) return url.slice(modules + 'node_modules/'.length);
  const dist = url.lastIndexOf('/dist/');
  return dist >= 0 ? url.slice(dist + '/dist/'.length) : url.replace(/^file:\/\//, '');
}

/** A span of process.hrtime.bigint() (ns) to count samples in, so start-up and shutdown stay out. */
export interface Window {
  readonly fromNs: bigint;
  readonly toNs: bigint;
}

export function summarizeProfile(file: string, window?: Window, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const from = window ? Number(window.fromNs / 1000n) : -Infinity;
  const to = window ? Number(window.toNs / 1000n) : Infinity;
  let at = profile.startTime;
  let inWindow = 0;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const functions = new Map<string, number>();
  const packages = new Map<string, number>();
  let idleUs = 0;
  let busyUs = 0;
  // timeDeltas[i] is the time before sample i, so the time spent in sample i is timeDeltas[i + 1].
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    const node = byId.get(profile.samples[i]!);
    const us = profile.timeDeltas[i + 1] ?? 0;
    if (!node || at < from || at > to) continue;
    inWindow++;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    busyUs += us;
    const name = url ? `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}` : functionName || '(anonymous native)';
    functions.set(name, (functions.get(name) ?? 0) + us);
    const pkg = packageOf(url, functionName);
    packages.set(pkg, (packages.get(pkg) ?? 0) + us);
  }
  const ranked = (totals: Map<string, number>, count: number): SelfTime[] =>
    [...totals]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([name, us]) => ({ name, ms: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }));
  // Were the profiler's clock not the system's monotonic one, no sample would fall inside: count them all then
  // (the summary says so) rather than lose the run.
  if (window && inWindow === 0) return summarizeProfile(file, undefined, top);
  return { windowed: window !== undefined, busyMs: busyUs / 1000, idleMs: idleUs / 1000, functions: ranked(functions, top), packages: ranked(packages, 12) };
}
