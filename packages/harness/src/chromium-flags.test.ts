import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, launchSettings } from './browser.ts';
import * as cf from './chromium-flags.ts';
import { ChromiumFlagsError } from './errors.ts';

const { GPU_FLAGS, PLAYWRIGHT_FEATURES, PLAYWRIGHT_DISABLED_FEATURES, chromiumFlags, gpuEnv } = cf;
const { nvidiaPaths, shellCommand, splitFlags } = cf;

const require = createRequire(import.meta.url);

const featuresOf = (flags: readonly string[]): string[][] =>
  flags.filter((f) => f.startsWith('--enable-features=')).map((f) => f.slice(18).split(','));

describe('chromiumFlags', () => {
  it('without --gpu: the base flags as given, no --enable-features of our own', () => {
    const base = ['--no-sandbox', '--disable-gpu', '--enable-unsafe-webgpu'];
    expect(chromiumFlags({ base, gpu: false })).toEqual(base);
    const flags = chromiumFlags({ base: CHROMIUM_ARGS, gpu: false });
    expect(featuresOf(flags)).toEqual([]);
    // The base's one --disable-features (mDNS candidates off) keeps what Playwright disables.
    const disabled = flags.filter((f) => f.startsWith('--disable-features='));
    expect(disabled).toEqual([
      `--disable-features=${[...PLAYWRIGHT_DISABLED_FEATURES, 'WebRtcHideLocalIpsWithMdns'].join(',')}`,
    ]);
  });

  it('merges every --disable-features into one, inherited first, before the --enable-features', () => {
    const flags = chromiumFlags({
      base: ['--disable-features=A', '--no-sandbox'],
      gpu: true,
      extra: ['--disable-features=B,A'],
      inheritedDisabled: ['P'],
    });
    expect(flags.filter((f) => f.startsWith('--disable-features='))).toEqual(['--disable-features=P,A,B']);
    expect(flags.at(-1)).toMatch(/^--enable-features=/);
  });

  it('carries exactly the features the installed playwright-core enables and disables', () => {
    // Playwright's launch switches, read from its bundle: if an upgrade changes them, this says so.
    const bundle = readFileSync(
      join(dirname(require.resolve('playwright-core/package.json')), 'lib/coreBundle.js'),
      'utf8',
    );
    const list = (name: string): string[] => {
      const at = bundle.indexOf(`${name} = `);
      const body = bundle.slice(at, bundle.indexOf(']', at));
      return [...body.matchAll(/^\s*(?:process\.env\.\w+ \? "" : )?"(\w+)"/gm)].map((m) => m[1]!);
    };
    expect(list('disabledFeatures')).toEqual([...PLAYWRIGHT_DISABLED_FEATURES]);
    expect(list('enabledFeatures')).toEqual([...PLAYWRIGHT_FEATURES]);
  });

  it('--gpu: the Vulkan flags, --disable-gpu gone, no repeats, one merged --enable-features', () => {
    const flags = chromiumFlags({
      base: ['--no-sandbox', '--disable-gpu', '--enable-unsafe-webgpu'],
      gpu: true,
    });
    for (const f of GPU_FLAGS) expect(flags).toContain(f);
    expect(flags).not.toContain('--disable-gpu');
    expect(flags.filter((f) => f === '--enable-unsafe-webgpu')).toHaveLength(1);
    expect(featuresOf(flags)).toEqual([
      [...PLAYWRIGHT_FEATURES, 'Vulkan', 'VulkanFromANGLE', 'DefaultANGLEVulkan'],
    ]);
    expect(flags.at(-1)).toMatch(/^--enable-features=/); // after everything: the one Chromium keeps
  });

  it('merges every --enable-features (base, extra, repeated) into one, inherited first, no duplicates', () => {
    const flags = chromiumFlags({
      base: ['--enable-features=A,B', '--no-sandbox'],
      gpu: true,
      extra: ['--enable-features=Vulkan,C', '--use-gl=egl', '--enable-features= D ,'],
      inheritedFeatures: ['P'],
    });
    expect(featuresOf(flags)).toEqual([
      ['P', 'Vulkan', 'VulkanFromANGLE', 'DefaultANGLEVulkan', 'A', 'B', 'C', 'D'],
    ]);
    expect(flags).toContain('--use-gl=egl');
    // Without --gpu an extra --enable-features is still merged with what Playwright enables.
    const plain = chromiumFlags({ base: [], gpu: false, extra: ['--enable-features=X'] });
    expect(featuresOf(plain)).toEqual([[...PLAYWRIGHT_FEATURES, 'X']]);
  });

  it('extra flags come after the base and GPU flags; --disable-gpu stays without --gpu', () => {
    const flags = chromiumFlags({ base: ['--a'], gpu: false, extra: ['--disable-gpu', '--b'] });
    expect(flags).toEqual(['--a', '--disable-gpu', '--b']);
    const gpu = chromiumFlags({ base: ['--a'], gpu: true, extra: ['--b'] });
    expect(gpu.indexOf('--b')).toBeGreaterThan(gpu.indexOf('--enable-gpu'));
  });
});

describe('splitFlags', () => {
  it('splits on whitespace and keeps quoted values together', () => {
    expect(splitFlags('  --a  --b=1\t--c="x y" \'--d=z w\'')).toEqual(['--a', '--b=1', '--c=x y', '--d=z w']);
    expect(splitFlags('')).toEqual([]);
    expect(splitFlags('--e=""')).toEqual(['--e=']);
  });
  it('refuses an unclosed quote', () => {
    expect(() => splitFlags('--a="b')).toThrow(ChromiumFlagsError);
  });
});

describe('gpuEnv', () => {
  const p = nvidiaPaths('/usr/local/nvidia');
  const all = (): boolean => true;

  it('nothing without --gpu, or where the driver files are absent', () => {
    expect(gpuEnv(false, {}, all)).toEqual({});
    expect(gpuEnv(true, {}, () => false)).toEqual({});
  });

  it('the NVIDIA files when present; lib64 first on LD_LIBRARY_PATH, once', () => {
    expect(gpuEnv(true, { LD_LIBRARY_PATH: '/opt/x' }, all)).toEqual({
      VK_DRIVER_FILES: p.vulkanIcd,
      __EGL_VENDOR_LIBRARY_FILENAMES: p.eglVendor,
      LD_LIBRARY_PATH: `${p.lib64}:/opt/x`,
    });
    expect(gpuEnv(true, { LD_LIBRARY_PATH: `/opt/x:${p.lib64}` }, all)['LD_LIBRARY_PATH']).toBeUndefined();
  });

  it('what the environment sets wins; PEERTRAIN_NVIDIA_ROOT moves the driver', () => {
    const env = gpuEnv(true, { VK_DRIVER_FILES: '/my/icd.json', PEERTRAIN_NVIDIA_ROOT: '/drv' }, all);
    expect(env['VK_DRIVER_FILES']).toBeUndefined();
    expect(env['__EGL_VENDOR_LIBRARY_FILENAMES']).toBe('/drv/share/glvnd/egl_vendor.d/10_nvidia.json');
    expect(env['LD_LIBRARY_PATH']).toBe('/drv/lib64');
  });
});

describe('launchSettings and shellCommand', () => {
  it('launchSettings: the base flags and the given environment; --gpu adds both parts', () => {
    const off = launchSettings({ env: { HOME: '/h', GONE: undefined } });
    expect(off.args).toEqual(chromiumFlags({ base: CHROMIUM_ARGS, gpu: false }));
    expect(off.env).toEqual({ HOME: '/h' });
    const on = launchSettings({
      gpu: true,
      args: ['--x'],
      env: { PEERTRAIN_NVIDIA_ROOT: '/nonexistent-peertrain' },
    });
    expect(on.args).toContain('--use-angle=vulkan');
    expect(on.args).toContain('--x');
    expect(on.env['VK_DRIVER_FILES']).toBeUndefined(); // no driver files there
  });

  it('shellCommand quotes what the shell would split', () => {
    expect(shellCommand('/usr/bin/chromium', ['--a', '--b=x y'], { K: 'v' }, 'http://h/?room=r&x=1')).toBe(
      "K=v /usr/bin/chromium --a '--b=x y' 'http://h/?room=r&x=1'",
    );
  });
});
