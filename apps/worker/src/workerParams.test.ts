import { describe, expect, it } from 'vitest';
import { parseWorkerParams, phaseText } from './workerParams.ts';

describe('worker params', () => {
  it('reads room and backend', () => {
    expect(parseWorkerParams('?room=lab-3&backend=wasm')).toEqual({
      room: 'lab-3',
      backend: 'wasm',
      error: null,
    });
    expect(parseWorkerParams('?room=Lab-3')).toEqual({ room: 'lab-3', backend: 'auto', error: null });
  });

  it('asks for the room when it is missing or invalid', () => {
    expect(parseWorkerParams('')).toEqual({ room: null, backend: 'auto', error: null });
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

  it('describes every phase', () => {
    expect(phaseText('training')).toBe('Training');
    expect(phaseText('left')).toBe('Left the room');
  });
});
