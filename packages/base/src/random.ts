// One seeded generator for every package. Parameters, shuffles and synthetic data must be
// identical bytes on every backend, browser and machine, so it uses only integer ops and exact
// float64 division (never Math.log/sin/pow, whose last bit may differ between engines).

/** mulberry32: 32-bit state, uniform floats in [0, 1). Small, fast, good enough for shuffles. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
