/** Deployments the serve benchmark runs (top level: replicas import this module). */
import * as serve from '@tsray/serve';

/** Answers at once, over HTTP and through handles. */
export const Noop = serve.deployment(
  { numReplicas: 2, maxOngoingRequests: 1000, rayActorOptions: { numCpus: 0 } },
  class Noop {
    call(): string {
      return 'ok';
    }
    noop(): number {
      return 1;
    }
  },
);

/** Takes `ms` per request; autoscaled from 1 to 4 replicas at once under load. */
export const Sleeper = serve.deployment(
  {
    maxOngoingRequests: 4,
    rayActorOptions: { numCpus: 0 },
    autoscalingConfig: { minReplicas: 1, maxReplicas: 4, targetOngoingRequests: 2, upscaleDelayS: 0, downscaleDelayS: 600, metricsIntervalS: 0.1, lookBackPeriodS: 0.5 },
  },
  class Sleeper {
    async sleep(ms: number): Promise<number> {
      await new Promise((r) => setTimeout(r, ms));
      return process.pid;
    }
  },
);
