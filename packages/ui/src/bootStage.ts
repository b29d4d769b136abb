import { PAGE_CONFIG_URL } from './pageConfig.ts';

/** Where a page is in its start-up: loading /peertrain.json, registering with signaling, starting its role. */
export type BootStage =
  { kind: 'config' } | { kind: 'signal'; url: string; peerId: string } | { kind: 'start'; what: string };

export const CONFIG_STAGE: BootStage = { kind: 'config' };

export function bootProgressText(stage: BootStage): string {
  switch (stage.kind) {
    case 'config':
      return `Loading signaling settings (${PAGE_CONFIG_URL})…`;
    case 'signal':
      return `Connecting to the signaling server ${stage.url} as ${stage.peerId}…`;
    case 'start':
      return `Starting ${stage.what}…`;
    default: {
      const _: never = stage;
      return _;
    }
  }
}

export function bootFailureText(stage: BootStage): { title: string; detail: string } {
  switch (stage.kind) {
    case 'config':
      return {
        title: 'Cannot reach signaling',
        detail: `${PAGE_CONFIG_URL} (where the signaling server is) could not be loaded. Serve the pages with the PeerTrain server (npm start or peertrain), which writes it.`,
      };
    case 'signal':
      return {
        title: 'Cannot reach signaling',
        detail: `The signaling server ${stage.url} did not register ${stage.peerId}. Is it running and reachable from this device?`,
      };
    case 'start':
      return { title: `Could not start ${stage.what}`, detail: 'Signaling is up, but starting failed.' };
    default: {
      const _: never = stage;
      return _;
    }
  }
}
