// Starting and stopping bin/kubetrail for the browser tests and the benchmark:
// a fresh temporary directory for its data (and for HOME, so that it does not
// overwrite the developer's ~/.kubetrail/local.json), port 0 so the kernel
// picks a free port (the server prints the address it got), and a stop that
// always happens: SIGTERM, then SIGKILL, also when the test process exits.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(WEB, '..');
export const BIN = process.env.KUBETRAIL_BIN ?? path.join(ROOT, 'bin', 'kubetrail');
export const ARTIFACTS = path.join(WEB, 'e2e', 'artifacts');

export interface Kubetrail {
  url: string;
  token: string;
  /** The data directory (--data-dir). */
  dataDir: string;
  /** What the process printed so far. */
  output(): string;
  /** Stops the process and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

interface StartOptions {
  /** A name for logs and the temporary directory. */
  name: string;
  /** The arguments; DATA_DIR is replaced by the data directory. */
  args: string[];
  env?: Record<string, string>;
  /** Called with the output so far; returns the server's URL and token once it is ready. */
  ready: (out: string) => { url: string; token: string } | undefined;
  timeoutMs: number;
  /** Prepares the data directory before the start (copies a trail into it). */
  prepare?: (dataDir: string) => void;
}

export async function startKubetrail(o: StartOptions): Promise<Kubetrail> {
  if (!existsSync(BIN)) throw new Error(`${BIN} does not exist: run 'make build' first`);
  const root = mkdtempSync(path.join(tmpdir(), `kubetrail-${o.name}-`));
  const dataDir = path.join(root, 'data');
  const home = path.join(root, 'home');
  mkdirSync(dataDir);
  mkdirSync(home);
  o.prepare?.(dataDir);

  const child = spawn(BIN, o.args.map((a) => (a === 'DATA_DIR' ? dataDir : a)), {
    env: { ...process.env, HOME: home, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const kill = () => { child.kill('SIGKILL'); };
  process.on('exit', kill);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (running()) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    process.off('exit', kill);
    try {
      mkdirSync(ARTIFACTS, { recursive: true });
      writeFileSync(path.join(ARTIFACTS, `${o.name}.log`), out);
    } catch { /* the log is a convenience */ }
    if (!process.env.KT_KEEP_DATA) rmSync(root, { recursive: true, force: true });
  };

  try {
    const info = await new Promise<{ url: string; token: string }>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`kubetrail ${o.name} not ready after ${o.timeoutMs / 1000}s:\n${out}`)), o.timeoutMs);
      const onData = (d: Buffer) => {
        out += d.toString();
        const r = o.ready(out);
        if (r) { clearTimeout(timer); resolve(r); }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('error', (err) => { clearTimeout(timer); reject(err); });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`kubetrail ${o.name} exited (${code ?? signal}) before it was ready:\n${out}`));
      });
    });
    return { ...info, dataDir, output: () => out, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** `kubetrail demo`: the simulated cluster plays its history, then stops
 * (--live=false --duration 1s) while the server keeps serving. */
export function startDemo(history: string): Promise<Kubetrail> {
  return startKubetrail({
    name: 'demo',
    args: ['demo', '--data-dir', 'DATA_DIR', '--listen', '127.0.0.1:0', '--history', history, '--live=false', '--duration', '1s'],
    ready: (out) => {
      const url = /server on (http:\/\/[^\s,]+)/.exec(out)?.[1];
      const token = /history played[\s\S]*Token:\s+(kt_\w+)/.exec(out)?.[1];
      return url && token ? { url, token } : undefined;
    },
    timeoutMs: 180_000,
  });
}
