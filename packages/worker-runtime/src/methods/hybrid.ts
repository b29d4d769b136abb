// Hybrid: R replicas of a P-stage pipeline (methods/pipeline.ts). Each stage group (the same stage
// in every replica) averages its gradient sums over a ring before the optimizer, so the replicas
// stay identical; the group's links are that ring.
import { allReduceMean } from '@peertrain/collective';
import { PHASE_TIMEOUTS } from '@peertrain/protocol';
import { hopTimed } from '../phase-timeouts.ts';
import { pipelineLinks, stageCoords, stageMethod } from './pipeline.ts';
import type { StageRun } from './pipeline.ts';
import type { MethodLinks, Placement, WorkerMethod } from './types.ts';

/** The pipeline's links plus the stage group's ring: we dial the next replica's same stage. */
function hybridLinks(assign: Placement): MethodLinks {
  const { dial, need } = pipelineLinks(assign);
  const { replicas: r, stage, replica, at } = stageCoords(assign);
  if (r > 1) {
    dial.push(at((replica + 1) % r, stage));
    need.push(at((replica + 1) % r, stage), at((replica - 1 + r) % r, stage));
  }
  return { dial, need };
}

/** The stage group's mean of the step's gradient sum, as one `allreduce` span. */
async function averageOverReplicas({ ctx, coords, params, grads }: StageRun, step: number): Promise<void> {
  const group = Array.from({ length: coords.replicas }, (_, r) => coords.at(r, coords.stage));
  if (group.length < 2 || params.length === 0) return;
  const { spans, assign } = ctx;
  const ta = spans.now();
  // Each receive of the group's ring (one hop) has its named timeout.
  await allReduceMean(hopTimed(ctx.mesh, PHASE_TIMEOUTS.allreduceHop), group, grads, {
    runId: assign.runId,
    step,
    bucketElems: assign.config.bucketElems,
    algorithm: assign.config.allReduce,
    signal: ctx.signal,
  });
  spans.record('allreduce', ta, spans.now() - ta, { step, bytes: grads.byteLength });
}

export const hybridMethod: WorkerMethod = stageMethod({
  name: 'hybrid',
  links: hybridLinks,
  average: averageOverReplicas,
});
