// What the dashboard page and the worker page share: start-up (page config, signaling, boot state),
// display formatting, frame-throttled rendering and small presentational components. The stylesheet
// is a separate entry: `import '@peertrain/ui/theme.css'`.

export { BootPanel } from './BootPanel.tsx';
export { CONFIG_STAGE, bootFailureText, bootProgressText } from './bootStage.ts';
export type { BootStage } from './bootStage.ts';
export {
  formatBandwidth,
  formatBytes,
  formatCount,
  formatEta,
  formatGflops,
  formatLoss,
  formatMs,
  formatPercent,
  formatRate,
  formatShard,
  orDash,
} from './format.ts';
export {
  LIVE_VIEW_EVERY_MS,
  UNWATCHED_VIEW_EVERY_MS,
  animationFrames,
  frameThrottledStore,
} from './frameStore.ts';
export type { FrameScheduler, FrameStore, Source } from './frameStore.ts';
export {
  PAGE_CONFIG_URL,
  fetchPageConfig,
  parsePageConfig,
  signalUrl,
  tabLinksWanted,
} from './pageConfig.ts';
export type { PageConfig, SignalConfig } from './pageConfig.ts';
export { SIGNAL_OPEN_TIMEOUT_MS, openPeerSession } from './peerSession.ts';
export type { PeerSession } from './peerSession.ts';
export { BackendOptions, ProgressBar, Stats, StepProgress, TopBar } from './ui.tsx';
export { useBoot } from './useBoot.ts';
export type { BootContext, BootState } from './useBoot.ts';
export { useFrameThrottled } from './useFrameThrottled.ts';
