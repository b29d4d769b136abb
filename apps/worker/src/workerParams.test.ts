import { describe, expect, it } from 'vitest';
import { memoryText, parseWorkerParams, phaseText, roleText } from './workerParams.ts';

describe('worker params', () => {
  it('reads room, backend and where to compute', () => {
    expect(parseWorkerParams('?room=lab-3&backend=wasm&compute=thread')).toEqual({
      room: 'lab-3',
      backend: 'wasm',
      compute: 'thread',
      error: null,
    });
    expect(parseWorkerParams('?room=Lab-3')).toEqual({
      room: 'lab-3',
      backend: 'auto',
      compute: 'page',
      error: null,
    });
  });

  it('asks for the room when it is missing or invalid', () => {
    expect(parseWorkerParams('')).toEqual({ room: null, backend: 'auto', compute: 'page', error: null });
    const bad = parseWorkerParams('?room=no%20spaces');
    expect(bad.room).toBeNull();
    expect(bad.error?.name).toBe('ConfigError');
  });

  it('refuses an unknown backend instead of guessing', () => {
    const p = parseWorkerParams('?room=r&backend=cuda');
    expect(p.room).toBeNull();
    expect(p.backend).toBe('auto');
    expect(p.error?.message).toMatch(/unknown backend "cuda"/);
  });

  it('refuses an unknown compute place', () => {
    const p = parseWorkerParams('?room=r&compute=gpu');
    expect(p.room).toBeNull();
    expect(p.error?.message).toMatch(/unknown compute place "gpu"/);
  });

  it('describes every phase', () => {
    expect(phaseText('training')).toBe('Training');
    expect(phaseText('joining')).toBe('Joining the coordinator (the dashboard tab)…');
    expect(phaseText('joining', true)).toBe('Waiting for the coordinator (the dashboard tab), trying again…');
    expect(phaseText('left')).toBe('Left the room');
  });
});

describe('roleText', () => {
  it('names data-parallel roles', () => {
    expect(roleText(null, null)).toBe('–');
    expect(roleText('worker', null)).toBe('worker');
    expect(roleText('worker+server', null)).toBe('worker + parameter server');
  });

  it('counts stages and replicas from 1 and shows inclusive layer indices', () => {
    const stage = { stage: 1, replica: 0, first: 3, end: 6, stages: 4 };
    expect(roleText('stage', stage)).toBe('stage 2 of 4, replica 1, layers 3-5');
    expect(roleText('stage', { ...stage, stage: 3, replica: 2, first: 7, end: 8 })).toBe(
      'stage 4 of 4, replica 3, layer 7',
    );
    // Interleaved: every chunk the peer holds.
    const chunks = [
      { first: 1, end: 2 },
      { first: 5, end: 7 },
    ];
    expect(roleText('stage', { ...stage, first: 1, end: 2, chunks })).toBe(
      'stage 2 of 4, replica 1, layers 1, 5-6',
    );
    // The assignment may lag the role by one status update.
    expect(roleText('stage', null)).toBe('pipeline stage');
  });
});

describe('memoryText', () => {
  it("says what the engine holds, the parameters and a stage's activation peak when known", () => {
    expect(memoryText(null)).toBe('–');
    expect(memoryText({ numBytes: 1_500_000, numTensors: 14 })).toBe('1.50 MB in 14 tensors');
    expect(memoryText({ numBytes: 0, numTensors: 0, numBytesInGPU: 2_000_000, paramBytes: 4_200_000 })).toBe(
      '0 B in 0 tensors (GPU 2.00 MB), parameters 4.20 MB',
    );
    expect(
      memoryText({ numBytes: 0, numTensors: 0, paramBytes: 4_200_000, peakActivationBytes: 786_400 }),
    ).toBe('0 B in 0 tensors, parameters 4.20 MB, activations at most 786 kB');
  });
});
