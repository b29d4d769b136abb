import { existsSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { abortable } from '@peertrain/base';
import { chromiumFlags, gpuEnv } from './chromium-flags.ts';
import { BrowserNotFoundError } from './errors.ts';
import { BACKGROUND_THROTTLING_OFF } from './hidden-tab.ts';

/** Debian's `chromium-headless-shell`: the headless-only build of the same Chromium. */
export const HEADLESS_SHELL = '/usr/lib/chromium/chromium-headless-shell';
/**
 * The headless shell where it is installed, else Debian's `chromium`. Measured here on the same
 * session (3 tabs, 80 ring steps): 25.6 s and 14.9 CPU-s against 31.0 s and 17.8 with `chromium`,
 * whose new headless mode is the whole browser (each tab's window brings a WebUI renderer of its own).
 */
export const DEFAULT_CHROMIUM = existsSync(HEADLESS_SHELL) ? HEADLESS_SHELL : '/usr/bin/chromium';

/**
 * Measured on this machine: without the background-networking flags Chromium keeps dialing out; WebGPU needs
 * exactly --enable-unsafe-webgpu. Playwright adds --headless and a fresh temporary --user-data-dir
 * itself (removed on close).
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--enable-unsafe-webgpu',
  // Host ICE candidates as plain addresses, not mDNS names (`<uuid>.local`): every link's handshake
  // then skips multicast name registration and resolution, which the tabs' links here never need.
  // Two dials under load sat 20 s with ICE gathering unfinished and no remote candidate.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

export interface LaunchBrowserOptions {
  executablePath?: string;
  headless?: boolean;
  /** Extra Chromium flags after CHROMIUM_ARGS (and the GPU flags); an --enable-features is merged. */
  args?: readonly string[];
  /** Use the machine's GPU through Vulkan (GPU_FLAGS, and the NVIDIA driver's files in the environment). */
  gpu?: boolean;
  /** The environment the GPU variables are added to (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Keep Chrome's background throttling (drop Playwright's flags that switch it off:
   * BACKGROUND_THROTTLING_OFF), for hidden worker tabs (hidden-tab.ts). Default false.
   */
  backgroundThrottling?: boolean;
  signal?: AbortSignal;
}

/** The flags and environment a launch gets: chromiumFlags and gpuEnv over CHROMIUM_ARGS. */
export function launchSettings(opts: Pick<LaunchBrowserOptions, 'args' | 'gpu' | 'env'>): {
  args: string[];
  env: Record<string, string>;
} {
  const gpu = opts.gpu === true;
  const env = opts.env ?? process.env;
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) base[k] = v;
  return {
    args: chromiumFlags({ base: CHROMIUM_ARGS, gpu, extra: opts.args ?? [] }),
    env: { ...base, ...gpuEnv(gpu, env) },
  };
}

/** Throws BrowserNotFoundError unless `path` is an executable file. */
export async function assertBrowserExecutable(path: string): Promise<void> {
  try {
    await access(path, constants.X_OK);
  } catch {
    throw new BrowserNotFoundError(path);
  }
}

/**
 * Launches system Chromium through playwright-core. Close it with `browser.close()`: the driver
 * then waits for the process, so nothing is left as a zombie. Playwright's own signal handlers are
 * off: the caller owns SIGINT/SIGTERM and closes the browser through its AbortSignal.
 */
export async function launchBrowser(opts: LaunchBrowserOptions = {}): Promise<Browser> {
  const { executablePath = DEFAULT_CHROMIUM, headless = true, signal } = opts;
  signal?.throwIfAborted();
  await assertBrowserExecutable(executablePath);
  const { args, env } = launchSettings(opts);
  const launching = chromium.launch({
    executablePath,
    headless,
    args,
    env,
    chromiumSandbox: false,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    ...(opts.backgroundThrottling === true ? { ignoreDefaultArgs: [...BACKGROUND_THROTTLING_OFF] } : {}),
  });
  try {
    return await abortable(launching, signal, () => {
      // Launch cannot be interrupted; close the browser as soon as it is up.
      launching.then((b) => b.close()).catch(() => undefined);
    });
  } catch (err) {
    if (err instanceof Error && /ENOENT|Failed to launch/.test(err.message) && !signal?.aborted) {
      throw new BrowserNotFoundError(executablePath);
    }
    throw err;
  }
}

export interface WebrtcProbeOptions {
  /** How long the data channel may take to open. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * True when two RTCPeerConnections in one page (iceServers: [], so host candidates only) open a
 * data channel within `timeoutMs`. False on this CI outside a network namespace: Chromium never
 * offers 127.0.0.1 as a candidate (packages/harness/README.md, "WebRTC on a CI machine").
 */
export async function webrtcWorks(browser: Browser, opts: WebrtcProbeOptions = {}): Promise<boolean> {
  const { timeoutMs = 4000, signal } = opts;
  signal?.throwIfAborted();
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const probe = page.evaluate(async (ms: number): Promise<boolean> => {
      const a = new RTCPeerConnection({ iceServers: [] });
      const b = new RTCPeerConnection({ iceServers: [] });
      try {
        a.onicecandidate = (e) => void (e.candidate && b.addIceCandidate(e.candidate));
        b.onicecandidate = (e) => void (e.candidate && a.addIceCandidate(e.candidate));
        const channel = a.createDataChannel('probe');
        const opened = new Promise<boolean>((resolve) => {
          channel.onopen = () => resolve(true);
          setTimeout(() => resolve(false), ms);
        });
        await a.setLocalDescription(await a.createOffer());
        await b.setRemoteDescription(a.localDescription!);
        await b.setLocalDescription(await b.createAnswer());
        await a.setRemoteDescription(b.localDescription!);
        return await opened;
      } finally {
        a.close();
        b.close();
      }
    }, timeoutMs);
    return await abortable(probe, signal);
  } finally {
    await context.close();
  }
}

/**
 * Dispatches one wheel event a frame over the first element matching `selector` (at `x`, `y`
 * from its top left, x moving a pixel per event) and returns the intervals between the frames:
 * for checking what zooming does, and for timing it (the benchmark).
 */
export async function wheelFrames(
  page: Page,
  selector: string,
  opts: { deltaY: number; count: number; x?: number; y?: number },
): Promise<number[]> {
  return page.evaluate(
    async ({ selector, deltaY, count, x, y }) => {
      // No named functions in here: tsx would wrap them in a helper the page does not have.
      const el = document.querySelector(selector);
      if (!el) throw new Error(`nothing matches ${selector}`);
      const r = el.getBoundingClientRect();
      const deltas: number[] = [];
      let last = performance.now();
      for (let i = 0; i < count; i++) {
        const init = { deltaY, clientX: r.left + x + i, clientY: r.top + y, bubbles: true, cancelable: true };
        el.dispatchEvent(new WheelEvent('wheel', init));
        await new Promise((res) => requestAnimationFrame(res));
        const now = performance.now();
        deltas.push(now - last);
        last = now;
      }
      return deltas;
    },
    { selector, deltaY: opts.deltaY, count: opts.count, x: opts.x ?? 300, y: opts.y ?? 50 },
  );
}
