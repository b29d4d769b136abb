// The Chromium command line and environment for a launch, as pure functions: the base flags, the
// flags that put headless Chromium on the machine's GPU through Vulkan (PLATFORM.md, "On a real
// GPU"), and the caller's extra flags, with every --enable-features (and --disable-features) merged
// into one (Chromium honours only the last one it is given).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ChromiumFlagsError } from './errors.ts';

/**
 * What headless Chromium on Linux needs to run WebGPU on an NVIDIA GPU instead of SwiftShader: GPU
 * use despite the blocklist, ANGLE on Vulkan, no Vulkan surface (there is no display).
 */
export const GPU_FLAGS: readonly string[] = [
  '--enable-gpu',
  '--ignore-gpu-blocklist',
  '--use-angle=vulkan',
  '--disable-vulkan-surface',
  '--enable-unsafe-webgpu',
];

/** The features the GPU path enables (merged into the one --enable-features). */
export const GPU_FEATURES: readonly string[] = ['Vulkan', 'VulkanFromANGLE', 'DefaultANGLEVulkan'];

/**
 * What playwright-core itself passes in --enable-features and --disable-features ahead of ours:
 * since only the last of each counts, ours must carry these too or they are lost (the test reads
 * them back from the installed playwright-core).
 */
export const PLAYWRIGHT_FEATURES: readonly string[] = [
  'CDPScreenshotNewSurface',
  'SkipListAccountsWithoutGaiaCookies',
];
export const PLAYWRIGHT_DISABLED_FEATURES: readonly string[] = [
  'AvoidUnnecessaryBeforeUnloadCheckSync',
  'DestroyProfileOnBrowserClose',
  'HttpsUpgrades',
  'HttpsFirstBalancedModeAutoEnable',
  'LensOverlay',
  'MediaRouter',
  'PaintHolding',
  'ThirdPartyStoragePartitioning',
  'AvoidCorsURLLoaderRestartOnRedirect',
  'TcpPortRandomizationWin',
  'OptimizationHints',
  'NetworkTimeServiceQuerying',
  'AimEnabled',
  'PreconnectToSearch',
  'msForceBrowserSignIn',
  'msEdgeUpdateLaunchServicesPreferredVersion',
];

const ENABLE_FEATURES = '--enable-features=';
const DISABLE_FEATURES = '--disable-features=';

export interface ChromiumFlagOptions {
  /** The flags every launch gets (CHROMIUM_ARGS). */
  base: readonly string[];
  /** Add GPU_FLAGS and GPU_FEATURES and drop --disable-gpu. */
  gpu: boolean;
  /** The caller's own flags (--chromium-flags); they come last and win over the base ones. */
  extra?: readonly string[];
  /** Features an earlier --enable-features on the command line holds (default PLAYWRIGHT_FEATURES). */
  inheritedFeatures?: readonly string[];
  /** Same for --disable-features (default PLAYWRIGHT_DISABLED_FEATURES). */
  inheritedDisabled?: readonly string[];
}

/**
 * The flag list for a launch: base, then the GPU flags when asked, then the extra flags, without
 * repeats, with --disable-gpu removed under `gpu`, and every --enable-features value (inherited
 * ones first) merged into a single --enable-features at the end; --disable-features likewise. No
 * --enable-features (--disable-features) at all when none of the flags asks for one, so
 * Playwright's own stays in force.
 */
export function chromiumFlags(opts: ChromiumFlagOptions): string[] {
  const all = [...opts.base, ...(opts.gpu ? GPU_FLAGS : []), ...(opts.extra ?? [])];
  const enabled: string[] = [];
  const disabled: string[] = [];
  const flags: string[] = [];
  let mentionsDisabled = false;
  let mentionsEnabled = opts.gpu;
  for (const flag of all) {
    if (flag.startsWith(ENABLE_FEATURES)) {
      mentionsEnabled = true;
      enabled.push(...splitFeatures(flag.slice(ENABLE_FEATURES.length)));
    } else if (flag.startsWith(DISABLE_FEATURES)) {
      mentionsDisabled = true;
      disabled.push(...splitFeatures(flag.slice(DISABLE_FEATURES.length)));
    } else if (!(opts.gpu && flag === '--disable-gpu') && !flags.includes(flag)) {
      flags.push(flag);
    }
  }
  const merged = (prefix: string, lists: readonly (readonly string[])[]): string =>
    `${prefix}${[...new Set(lists.flat())].join(',')}`;
  if (mentionsDisabled)
    flags.push(merged(DISABLE_FEATURES, [opts.inheritedDisabled ?? PLAYWRIGHT_DISABLED_FEATURES, disabled]));
  if (mentionsEnabled) {
    const inherited = opts.inheritedFeatures ?? PLAYWRIGHT_FEATURES;
    flags.push(merged(ENABLE_FEATURES, [inherited, opts.gpu ? GPU_FEATURES : [], enabled]));
  }
  return flags;
}

function splitFeatures(list: string): string[] {
  return list
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '');
}

/**
 * `--chromium-flags "..."` as a list: split on whitespace; single or double quotes keep a value with
 * spaces together (`--user-agent="a b"`). Throws ChromiumFlagsError on an unclosed quote.
 */
export function splitFlags(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let inToken = false;
  let quote: '"' | "'" | null = null;
  for (const ch of text) {
    if (quote !== null) {
      if (ch === quote) quote = null;
      else current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inToken = true;
    } else if (/\s/.test(ch)) {
      if (inToken) out.push(current);
      current = '';
      inToken = false;
    } else {
      current += ch;
      inToken = true;
    }
  }
  if (quote !== null) throw new ChromiumFlagsError(`unclosed ${quote} in ${JSON.stringify(text)}`);
  if (inToken) out.push(current);
  return out;
}

/** Where the NVIDIA container toolkit puts the driver (PLATFORM.md); PEERTRAIN_NVIDIA_ROOT moves it. */
export const NVIDIA_ROOT = '/usr/local/nvidia';
export const NVIDIA_ROOT_ENV = 'PEERTRAIN_NVIDIA_ROOT';

/** The driver files under an NVIDIA root. */
export function nvidiaPaths(root: string): { vulkanIcd: string; eglVendor: string; lib64: string } {
  return {
    vulkanIcd: join(root, 'share/vulkan/icd.d/nvidia_icd.json'),
    eglVendor: join(root, 'share/glvnd/egl_vendor.d/10_nvidia.json'),
    lib64: join(root, 'lib64'),
  };
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The variables to add to the browser's environment under --gpu: the Vulkan ICD and the EGL vendor
 * file of the NVIDIA driver, and its lib64 first on LD_LIBRARY_PATH, each only where the file
 * exists. A variable the environment already sets is kept (that is the override). Without --gpu:
 * nothing.
 */
export function gpuEnv(
  gpu: boolean,
  env: Env,
  exists: (path: string) => boolean = existsSync,
): Record<string, string> {
  if (!gpu) return {};
  const paths = nvidiaPaths(env[NVIDIA_ROOT_ENV] || NVIDIA_ROOT);
  const out: Record<string, string> = {};
  if (!env['VK_DRIVER_FILES'] && exists(paths.vulkanIcd)) out['VK_DRIVER_FILES'] = paths.vulkanIcd;
  if (!env['__EGL_VENDOR_LIBRARY_FILENAMES'] && exists(paths.eglVendor))
    out['__EGL_VENDOR_LIBRARY_FILENAMES'] = paths.eglVendor;
  const ld = (env['LD_LIBRARY_PATH'] ?? '').split(':').filter((p) => p !== '');
  if (exists(paths.lib64) && !ld.includes(paths.lib64))
    out['LD_LIBRARY_PATH'] = [paths.lib64, ...ld].join(':');
  return out;
}

/** `KEY=value ... chromium flags... URL` for a person to paste: what --gpu means on the command line. */
export function shellCommand(
  executable: string,
  flags: readonly string[],
  env: Readonly<Record<string, string>>,
  url: string,
): string {
  const q = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  const vars = Object.entries(env).map(([k, v]) => `${k}=${q(v)}`);
  return [...vars, q(executable), ...flags.map(q), q(url)].join(' ');
}
