/**
 * `serve.onnx.mlp()`: writes a multi-layer perceptron (dense layers with an
 * activation each) as an ONNX model (opset 13), so that weights trained
 * anywhere (tfjs, plain arrays) can be served by `serve.onnx.deployment`.
 */
import { onnx } from 'onnx-proto';

/** One dense layer: `y = activation(x · weights + bias)`. */
export interface DenseLayer {
  /** `inputs × units`, row by row */
  weights: number[][];
  /** `units` */
  bias: number[];
  /** @default 'none' */
  activation?: 'relu' | 'sigmoid' | 'tanh' | 'softmax' | 'none';
}

/** Options of {@link mlp}. */
export interface MlpOptions {
  layers: DenseLayer[];
  /** @default 'input' */
  inputName?: string;
  /** @default 'output' */
  outputName?: string;
}

const ACT: Record<string, string> = { relu: 'Relu', sigmoid: 'Sigmoid', tanh: 'Tanh', softmax: 'Softmax' };

/**
 * The ONNX model (bytes of a .onnx file) of an MLP: input `[batch, inputs]`
 * float32, output `[batch, units of the last layer]`.
 * @throws TypeError when the layers' sizes do not chain
 */
export function mlp(options: MlpOptions): Uint8Array {
  const { layers } = options;
  const inputName = options.inputName ?? 'input';
  const outputName = options.outputName ?? 'output';
  if (!Array.isArray(layers) || layers.length === 0) throw new TypeError('serve.onnx.mlp() needs at least one layer');
  const nodes: onnx.INodeProto[] = [];
  const inits: onnx.ITensorProto[] = [];
  let prev = inputName;
  let width = layers[0]?.weights.length ?? 0;
  layers.forEach((l, i) => {
    const rows = l.weights.length;
    const units = l.weights[0]?.length ?? 0;
    if (rows !== width) throw new TypeError(`serve.onnx.mlp() layer ${i} takes ${rows} inputs but the layer before gives ${width}`);
    if (l.weights.some((r) => r.length !== units)) throw new TypeError(`serve.onnx.mlp() layer ${i}'s weights are not rectangular`);
    if (l.bias.length !== units) throw new TypeError(`serve.onnx.mlp() layer ${i} has ${units} units but ${l.bias.length} biases`);
    const act = l.activation ?? 'none';
    if (act !== 'none' && !ACT[act]) throw new TypeError(`serve.onnx.mlp() layer ${i} activation must be relu, sigmoid, tanh, softmax or none, got ${String(act)}`);
    inits.push({ name: `W${i}`, dataType: onnx.TensorProto.DataType.FLOAT, dims: [rows, units], floatData: l.weights.flat() });
    inits.push({ name: `B${i}`, dataType: onnx.TensorProto.DataType.FLOAT, dims: [units], floatData: l.bias });
    const last = i === layers.length - 1;
    const mm = `mm${i}`;
    const lin = last && act === 'none' ? outputName : `lin${i}`;
    nodes.push({ opType: 'MatMul', input: [prev, `W${i}`], output: [mm], name: `MatMul${i}` });
    nodes.push({ opType: 'Add', input: [mm, `B${i}`], output: [lin], name: `Add${i}` });
    prev = lin;
    if (act !== 'none') {
      const out = last ? outputName : `act${i}`;
      nodes.push({ opType: ACT[act] as string, input: [lin], output: [out], name: `${ACT[act]}${i}`, ...(act === 'softmax' ? { attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 }] } : {}) });
      prev = out;
    }
    width = units;
  });
  const tensorType = (cols: number): onnx.ITypeProto => ({ tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimValue: cols }] } } });
  const model: onnx.IModelProto = {
    irVersion: 7,
    producerName: 'tsray',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'mlp',
      node: nodes,
      initializer: inits,
      input: [{ name: inputName, type: tensorType(layers[0]?.weights.length ?? 0) }],
      output: [{ name: outputName, type: tensorType(width) }],
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}
