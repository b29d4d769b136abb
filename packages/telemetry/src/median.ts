import TinyQueue from 'tinyqueue';

// The median of a growing series in O(log n) per value: the lower half in a max-heap, the upper
// half in a min-heap, sizes kept within one. A run's per-step figures (the pipeline bubble) use it,
// so the median after step 100,000 costs what it cost after step 10.

/** Median of the values added so far: NaN when none; the mean of the middle two for an even count. */
export class RunningMedian {
  private readonly low = new TinyQueue<number>([], (a, b) => b - a);
  private readonly high = new TinyQueue<number>([], (a, b) => a - b);

  get count(): number {
    return this.low.length + this.high.length;
  }

  add(x: number): void {
    if (Number.isNaN(x)) return;
    const lowTop = this.low.peek();
    if (lowTop === undefined || x <= lowTop) this.low.push(x);
    else this.high.push(x);
    if (this.low.length > this.high.length + 1) this.high.push(this.low.pop()!);
    else if (this.high.length > this.low.length) this.low.push(this.high.pop()!);
  }

  get median(): number {
    const n = this.count;
    if (n === 0) return NaN;
    if (n % 2 === 1) return this.low.peek()!;
    return (this.low.peek()! + this.high.peek()!) / 2;
  }
}
