// Measures what the defaults reach: the single-worker reference (= N workers at batch b) on MNIST
// with the wasm backend, then test accuracy on the 2000 test digits, and time per step.
//   node --import tsx packages/engine/scripts/measure-training.ts --model mlp --workers 3 --batch 32 \
//     --steps 300 --lr 0.05,0.1 --seeds 42
import { parseArgs } from 'node:util';
import type { OptimizerConfig, Shard } from '@peertrain/protocol';
import { activateBackend, buildModel, loadMnist, modelPreset, trainReference } from '../src/index.ts';
import type { ModelPreset } from '../src/index.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'mlp' },
    workers: { type: 'string', default: '3' },
    batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '300' },
    lr: { type: 'string', default: '0.05,0.1' },
    seeds: { type: 'string', default: '42' },
    optimizer: { type: 'string', default: 'sgd' },
    backend: { type: 'string', default: 'wasm' },
  },
});

/** Even contiguous shards (the planner's job in the product; equal speeds here). */
function evenShards(total: number, workers: number): Shard[] {
  return Array.from({ length: workers }, (_, r) => {
    const start = Math.floor((r * total) / workers);
    return { start, count: Math.floor(((r + 1) * total) / workers) - start };
  });
}

await activateBackend(values.backend as 'wasm' | 'cpu');
const data = await loadMnist();
const spec = modelPreset(values.model as ModelPreset);
const model = buildModel(spec);
const workers = Number(values.workers);
const batch = Number(values.batch);
const steps = Number(values.steps);
const optimizer: OptimizerConfig =
  values.optimizer === 'adam'
    ? { kind: 'adam', beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }
    : { kind: 'sgd', momentum: 0.9 };
const shards = evenShards(data.trainCount, workers);
console.log(
  `${spec.name} (${model.paramCount} params), ${values.backend}, ${optimizer.kind}, ${workers} x ${batch} = ${workers * batch}, ${steps} steps`,
);
for (const lr of values.lr.split(',').map(Number)) {
  for (const seed of values.seeds.split(',').map(Number)) {
    const t0 = performance.now();
    const { params, losses } = await trainReference({
      spec: model,
      config: { lr, optimizer, batch, seed },
      shards,
      data,
      steps,
    });
    const msPerStep = (performance.now() - t0) / steps;
    const test = await model.evaluate(params, data.testX, data.testY);
    const tail = losses.slice(-20).reduce((a, b) => a + b, 0) / 20;
    console.log(
      `lr ${lr} seed ${seed}: test accuracy ${test.accuracy.toFixed(4)}, test loss ${test.loss.toFixed(4)}, ` +
        `train loss (last 20) ${tail.toFixed(4)}, ${msPerStep.toFixed(1)} ms/step`,
    );
  }
}
