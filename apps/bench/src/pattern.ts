// The all-reduce input of each rank, chosen so that every sum is exact in float32 whatever the
// order of additions (small multiples of 0.5): the result can be checked element by element.

/** Rank `rank`'s input: data[i] = (rank + 1) + 0.5 * (i % 7). Fills in place and returns `data`. */
export function fillRank(data: Float32Array, rank: number): Float32Array {
  for (let i = 0; i < data.length; i++) data[i] = rank + 1 + 0.5 * (i % 7);
  return data;
}

/** Sum over ranks 0..n-1 of fillRank's element i: n(n+1)/2 + 0.5 * n * (i % 7). */
export function expectedSum(i: number, n: number): number {
  return (n * (n + 1)) / 2 + 0.5 * n * (i % 7);
}
