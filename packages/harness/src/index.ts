export {
  BrowserNotFoundError,
  BuildError,
  ChaosSpecError,
  ChromiumFlagsError,
  IsolatedNetworkError,
  LinkUnavailableError,
  SessionError,
} from './errors.ts';
export {
  CHAOS_SPEC_RULE,
  chaosSchedule,
  describeChaosAction,
  formatChaosSpec,
  parseChaosSpec,
} from './chaos-spec.ts';
export type { ChaosAction, ChaosSpec } from './chaos-spec.ts';
export { ChaosRunner } from './chaos.ts';
export { BACKGROUND_THROTTLING_OFF, HiddenTabs, hiddenTabLaunch, visibilityOf } from './hidden-tab.ts';
export type { HiddenRecord } from './hidden-tab.ts';
export type { ChaosEventRecord, ChaosRunnerOptions } from './chaos.ts';
export { LINK_SPEC_RULE, formatLinkSpec, linkCommands, parseLinkSpec } from './link-spec.ts';
export type { LinkSpec } from './link-spec.ts';
export { applyLink } from './link.ts';
export type { AppliedLink } from './link.ts';
export { measureUdp } from './link-probe.ts';
export type { UdpMeasurement } from './link-probe.ts';
export {
  GPU_FEATURES,
  GPU_FLAGS,
  NVIDIA_ROOT,
  NVIDIA_ROOT_ENV,
  PLAYWRIGHT_FEATURES,
  chromiumFlags,
  gpuEnv,
  nvidiaPaths,
  shellCommand,
  splitFlags,
} from './chromium-flags.ts';
export type { ChromiumFlagOptions } from './chromium-flags.ts';
export { startSignalServer } from './signal-server.ts';
export type { SignalServer, SignalServerOptions } from './signal-server.ts';
export {
  PAGE_CONFIG_PATH,
  VITE_CACHE_DIR_ENV,
  pageConfig,
  peertrainJsonPlugin,
  servePageConfig,
} from './page-config.ts';
export type { PageConfig, SignalInfo } from './page-config.ts';
export { startStaticServer } from './static-server.ts';
export type { StaticServer, StaticServerOptions } from './static-server.ts';
export { startSessionServers } from './servers.ts';
export type { SessionServers } from './servers.ts';
export { BUILD_HASH_FILE, REPO_ROOT, computeBuildHash, ensureBuilt } from './build.ts';
export type { BuildResult, EnsureBuiltOptions } from './build.ts';
export {
  CHROMIUM_ARGS,
  DEFAULT_CHROMIUM,
  assertBrowserExecutable,
  launchBrowser,
  launchSettings,
  wheelFrames,
  webrtcWorks,
} from './browser.ts';
export type { LaunchBrowserOptions, WebrtcProbeOptions } from './browser.ts';
export {
  ISOLATED_ENV,
  NETNS_SETUP_SCRIPT,
  exitStatus,
  insideIsolatedNetwork,
  isolatedNetworkAvailable,
  onParentExit,
  reexecIsolated,
  runIsolatedScript,
  spawnIsolated,
  waitForExit,
} from './netns.ts';
export type { IsolatedScriptResult, ReexecOptions, SpawnIsolatedOptions } from './netns.ts';
export { PAGE_RELOADS, loadPage } from './load.ts';
export type { LoadPageOptions } from './load.ts';
export { DEFAULT_IDLE_TIMEOUT_MS, ROOM_PATTERN, ROOM_RULE, randomRoom, runSession } from './session.ts';
export { dashboardUrl, encodeConfigParam, workerUrl } from './page-urls.ts';
export type { DashboardUrlOptions } from './page-urls.ts';
export type { RunSessionOptions, SessionInfo } from './session.ts';
export { LATEST_MANIFEST, blobFileName, readCheckpointDir, writeCheckpointDir } from './checkpoint-dir.ts';
