import type { WireError } from '@peertrain/protocol';

/**
 * A session failed inside the browser: the dashboard reported an error, a page crashed or failed to
 * load, or a page sent an invalid event. `remote` is the page's own `{ name, message }`; `pageErrors`
 * are the last console errors of every page (prefixed with the page's label), also folded into the
 * message so a one-line report carries them.
 */
export class SessionError extends Error {
  override readonly name = 'SessionError';
  constructor(
    readonly remote: WireError,
    readonly pageErrors: readonly string[] = [],
  ) {
    super(
      `${remote.name}: ${remote.message}` +
        (pageErrors.length > 0 ? ` [page errors: ${pageErrors.join(' | ')}]` : ''),
    );
  }
}

/** The Chromium executable is missing or not executable. */
export class BrowserNotFoundError extends Error {
  override readonly name = 'BrowserNotFoundError';
  constructor(readonly executablePath: string) {
    super(`Chromium not found at ${executablePath}`);
  }
}

/** A --chromium-flags string that cannot be split into flags (an unclosed quote). */
export class ChromiumFlagsError extends Error {
  override readonly name = 'ChromiumFlagsError';
}

/** A private network namespace cannot be created here (needs root, unshare and ip). */
export class IsolatedNetworkError extends Error {
  override readonly name = 'IsolatedNetworkError';
}

/** `vite build` failed. */
export class BuildError extends Error {
  override readonly name = 'BuildError';
}

/**
 * `--link` cannot be applied here: outside the private network namespace, or a tool it needs is
 * missing (`tc`, `nft`, `sysctl`; for delay also `python3` and `/dev/net/tun`). The message says which.
 */
export class LinkUnavailableError extends Error {
  override readonly name = 'LinkUnavailableError';
}

/** A `--chaos` spec that cannot be read, or that the run cannot hold; `issues` names each bad part. */
export class ChaosSpecError extends Error {
  override readonly name = 'ChaosSpecError';
  constructor(
    readonly spec: string,
    readonly issues: readonly string[],
  ) {
    super(`invalid --chaos ${JSON.stringify(spec)}: ${issues.join('; ')}`);
  }
}
