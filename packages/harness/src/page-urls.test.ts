import { describe, expect, it } from 'vitest';
import { dashboardUrl } from './page-urls.ts';

describe('dashboardUrl', () => {
  it('asks for the trained parameters only when told to', () => {
    const params = (url: string) => new URL(url).searchParams;
    const plain = params(dashboardUrl('http://127.0.0.1:9/', 'r1', { workers: 2 }));
    expect(plain.get('headless')).toBe('1');
    expect(plain.has('model')).toBe(false);
    expect(plain.has('resume')).toBe(false);
    const asked = params(
      dashboardUrl('http://127.0.0.1:9/', 'r1', { workers: 2 }, { resume: true, model: true }),
    );
    expect(asked.get('model')).toBe('1');
    expect(asked.get('resume')).toBe('1');
    const faulty = params(dashboardUrl('http://127.0.0.1:9/', 'r1', {}, { faults: ['slow', 'vanish'] }));
    expect(faulty.get('faults')).toBe('slow,vanish');
  });
});
