import { describe, expect, it } from 'vitest';
import { linkState } from './peerjs.ts';

describe('linkState', () => {
  it('names where a handshake stopped: the server, the peer connection, the channel', () => {
    const pc = {
      signalingState: 'stable',
      iceGatheringState: 'complete',
      iceConnectionState: 'checking',
      connectionState: 'connecting',
    } as RTCPeerConnection;
    const dc = { peerConnection: pc, dataChannel: { readyState: 'connecting' } as RTCDataChannel };
    expect(linkState(dc, { disconnected: false, destroyed: false })).toBe(
      'server connected; signaling stable, gathering complete, ice checking, connection connecting, channel connecting',
    );
  });

  it('says when no peer connection was made (the offer or answer never arrived)', () => {
    expect(
      linkState({ peerConnection: null, dataChannel: null }, { disconnected: true, destroyed: false }),
    ).toBe('server disconnected; no peer connection yet (the offer or answer never arrived), channel none');
  });
});
