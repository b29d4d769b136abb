import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '@peertrain/protocol';
import { layersText, roleText, scheduleName, shortPeerId, stageBadge, strategyName } from './peerLabels.ts';

describe('peer labels', () => {
  it('shortens peer ids of the room only', () => {
    expect(shortPeerId('pt-abc-w-x1', 'abc')).toBe('w-x1');
    expect(shortPeerId('pt-other-w-x1', 'abc')).toBe('pt-other-w-x1');
  });

  it('names roles, with the stage and replica of a pipeline peer', () => {
    const stage = { stage: 2, replica: 1, first: 4, end: 7 };
    expect(roleText({ role: 'stage', stage })).toBe('stage 2 of replica 1');
    expect(roleText({ role: 'stage', stage: null })).toBe('spare'); // an elastic pipeline's spare
    expect(roleText({ role: 'worker+server', stage: null })).toBe('worker + server');
    expect(roleText({ role: null, stage: null })).toBeNull();
    expect(layersText(stage)).toBe('[4, 7)');
    const chunks = [
      { first: 1, end: 2 },
      { first: 5, end: 7 },
    ];
    expect(layersText({ ...stage, first: 1, end: 2, chunks })).toBe('[1, 2) [5, 7)');
    expect(stageBadge(stage, 1)).toBe('S2');
    expect(stageBadge(stage, 2)).toBe('S2·R1');
  });

  it('names strategies and schedules', () => {
    expect(scheduleName('1f1b')).toBe('1F1B');
    expect(scheduleName('naive')).toBe('naive');
    expect(scheduleName('interleaved')).toBe('interleaved 1F1B');
    expect(scheduleName('zb-h1')).toBe('ZB-H1');
    expect(strategyName(parseRunConfig({}))).toBe('all-reduce');
    expect(strategyName(parseRunConfig({ sync: 'ps' }))).toBe('parameter server');
    expect(strategyName(parseRunConfig({ sync: 'diloco' }))).toBe('DiLoCo');
    expect(strategyName(parseRunConfig({ sync: 'ps-async' }))).toBe('async parameter server');
    expect(strategyName(parseRunConfig({ strategy: 'pipeline', schedule: 'gpipe' }))).toBe('pipeline GPipe');
    expect(strategyName(parseRunConfig({ strategy: 'hybrid', workers: 4, replicas: 2 }))).toBe(
      'hybrid 2 × 1F1B',
    );
  });
});
