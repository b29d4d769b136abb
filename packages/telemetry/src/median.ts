// The median of a growing series in O(log n) per value: the lower half in a max-heap, the upper
// half in a min-heap, sizes kept within one. A run's per-step figures (the pipeline bubble) use it,
// so the median after step 100,000 costs what it cost after step 10.

/** A binary heap on a comparison: `before(a, b)` true when a belongs nearer the top. */
class Heap {
  private readonly items: number[] = [];
  constructor(private readonly before: (a: number, b: number) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): number | undefined {
    return this.items[0];
  }

  push(x: number): void {
    const a = this.items;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(a[i]!, a[parent]!)) break;
      [a[i], a[parent]] = [a[parent]!, a[i]!];
      i = parent;
    }
  }

  pop(): number | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < a.length && this.before(a[l]!, a[best]!)) best = l;
        if (r < a.length && this.before(a[r]!, a[best]!)) best = r;
        if (best === i) break;
        [a[i], a[best]] = [a[best]!, a[i]!];
        i = best;
      }
    }
    return top;
  }
}

/** Median of the values added so far: NaN when none; the mean of the middle two for an even count. */
export class RunningMedian {
  private readonly low = new Heap((a, b) => a > b);
  private readonly high = new Heap((a, b) => a < b);

  get count(): number {
    return this.low.size + this.high.size;
  }

  add(x: number): void {
    if (Number.isNaN(x)) return;
    const lowTop = this.low.peek();
    if (lowTop === undefined || x <= lowTop) this.low.push(x);
    else this.high.push(x);
    if (this.low.size > this.high.size + 1) this.high.push(this.low.pop()!);
    else if (this.high.size > this.low.size) this.low.push(this.high.pop()!);
  }

  get median(): number {
    const n = this.count;
    if (n === 0) return NaN;
    if (n % 2 === 1) return this.low.peek()!;
    return (this.low.peek()! + this.high.peek()!) / 2;
  }
}
