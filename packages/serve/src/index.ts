/**
 * tsray Serve: model-serving endpoints on `@tsray/core`, as Ray Serve.
 * A deployment is a class (or function) served by replicas (actors); a
 * controller actor keeps each application at its target state, a router
 * in every caller spreads requests over replicas, and an HTTP proxy on
 * each host routes requests by path.
 *
 * ```ts
 * import * as ray from '@tsray/core';
 * import * as serve from '@tsray/serve';
 *
 * export const Doubler = serve.deployment({ numReplicas: 2 }, class Doubler {
 *   async call(req: serve.Request) { return { y: req.json<{ x: number }>().x * 2 }; }
 *   async double(x: number) { return 2 * x; }
 * });
 *
 * await ray.init();
 * const handle = await serve.run(Doubler.bind(), { routePrefix: '/double' });
 * await handle.double.remote(21);                              // 42
 * await fetch('http://127.0.0.1:8000/double', { method: 'POST', body: '{"x":1}' });  // {"y":2}
 * await serve.shutdown();
 * ```
 *
 * @packageDocumentation
 */
export { Application, Deployment, deployment, run, start, status, deleteApp as delete, shutdown, getAppHandle, getDeploymentHandle, type HandleOf, type RunOptions, type StartOptions } from './api';
export { batch, multiplexed, getMultiplexedModelId, type BatchOptions, type MultiplexedOptions } from './batch';
export { DeploymentResponse, DeploymentResponseGenerator, type DeploymentHandle, type DeploymentHandleBase, type DeploymentStreamHandle, type HandleMethod, type HandleMethods, type HandleOptions, type ResultOptions, type StreamMethod } from './handle';
export { Request } from './request';
export { ServeError, BackPressureError, DeploymentUnavailableError, DeployFailedError, RequestTimeoutError, BadRequestError } from './errors';
export type { DeploymentOptions, AutoscalingConfig, RayActorOptions } from './internal/options';
export type { ServeStatus, ApplicationStatus, DeploymentStatus } from './internal/controller';
import { OnnxModel, onnxDeployment, type OnnxDeploymentOptions, type OnnxInputs, type OnnxOutputs, type TensorLike } from './onnx';
import { mlp, type DenseLayer, type MlpOptions } from './onnx-export';
/** `serve.onnx`: the ready-made ONNX deployment and an MLP writer. */
export const onnx = { deployment: onnxDeployment, mlp, OnnxModel };
export type { OnnxDeploymentOptions, OnnxInputs, OnnxOutputs, TensorLike, DenseLayer, MlpOptions };
export type { OnnxModel };
